/* SPDX-License-Identifier: Apache-2.0 */
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
te_status te_fc_s8(const te_fc_params *params, const te_pc_quant *quant, const te_dims *input_dims,
                   const int8_t *input, const te_dims *filter_dims, const int8_t *filter,
                   const int32_t *bias, const te_dims *output_dims, int8_t *output);

/* CONV_2D: input_dims {N, H, W, C}, filter_dims {O, KH, KW, C},
 * output_dims {N, OH, OW, O}. scratch: te_conv_s8_get_buffer_size() bytes,
 * 2*KH*KW*C (an int8 im2col of two output pixels), any alignment. It is left
 * untouched, and may be NULL, only for a 1x1 conv with stride 1, no padding and
 * OW == W (a plain matrix product over the input). */
int32_t te_conv_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims);

te_status te_conv_s8(const te_conv_params *params, const te_pc_quant *quant,
                     const te_dims *input_dims, const int8_t *input, const te_dims *filter_dims,
                     const int8_t *filter, const int32_t *bias, const te_dims *output_dims,
                     int8_t *output, void *scratch);

/* DEPTHWISE_CONV_2D: input_dims {N, H, W, C}, filter_dims {1, KH, KW, C*M},
 * output_dims {N, OH, OW, C*M}. Needs no scratch. */
te_status te_dwconv_s8(const te_dwconv_params *params, const te_pc_quant *quant,
                       const te_dims *input_dims, const int8_t *input, const te_dims *filter_dims,
                       const int8_t *filter, const int32_t *bias, const te_dims *output_dims,
                       int8_t *output);

/* Shared inner loop (te_nn_mat_mult_s8.c), the matrix form of FC:
 *   out[r][o] = clamp(requantize(bias[o] + sum_i lhs[r][i] * rhs[o][i],
 *                                quant->multiplier[o], quant->shift[o])
 *                     + output_offset, activation)
 * for r < rows, o < cols, i < k; lhs is [rows][k], rhs is [cols][k],
 * out is [rows][cols]. The DSP path does 2 rows x 2 cols x 4 taps per step. */
void te_nn_mat_mult_s8(const int8_t *lhs, int32_t rows, int32_t k, const int8_t *rhs, int32_t cols,
                       const int32_t *bias, const te_pc_quant *quant, int32_t output_offset,
                       te_range activation, int8_t *out);

/* Output stage shared by all three kernels: requantize one accumulator,
 * add the output zero point, clamp to the activation range. Same bytes as
 * te_clamp(te_requantize(acc, multiplier, shift) + output_offset, ...) for
 * every acc when multiplier >= 0 and -31 <= shift <= 30, which TFLite's
 * QuantizeMultiplier always gives (0 or [2^30, 2^31)); the kernels assume
 * that range. Cheaper: the rounding doubling high multiply is
 * (a*m + 2^30) >> 31 (one long multiply, no saturation branch: the only case
 * where it differs from TFLite's nudge-and-truncate form, a = m = INT32_MIN,
 * needs a negative multiplier), and the rounding shift compares the
 * remainder without a branch. */
static inline int8_t te_mac_output(int32_t acc, int32_t multiplier, int32_t shift,
                                   int32_t output_offset, te_range activation)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int32_t a = (int32_t)((uint32_t)acc << left);
    int32_t x = (int32_t)(((int64_t)a * multiplier + (1LL << 30)) >> 31);
    const int32_t mask = (int32_t)((1u << right) - 1u);
    const int32_t threshold = (mask >> 1) + (int32_t)((uint32_t)x >> 31);
    x = (x >> right) + ((x & mask) > threshold);
    x += output_offset;
    x = x < activation.min ? activation.min : x;
    x = x > activation.max ? activation.max : x;
    return (int8_t)x;
}

/* Kernel internals (used by te_nn_mat_mult_s8.c, te_dwconv_s8.c and te_dw_span_s8.c; not part
 * of the API): the same requantization as one record per output channel,
 * prepared once and applied to many accumulators with two long
 * multiply-accumulates and one shift. With a = acc << left and e = -shift:
 *   e == 0: srdhm(a, m) = floor((2*a*m + 2^31) / 2^32)            (t = a, u = m)
 *   e >= 1: rdbpot(srdhm(a, m), e)
 *         = floor((a*m + 2^30 + 2^(30+e) - [a < 0]*2^31) / 2^(31+e)) (t = [a<0], u = -2^31)
 * i.e. (high word of p + t*u + a*m) >> s with s = max(e - 1, 0). The e >= 1
 * form folds the two roundings into one floor: rdbpot(x, e) is
 * floor((x + 2^(e-1) - [x < 0]) / 2^e) and nested floors of divisions by
 * powers of two combine; [x < 0] may be replaced by [a < 0] because where they
 * differ (a < 0, -2^30 <= a*m < 0, needs m >= 0) both give 0. No step
 * overflows int64 for shift >= -31. */
typedef struct {
    int32_t left; /* max(shift, 0) */
    int32_t ts;   /* t = (uint32_t)a >> ts: 0 (t = a) or 31 (t = [a < 0]) */
    int32_t u;    /* m, or INT32_MIN */
    int32_t m;    /* the multiplier */
    uint32_t plo; /* p = 2^31, or 2^30 + 2^(30+e): low word */
    int32_t phi;  /*                                 high word */
    int32_t s;    /* final arithmetic right shift */
} te_mac_rq;

static inline void te_mac_rq_init(te_mac_rq *r, int32_t multiplier, int32_t shift)
{
    const int32_t e = shift > 0 ? 0 : -shift;
    r->left = shift > 0 ? shift : 0;
    r->m = multiplier;
    if (e == 0) {
        r->ts = 0;
        r->u = multiplier;
        r->plo = 0x80000000u;
        r->phi = 0;
        r->s = 0;
    } else {
        r->ts = 31;
        r->u = INT32_MIN;
        r->plo = e == 1 ? 0xC0000000u : 0x40000000u;
        r->phi = e >= 2 ? (int32_t)(1u << (e - 2)) : 0;
        r->s = e - 1;
    }
}

/* requantize(acc, multiplier, shift) from the record (no offset, no clamp). */
static inline int32_t te_mac_rq_apply(const te_mac_rq *r, int32_t acc)
{
    const int32_t a = (int32_t)((uint32_t)acc << r->left);
    const int32_t t = (int32_t)((uint32_t)a >> r->ts);
#if defined(__GNUC__) && defined(__ARM_FEATURE_DSP)
    /* two SMLALs (GCC does not always see them in the C form below) */
    uint32_t lo = r->plo;
    int32_t hi = r->phi;
    /* clang-format off */
    __asm__("smlal %0, %1, %2, %3\n\tsmlal %0, %1, %4, %5"
            : "+&r"(lo), "+&r"(hi) : "r"(t), "r"(r->u), "r"(a), "r"(r->m));
    /* clang-format on */
    (void)lo;
    return hi >> r->s;
#else
    const int64_t p = (int64_t)(((uint64_t)(uint32_t)r->phi << 32) | r->plo);
    const int64_t w = p + (int64_t)t * r->u + (int64_t)a * r->m;
    return (int32_t)(w >> 32) >> r->s;
#endif
}

/* The short record, when 1 <= -shift <= 23 (the usual case): te_mac_rq with
 * left = 0, t = [a < 0], u = INT32_MIN, and the output offset folded into p
 * as offset * 2^(32+s), so that (high word) >> s is requantize + offset
 * directly. Exact: p + offset * 2^(32+s) only adds offset * 2^s to the high
 * word, and no int32 step overflows for s <= 22 (|high word| < 2^30 + 2^21
 * before the offset, |offset * 2^s| <= 2^29). te_mac_srq_init returns 0 (and
 * leaves the record unusable) outside that range. */
typedef struct {
    int32_t m;
    int32_t s;
    uint32_t plo;
    int32_t phi; /* high word of p, plus offset << s */
} te_mac_srq;

static inline int te_mac_srq_init(te_mac_srq *r, int32_t multiplier, int32_t shift,
                                  int32_t output_offset)
{
    const int32_t e = -shift;
    r->m = multiplier;
    r->s = e - 1;
    r->plo = e == 1 ? 0xC0000000u : 0x40000000u;
    r->phi = 0;
    if (e < 1 || e > 23) {
        return 0;
    }
    r->phi = (int32_t)((e >= 2 ? (1u << (e - 2)) : 0u) + ((uint32_t)output_offset << (e - 1)));
    return 1;
}

/* requantize(acc, multiplier, shift) + output_offset from the short record. */
static inline int32_t te_mac_srq_apply(const te_mac_srq *r, int32_t acc)
{
    const int64_t p = (int64_t)(((uint64_t)(uint32_t)r->phi << 32) | r->plo);
    const int64_t w = p + (int64_t)acc * r->m - (acc < 0 ? (1LL << 31) : 0);
    return (int32_t)(w >> 32) >> r->s;
}

#ifdef __cplusplus
}
#endif

#endif /* TE_KERNELS_MAC_H */
