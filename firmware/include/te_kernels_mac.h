/* te_kernels_mac.h - int8 multiply-accumulate kernels: FULLY_CONNECTED, CONV_2D,
 * DEPTHWISE_CONV_2D. Bit-exact with ternembed/kernels/mac.py and with TFLite
 * Micro's reference int8 kernels.
 *
 * Layout: activations NHWC int8 row-major; FC input [N][K], FC weights [O][K];
 * conv weights [O][KH][KW][C]; depthwise weights [1][KH][KW][C*M] (TFLite),
 * output channel oc = ic*M + m reads input channel ic.
 *
 * Arithmetic: bias[] is the exporter's FOLDED bias,
 *     bias_f[o] = bias[o] + input_offset * sum_k w[o][k]      (int32),
 * so a kernel computes acc[o] = bias_f[o] + sum_taps x * w, where a padded tap
 * (outside the input image) reads x = input zero point = -input_offset and
 * therefore nets to zero, as in TFLM which skips those taps. Then
 *     out = clamp(requantize(acc, multiplier[o], shift[o]) + output_offset,
 *                 activation.min, activation.max).
 * Per-tensor quantization: repeat the one multiplier/shift for every channel.
 * bias may be NULL (all zero).
 *
 * Every kernel has a portable C path (any core, e.g. Cortex-M0+) and a DSP
 * path (SXTB16 + SMLAD, see te_dsp.h) selected by TE_USE_DSP inside the same
 * function; both give identical results.
 *
 * Scratch memory: only te_conv_s8 needs any; the caller provides at least
 * te_conv_s8_get_buffer_size() bytes (any alignment). Nothing allocates.
 */
#ifndef TE_KERNELS_MAC_H
#define TE_KERNELS_MAC_H

#include <stdint.h>

#include "te_fixedpoint.h"
#include "te_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* FULLY_CONNECTED. */
typedef struct {
    int32_t output_offset; /* output zero point */
    te_range activation;   /* clamp after adding output_offset */
} te_fc_params;

/* CONV_2D. Input row for output row oy and kernel row ky:
 * iy = oy*stride_h - pad_top + ky*dilation_h (likewise for columns). */
typedef struct {
    int32_t input_offset;  /* -input zero point, in [-127, 128]; padded taps read -input_offset */
    int32_t output_offset; /* output zero point */
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left;
    te_range activation;
} te_conv_params;

/* DEPTHWISE_CONV_2D: as te_conv_params plus the depth multiplier M. */
typedef struct {
    int32_t input_offset;
    int32_t output_offset;
    int32_t depth_multiplier;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left;
    te_range activation;
} te_dwconv_params;

/* FC: input_dims  n = batches, h*w*c = K (flattened, as TFLite does);
 *     filter_dims n = O, h*w*c = K;  output_dims n = batches, h*w*c = O.
 * Needs no scratch. */
te_status te_fc_s8(const te_fc_params *params, const te_pc_quant *quant,
                   const te_dims *input_dims, const int8_t *input,
                   const te_dims *filter_dims, const int8_t *filter,
                   const int32_t *bias,
                   const te_dims *output_dims, int8_t *output);

/* CONV_2D: input_dims {N, H, W, C}, filter_dims {O, KH, KW, C},
 * output_dims {N, OH, OW, O}. scratch: te_conv_s8_get_buffer_size() bytes,
 * 2*KH*KW*C (an int8 im2col of two output pixels), any alignment. It is left
 * untouched, and may be NULL, only for a 1x1 conv with stride 1, no padding and
 * OW == W (a plain matrix product over the input). */
int32_t te_conv_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims);

te_status te_conv_s8(const te_conv_params *params, const te_pc_quant *quant,
                     const te_dims *input_dims, const int8_t *input,
                     const te_dims *filter_dims, const int8_t *filter,
                     const int32_t *bias,
                     const te_dims *output_dims, int8_t *output,
                     void *scratch);

/* DEPTHWISE_CONV_2D: input_dims {N, H, W, C}, filter_dims {1, KH, KW, C*M},
 * output_dims {N, OH, OW, C*M}. Needs no scratch. */
te_status te_dwconv_s8(const te_dwconv_params *params, const te_pc_quant *quant,
                       const te_dims *input_dims, const int8_t *input,
                       const te_dims *filter_dims, const int8_t *filter,
                       const int32_t *bias,
                       const te_dims *output_dims, int8_t *output);

/* Shared inner loop (te_nn_mat_mult_s8.c), the matrix form of FC:
 *   out[r][o] = clamp(requantize(bias[o] + sum_i lhs[r][i] * rhs[o][i],
 *                                quant->multiplier[o], quant->shift[o])
 *                     + output_offset, activation)
 * for r < rows, o < cols, i < k; lhs is [rows][k], rhs is [cols][k],
 * out is [rows][cols]. The DSP path does 2 rows x 2 cols x 4 taps per step. */
void te_nn_mat_mult_s8(const int8_t *lhs, int32_t rows, int32_t k,
                       const int8_t *rhs, int32_t cols, const int32_t *bias,
                       const te_pc_quant *quant, int32_t output_offset,
                       te_range activation, int8_t *out);

/* Output stage shared by all three kernels: requantize one accumulator,
 * add the output zero point, clamp to the activation range. */
static inline int8_t te_mac_output(int32_t acc, int32_t multiplier, int32_t shift,
                                   int32_t output_offset, te_range activation)
{
    return (int8_t)te_clamp(te_requantize(acc, multiplier, shift) + output_offset,
                            activation.min, activation.max);
}

#ifdef __cplusplus
}
#endif

#endif /* TE_KERNELS_MAC_H */
