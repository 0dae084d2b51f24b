/* SPDX-License-Identifier: Apache-2.0 */
/* te_conv_t2_s8.c - CONV_2D with 2-bit ternary weights (group scales, residual
 * planes), int8 in / int8 out; also the driver of te_conv_to_s8 and te_conv_p2_s8.
 *
 * Layout: input [N][H][W][C] int8, weights as in te_kernels_ternary.h with
 * O = filter_dims->n rows of K = KH*KW*C taps in TFLite order (ky, kx, c),
 * bias [O] int32 (folded; may be NULL), output [N][OH][OW][O] int8. Input row of
 * output row oy, kernel row ky: iy = oy*stride_h - pad_top + ky*dilation_h
 * (columns alike); a tap outside the input reads -input_offset.
 *
 * Method: the patch of an output pixel (im2col, int8) is gathered into scratch,
 * or read in place for a 1x1 stride-1 unpadded conv; the DSP path widens two
 * pixels' patches to int16 and runs the shared matrix core on both at once
 * (2 output channels x 2 pixels per pass), so each decoded weight pair feeds two
 * SMLADs. The portable path runs te_tern_row_portable per pixel.
 *
 * Scratch (te_conv_t2_s8_get_buffer_size): two widened patches, the p2 table,
 * 16 * O bytes of accumulators, 24 * O bytes of output records and one int8
 * patch.
 */
#include "te_tern_internal.h"

static int32_t te_tern_conv_k(const te_dims *input_dims, const te_dims *filter_dims)
{
    return filter_dims->h * filter_dims->w * input_dims->c;
}

int32_t te_tern_conv_buffer_size(int32_t kind, const te_dims *input_dims,
                                 const te_dims *filter_dims)
{
    const int32_t k = te_tern_conv_k(input_dims, filter_dims);
    return 2 * te_tern_vec_bytes(kind, k) + (kind == TE_TK_P2 ? 1024 : 0) + ((k + 3) & ~3) +
           40 * filter_dims->n;
}

int32_t te_conv_t2_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims)
{
    return te_tern_conv_buffer_size(TE_TK_T2, input_dims, filter_dims);
}

/* Small copies and fills word by word (newlib-nano's memcpy/memset go byte by byte). */
static void te_tern_copy(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t v;
        TE_TERN_KEEP_LOOP();
        memcpy(&v, src + i, 4);
        memcpy(dst + i, &v, 4);
    }
    for (; i < n; ++i) {
        TE_TERN_KEEP_LOOP();
        dst[i] = src[i];
    }
}

static void te_tern_fill(int8_t *dst, int8_t value, int32_t n)
{
    const uint32_t v = 0x01010101u * (uint8_t)value;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        TE_TERN_KEEP_LOOP();
        memcpy(dst + i, &v, 4);
    }
    for (; i < n; ++i) {
        TE_TERN_KEEP_LOOP();
        dst[i] = value;
    }
}

/* The int8 patch [KH][KW][C] of output pixel (oy, ox), padded taps = pad_value. */
void te_tern_gather(const int8_t *image, const te_dims *in, int32_t kh, int32_t kw,
                    const te_conv_params *p, int32_t oy, int32_t ox, int8_t pad_value, int8_t *dst)
{
    const int32_t c = in->c;
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    const int whole_rows = p->dilation_w == 1 && ix0 >= 0 && ix0 + kw <= in->w;
    for (int32_t ky = 0; ky < kh; ++ky) {
        const int32_t iy = iy0 + ky * p->dilation_h;
        if (iy < 0 || iy >= in->h) {
            te_tern_fill(dst, pad_value, kw * c);
            dst += kw * c;
            continue;
        }
        const int8_t *row = image + iy * in->w * c;
        if (whole_rows) {
            te_tern_copy(dst, row + ix0 * c, kw * c);
            dst += kw * c;
            continue;
        }
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int32_t ix = ix0 + kx * p->dilation_w;
            if (ix < 0 || ix >= in->w) {
                te_tern_fill(dst, pad_value, c);
            } else {
                te_tern_copy(dst, row + ix * c, c);
            }
            dst += c;
        }
    }
}

#if TE_USE_DSP
/* Widens the patch of output pixel (oy, ox) straight from the image, one kernel
 * row at a time, when every tap lies inside and a kernel row fills whole widen
 * blocks (16 taps, p2 8): no gathered copy. Returns 0 when it does not apply. */
static int te_tern_widen_rows(int32_t kind, const int8_t *image, const te_dims *in, int32_t kh,
                              int32_t kw, const te_conv_params *p, int32_t oy, int32_t ox,
                              uint32_t *xw, int32_t stride, int32_t *sum)
{
    const int32_t seg = kw * in->c;
    const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    if (seg % (kind == TE_TK_P2 ? 8 : 16) != 0 || p->dilation_w != 1 || ix0 < 0 ||
        ix0 + kw > in->w || iy0 < 0 || iy0 + (kh - 1) * p->dilation_h >= in->h) {
        return 0;
    }
    int32_t s = 0;
    for (int32_t ky = 0; ky < kh; ++ky) {
        const int8_t *row = image + ((iy0 + ky * p->dilation_h) * in->w + ix0) * in->c;
        s += te_tern_widen(kind, row, seg, xw + ky * (seg / 2) * stride, stride);
    }
    *sum = s;
    return 1;
}
#endif

te_status te_tern_conv_setup(te_tern_mm *mm, int32_t kind, const te_conv_params *params,
                             const te_pc_quant *quant, const te_dims *input_dims,
                             const int8_t *input, const te_dims *filter_dims,
                             const te_tern_weights *weights, const int32_t *bias,
                             const te_dims *output_dims, const int8_t *output, const void *scratch)
{
    if (!params || !input_dims || !input || !filter_dims || !output_dims || !output || !scratch) {
        return TE_ERR_ARG;
    }
    const te_dims in = *input_dims;
    const int32_t kh = filter_dims->h, kw = filter_dims->w, rows = filter_dims->n;
    const int32_t oh = output_dims->h, ow = output_dims->w;
    if (in.n <= 0 || in.h <= 0 || in.w <= 0 || in.c <= 0 || kh <= 0 || kw <= 0 || rows <= 0 ||
        filter_dims->c != in.c || output_dims->n != in.n || output_dims->c != rows || oh <= 0 ||
        ow <= 0 || params->stride_h <= 0 || params->stride_w <= 0 || params->dilation_h <= 0 ||
        params->dilation_w <= 0 || params->input_offset < -127 || params->input_offset > 128) {
        return TE_ERR_ARG;
    }
    return te_tern_mm_init(mm, kind, weights, rows, kh * kw * in.c, bias, quant,
                           params->output_offset, params->activation);
}

int te_tern_conv_direct(const te_conv_params *p, const te_dims *in, const te_dims *filter_dims,
                        const te_dims *output_dims)
{
    return filter_dims->h == 1 && filter_dims->w == 1 && p->stride_h == 1 && p->stride_w == 1 &&
           p->pad_top == 0 && p->pad_left == 0 && output_dims->w == in->w &&
           output_dims->h <= in->h;
}

te_status te_tern_conv(int32_t kind, const te_tern_blocks *p2, const te_conv_params *params,
                       const te_pc_quant *quant, const te_dims *input_dims, const int8_t *input,
                       const te_dims *filter_dims, const te_tern_weights *weights,
                       const int32_t *bias, const te_dims *output_dims, int8_t *output,
                       void *scratch)
{
    te_tern_mm mm;
    if (te_tern_conv_setup(&mm, kind, params, quant, input_dims, input, filter_dims, weights, bias,
                           output_dims, output, scratch) != TE_OK) {
        return TE_ERR_ARG;
    }
    mm.p2 = p2;
    const te_dims in = *input_dims;
    const int32_t kh = filter_dims->h, kw = filter_dims->w, rows = mm.o, k = mm.k;
    const int32_t oh = output_dims->h, ow = output_dims->w;
    const int8_t pad_value = (int8_t)(-params->input_offset);
    const int direct = te_tern_conv_direct(params, &in, filter_dims, output_dims);
    const int32_t vbytes = te_tern_vec_bytes(kind, k);
    int8_t *patch = (int8_t *)scratch + 2 * vbytes + (kind == TE_TK_P2 ? 1024 : 0) + 40 * rows;
    const int32_t pixels = oh * ow;
#if TE_USE_DSP
    if (te_tern_dsp_ok(&mm)) {
        uint32_t *xw = (uint32_t *)scratch;
        uint32_t *accbuf = xw + vbytes / 2 + (kind == TE_TK_P2 ? 256 : 0);
        const uint32_t *tbl = 0;
        if (kind == TE_TK_P2) {
            te_p2_build_table(weights->levels, xw + vbytes / 2);
            tbl = xw + vbytes / 2;
        }
        if (in.n * pixels >= 3) { /* records pay off over a few pixels */
            te_tern_prep_out(&mm, accbuf + 4 * rows);
        }
        for (int32_t b = 0; b < in.n; ++b) {
            const int8_t *image = input + b * in.h * in.w * in.c;
            int8_t *out = output + b * pixels * rows;
            for (int32_t px = 0; px < pixels; px += 2) {
                const int pair = px + 1 < pixels;
                const int32_t stride = pair ? 2 : 1;
                int32_t s0, s1 = 0;
                const int8_t *x = image + px * k;
                if (direct) {
                    s0 = te_tern_widen(kind, x, k, xw, stride);
                } else if (!te_tern_widen_rows(kind, image, &in, kh, kw, params, px / ow, px % ow,
                                               xw, stride, &s0)) {
                    te_tern_gather(image, &in, kh, kw, params, px / ow, px % ow, pad_value, patch);
                    s0 = te_tern_widen(kind, patch, k, xw, stride);
                }
                if (pair) {
                    x = image + (px + 1) * k;
                    if (direct) {
                        s1 = te_tern_widen(kind, x, k, xw + 1, 2);
                    } else if (!te_tern_widen_rows(kind, image, &in, kh, kw, params, (px + 1) / ow,
                                                   (px + 1) % ow, xw + 1, 2, &s1)) {
                        te_tern_gather(image, &in, kh, kw, params, (px + 1) / ow, (px + 1) % ow,
                                       pad_value, patch);
                        s1 = te_tern_widen(kind, patch, k, xw + 1, 2);
                    }
                }
                te_tern_mm_dsp(&mm, xw, pair, s0, s1, out + px * rows,
                               pair ? out + (px + 1) * rows : 0, tbl, accbuf);
            }
        }
        return TE_OK;
    }
#endif
    for (int32_t b = 0; b < in.n; ++b) {
        const int8_t *image = input + b * in.h * in.w * in.c;
        int8_t *out = output + b * pixels * rows;
        for (int32_t px = 0; px < pixels; ++px) {
            const int8_t *x = image + px * k;
            if (!direct) {
                te_tern_gather(image, &in, kh, kw, params, px / ow, px % ow, pad_value, patch);
                x = patch;
            }
            te_tern_vec_portable(&mm, x, out + px * rows);
        }
    }
    return TE_OK;
}

te_status te_conv_t2_s8(const te_conv_params *params, const te_pc_quant *quant,
                        const te_dims *input_dims, const int8_t *input, const te_dims *filter_dims,
                        const te_tern_weights *weights, const int32_t *bias,
                        const te_dims *output_dims, int8_t *output, void *scratch)
{
    return te_tern_conv(TE_TK_T2, 0, params, quant, input_dims, input, filter_dims, weights, bias,
                        output_dims, output, scratch);
}
