/* SPDX-License-Identifier: Apache-2.0 */
/* te_conv_t2_lut_s8.c - CONV_2D with 2-bit ternary weights by table lookup:
 * same weights and bytes as te_conv_t2_s8, another speed/scratch trade-off.
 *
 * Output pixels go in pairs: both patches (im2col, or read in place for a 1x1
 * stride-1 unpadded conv) feed one set of two-lane tables (te_fc_t2_lut_s8.c),
 * so every lookup adds 4 taps of 2 pixels. Pays off when many output channels
 * share the tables (pointwise layers); with few channels the table building
 * dominates and te_conv_t2_s8 is faster (see benchmarks/results/kernels.md).
 *
 * Scratch (te_conv_t2_lut_s8_get_buffer_size): the table core's bytes for two
 * vectors, 24 * O bytes of output records and two int8 patches; at least
 * te_conv_t2_s8's scratch, whose core runs group layouts the tables cannot.
 */
#include "te_tern_internal.h"

static int32_t te_lut_patch_bytes(int32_t k) { return (k + 3) & ~3; }

int32_t te_conv_t2_lut_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims,
                                          int32_t planes)
{
    const int32_t k = filter_dims->h * filter_dims->w * input_dims->c;
    const int32_t lut = te_tern_lut_bytes(1, planes * filter_dims->n) + 24 * filter_dims->n +
                        2 * te_lut_patch_bytes(k);
    const int32_t dflt = te_tern_conv_buffer_size(TE_TK_T2, input_dims, filter_dims);
    return lut > dflt ? lut : dflt;
}

te_status te_conv_t2_lut_s8(const te_conv_params *params, const te_pc_quant *quant,
                            const te_dims *input_dims, const int8_t *input,
                            const te_dims *filter_dims, const te_tern_weights *weights,
                            const int32_t *bias, const te_dims *output_dims, int8_t *output,
                            void *scratch)
{
    te_tern_mm mm;
    if (te_tern_conv_setup(&mm, TE_TK_T2, params, quant, input_dims, input, filter_dims, weights,
                           bias, output_dims, output, scratch) != TE_OK) {
        return TE_ERR_ARG;
    }
    const te_dims in = *input_dims;
    const int32_t kh = filter_dims->h, kw = filter_dims->w, rows = mm.o, k = mm.k;
    const int32_t oh = output_dims->h, ow = output_dims->w;
    if (!te_tern_lut_ok(&mm)) {
        return te_tern_conv(TE_TK_T2, 0, params, quant, input_dims, input, filter_dims, weights,
                            bias, output_dims, output, scratch);
    }
    const int32_t core = te_tern_lut_bytes(1, mm.active * rows);
    uint32_t *acc = (uint32_t *)scratch + core / 4 - 2 * mm.active * rows;
    uint32_t *rec = (uint32_t *)scratch + core / 4;
    int8_t *patch0 = (int8_t *)(rec + 6 * rows), *patch1 = patch0 + te_lut_patch_bytes(k);
#if TE_USE_DSP
    te_tern_prep_out(&mm, rec);
#endif
    const int8_t pad_value = (int8_t)(-params->input_offset);
    const int direct = te_tern_conv_direct(params, &in, filter_dims, output_dims);
    const int32_t pixels = oh * ow;
    for (int32_t b = 0; b < in.n; ++b) {
        const int8_t *image = input + b * in.h * in.w * in.c;
        int8_t *out = output + b * pixels * rows;
        for (int32_t px = 0; px < pixels; px += 2) {
            const int pair = px + 1 < pixels;
            const int8_t *x0 = image + px * k, *x1 = pair ? image + (px + 1) * k : 0;
            if (!direct) {
                te_tern_gather(image, &in, kh, kw, params, px / ow, px % ow, pad_value, patch0);
                x0 = patch0;
                if (pair) {
                    te_tern_gather(image, &in, kh, kw, params, (px + 1) / ow, (px + 1) % ow,
                                   pad_value, patch1);
                    x1 = patch1;
                }
            }
            /* an odd last pixel runs alone (one-lane tables fit the same scratch) */
            te_tern_lut_mm(&mm, x0, x1, (uint32_t *)scratch, acc);
            te_tern_lut_out(&mm, acc, out + px * rows, pair ? out + (px + 1) * rows : 0);
        }
    }
    return TE_OK;
}
