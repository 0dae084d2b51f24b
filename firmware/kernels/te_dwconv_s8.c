/* SPDX-License-Identifier: Apache-2.0 */
/* te_dwconv_s8.c - DEPTHWISE_CONV_2D, int8 in / int8 out, per-channel requantization.
 *
 * Layout: input [N][H][W][C] int8, weights [1][KH][KW][C*M] int8 (TFLite),
 * folded bias [C*M] int32 (may be NULL), output [N][OH][OW][C*M] int8, where
 * M is the depth multiplier and output channel oc = ic*M + m reads input
 * channel ic. Input row of output row oy, kernel row ky:
 * iy = oy*stride_h - pad_top + ky*dilation_h (columns alike). A tap outside
 * the input reads the input zero point (-input_offset), which the folded bias
 * cancels exactly.
 *
 * The convolution is te_dw_span_s8.c's, shared with the ternary depthwise
 * kernels (method there). DSP path (M == 1 or M % 4 == 0, kernels of up to
 * TE_DW_TAPS taps): per block of four output channels, the int8 weights are
 * widened into the block's int16 tap table on the stack, which te_dw_blocks
 * sweeps: spans of pixels that share their in-image taps, padded taps never
 * visited. Larger kernels (M == 1, short requantization records) widen their
 * weights in a loop of their own (te_dw_large_s8); the last C % 4 channels
 * and everything else run the plain loop (te_dw_plain_s8), as does the
 * portable build.
 */
#include "te_dw_internal.h"

/* Largest kernel (KH*KW) of the DSP block path: its table takes 12 bytes a
 * tap of stack (972 bytes for 9x9 or 10x8); 2-D kernels of up to
 * TE_DW_TAPS / 2 taps also get the second table (columns, line ends). */
#ifndef TE_DW_TAPS
#define TE_DW_TAPS 81
#endif
#if TE_DW_TAPS > 255
#error "TE_DW_TAPS > 255: the int16 weight sums of te_dwconv_s8 could overflow"
#endif

#if TE_USE_DSP
/* The int8 weights [KH*KW][O] of te_dw_fill_s8. */
typedef struct {
    const int8_t *filter;
    int32_t oc_count;
} te_dw_s8_weights;

/* te_dw_fill of int8 weights: widened by SXTB16, and summed in int16 lanes by
 * SXTAB16 (|sum| <= 128 * TE_DW_TAPS). */
static int te_dw_fill_s8(const void *ctx, int32_t c, uint32_t *ent, int32_t ntaps, uint32_t *sum)
{
    const te_dw_s8_weights *f = (const te_dw_s8_weights *)ctx;
    const int8_t *w = f->filter + c;
    const int32_t step = f->oc_count;
    int32_t se = 0, so = 0; /* (c0, c2), (c1, c3) */
    for (const uint32_t *end = ent + ntaps * TE_DW_ENTRY; ent < end;
         ent += TE_DW_ENTRY, w += step) {
        const int32_t word = te_read_s8x4(w), odd = te_ror8(word);
        ent[1] = (uint32_t)te_sxtb16(word);
        ent[2] = (uint32_t)te_sxtb16(odd);
        se = te_sxtab16(se, word);
        so = te_sxtab16(so, odd);
    }
    sum[0] = (uint32_t)(int32_t)(int16_t)(uint16_t)((uint32_t)se & 0xFFFFu);
    sum[1] = (uint32_t)(int32_t)(int16_t)(uint16_t)((uint32_t)so & 0xFFFFu);
    sum[2] = (uint32_t)(se >> 16);
    sum[3] = (uint32_t)(so >> 16);
    return 1;
}

/* SXTAB16 with ROR #8: per int16 lane, a.lane + sign_extend(byte 1 / byte 3 of x). */
static inline int32_t te_dw_sxtab16_ror8(int32_t a, int32_t x)
{
#if TE_DW_ASM
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
#else
    return te_sxtab16(a, te_ror8(x));
#endif
}

/* Kernels above TE_DW_TAPS taps (M == 1), which have no room for a table:
 * channels c .. c+3 of every image, the weights widened as they are read,
 * padded taps skipped as in the block path (x - z from bias + z * sum w), the
 * output by the short records. Returns 0 (nothing done) when those do not
 * apply. A function of its own: the tap loop gets every register. */
TE_DW_NOINLINE int te_dw_large_s8(const te_dwconv_params *p, const te_pc_quant *quant,
                                  const te_dims *in, const int8_t *input, int32_t kh, int32_t kw,
                                  const int8_t *filter, const int32_t *bias, const te_dims *out,
                                  int32_t c, int8_t *output)
{
    const te_range act = p->activation;
    te_mac_srq srq[4];
    for (int j = 0; j < 4; ++j) {
        if (quant->multiplier[c + j] < 0 || act.min < -128 || act.max > 127 ||
            !te_mac_srq_init(&srq[j], quant->multiplier[c + j], quant->shift[c + j],
                             p->output_offset)) {
            return 0;
        }
    }
    const int32_t oc_count = out->c, dh = p->dilation_h, dw = p->dilation_w;
    const int32_t nz2 = (int32_t)((uint32_t)(uint16_t)(int16_t)p->input_offset * 0x00010001u);
    const int32_t xstep = dw * in->c,
                  ystep = dh * in->w * in->c; /* input bytes per kernel column / row */
    uint32_t base[4];
    for (int j = 0; j < 4; ++j) {
        base[j] = bias ? (uint32_t)bias[c + j] : 0u;
    }
    for (const int8_t *w = filter + c, *wend = w + kh * kw * oc_count; w != wend; w += oc_count) {
        for (int j = 0; j < 4; ++j) {
            base[j] -= (uint32_t)p->input_offset * (uint32_t)(int32_t)w[j];
        }
    }
    for (int32_t b = 0; b < in->n; ++b) {
        const int8_t *image = input + b * in->h * in->w * in->c;
        int8_t *o = output + b * out->h * out->w * oc_count + c;
        for (int32_t oy = 0; oy < out->h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            int32_t ky0, ky1;
            te_dw_range(iy0, dh, kh, in->h, &ky0, &ky1);
            for (int32_t ox = 0; ox < out->w; ++ox, o += oc_count) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                int32_t kx0, kx1;
                te_dw_range(ix0, dw, kw, in->w, &kx0, &kx1);
                int32_t acc[4] = {(int32_t)base[0], (int32_t)base[1], (int32_t)base[2],
                                  (int32_t)base[3]};
                const int8_t *xr = image + ((iy0 + ky0 * dh) * in->w + ix0 + kx0 * dw) * in->c + c;
                const int8_t *wr = filter + (ky0 * kw + kx0) * oc_count + c;
                const int32_t wlen = (kx1 - kx0) * oc_count;
                for (int32_t ky = ky0; ky < ky1; ++ky, xr += ystep, wr += kw * oc_count) {
                    const int8_t *x = xr, *w = wr;
                    for (const int8_t *wend = w + wlen; w != wend; x += xstep, w += oc_count) {
                        const int32_t xw = te_read_s8x4(x), ww = te_read_s8x4(w);
                        const int32_t xe = te_sxtab16(nz2, xw), xo = te_dw_sxtab16_ror8(nz2, xw);
                        const int32_t we = te_sxtb16(ww), wo = te_sxtb16_ror8(ww);
                        acc[0] = te_smlabb(xe, we, acc[0]);
                        acc[2] = te_smlatt(xe, we, acc[2]);
                        acc[1] = te_smlabb(xo, wo, acc[1]);
                        acc[3] = te_smlatt(xo, wo, acc[3]);
                    }
                }
                for (int j = 0; j < 4; ++j) {
                    const int32_t y = te_mac_srq_apply(&srq[j], acc[j]);
                    o[j] = (int8_t)(y < act.min ? act.min : (y > act.max ? act.max : y));
                }
            }
        }
    }
    return 1;
}
#endif

te_status te_dwconv_s8(const te_dwconv_params *params, const te_pc_quant *quant,
                       const te_dims *input_dims, const int8_t *input, const te_dims *filter_dims,
                       const int8_t *filter, const int32_t *bias, const te_dims *output_dims,
                       int8_t *output)
{
    if (!params || !quant || !quant->multiplier || !quant->shift || !input_dims || !input ||
        !filter_dims || !filter || !output_dims || !output ||
        !te_dw_args_ok(params, input_dims, filter_dims, output_dims)) {
        return TE_ERR_ARG;
    }
    const te_dims in = *input_dims;
    const int32_t kh = filter_dims->h, kw = filter_dims->w;
    const int32_t oh = output_dims->h, ow = output_dims->w, oc_count = output_dims->c;
    int32_t oc0 = 0; /* channels [0, oc0) done by the block path */
#if TE_USE_DSP
    uint32_t tab[TE_DW_ENTRY * TE_DW_TAPS];
    const te_dw_s8_weights wts = {filter, oc_count};
    oc0 = te_dw_blocks(params, &in, input, kh, kw, output_dims, output, bias, quant, tab,
                       TE_DW_ENTRY * TE_DW_TAPS, te_dw_fill_s8, &wts);
    while (
        kh * kw > TE_DW_TAPS && params->depth_multiplier == 1 && oc0 + 4 <= oc_count &&
        te_dw_large_s8(params, quant, &in, input, kh, kw, filter, bias, output_dims, oc0, output)) {
        oc0 += 4;
    }
#endif
    if (oc0 < oc_count) {
        const int32_t in_image = in.h * in.w * in.c, out_image = oh * ow * oc_count;
        for (int32_t b = 0; b < in.n; ++b) {
            te_dw_plain_s8(params, quant, &in, input + b * in_image, kh, kw, bias, oh, ow, oc_count,
                           oc0, oc_count, filter + oc0, oc_count, output + b * out_image);
        }
    }
    return TE_OK;
}
