/* SPDX-License-Identifier: Apache-2.0 */
/* te_prelu_s8.c - int8 PRELU, elementwise and 4-D broadcast (alpha usually per channel).
 * Mirrors ternembed/kernels/unary.py: prelu. */
#include "te_fixedpoint.h"
#include "te_kernels_data.h"

static void te_prelu_row(const int8_t *x, int32_t sx, const int8_t *alpha, int32_t sa, int8_t *out,
                         int32_t n, const void *params)
{
    const te_prelu_params *p = (const te_prelu_params *)params;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t v = x[i * sx] + p->input_offset;
        const int32_t r = v >= 0 ? te_requantize(v, p->output_multiplier_1, p->output_shift_1)
                                 : te_requantize(v * (alpha[i * sa] + p->alpha_offset),
                                                 p->output_multiplier_2, p->output_shift_2);
        out[i] = (int8_t)te_clamp(r + p->output_offset, -128, 127);
    }
}

void te_prelu_s8(const int8_t *input, const int8_t *alpha, int8_t *output, int32_t size,
                 const te_prelu_params *p)
{
    te_prelu_row(input, 1, alpha, 1, output, size, p);
}

void te_prelu_bcast_s8(const te_dims *dims1, const int8_t *input, const te_dims *dims2,
                       const int8_t *alpha, const te_dims *out_dims, int8_t *output,
                       const te_prelu_params *p)
{
    te_broadcast4(dims1, input, dims2, alpha, out_dims, output, te_prelu_row, p);
}
