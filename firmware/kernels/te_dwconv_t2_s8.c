/* te_dwconv_t2_s8.c - DEPTHWISE_CONV_2D with 2-bit ternary weights (group
 * scales, residual planes), int8 in / int8 out; also the driver of
 * te_dwconv_to_s8 and te_dwconv_p2_s8.
 *
 * Layout: input [N][H][W][C] int8, weights as in te_kernels_ternary.h with
 * O = C*M rows (output channel oc = ic*M + m reads input channel ic) of
 * K = KH*KW taps i = ky*KW + kx, bias [C*M] int32 (folded; may be NULL), output
 * [N][OH][OW][C*M] int8. Geometry and padding as te_dwconv_s8.
 *
 * Method: a depthwise row has only KH*KW taps, far too few for the per-row
 * machinery of FC/conv to pay off, and the reduction runs across pixels rather
 * than along a row. So the weights are decoded once per call into a scratch
 * table of exact integer weights W[tap][oc] = sum_p (a * t) << shift (+ offset
 * for the offset family, since offset * sum_i x_i = sum_i offset * x_i; p2:
 * a * sign * 2^(levels-|v|)), and the convolution runs on that table: int16
 * when every weight fits (the DSP path then does 4 channels per step with one
 * input word, two SXTB16 and SMLABB/SMLATT, as the int8 kernel but with the
 * weights already widened), else int32 with the portable loop.
 *
 * Scratch (te_dwconv_t2_s8_get_buffer_size): 4 * KH*KW*C*M bytes.
 */
#include "te_tern_internal.h"

int32_t te_tern_dwconv_buffer_size(const te_dims *input_dims, const te_dims *filter_dims)
{
    (void)input_dims;
    return 4 * filter_dims->h * filter_dims->w * filter_dims->c;
}

int32_t te_dwconv_t2_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims)
{
    return te_tern_dwconv_buffer_size(input_dims, filter_dims);
}

static inline void te_dw_put32(uint8_t *base, int32_t idx, uint32_t v)
{
    memcpy(base + 4 * idx, &v, sizeof(v));
}

static inline int32_t te_dw_get32(const uint8_t *base, int32_t idx)
{
    int32_t v;
    memcpy(&v, base + 4 * idx, sizeof(v));
    return v;
}

static inline int32_t te_dw_get16(const uint8_t *base, int32_t idx)
{
    int16_t v;
    memcpy(&v, base + 2 * idx, sizeof(v));
    return v;
}

/* W[i][oc] (int32, [taps][oc] order) for every output channel. */
static void te_dw_decode(const te_tern_mm *mm, uint8_t *dst)
{
    const te_tern_weights *w = mm->w;
    const int32_t taps = mm->k, oc_count = mm->o, n = mm->n, g_count = mm->g;
    for (int32_t oc = 0; oc < oc_count; ++oc) {
        uint32_t col[64];
        for (int32_t i0 = 0; i0 < taps; i0 += 64) {
            const int32_t cnt = taps - i0 < 64 ? taps - i0 : 64;
            for (int32_t j = 0; j < cnt; ++j) {
                col[j] = mm->kind == TE_TK_TO ? (uint32_t)w->offset[oc] : 0u;
            }
            if (mm->kind == TE_TK_P2) {
                const uint8_t *c = w->codes + oc * mm->rb;
                for (int32_t j = 0; j < cnt; ++j) {
                    const int32_t i = i0 + j;
                    const int32_t v = (int32_t)((((uint32_t)c[i >> 1] >> ((i & 1) * 4)) & 15u) ^ 8u) - 8;
                    if (v != 0) {
                        int32_t sh = w->levels - (v < 0 ? -v : v);
                        sh = sh < 0 ? 0 : sh;
                        const uint32_t a = te_tern_scale(w, oc * g_count + i / n) << sh;
                        col[j] = v < 0 ? 0u - a : a;
                    }
                }
            } else {
                for (int32_t p = 0; p < mm->active; ++p) {
                    const int32_t row = p * oc_count + oc;
                    const uint8_t *c = w->codes + row * mm->rb;
                    const uint32_t e = te_tern_pshift(w, row);
                    for (int32_t j = 0; j < cnt; ++j) {
                        const int32_t i = i0 + j;
                        const uint32_t f = ((uint32_t)c[i >> 2] >> ((i & 3) * 2)) & 3u;
                        if (f != 0) {
                            const uint32_t a = te_tern_scale(w, row * g_count + i / n) << e;
                            col[j] += f == 1u ? a : (f == 3u ? 0u - a : 0u - 2u * a);
                        }
                    }
                }
            }
            for (int32_t j = 0; j < cnt; ++j) {
                te_dw_put32(dst, (i0 + j) * oc_count + oc, col[j]);
            }
        }
    }
}

te_status te_tern_dwconv(int32_t kind, const te_dwconv_params *params, const te_pc_quant *quant,
                         const te_dims *input_dims, const int8_t *input,
                         const te_dims *filter_dims, const te_tern_weights *weights,
                         const int32_t *bias, const te_dims *output_dims, int8_t *output,
                         void *scratch)
{
    if (!params || !input_dims || !input || !filter_dims || !output_dims || !output || !scratch) {
        return TE_ERR_ARG;
    }
    const te_dims in = *input_dims;
    const int32_t mult_depth = params->depth_multiplier;
    const int32_t kh = filter_dims->h, kw = filter_dims->w;
    const int32_t oh = output_dims->h, ow = output_dims->w, oc_count = output_dims->c;
    const int32_t sh = params->stride_h, sw = params->stride_w;
    const int32_t dh = params->dilation_h, dw = params->dilation_w;
    if (in.n <= 0 || in.h <= 0 || in.w <= 0 || in.c <= 0 || kh <= 0 || kw <= 0 ||
        mult_depth <= 0 || filter_dims->n != 1 || filter_dims->c != in.c * mult_depth ||
        output_dims->n != in.n || oc_count != in.c * mult_depth || oh <= 0 || ow <= 0 ||
        sh <= 0 || sw <= 0 || dh <= 0 || dw <= 0 || params->input_offset < -127 ||
        params->input_offset > 128) {
        return TE_ERR_ARG;
    }
    te_tern_mm mm;
    if (te_tern_mm_init(&mm, kind, weights, oc_count, kh * kw, bias, quant,
                        params->output_offset, params->activation) != TE_OK) {
        return TE_ERR_ARG;
    }
    uint8_t *wt = (uint8_t *)scratch;
    const int32_t n_w = kh * kw * oc_count;
    te_dw_decode(&mm, wt);

    /* int16 table when every weight fits: 4-channel blocks stored as the pairs
     * (c0, c2), (c1, c3) that SXTB16 produces from an input word; the rest
     * (oc >= oc_count & ~3) in plain order. Converted in place, front to back:
     * int16 slot j never lies above int32 slot j, and a block is read whole
     * before it is written. */
    int narrow = 1;
    for (int32_t j = 0; j < n_w && narrow; ++j) {
        const int32_t v = te_dw_get32(wt, j);
        narrow = v >= -32768 && v <= 32767;
    }
    const int32_t oc4 = oc_count & ~3;
    if (narrow) {
        for (int32_t j = 0; j < n_w;) {
            const int32_t oc = j % oc_count;
            if (oc < oc4) {
                const int16_t v[4] = {(int16_t)te_dw_get32(wt, j), (int16_t)te_dw_get32(wt, j + 2),
                                      (int16_t)te_dw_get32(wt, j + 1), (int16_t)te_dw_get32(wt, j + 3)};
                memcpy(wt + 2 * j, v, sizeof(v));
                j += 4;
            } else {
                const int16_t v = (int16_t)te_dw_get32(wt, j);
                memcpy(wt + 2 * j, &v, sizeof(v));
                j += 1;
            }
        }
    }

    const int32_t pad_value = -params->input_offset;
    const int32_t *mult = quant->multiplier;
    const int32_t *shift = quant->shift;
    const int32_t out_off = params->output_offset;
    const te_range act = params->activation;
#if TE_USE_DSP
    const int32_t pad_word = (int32_t)(0x01010101u * (uint32_t)(uint8_t)(int8_t)pad_value);
#endif
    for (int32_t b = 0; b < in.n; ++b) {
        const int8_t *image = input + b * in.h * in.w * in.c;
        for (int32_t oy = 0; oy < oh; ++oy) {
            const int32_t iy0 = oy * sh - params->pad_top;
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int32_t ix0 = ox * sw - params->pad_left;
                int8_t *out = output + ((b * oh + oy) * ow + ox) * oc_count;
                int32_t oc = 0;
#if TE_USE_DSP
                if (narrow && mult_depth == 1) {
                    /* whole window inside the image: no per-tap checks */
                    const int interior = iy0 >= 0 && iy0 + (kh - 1) * dh < in.h && ix0 >= 0 &&
                                         ix0 + (kw - 1) * dw < in.w;
                    const int8_t *x0 = image + (iy0 * in.w + ix0) * in.c;
                    const int32_t xstep = dw * in.c, ystep = dh * in.w * in.c;
                    for (; oc < oc4; oc += 4) {
                        int32_t acc0 = bias ? bias[oc] : 0;
                        int32_t acc1 = bias ? bias[oc + 1] : 0;
                        int32_t acc2 = bias ? bias[oc + 2] : 0;
                        int32_t acc3 = bias ? bias[oc + 3] : 0;
                        const uint8_t *wp = wt + 2 * oc;
                        if (interior) {
                            const int8_t *xr = x0 + oc;
                            for (int32_t ky = 0; ky < kh; ++ky, xr += ystep) {
                                const int8_t *xp = xr;
                                for (int32_t kx = 0; kx < kw; ++kx, xp += xstep, wp += 2 * oc_count) {
                                    const int32_t xw = te_read_s8x4(xp);
                                    const int32_t xe = te_sxtb16(xw), xo = te_sxtb16_ror8(xw);
                                    int32_t w02, w13;
                                    memcpy(&w02, wp, 4);
                                    memcpy(&w13, wp + 4, 4);
                                    acc0 = te_smlabb(xe, w02, acc0);
                                    acc2 = te_smlatt(xe, w02, acc2);
                                    acc1 = te_smlabb(xo, w13, acc1);
                                    acc3 = te_smlatt(xo, w13, acc3);
                                }
                            }
                        } else {
                            for (int32_t ky = 0; ky < kh; ++ky) {
                                const int32_t iy = iy0 + ky * dh;
                                const int row_in = iy >= 0 && iy < in.h;
                                for (int32_t kx = 0; kx < kw; ++kx, wp += 2 * oc_count) {
                                    const int32_t ix = ix0 + kx * dw;
                                    const int32_t xw = (row_in && ix >= 0 && ix < in.w)
                                        ? te_read_s8x4(image + (iy * in.w + ix) * in.c + oc)
                                        : pad_word;
                                    const int32_t xe = te_sxtb16(xw), xo = te_sxtb16_ror8(xw);
                                    int32_t w02, w13;
                                    memcpy(&w02, wp, 4);
                                    memcpy(&w13, wp + 4, 4);
                                    acc0 = te_smlabb(xe, w02, acc0);
                                    acc2 = te_smlatt(xe, w02, acc2);
                                    acc1 = te_smlabb(xo, w13, acc1);
                                    acc3 = te_smlatt(xo, w13, acc3);
                                }
                            }
                        }
                        const int8_t v0 = te_tern_out((uint32_t)acc0, mult[oc], shift[oc], out_off, act);
                        const int8_t v1 = te_tern_out((uint32_t)acc1, mult[oc + 1], shift[oc + 1], out_off, act);
                        const int8_t v2 = te_tern_out((uint32_t)acc2, mult[oc + 2], shift[oc + 2], out_off, act);
                        const int8_t v3 = te_tern_out((uint32_t)acc3, mult[oc + 3], shift[oc + 3], out_off, act);
                        out[oc] = v0;
                        out[oc + 1] = v1;
                        out[oc + 2] = v2;
                        out[oc + 3] = v3;
                    }
                }
#endif
                for (; oc < oc_count; ++oc) {
                    const int32_t ic = oc / mult_depth;
                    /* slot of (tap 0, oc) in the int16 table: blocks are permuted */
                    const int32_t slot = oc < oc4 ? (oc & ~3) + ((oc & 1) << 1) + ((oc >> 1) & 1) : oc;
                    uint32_t acc = bias ? (uint32_t)bias[oc] : 0u;
                    int32_t tap = 0;
                    for (int32_t ky = 0; ky < kh; ++ky) {
                        const int32_t iy = iy0 + ky * dh;
                        const int row_in = iy >= 0 && iy < in.h;
                        for (int32_t kx = 0; kx < kw; ++kx, ++tap) {
                            const int32_t ix = ix0 + kx * dw;
                            const int32_t x = (row_in && ix >= 0 && ix < in.w)
                                ? image[(iy * in.w + ix) * in.c + ic]
                                : pad_value;
                            const int32_t wv = narrow ? te_dw_get16(wt, tap * oc_count + slot)
                                                      : te_dw_get32(wt, tap * oc_count + oc);
                            acc += (uint32_t)x * (uint32_t)wv;
                        }
                    }
                    out[oc] = te_tern_out(acc, mult[oc], shift[oc], out_off, act);
                }
            }
        }
    }
    return TE_OK;
}

te_status te_dwconv_t2_s8(const te_dwconv_params *params, const te_pc_quant *quant,
                          const te_dims *input_dims, const int8_t *input,
                          const te_dims *filter_dims, const te_tern_weights *weights,
                          const int32_t *bias, const te_dims *output_dims, int8_t *output,
                          void *scratch)
{
    return te_tern_dwconv(TE_TK_T2, params, quant, input_dims, input, filter_dims, weights, bias,
                          output_dims, output, scratch);
}
