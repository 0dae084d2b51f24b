/* SPDX-License-Identifier: Apache-2.0 */
/* te_gather_s8.c - int8 GATHER with constant indices: whole rows copied (TFLM copies bytes).
 * Mirrors ternembed/kernels/data.py: gather. */
#include <string.h>

#include "te_kernels_data.h"

void te_gather_s8(const int8_t *input, int8_t *output, const int32_t *indices, int32_t count,
                  const te_gather_params *p)
{
    const size_t inner = (size_t)p->inner;
    int32_t o, k;
    for (o = 0; o < p->outer; ++o) {
        const int8_t *block = input + (size_t)o * (size_t)p->axis_size * inner;
        for (k = 0; k < count; ++k) {
            memcpy(output, block + (size_t)indices[k] * inner, inner);
            output += inner;
        }
    }
}
