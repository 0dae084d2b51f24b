/* SPDX-License-Identifier: Apache-2.0 */
/* te_relu_s8.c - int8 RELU (requantize + clamp) and RELU6 (clamp in the input's domain),
 * TFLM semantics. Mirrors ternembed/kernels/activation.py: relu, relu6. */
#include "te_fixedpoint.h"
#include "te_kernels_misc.h"

void te_relu_s8(const int8_t *input, int8_t *output, int32_t size, const te_relu_params *p)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t v = te_requantize((int32_t)input[i] - p->input_offset, p->output_multiplier,
                                        p->output_shift) +
                          p->output_offset;
        output[i] = (int8_t)te_clamp(v, p->act_min, p->act_max);
    }
}

void te_relu6_s8(const int8_t *input, int8_t *output, int32_t size, const te_relu6_params *p)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t v = input[i];
        output[i] = (int8_t)(v > p->upper ? p->upper : (v < p->lower ? p->lower : v));
    }
}
