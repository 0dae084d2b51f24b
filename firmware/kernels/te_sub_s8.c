/* te_sub_s8.c - int8 SUB and SQUARED_DIFFERENCE: both inputs offset, shifted left and scaled to
 * a common scale (TFLM's 8-bit scheme), then the difference (SUB) or its square is requantized.
 * Mirrors ternembed/kernels/arith.py: sub, squared_difference. */
#include "te_fixedpoint.h"
#include "te_kernels_data.h"

static inline int32_t te_scaled(int32_t x, int32_t offset, int32_t left_shift, int32_t multiplier,
                                int32_t shift)
{
    return te_rdbpot(te_srdhm((x + offset) * (1 << left_shift), multiplier), -shift);
}

static inline int8_t te_sub_one(int32_t a, int32_t b, const te_add_params *p)
{
    const int32_t d =
        te_scaled(a, p->input1_offset, p->left_shift, p->input1_multiplier, p->input1_shift) -
        te_scaled(b, p->input2_offset, p->left_shift, p->input2_multiplier, p->input2_shift);
    const int32_t raw = te_rdbpot(te_srdhm(d, p->output_multiplier), -p->output_shift);
    return (int8_t)te_clamp(raw + p->output_offset, p->act.min, p->act.max);
}

static inline int8_t te_sqdiff_one(int32_t a, int32_t b, const te_add_params *p)
{
    const int32_t d =
        te_scaled(a, p->input1_offset, p->left_shift, p->input1_multiplier, p->input1_shift) -
        te_scaled(b, p->input2_offset, p->left_shift, p->input2_multiplier, p->input2_shift);
    const int32_t raw = te_requantize(d * d, p->output_multiplier, p->output_shift);
    return (int8_t)te_clamp(raw + p->output_offset, p->act.min, p->act.max);
}

static void te_sub_row(const int8_t *a, int32_t sa, const int8_t *b, int32_t sb, int8_t *out,
                       int32_t n, const void *params)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = te_sub_one(a[i * sa], b[i * sb], (const te_add_params *)params);
    }
}

static void te_sqdiff_row(const int8_t *a, int32_t sa, const int8_t *b, int32_t sb, int8_t *out,
                          int32_t n, const void *params)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = te_sqdiff_one(a[i * sa], b[i * sb], (const te_add_params *)params);
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
