/* SPDX-License-Identifier: Apache-2.0 */
/* te_conv_s8.c - CONV_2D, int8 in / int8 out, per-channel requantization.
 *
 * Layout: input [N][H][W][C] int8, weights [O][KH][KW][C] int8, folded bias
 * [O] int32 (may be NULL), output [N][OH][OW][O] int8. Input row of output
 * row oy, kernel row ky: iy = oy*stride_h - pad_top + ky*dilation_h (columns
 * alike). A tap outside the input reads the input zero point (-input_offset),
 * which the folded bias cancels exactly.
 *
 * Method: im2col of two output pixels at a time into the caller's scratch
 * ([2][KH*KW*C] int8, padded taps filled with the zero point), then the
 * shared te_nn_mat_mult_s8 inner loop (portable or DSP). A 1x1, stride-1,
 * unpadded conv is a plain matrix product over the input, without im2col.
 */
#include <string.h>

#include "te_kernels_mac.h"

int32_t te_conv_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims)
{
    return 2 * filter_dims->h * filter_dims->w * input_dims->c;
}

/* Gather the patch of output pixel (oy, ox) of one image into dst [KH][KW][C]. */
static void te_conv_im2col_pixel(const int8_t *image, const te_dims *in, int32_t kh, int32_t kw,
                                 const te_conv_params *p, int32_t oy, int32_t ox, int8_t pad_value,
                                 int8_t *dst)
{
    const int32_t c = in->c;
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    const int32_t ix_last = ix0 + (kw - 1) * p->dilation_w;
    const int contiguous = p->dilation_w == 1 && ix0 >= 0 && ix_last < in->w;
    for (int32_t ky = 0; ky < kh; ++ky) {
        const int32_t iy = iy0 + ky * p->dilation_h;
        if (iy < 0 || iy >= in->h) {
            memset(dst, pad_value, (size_t)(kw * c));
            dst += kw * c;
            continue;
        }
        const int8_t *row = image + iy * in->w * c;
        if (contiguous) {
            memcpy(dst, row + ix0 * c, (size_t)(kw * c));
            dst += kw * c;
            continue;
        }
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int32_t ix = ix0 + kx * p->dilation_w;
            if (ix < 0 || ix >= in->w) {
                memset(dst, pad_value, (size_t)c);
            } else {
                memcpy(dst, row + ix * c, (size_t)c);
            }
            dst += c;
        }
    }
}

te_status te_conv_s8(const te_conv_params *params, const te_pc_quant *quant,
                     const te_dims *input_dims, const int8_t *input, const te_dims *filter_dims,
                     const int8_t *filter, const int32_t *bias, const te_dims *output_dims,
                     int8_t *output, void *scratch)
{
    if (!params || !quant || !quant->multiplier || !quant->shift || !input_dims || !input ||
        !filter_dims || !filter || !output_dims || !output) {
        return TE_ERR_ARG;
    }
    const te_dims in = *input_dims;
    const int32_t kh = filter_dims->h, kw = filter_dims->w, cols = filter_dims->n;
    const int32_t oh = output_dims->h, ow = output_dims->w;
    if (in.n <= 0 || in.h <= 0 || in.w <= 0 || in.c <= 0 || kh <= 0 || kw <= 0 || cols <= 0 ||
        filter_dims->c != in.c || output_dims->n != in.n || output_dims->c != cols || oh <= 0 ||
        ow <= 0 || params->stride_h <= 0 || params->stride_w <= 0 || params->dilation_h <= 0 ||
        params->dilation_w <= 0 || params->input_offset < -127 || params->input_offset > 128 ||
        params->activation.min > params->activation.max) {
        return TE_ERR_ARG;
    }
    const int32_t k = kh * kw * in.c;
    const int8_t pad_value = (int8_t)(-params->input_offset);
    const int direct = kh == 1 && kw == 1 && params->stride_h == 1 && params->stride_w == 1 &&
                       params->pad_top == 0 && params->pad_left == 0 && ow == in.w && oh <= in.h;
    if (!direct && !scratch) {
        return TE_ERR_ARG;
    }
    int8_t *cols_buf = (int8_t *)scratch;

    for (int32_t b = 0; b < in.n; ++b) {
        const int8_t *image = input + b * in.h * in.w * in.c;
        int8_t *out = output + b * oh * ow * cols;
        if (direct) {
            /* Pixels are already [OH*OW][C] rows: no gather needed. */
            te_nn_mat_mult_s8(image, oh * ow, k, filter, cols, bias, quant, params->output_offset,
                              params->activation, out);
            continue;
        }
        int32_t pending = 0;
        for (int32_t oy = 0; oy < oh; ++oy) {
            for (int32_t ox = 0; ox < ow; ++ox) {
                te_conv_im2col_pixel(image, &in, kh, kw, params, oy, ox, pad_value,
                                     cols_buf + pending * k);
                if (++pending == 2) {
                    te_nn_mat_mult_s8(cols_buf, 2, k, filter, cols, bias, quant,
                                      params->output_offset, params->activation, out);
                    out += 2 * cols;
                    pending = 0;
                }
            }
        }
        if (pending) {
            te_nn_mat_mult_s8(cols_buf, 1, k, filter, cols, bias, quant, params->output_offset,
                              params->activation, out);
        }
    }
    return TE_OK;
}
