/* te_nn_mat_mult_s8.c - the shared int8 inner loop of FC and CONV_2D.
 *
 * Layout: lhs [rows][k] int8 (FC: one input vector per row; conv: one im2col
 * patch [KH][KW][C] per output pixel), rhs [cols][k] int8 (one output
 * channel's weights contiguous), out [rows][cols] int8 (NHWC: pixel-major).
 * acc = bias[o] (folded) + sum_i lhs[r][i] * rhs[o][i], then requantize per
 * output channel, add output_offset, clamp.
 *
 * DSP path: 2 rows x 2 output channels per block, 4 taps per step: each
 * 4-byte load is widened by SXTB16 into (b0,b2) and (b1,b3) int16 pairs and
 * consumed by SMLAD, so 4 loads + 8 SXTB16 feed 16 MACs. Tails (odd rows,
 * odd channels, k % 4) use the portable scalar loop, which is the whole of
 * the portable path.
 */
#include "te_kernels_mac.h"

#include "te_dsp.h"

/* Two vectors against two vectors: s00 += a0.b0, s01 += a0.b1, s10 += a1.b0, s11 += a1.b1. */
static inline void te_dot_2x2(const int8_t *a0, const int8_t *a1, const int8_t *b0,
                              const int8_t *b1, int32_t k, int32_t *s00, int32_t *s01,
                              int32_t *s10, int32_t *s11)
{
    int32_t acc00 = *s00, acc01 = *s01, acc10 = *s10, acc11 = *s11;
#if TE_USE_DSP
    for (int32_t n = k >> 2; n > 0; --n) {
        int32_t b0e, b0o, b1e, b1o, ae, ao;
        te_widen_s8x4(te_read_s8x4_ia(&b0), &b0e, &b0o);
        te_widen_s8x4(te_read_s8x4_ia(&b1), &b1e, &b1o);
        te_widen_s8x4(te_read_s8x4_ia(&a0), &ae, &ao);
        acc00 = te_smlad(ae, b0e, acc00);
        acc00 = te_smlad(ao, b0o, acc00);
        acc01 = te_smlad(ae, b1e, acc01);
        acc01 = te_smlad(ao, b1o, acc01);
        te_widen_s8x4(te_read_s8x4_ia(&a1), &ae, &ao);
        acc10 = te_smlad(ae, b0e, acc10);
        acc10 = te_smlad(ao, b0o, acc10);
        acc11 = te_smlad(ae, b1e, acc11);
        acc11 = te_smlad(ao, b1o, acc11);
    }
    k &= 3;
#endif
    for (; k > 0; --k) {
        const int32_t x0 = *a0++, x1 = *a1++, w0 = *b0++, w1 = *b1++;
        acc00 += x0 * w0;
        acc01 += x0 * w1;
        acc10 += x1 * w0;
        acc11 += x1 * w1;
    }
    *s00 = acc00;
    *s01 = acc01;
    *s10 = acc10;
    *s11 = acc11;
}

/* One vector against two (the dot product is symmetric, so this also serves
 * two rows against one output channel): s0 += a.b0, s1 += a.b1. */
static inline void te_dot_1x2(const int8_t *a, const int8_t *b0, const int8_t *b1,
                              int32_t k, int32_t *s0, int32_t *s1)
{
    int32_t acc0 = *s0, acc1 = *s1;
#if TE_USE_DSP
    for (int32_t n = k >> 2; n > 0; --n) {
        int32_t ae, ao, be, bo;
        te_widen_s8x4(te_read_s8x4_ia(&a), &ae, &ao);
        te_widen_s8x4(te_read_s8x4_ia(&b0), &be, &bo);
        acc0 = te_smlad(ae, be, acc0);
        acc0 = te_smlad(ao, bo, acc0);
        te_widen_s8x4(te_read_s8x4_ia(&b1), &be, &bo);
        acc1 = te_smlad(ae, be, acc1);
        acc1 = te_smlad(ao, bo, acc1);
    }
    k &= 3;
#endif
    for (; k > 0; --k) {
        const int32_t x = *a++;
        acc0 += x * *b0++;
        acc1 += x * *b1++;
    }
    *s0 = acc0;
    *s1 = acc1;
}

static inline int32_t te_dot_1x1(const int8_t *a, const int8_t *b, int32_t k, int32_t acc)
{
#if TE_USE_DSP
    for (int32_t n = k >> 2; n > 0; --n) {
        int32_t ae, ao, be, bo;
        te_widen_s8x4(te_read_s8x4_ia(&a), &ae, &ao);
        te_widen_s8x4(te_read_s8x4_ia(&b), &be, &bo);
        acc = te_smlad(ae, be, acc);
        acc = te_smlad(ao, bo, acc);
    }
    k &= 3;
#endif
    for (; k > 0; --k) {
        acc += *a++ * *b++;
    }
    return acc;
}

void te_nn_mat_mult_s8(const int8_t *lhs, int32_t rows, int32_t k,
                       const int8_t *rhs, int32_t cols, const int32_t *bias,
                       const te_pc_quant *quant, int32_t output_offset,
                       te_range activation, int8_t *out)
{
    const int32_t *mult = quant->multiplier;
    const int32_t *shift = quant->shift;
    int32_t r = 0;

    for (; r + 2 <= rows; r += 2) {
        const int8_t *a0 = lhs + r * k;
        const int8_t *a1 = a0 + k;
        int8_t *out0 = out + r * cols;
        int8_t *out1 = out0 + cols;
        int32_t c = 0;
        for (; c + 2 <= cols; c += 2) {
            const int8_t *b0 = rhs + c * k;
            const int32_t bias0 = bias ? bias[c] : 0;
            const int32_t bias1 = bias ? bias[c + 1] : 0;
            int32_t s00 = bias0, s01 = bias1, s10 = bias0, s11 = bias1;
            te_dot_2x2(a0, a1, b0, b0 + k, k, &s00, &s01, &s10, &s11);
            out0[c] = te_mac_output(s00, mult[c], shift[c], output_offset, activation);
            out0[c + 1] = te_mac_output(s01, mult[c + 1], shift[c + 1], output_offset, activation);
            out1[c] = te_mac_output(s10, mult[c], shift[c], output_offset, activation);
            out1[c + 1] = te_mac_output(s11, mult[c + 1], shift[c + 1], output_offset, activation);
        }
        if (c < cols) {
            int32_t s0 = bias ? bias[c] : 0;
            int32_t s1 = s0;
            te_dot_1x2(rhs + c * k, a0, a1, k, &s0, &s1);
            out0[c] = te_mac_output(s0, mult[c], shift[c], output_offset, activation);
            out1[c] = te_mac_output(s1, mult[c], shift[c], output_offset, activation);
        }
    }
    if (r < rows) {
        const int8_t *a = lhs + r * k;
        int8_t *out0 = out + r * cols;
        int32_t c = 0;
        for (; c + 2 <= cols; c += 2) {
            const int8_t *b0 = rhs + c * k;
            int32_t s0 = bias ? bias[c] : 0;
            int32_t s1 = bias ? bias[c + 1] : 0;
            te_dot_1x2(a, b0, b0 + k, k, &s0, &s1);
            out0[c] = te_mac_output(s0, mult[c], shift[c], output_offset, activation);
            out0[c + 1] = te_mac_output(s1, mult[c + 1], shift[c + 1], output_offset, activation);
        }
        if (c < cols) {
            const int32_t s = te_dot_1x1(a, rhs + c * k, k, bias ? bias[c] : 0);
            out0[c] = te_mac_output(s, mult[c], shift[c], output_offset, activation);
        }
    }
}
