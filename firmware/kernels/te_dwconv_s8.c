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
 * widened into the block's int16 tap table on the stack, which te_dw_block
 * sweeps: spans of pixels that share their in-image taps, padded taps never
 * visited. The last C % 4 channels, other M and larger kernels run the plain
 * loop (te_dw_plain_s8), as does the portable build.
 */
#include "te_dw_internal.h"

/* Largest kernel (KH*KW) of the DSP block path: its table takes 12 bytes a
 * tap of stack (972 bytes for 9x9 or 10x8), and the second table, ordered the
 * other way (columns, the line ends), fits beside it up to TE_DW_TAPS / 2
 * taps. */
#ifndef TE_DW_TAPS
#define TE_DW_TAPS 81
#endif
#if TE_DW_TAPS > 255
#error "TE_DW_TAPS > 255: the int16 weight sums of te_dwconv_s8 could overflow"
#endif

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
    int32_t oc0 = 0; /* channels [0, oc0) done by the block path */
#if TE_USE_DSP
    const int32_t taps = kh * kw;
    if ((mult_depth == 1 || mult_depth % 4 == 0) && oc_count >= 4 && taps <= TE_DW_TAPS) {
        uint32_t tab[TE_DW_ENTRY * TE_DW_TAPS];
        te_dw_geom g;
        te_dw_geom_init(&g, params, &in, kh, kw, output_dims, tab, TE_DW_ENTRY * TE_DW_TAPS);
        for (; oc0 + 4 <= oc_count; oc0 += 4) {
            /* the block's weights widened, (c0, c2) and (c1, c3), and summed
             * in int16 lanes too (|sum| <= 128 * TE_DW_TAPS) */
            const int8_t *w = filter + oc0;
            uint32_t *ent = g.taps;
            int32_t se = 0, so = 0;
            for (int32_t i = 0; i < taps; ++i, w += oc_count, ent += TE_DW_ENTRY) {
                const int32_t word = te_read_s8x4(w), odd = te_ror8(word);
                ent[1] = (uint32_t)te_sxtb16(word);
                ent[2] = (uint32_t)te_sxtb16(odd);
                se = te_sxtab16(se, word);
                so = te_sxtab16(so, odd);
            }
            const uint32_t sum[4] = {(uint32_t)(int32_t)(int16_t)(uint16_t)((uint32_t)se & 0xFFFFu),
                                     (uint32_t)(int32_t)(int16_t)(uint16_t)((uint32_t)so & 0xFFFFu),
                                     (uint32_t)(se >> 16), (uint32_t)(so >> 16)};
            te_dw_block(&g, params, input, output, oc0, bias, quant, sum);
        }
    }
#endif
    if (oc0 < oc_count) {
        const int32_t in_image = in.h * in.w * in.c, out_image = oh * ow * oc_count;
        for (int32_t b = 0; b < in.n; ++b) {
            te_dw_plain_s8(params, quant, &in, input + b * in_image, kh, kw, bias, oh, ow, oc_count, oc0,
                           oc_count, filter + oc0, oc_count, output + b * out_image);
        }
    }
    return TE_OK;
}
