/* SPDX-License-Identifier: Apache-2.0 */
/* te_mul_s8.c - int8 MUL, elementwise and 4-D broadcast (TFLM reference semantics).
 * Mirrors ternembed/kernels/elementwise.py: mul. */
#include "te_fixedpoint.h"
#include "te_kernels_misc.h"

static inline int8_t te_mul_one(int32_t a, int32_t b, const te_mul_params *p)
{
    const int32_t prod = (a + p->input1_offset) * (b + p->input2_offset);
    const int32_t out =
        te_requantize(prod, p->output_multiplier, p->output_shift) + p->output_offset;
    return (int8_t)te_clamp(out, p->act.min, p->act.max);
}

void te_mul_s8(const int8_t *input1, const int8_t *input2, int8_t *output, int32_t size,
               const te_mul_params *p)
{
    const te_mul_params q = *p; /* output may alias *p: copy once, not reload per element */
    int32_t i;
    for (i = 0; i < size; ++i) {
        output[i] = te_mul_one(input1[i], input2[i], &q);
    }
}

void te_mul_bcast_s8(const te_dims *dims1, const int8_t *input1, const te_dims *dims2,
                     const int8_t *input2, const te_dims *out_dims, int8_t *output,
                     const te_mul_params *p)
{
    const int32_t c1 = dims1->c > 1 ? 1 : 0, c2 = dims2->c > 1 ? 1 : 0;
    const int32_t w1 = dims1->w > 1 ? dims1->c : 0, w2 = dims2->w > 1 ? dims2->c : 0;
    const int32_t h1 = dims1->h > 1 ? dims1->w * dims1->c : 0;
    const int32_t h2 = dims2->h > 1 ? dims2->w * dims2->c : 0;
    const int32_t n1 = dims1->n > 1 ? dims1->h * dims1->w * dims1->c : 0;
    const int32_t n2 = dims2->n > 1 ? dims2->h * dims2->w * dims2->c : 0;
    const te_mul_params q = *p;
    int32_t b, y, x, c;
    for (b = 0; b < out_dims->n; ++b) {
        for (y = 0; y < out_dims->h; ++y) {
            for (x = 0; x < out_dims->w; ++x) {
                const int8_t *a = input1 + b * n1 + y * h1 + x * w1;
                const int8_t *d = input2 + b * n2 + y * h2 + x * w2;
                for (c = 0; c < out_dims->c; ++c) {
                    *output++ = te_mul_one(a[c * c1], d[c * c2], &q);
                }
            }
        }
    }
}
