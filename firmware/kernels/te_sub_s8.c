/* SPDX-License-Identifier: Apache-2.0 */
/* te_sub_s8.c - int8 SUB and SQUARED_DIFFERENCE: both inputs offset, shifted left and scaled to
 * a common scale (TFLM's 8-bit scheme), then the difference (SUB) or its square is requantized.
 * Mirrors ternembed/kernels/arith.py: sub, squared_difference. */
#include "te_fixedpoint.h"
#include "te_kernels_data.h"

/* Both inputs on the common scale, their difference (|d| < 2^30). */
typedef struct {
    te_rescale s1, s2, so;
    int32_t ls;
} te_sub_prep;

static te_sub_prep te_sub_prepare(const te_add_params *p)
{
    te_sub_prep q = {
        te_rescale_of(p->input1_offset, p->left_shift, p->input1_multiplier, -p->input1_shift),
        te_rescale_of(p->input2_offset, p->left_shift, p->input2_multiplier, -p->input2_shift),
        te_rescale_of(p->output_offset, 0, p->output_multiplier, -p->output_shift), p->left_shift};
    return q;
}

static inline int32_t te_sub_diff(int32_t a, int32_t b, const te_sub_prep *q)
{
    return te_rescale_apply((a + q->s1.offset) * (1 << q->ls), &q->s1) -
           te_rescale_apply((b + q->s2.offset) * (1 << q->ls), &q->s2);
}

static void te_sub_row(const int8_t *a, int32_t sa, const int8_t *b, int32_t sb, int8_t *out,
                       int32_t n, const void *params)
{
    const te_add_params *p = (const te_add_params *)params;
    const te_sub_prep q = te_sub_prepare(p); /* out may alias *params: read it once */
    const int32_t lo = p->act.min, hi = p->act.max;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t d = te_sub_diff(a[i * sa], b[i * sb], &q);
        out[i] = (int8_t)te_clamp(te_rescale_apply(d, &q.so) + q.so.offset, lo, hi);
    }
}

static void te_sqdiff_row(const int8_t *a, int32_t sa, const int8_t *b, int32_t sb, int8_t *out,
                          int32_t n, const void *params)
{
    const te_add_params *p = (const te_add_params *)params;
    const te_sub_prep q = te_sub_prepare(p);
    const int32_t lo = p->act.min, hi = p->act.max, m = p->output_multiplier, sh = p->output_shift;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t d = te_sub_diff(a[i * sa], b[i * sb], &q);
        out[i] = (int8_t)te_clamp(te_requantize(d * d, m, sh) + q.so.offset, lo, hi);
    }
}

void te_sub_s8(const int8_t *input1, const int8_t *input2, int8_t *output, int32_t size,
               const te_add_params *p)
{
    te_sub_row(input1, 1, input2, 1, output, size, p);
}

void te_sub_bcast_s8(const te_dims *dims1, const int8_t *input1, const te_dims *dims2,
                     const int8_t *input2, const te_dims *out_dims, int8_t *output,
                     const te_add_params *p)
{
    te_broadcast4(dims1, input1, dims2, input2, out_dims, output, te_sub_row, p);
}

void te_squared_difference_s8(const int8_t *input1, const int8_t *input2, int8_t *output,
                              int32_t size, const te_add_params *p)
{
    te_sqdiff_row(input1, 1, input2, 1, output, size, p);
}

void te_squared_difference_bcast_s8(const te_dims *dims1, const int8_t *input1,
                                    const te_dims *dims2, const int8_t *input2,
                                    const te_dims *out_dims, int8_t *output, const te_add_params *p)
{
    te_broadcast4(dims1, input1, dims2, input2, out_dims, output, te_sqdiff_row, p);
}
