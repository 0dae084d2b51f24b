/* SPDX-License-Identifier: Apache-2.0 */
/* te_fc_p2_s8.c - FULLY_CONNECTED with signed power-of-two weights (int4 nibbles sign*(k+1)),
 * int8 in / int8 out. Same layouts, paths and scratch as te_fc_t2_s8.c (its
 * driver does the work; see te_kernels_ternary.h for the arithmetic).
 */
#include "te_tern_internal.h"

int32_t te_fc_p2_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims)
{
    return te_tern_fc_buffer_size(TE_TK_P2, input_dims, filter_dims);
}

te_status te_fc_p2_s8(const te_fc_params *params, const te_pc_quant *quant,
                      const te_dims *input_dims, const int8_t *input, const te_dims *filter_dims,
                      const te_tern_weights *weights, const int32_t *bias,
                      const te_dims *output_dims, int8_t *output, void *scratch)
{
    return te_tern_fc(TE_TK_P2, &te_tern_p2_blocks, params, quant, input_dims, input, filter_dims,
                      weights, bias, output_dims, output, scratch);
}
