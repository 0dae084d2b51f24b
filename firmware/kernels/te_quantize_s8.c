/* SPDX-License-Identifier: Apache-2.0 */
/* te_quantize_s8.c - QUANTIZE float32 -> int8 (TFLM AffineQuantize) and int8 -> int8
 * (TFLM Requantize). Mirrors ternembed/kernels/misc.py: quantize, requantize.
 * Needs IEEE float32 division: build without -ffast-math. */
#include "te_fixedpoint.h"
#include "te_kernels_misc.h"

/* roundf(q) (halves away from zero) for |q| <= 1024, without libm. */
static inline int32_t te_round_small(float q)
{
    const int32_t t = (int32_t)q;    /* truncation */
    const float frac = q - (float)t; /* exact for |q| < 2^23 */
    return t + (frac >= 0.5f ? 1 : 0) - (frac <= -0.5f ? 1 : 0);
}

void te_quantize_f32_s8(const float *input, int8_t *output, int32_t size,
                        const te_quantize_params *p)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        const float q = input[i] / p->scale;
        int32_t v;
        if (q != q) {
            v = 0; /* NaN */
        } else if (q > 1024.0f) {
            v = 1024;
        } else if (q < -1024.0f) {
            v = -1024;
        } else {
            v = te_round_small(q);
        }
        output[i] = (int8_t)te_clamp(v + p->zero_point, -128, 127);
    }
}

void te_requantize_s8(const int8_t *input, int8_t *output, int32_t size,
                      const te_requantize_params *p)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t v =
            te_requantize((int32_t)input[i] - p->input_zero_point, p->multiplier, p->shift) +
            p->output_zero_point;
        output[i] = (int8_t)te_clamp(v, -128, 127);
    }
}
