/* SPDX-License-Identifier: Apache-2.0 */
/* te_fc_t2_s8.c - FULLY_CONNECTED with 2-bit ternary weights (group scales,
 * residual planes), int8 in / int8 out; also the driver of te_fc_to_s8 and
 * te_fc_p2_s8.
 *
 * Layout: input [N][K] int8 (input_dims n = N, h*w*c = K), weights as in
 * te_kernels_ternary.h with O = filter_dims->n rows of K taps, bias [O] int32
 * (folded; may be NULL), output [N][O] int8.
 *
 * DSP path: each input row is widened once into int16 pairs in the scratch
 * buffer and then shared by every output row (te_nn_tern_dsp_s8.c: 3 rows per pass
 * for one input row, 2 rows x 2 input rows when N >= 2); the accumulators wait
 * in scratch for one output loop. Portable path: the per-tap loop of
 * te_tern_row_portable, no scratch used.
 *
 * Scratch (te_fc_t2_s8_get_buffer_size): one widened input row (two when N >= 2;
 * 2 * roundup(K, 16) bytes each, p2: 8-tap words, plus its 1 KiB decode table),
 * 8 * O bytes of accumulators (16 * O when N >= 2) and, when N >= 3, 24 * O
 * bytes of output records.
 */
#include "te_tern_internal.h"

int32_t te_tern_fc_buffer_size(int32_t kind, const te_dims *input_dims, const te_dims *filter_dims)
{
    const int32_t k = filter_dims->h * filter_dims->w * filter_dims->c, o = filter_dims->n;
    const int32_t n = input_dims->n;
    /* widened rows (two when batched), p2 table, accumulators (2*O words per
     * row in a pass), output records (from 3 input rows on) */
    return (n >= 2 ? 2 : 1) * te_tern_vec_bytes(kind, k) + (kind == TE_TK_P2 ? 1024 : 0) +
           (n >= 2 ? 16 : 8) * o + (n >= 3 ? 24 * o : 0);
}

te_status te_tern_fc_setup(te_tern_mm *mm, int32_t kind, const te_fc_params *params,
                           const te_pc_quant *quant, const te_dims *input_dims, const int8_t *input,
                           const te_dims *filter_dims, const te_tern_weights *weights,
                           const int32_t *bias, const te_dims *output_dims, const int8_t *output)
{
    if (!params || !input_dims || !input || !filter_dims || !output_dims || !output) {
        return TE_ERR_ARG;
    }
    const int32_t batches = input_dims->n;
    const int32_t k = input_dims->h * input_dims->w * input_dims->c;
    const int32_t rows = filter_dims->n;
    if (batches <= 0 || k <= 0 || rows <= 0 ||
        filter_dims->h * filter_dims->w * filter_dims->c != k || output_dims->n != batches ||
        output_dims->h * output_dims->w * output_dims->c != rows) {
        return TE_ERR_ARG;
    }
    return te_tern_mm_init(mm, kind, weights, rows, k, bias, quant, params->output_offset,
                           params->activation);
}

te_status te_tern_fc(int32_t kind, const te_tern_blocks *p2, const te_fc_params *params,
                     const te_pc_quant *quant, const te_dims *input_dims, const int8_t *input,
                     const te_dims *filter_dims, const te_tern_weights *weights,
                     const int32_t *bias, const te_dims *output_dims, int8_t *output, void *scratch)
{
    te_tern_mm mm;
    if (te_tern_fc_setup(&mm, kind, params, quant, input_dims, input, filter_dims, weights, bias,
                         output_dims, output) != TE_OK) {
        return TE_ERR_ARG;
    }
    const int32_t batches = input_dims->n, k = mm.k, rows = mm.o;
    mm.p2 = p2;
#if TE_USE_DSP
    if (te_tern_dsp_ok(&mm)) {
        if (!scratch) {
            return TE_ERR_ARG;
        }
        const int32_t vwords = te_tern_vec_bytes(kind, k) / 4;
        uint32_t *xw = (uint32_t *)scratch;
        uint32_t *accbuf = xw + (batches >= 2 ? 2 : 1) * vwords;
        const uint32_t *tbl = 0;
        if (kind == TE_TK_P2) {
            te_p2_build_table(weights->levels, accbuf);
            tbl = accbuf;
            accbuf += 256;
        }
        if (batches >= 3) {                           /* records pay off over a few input rows */
            te_tern_prep_out(&mm, accbuf + 4 * rows); /* batches >= 2: 4*O accumulator words */
        }
        for (int32_t b = 0; b < batches; b += 2) {
            if (b + 1 < batches) { /* two input rows, interleaved */
                const int32_t s0 = te_tern_widen(kind, input + b * k, k, xw, 2);
                const int32_t s1 = te_tern_widen(kind, input + (b + 1) * k, k, xw + 1, 2);
                te_tern_mm_dsp(&mm, xw, 1, s0, s1, output + b * rows, output + (b + 1) * rows, tbl,
                               accbuf);
            } else {
                const int32_t s0 = te_tern_widen(kind, input + b * k, k, xw, 1);
                te_tern_mm_dsp(&mm, xw, 0, s0, 0, output + b * rows, 0, tbl, accbuf);
            }
        }
        return TE_OK;
    }
#endif
    (void)scratch;
    for (int32_t b = 0; b < batches; ++b) {
        te_tern_vec_portable(&mm, input + b * k, output + b * rows);
    }
    return TE_OK;
}

int32_t te_fc_t2_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims)
{
    return te_tern_fc_buffer_size(TE_TK_T2, input_dims, filter_dims);
}

te_status te_fc_t2_s8(const te_fc_params *params, const te_pc_quant *quant,
                      const te_dims *input_dims, const int8_t *input, const te_dims *filter_dims,
                      const te_tern_weights *weights, const int32_t *bias,
                      const te_dims *output_dims, int8_t *output, void *scratch)
{
    return te_tern_fc(TE_TK_T2, 0, params, quant, input_dims, input, filter_dims, weights, bias,
                      output_dims, output, scratch);
}
