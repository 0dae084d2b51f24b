/* SPDX-License-Identifier: Apache-2.0 */
/* te_table_s8.c - an int8 -> int8 function as a 256-byte table (HARD_SWISH, LEAKY_RELU): the
 * table holds TFLM's result for every input, computed at export (ternembed/kernels/unary.py). */
#include "te_kernels_data.h"

void te_table_s8(const int8_t *input, int8_t *output, int32_t size, const int8_t *table)
{
    const int8_t *t = table + 128;
    int32_t i;
    for (i = 0; i < size; ++i) {
        output[i] = t[input[i]];
    }
}
