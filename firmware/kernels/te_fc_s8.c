/* SPDX-License-Identifier: Apache-2.0 */
/* te_fc_s8.c - FULLY_CONNECTED, int8 in / int8 out, per-channel requantization.
 *
 * Layout: input [N][K] int8 (input_dims n = N, h*w*c = K, i.e. any NHWC
 * tensor flattened per batch as TFLite does), weights [O][K] int8
 * (filter_dims n = O, h*w*c = K), folded bias [O] int32 (may be NULL),
 * output [N][O] int8 (output_dims n = N, h*w*c = O).
 * out[b][o] = clamp(requantize(bias[o] + sum_k x[b][k] * w[o][k]) + output_offset).
 * Portable and DSP paths share te_nn_mat_mult_s8 (2 batch rows at a time).
 */
#include "te_kernels_mac.h"

te_status te_fc_s8(const te_fc_params *params, const te_pc_quant *quant, const te_dims *input_dims,
                   const int8_t *input, const te_dims *filter_dims, const int8_t *filter,
                   const int32_t *bias, const te_dims *output_dims, int8_t *output)
{
    if (!params || !quant || !quant->multiplier || !quant->shift || !input_dims || !input ||
        !filter_dims || !filter || !output_dims || !output) {
        return TE_ERR_ARG;
    }
    const int32_t batches = input_dims->n;
    const int32_t k = input_dims->h * input_dims->w * input_dims->c;
    const int32_t cols = filter_dims->n;
    if (batches <= 0 || k <= 0 || cols <= 0 ||
        filter_dims->h * filter_dims->w * filter_dims->c != k || output_dims->n != batches ||
        output_dims->h * output_dims->w * output_dims->c != cols ||
        params->activation.min > params->activation.max) {
        return TE_ERR_ARG;
    }
    te_nn_mat_mult_s8(input, batches, k, filter, cols, bias, quant, params->output_offset,
                      params->activation, output);
    return TE_OK;
}
