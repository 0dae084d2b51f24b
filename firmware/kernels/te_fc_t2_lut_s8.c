/* SPDX-License-Identifier: Apache-2.0 */
/* te_fc_t2_lut_s8.c - FULLY_CONNECTED with 2-bit ternary weights by table
 * lookup (te_tern_lut_s8.c): same weights and bytes as te_fc_t2_s8. One input
 * row uses one-lane tables (one lookup per 4 MACs); two or more rows go in
 * pairs through two-lane tables (8 MACs a lookup).
 *
 * Scratch (te_fc_t2_lut_s8_get_buffer_size): te_tern_lut_bytes, and at least
 * te_fc_t2_s8's scratch, whose core runs group layouts the tables cannot.
 */
#include "te_tern_internal.h"

int32_t te_fc_t2_lut_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims,
                                        int32_t planes)
{
    const int32_t lut = te_tern_lut_bytes(input_dims->n >= 2, planes * filter_dims->n);
    const int32_t dflt = te_tern_fc_buffer_size(TE_TK_T2, input_dims, filter_dims);
    return lut > dflt ? lut : dflt; /* the default core runs layouts the tables cannot */
}

te_status te_fc_t2_lut_s8(const te_fc_params *params, const te_pc_quant *quant,
                          const te_dims *input_dims, const int8_t *input,
                          const te_dims *filter_dims, const te_tern_weights *weights,
                          const int32_t *bias, const te_dims *output_dims, int8_t *output,
                          void *scratch)
{
    te_tern_mm mm;
    if (te_tern_fc_setup(&mm, TE_TK_T2, params, quant, input_dims, input, filter_dims, weights,
                         bias, output_dims, output) != TE_OK) {
        return TE_ERR_ARG;
    }
    const int32_t batches = input_dims->n, k = mm.k, rows = mm.o;
    if (!te_tern_lut_ok(&mm)) {
        return te_tern_fc(TE_TK_T2, 0, params, quant, input_dims, input, filter_dims, weights, bias,
                          output_dims, output, scratch);
    }
    if (!scratch) {
        return TE_ERR_ARG;
    }
    const int wide = batches >= 2;
    uint32_t *acc = (uint32_t *)scratch + (te_tern_lut_bytes(wide, mm.active * rows) / 4 -
                                           (wide ? 2 : 1) * mm.active * rows);
    for (int32_t b = 0; b < batches;) {
        const int two = wide && b + 1 < batches; /* an odd last row runs alone */
        te_tern_lut_mm(&mm, input + b * k, two ? input + (b + 1) * k : 0, (uint32_t *)scratch, acc);
        te_tern_lut_out(&mm, acc, output + b * rows, two ? output + (b + 1) * rows : 0);
        b += two ? 2 : 1;
    }
    return TE_OK;
}
