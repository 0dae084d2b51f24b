/* te_add_s8.c - int8 ADD with TFLM's left_shift = 20 scheme, elementwise and 4-D broadcast.
 * Mirrors ternembed/kernels/elementwise.py: add. */
#include "te_fixedpoint.h"
#include "te_kernels_misc.h"

static inline int8_t te_add_one(int32_t a, int32_t b, const te_add_params *p)
{
    const int32_t shifted1 = (a + p->input1_offset) * (1 << p->left_shift);
    const int32_t shifted2 = (b + p->input2_offset) * (1 << p->left_shift);
    const int32_t scaled1 = te_rdbpot(te_srdhm(shifted1, p->input1_multiplier), -p->input1_shift);
    const int32_t scaled2 = te_rdbpot(te_srdhm(shifted2, p->input2_multiplier), -p->input2_shift);
    const int32_t raw_out =
        te_rdbpot(te_srdhm(scaled1 + scaled2, p->output_multiplier), -p->output_shift) +
        p->output_offset;
    return (int8_t)te_clamp(raw_out, p->act.min, p->act.max);
}

void te_add_s8(const int8_t *input1, const int8_t *input2, int8_t *output, int32_t size,
               const te_add_params *p)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        output[i] = te_add_one(input1[i], input2[i], p);
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
    int32_t b, y, x, c;
    for (b = 0; b < out_dims->n; ++b) {
        for (y = 0; y < out_dims->h; ++y) {
            for (x = 0; x < out_dims->w; ++x) {
                const int8_t *a = input1 + b * n1 + y * h1 + x * w1;
                const int8_t *d = input2 + b * n2 + y * h2 + x * w2;
                for (c = 0; c < out_dims->c; ++c) {
                    *output++ = te_add_one(a[c * c1], d[c * c2], p);
                }
            }
        }
    }
}
