/* SPDX-License-Identifier: Apache-2.0 */
/* te_kernels_data.h - int8 data movement and the elementwise ops added with them:
 * STRIDED_SLICE, SLICE, SPLIT, SPLIT_V, UNPACK, TRANSPOSE (one strided copy; PACK is
 * te_concat_s8), SUB, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE, LEAKY_RELU, HARD_SWISH,
 * PRELU, RESIZE_NEAREST_NEIGHBOR. Mirrors ternembed/kernels/data.py and arith.py;
 * every kernel is bit-exact with TFLite Micro's reference int8 kernel. */
#ifndef TE_KERNELS_DATA_H
#define TE_KERNELS_DATA_H

#include <stdint.h>

#include "te_kernels_misc.h" /* te_add_params */
#include "te_types.h"

/* ---- strided copy: out[i] = in[offset + sum_k i_k * stride[k]], 5 dims outermost first --
 * Python merges contiguous dims, so the innermost run is as long as possible; a run with
 * stride 1 is one memcpy. Input and output must not overlap. */
typedef struct {
    int32_t offset;
    int32_t count[5];
    int32_t stride[5];
} te_strided_copy_params;

void te_strided_copy_s8(const int8_t *input, int8_t *output, const te_strided_copy_params *p);

/* ---- REDUCE_MAX / REDUCE_MIN over any axes: raw int8 values (TFLM needs equal scales) ------ */
typedef struct {
    te_strided_copy_params keep;   /* walks the output: offsets of each output element's inputs */
    te_strided_copy_params reduce; /* offsets of the reduced elements from there */
    int32_t is_max;
} te_reduce_minmax_params;

void te_reduce_minmax_s8(const int8_t *input, int8_t *output, const te_reduce_minmax_params *p);

/* ---- binary ops with 4-D broadcasting ---------------------------------------------------
 * te_X_s8: both inputs of `size` elements. te_X_bcast_s8: each dim of dims1 / dims2 equals
 * out_dims' or is 1. The output may alias an input of the output's shape. */

/* One row of a broadcast binary op: out[i] = f(a[i * sa], b[i * sb]) for i < n. */
typedef void (*te_row_fn)(const int8_t *a, int32_t sa, const int8_t *b, int32_t sb, int8_t *out,
                          int32_t n, const void *params);

/* The 4-D broadcast walk shared by the binary kernels: one row call per output (n, h, w). */
static inline void te_broadcast4(const te_dims *d1, const int8_t *in1, const te_dims *d2,
                                 const int8_t *in2, const te_dims *od, int8_t *out, te_row_fn row,
                                 const void *params)
{
    /* element strides, 0 along the dims an input broadcasts */
    const int32_t c1 = d1->c > 1, c2 = d2->c > 1;
    const int32_t w1 = d1->w > 1 ? d1->c : 0, w2 = d2->w > 1 ? d2->c : 0;
    const int32_t h1 = d1->h > 1 ? d1->w * d1->c : 0, h2 = d2->h > 1 ? d2->w * d2->c : 0;
    const int32_t n1 = d1->n > 1 ? d1->h * d1->w * d1->c : 0;
    const int32_t n2 = d2->n > 1 ? d2->h * d2->w * d2->c : 0;
    int32_t b, y, x;
    for (b = 0; b < od->n; ++b) {
        for (y = 0; y < od->h; ++y) {
            for (x = 0; x < od->w; ++x) {
                row(in1 + b * n1 + y * h1 + x * w1, c1, in2 + b * n2 + y * h2 + x * w2, c2, out,
                    od->c, params);
                out += od->c;
            }
        }
    }
}

/* SUB: TFLM's 8-bit scheme (left_shift 20) with te_add_params; SQUARED_DIFFERENCE: left_shift 7,
 * the squared scaled difference requantized by a general multiplier (output_shift may be > 0). */
void te_sub_s8(const int8_t *input1, const int8_t *input2, int8_t *output, int32_t size,
               const te_add_params *p);
void te_sub_bcast_s8(const te_dims *dims1, const int8_t *input1, const te_dims *dims2,
                     const int8_t *input2, const te_dims *out_dims, int8_t *output,
                     const te_add_params *p);
void te_squared_difference_s8(const int8_t *input1, const int8_t *input2, int8_t *output,
                              int32_t size, const te_add_params *p);
void te_squared_difference_bcast_s8(const te_dims *dims1, const int8_t *input1,
                                    const te_dims *dims2, const int8_t *input2,
                                    const te_dims *out_dims, int8_t *output,
                                    const te_add_params *p);

/* MAXIMUM / MINIMUM: the raw int8 values are compared (TFLM ignores quantization). */
void te_maximum_s8(const int8_t *input1, const int8_t *input2, int8_t *output, int32_t size);
void te_minimum_s8(const int8_t *input1, const int8_t *input2, int8_t *output, int32_t size);
void te_maximum_bcast_s8(const te_dims *dims1, const int8_t *input1, const te_dims *dims2,
                         const int8_t *input2, const te_dims *out_dims, int8_t *output);
void te_minimum_bcast_s8(const te_dims *dims1, const int8_t *input1, const te_dims *dims2,
                         const int8_t *input2, const te_dims *out_dims, int8_t *output);

/* ---- a function of one int8 value as a 256-byte table (HARD_SWISH, LEAKY_RELU) ------------
 * out[i] = table[in[i] + 128]; the output may alias the input. */
void te_table_s8(const int8_t *input, int8_t *output, int32_t size, const int8_t *table);

/* ---- PRELU: x + input_offset >= 0 ? requantize_1(x + input_offset)
 *                                   : requantize_2((x + input_offset) * (alpha + alpha_offset)) */
typedef struct {
    int32_t input_offset, alpha_offset, output_offset;
    int32_t output_multiplier_1, output_shift_1;
    int32_t output_multiplier_2, output_shift_2;
} te_prelu_params;

void te_prelu_s8(const int8_t *input, const int8_t *alpha, int8_t *output, int32_t size,
                 const te_prelu_params *p);
void te_prelu_bcast_s8(const te_dims *dims1, const int8_t *input, const te_dims *dims2,
                       const int8_t *alpha, const te_dims *out_dims, int8_t *output,
                       const te_prelu_params *p);

/* ---- RESIZE_NEAREST_NEIGHBOR: output pixel (y, x) is input pixel (rows[y], cols[x]); the
 * index tables hold TFLM's GetNearestNeighbor, computed at export. */
void te_resize_nearest_s8(const te_dims *in_dims, const int8_t *input, int32_t out_h, int32_t out_w,
                          const int32_t *rows, const int32_t *cols, int8_t *output);

/* ---- GATHER (constant indices): out[o, k] = in[o, indices[k]], rows of inner bytes ---------- */
typedef struct {
    int32_t outer, axis_size, inner;
} te_gather_params;

void te_gather_s8(const int8_t *input, int8_t *output, const int32_t *indices, int32_t count,
                  const te_gather_params *p);

/* ---- a separable gather (MIRROR_PAD): output (i0, i1, i2, i3) reads the input at
 * offsets[i0] + offsets[count[0] + i1] + ... (one element-offset table per axis, concatenated);
 * contiguous: the last table is 0, 1, 2, ... so whole runs are copied. */
typedef struct {
    int32_t count[4];
    int32_t contiguous;
} te_axis_gather_params;

void te_axis_gather_s8(const int8_t *input, int8_t *output, const int32_t *offsets,
                       const te_axis_gather_params *p);

/* ---- RESIZE_BILINEAR: TFLM's integer interpolation. rows / cols: per output coordinate
 * (lower index, upper index, position - 1024 * lower), 10 fractional bits, computed at export. */
void te_resize_bilinear_s8(const te_dims *in_dims, const int8_t *input, int32_t out_h,
                           int32_t out_w, const int32_t *rows, const int32_t *cols, int8_t *output);

/* ---- TRANSPOSE_CONV: out[b, oy, ox, oc] = requantize_oc(bias[oc] + sum over the taps (ky, kx)
 * with (oy + pad_h - ky) = iy * stride_h and (ox + pad_w - kx) = ix * stride_w inside the input of
 * sum_ic (in[b, iy, ix, ic] + input_offset) * w[oc, ky, kx, ic]) + output_offset, clamped to act.
 * Weights [out][kh][kw][in]; bias may be NULL. */
typedef struct {
    int32_t input_offset, output_offset;
    int32_t stride_h, stride_w, pad_h, pad_w;
    te_range act;
} te_transpose_conv_params;

void te_transpose_conv_s8(const te_transpose_conv_params *p, const te_pc_quant *quant,
                          const te_dims *in_dims, const int8_t *input, const te_dims *filter_dims,
                          const int8_t *weights, const int32_t *bias, const te_dims *out_dims,
                          int8_t *output);

#endif /* TE_KERNELS_DATA_H */
