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
 * DSP path (M == 1): four channels per block; one 4-byte load of inputs and
 * one of weights per tap, widened by SXTB16, accumulated per lane with
 * SMLABB/SMLATT. Remaining channels (and M > 1) use the portable loop.
 */
#include "te_kernels_mac.h"

#include "te_dsp.h"

te_status te_dwconv_s8(const te_dwconv_params *params, const te_pc_quant *quant,
                       const te_dims *input_dims, const int8_t *input,
                       const te_dims *filter_dims, const int8_t *filter,
                       const int32_t *bias,
                       const te_dims *output_dims, int8_t *output)
{
    if (!params || !quant || !quant->multiplier || !quant->shift || !input_dims || !input ||
        !filter_dims || !filter || !output_dims || !output) {
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
        sh <= 0 || sw <= 0 || dh <= 0 || dw <= 0 ||
        params->input_offset < -127 || params->input_offset > 128 ||
        params->activation.min > params->activation.max) {
        return TE_ERR_ARG;
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
                int32_t oc = 0;
#if TE_USE_DSP
                if (mult_depth == 1) {
                    for (; oc + 4 <= oc_count; oc += 4) {
                        int32_t acc0 = bias ? bias[oc] : 0;
                        int32_t acc1 = bias ? bias[oc + 1] : 0;
                        int32_t acc2 = bias ? bias[oc + 2] : 0;
                        int32_t acc3 = bias ? bias[oc + 3] : 0;
                        const int8_t *w = filter + oc;
                        for (int32_t ky = 0; ky < kh; ++ky) {
                            const int32_t iy = iy0 + ky * dh;
                            const int row_in = iy >= 0 && iy < in.h;
                            for (int32_t kx = 0; kx < kw; ++kx, w += oc_count) {
                                const int32_t ix = ix0 + kx * dw;
                                const int32_t xw = (row_in && ix >= 0 && ix < in.w)
                                    ? te_read_s8x4(image + (iy * in.w + ix) * in.c + oc)
                                    : pad_word;
                                int32_t xe, xo, we, wo;
                                te_widen_s8x4(xw, &xe, &xo);
                                te_widen_s8x4(te_read_s8x4(w), &we, &wo);
                                acc0 = te_smlabb(xe, we, acc0);
                                acc2 = te_smlatt(xe, we, acc2);
                                acc1 = te_smlabb(xo, wo, acc1);
                                acc3 = te_smlatt(xo, wo, acc3);
                            }
                        }
                        int8_t *out = output + ((b * oh + oy) * ow + ox) * oc_count + oc;
                        out[0] = te_mac_output(acc0, mult[oc], shift[oc], out_off, act);
                        out[1] = te_mac_output(acc1, mult[oc + 1], shift[oc + 1], out_off, act);
                        out[2] = te_mac_output(acc2, mult[oc + 2], shift[oc + 2], out_off, act);
                        out[3] = te_mac_output(acc3, mult[oc + 3], shift[oc + 3], out_off, act);
                    }
                }
#endif
                for (; oc < oc_count; ++oc) {
                    const int32_t ic = oc / mult_depth;
                    int32_t acc = bias ? bias[oc] : 0;
                    const int8_t *w = filter + oc;
                    for (int32_t ky = 0; ky < kh; ++ky) {
                        const int32_t iy = iy0 + ky * dh;
                        const int row_in = iy >= 0 && iy < in.h;
                        for (int32_t kx = 0; kx < kw; ++kx, w += oc_count) {
                            const int32_t ix = ix0 + kx * dw;
                            const int32_t x = (row_in && ix >= 0 && ix < in.w)
                                ? image[(iy * in.w + ix) * in.c + ic]
                                : pad_value;
                            acc += x * *w;
                        }
                    }
                    output[((b * oh + oy) * ow + ox) * oc_count + oc] =
                        te_mac_output(acc, mult[oc], shift[oc], out_off, act);
                }
            }
        }
    }
    return TE_OK;
}
