/* SPDX-License-Identifier: Apache-2.0 */
/* te_mean_s8.c - int8 MEAN over count contiguous elements (TFLM QuantizedMeanOrSum).
 * Mirrors ternembed/kernels/pool.py: mean. */
#include "te_fixedpoint.h"
#include "te_kernels_misc.h"

void te_mean_s8(const int8_t *input, int8_t *output, int32_t outer, int32_t inner,
                const te_mean_params *p)
{
    int32_t o, k, c;
    for (o = 0; o < outer; ++o) {
        const int8_t *base = input + (int64_t)o * p->count * inner;
        for (c = 0; c < inner; ++c) {
            int32_t sum = 0;
            int32_t v;
            for (k = 0; k < p->count; ++k) {
                sum += base[(int64_t)k * inner + c];
            }
            if (p->mode == 1) {
                v = sum / p->count; /* truncating, raw values (older TFLM, equal quant) */
            } else {
                v = te_requantize(sum - p->input_zero_point * p->count, p->multiplier, p->shift) +
                    p->output_zero_point;
            }
            *output++ = (int8_t)te_clamp(v, -128, 127);
        }
    }
}
