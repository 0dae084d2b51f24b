/* SPDX-License-Identifier: Apache-2.0 */
/* te_dequantize_s8.c - DEQUANTIZE int8 -> float32 (TFLM reference).
 * TFLM computes (float)((double)scale * (x - zp)); that product is exact in double
 * (24 + 9 bits), so one float32 multiply of the exact operands rounds identically.
 * Mirrors ternembed/kernels/misc.py: dequantize. */
#include "te_kernels_misc.h"

void te_dequantize_s8_f32(const int8_t *input, float *output, int32_t size,
                          const te_dequantize_params *p)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        output[i] = p->scale * (float)((int32_t)input[i] - p->zero_point);
    }
}
