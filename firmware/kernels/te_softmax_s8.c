/* SPDX-License-Identifier: Apache-2.0 */
/* te_softmax_s8.c - int8 SOFTMAX, output zero point -128 / scale 1/256 (TFLM reference).
 * Mirrors ternembed/kernels/activation.py: softmax. */
#include "te_fixedpoint.h"
#include "te_fxmath.h"
#include "te_kernels_misc.h"

#define TE_SOFTMAX_DIFF_BITS 5   /* Q5.26 scaled differences */
#define TE_SOFTMAX_ACCUM_BITS 12 /* Q12.19 sum of exps */

te_status te_softmax_s8(const int8_t *input, int8_t *output, int32_t outer, int32_t depth,
                        const te_softmax_params *p)
{
    int32_t i, c;
    for (i = 0; i < outer; ++i) {
        const int8_t *in = input + (int64_t)i * depth;
        int8_t *out = output + (int64_t)i * depth;
        int32_t max_in_row = -128;
        int32_t sum_of_exps = 0;
        int32_t headroom_plus_one, exponent, shifted_scale;
        for (c = 0; c < depth; ++c) {
            max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
        }
        for (c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)in[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t scaled =
                    te_requantize(diff, p->input_multiplier, p->input_left_shift);
                sum_of_exps += te_rdbpot(te_exp_on_negative_values(scaled, TE_SOFTMAX_DIFF_BITS),
                                         TE_SOFTMAX_ACCUM_BITS);
            }
        }
        /* 1/sum as a Q0 scale times 2^-num_bits_over_unit (TFLM GetReciprocal). */
        headroom_plus_one = te_clz32((uint32_t)sum_of_exps);
        shifted_scale = te_one_over_one_plus_x(
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - 0x80000000u));
        exponent = (TE_SOFTMAX_ACCUM_BITS - headroom_plus_one) + 31 - 8;
        if (exponent < 0 || exponent > 31) {
            return TE_ERR_ARG;
        }
        for (c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)in[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t scaled =
                    te_requantize(diff, p->input_multiplier, p->input_left_shift);
                const int32_t e = te_exp_on_negative_values(scaled, TE_SOFTMAX_DIFF_BITS);
                const int32_t v = te_rdbpot(te_srdhm(shifted_scale, e), exponent) - 128;
                out[c] = (int8_t)te_clamp(v, -128, 127);
            } else {
                out[c] = -128;
            }
        }
    }
    return TE_OK;
}
