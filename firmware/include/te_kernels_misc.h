/* SPDX-License-Identifier: Apache-2.0 */
/* te_kernels_misc.h - int8 kernels other than convolution / fully connected.
 *
 * Every kernel is bit-exact with TensorFlow Lite Micro's reference int8 kernel
 * and with the numpy emulator (ternembed/kernels/{pool,elementwise,activation,misc}.py).
 * Parameter structs are filled at export time by the Python prepare_* functions;
 * their field names are the dataclass field names (see misc.c_initializer).
 * Tensors are NHWC, row-major. Kernels never allocate and never read past the
 * sizes given. Unless stated, output may not alias input.
 */
#ifndef TE_KERNELS_MISC_H
#define TE_KERNELS_MISC_H

#include <stdint.h>

#include "te_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- AVERAGE_POOL_2D / MAX_POOL_2D ---------------------------------------------------
 * Input [n][h][w][c] (in_dims), output [n][out_h][out_w][c]. Windows start at
 * out*stride - pad; taps outside the input are skipped (average over valid taps only,
 * sum/count rounded to nearest, halves away from zero). act: fused activation clamp.
 * Returns TE_ERR_ARG for a window without any valid tap (TFLM fails there too). */
typedef struct {
    int32_t stride_h, stride_w;
    int32_t filter_h, filter_w;
    int32_t pad_top, pad_left;
    int32_t out_h, out_w;
    te_range act;
} te_pool_params;

te_status te_avgpool_s8(const te_dims *in_dims, const int8_t *input, int8_t *output,
                        const te_pool_params *p);
te_status te_maxpool_s8(const te_dims *in_dims, const int8_t *input, int8_t *output,
                        const te_pool_params *p);

/* ---- ADD ----------------------------------------------------------------------------
 * TFLM 8-bit add: ((x + offset) << left_shift) scaled by per-input multipliers
 * (shift <= 0), summed, scaled to the output, + output_offset, clamped to act. */
typedef struct {
    int32_t input1_offset, input2_offset, output_offset;
    int32_t left_shift;
    int32_t input1_multiplier, input1_shift;
    int32_t input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift;
    te_range act;
} te_add_params;

/* Same shapes: size elements each. */
void te_add_s8(const int8_t *input1, const int8_t *input2, int8_t *output, int32_t size,
               const te_add_params *p);
/* 4-D broadcast: each input dim equals the output's or is 1. Output may alias an input
 * of the output's shape. */
void te_add_bcast_s8(const te_dims *dims1, const int8_t *input1, const te_dims *dims2,
                     const int8_t *input2, const te_dims *out_dims, int8_t *output,
                     const te_add_params *p);

/* ---- MUL ----------------------------------------------------------------------------
 * out = clamp(requantize((x1 + input1_offset) * (x2 + input2_offset)) + output_offset). */
typedef struct {
    int32_t input1_offset, input2_offset, output_offset;
    int32_t output_multiplier, output_shift;
    te_range act;
} te_mul_params;

void te_mul_s8(const int8_t *input1, const int8_t *input2, int8_t *output, int32_t size,
               const te_mul_params *p);
void te_mul_bcast_s8(const te_dims *dims1, const int8_t *input1, const te_dims *dims2,
                     const int8_t *input2, const te_dims *out_dims, int8_t *output,
                     const te_mul_params *p);

/* ---- SOFTMAX (int8 -> int8, output zero point -128, scale 1/256) ---------------------
 * Over the last axis: outer rows of depth elements. Input diffs are scaled to Q5.26,
 * exp'd in fixed point, accumulated in Q12.19 and normalised with a fixed-point
 * reciprocal. Returns TE_ERR_ARG if a row's sum of exps reaches 2^28 (possible only
 * for depth > 512; TFLM aborts there). */
typedef struct {
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min;
} te_softmax_params;

te_status te_softmax_s8(const int8_t *input, int8_t *output, int32_t outer, int32_t depth,
                        const te_softmax_params *p);

/* ---- LOGISTIC (output zp -128, scale 1/256) and TANH (output zp 0, scale 1/128) ------
 * Input rescaled to Q4.27; |x - zp| >= input_range_radius saturates. Elementwise;
 * output may alias input. */
typedef struct {
    int32_t input_zero_point;
    int32_t input_range_radius;
    int32_t input_multiplier;
    int32_t input_left_shift;
} te_logistic_params;

typedef te_logistic_params te_tanh_params;

void te_logistic_s8(const int8_t *input, int8_t *output, int32_t size, const te_logistic_params *p);
void te_tanh_s8(const int8_t *input, int8_t *output, int32_t size, const te_tanh_params *p);

/* ---- RELU (requantize, then clamp to [act_min, act_max]) and RELU6 (clamp only) -------
 * Elementwise; output may alias input. */
typedef struct {
    int32_t input_offset;  /* input zero point, subtracted */
    int32_t output_offset; /* output zero point, added */
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
} te_relu_params;

typedef struct {
    int32_t lower; /* input zero point */
    int32_t upper; /* 6.0 in the input's quantization */
} te_relu6_params;

void te_relu_s8(const int8_t *input, int8_t *output, int32_t size, const te_relu_params *p);
void te_relu6_s8(const int8_t *input, int8_t *output, int32_t size, const te_relu6_params *p);

/* ---- QUANTIZE float32 -> int8, int8 -> int8; DEQUANTIZE int8 -> float32 --------------
 * quantize: clamp((int)roundf(x / scale) + zero_point), float32 division (no FMA or
 * fast-math). NaN maps to zero_point. dequantize: scale * (float)(x - zero_point),
 * which equals TFLM's double product rounded to float. */
typedef struct {
    float scale;
    int32_t zero_point;
} te_quantize_params;

typedef te_quantize_params te_dequantize_params;

typedef struct {
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t multiplier, shift;
} te_requantize_params;

void te_quantize_f32_s8(const float *input, int8_t *output, int32_t size,
                        const te_quantize_params *p);
void te_requantize_s8(const int8_t *input, int8_t *output, int32_t size,
                      const te_requantize_params *p);
void te_dequantize_s8_f32(const int8_t *input, float *output, int32_t size,
                          const te_dequantize_params *p);

/* ---- PAD / PADV2 ----------------------------------------------------------------------
 * Input [n][h][w][c]; output dims are in_dims + before + after per dim (n, h, w, c);
 * padded cells get value. */
typedef struct {
    int32_t before[4];
    int32_t after[4];
    int32_t value;
} te_pad_params;

void te_pad_s8(const te_dims *in_dims, const int8_t *input, int8_t *output, const te_pad_params *p);

/* ---- CONCATENATION (equal quantization: a byte copy) ----------------------------------
 * Views every input as [outer][axis_sizes[i]][inner] and the output as
 * [outer][sum of axis_sizes][inner]. */
void te_concat_s8(const int8_t *const *inputs, const int32_t *axis_sizes, int32_t num_inputs,
                  int32_t outer, int32_t inner, int8_t *output);

/* ---- MEAN over count contiguous elements: input [outer][count][inner] -> [outer][inner]
 * (spatial mean of NHWC: outer = n, count = h*w, inner = c). mode 0: TFLM
 * QuantizedMeanOrSum (1/count folded into multiplier/shift); mode 1: raw sum / count,
 * truncating (older TFLM, equal quantization). */
typedef struct {
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t multiplier, shift;
    int32_t count;
    int32_t mode;
} te_mean_params;

void te_mean_s8(const int8_t *input, int8_t *output, int32_t outer, int32_t inner,
                const te_mean_params *p);

/* ---- RESHAPE / SQUEEZE: a copy (no-op when output == input; overlap allowed). --------- */
void te_copy_s8(const int8_t *input, int8_t *output, int32_t size);

#ifdef __cplusplus
}
#endif

#endif /* TE_KERNELS_MISC_H */
