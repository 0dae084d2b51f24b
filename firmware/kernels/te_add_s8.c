/* SPDX-License-Identifier: Apache-2.0 */
/* te_add_s8.c - int8 ADD with TFLM's left_shift = 20 scheme, elementwise and 4-D broadcast.
 * Mirrors ternembed/kernels/elementwise.py: add. */
#include "te_fixedpoint.h"
#include "te_kernels_misc.h"

/* Everything of te_add_params an element needs, hoisted out of the loops. */
typedef struct {
    te_rescale s1, s2, so;
    int32_t lo, hi, ls;
} te_add_prep;

static te_add_prep te_add_prepare(const te_add_params *p)
{
    te_add_prep q = {
        te_rescale_of(p->input1_offset, p->left_shift, p->input1_multiplier, -p->input1_shift),
        te_rescale_of(p->input2_offset, p->left_shift, p->input2_multiplier, -p->input2_shift),
        te_rescale_of(p->output_offset, 0, p->output_multiplier, -p->output_shift),
        p->act.min,
        p->act.max,
        p->left_shift};
    return q;
}

static inline int8_t te_add_one(int32_t x1, int32_t x2, const te_add_prep *q)
{
    const int32_t a = te_rescale_apply((x1 + q->s1.offset) * (1 << q->ls), &q->s1);
    const int32_t b = te_rescale_apply((x2 + q->s2.offset) * (1 << q->ls), &q->s2);
    return (int8_t)te_clamp(te_rescale_apply(a + b, &q->so) + q->so.offset, q->lo, q->hi);
}

void te_add_s8(const int8_t *input1, const int8_t *input2, int8_t *output, int32_t size,
               const te_add_params *p)
{
    const te_add_prep q = te_add_prepare(p);
    int32_t i;
    for (i = 0; i < size; ++i) {
        output[i] = te_add_one(input1[i], input2[i], &q);
    }
}

void te_add_bcast_s8(const te_dims *dims1, const int8_t *input1, const te_dims *dims2,
                     const int8_t *input2, const te_dims *out_dims, int8_t *output,
                     const te_add_params *p)
{
    /* Element strides, 0 along broadcast dims. */
    const int32_t c1 = dims1->c > 1 ? 1 : 0, c2 = dims2->c > 1 ? 1 : 0;
    const int32_t w1 = dims1->w > 1 ? dims1->c : 0, w2 = dims2->w > 1 ? dims2->c : 0;
    const int32_t h1 = dims1->h > 1 ? dims1->w * dims1->c : 0;
    const int32_t h2 = dims2->h > 1 ? dims2->w * dims2->c : 0;
    const int32_t n1 = dims1->n > 1 ? dims1->h * dims1->w * dims1->c : 0;
    const int32_t n2 = dims2->n > 1 ? dims2->h * dims2->w * dims2->c : 0;
    const te_add_prep q = te_add_prepare(p);
    int32_t b, y, x, c;
    for (b = 0; b < out_dims->n; ++b) {
        for (y = 0; y < out_dims->h; ++y) {
            for (x = 0; x < out_dims->w; ++x) {
                const int8_t *a = input1 + b * n1 + y * h1 + x * w1;
                const int8_t *d = input2 + b * n2 + y * h2 + x * w2;
                for (c = 0; c < out_dims->c; ++c) {
                    *output++ = te_add_one(a[c * c1], d[c * c2], &q);
                }
            }
        }
    }
}
