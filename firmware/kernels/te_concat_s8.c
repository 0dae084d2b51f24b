/* SPDX-License-Identifier: Apache-2.0 */
/* te_concat_s8.c - int8 CONCATENATION (equal quantization: byte copies).
 * Mirrors ternembed/kernels/misc.py: concat. */
#include <string.h>

#include "te_kernels_misc.h"

void te_concat_s8(const int8_t *const *inputs, const int32_t *axis_sizes, int32_t num_inputs,
                  int32_t outer, int32_t inner, int8_t *output)
{
    int32_t o, i;
    for (o = 0; o < outer; ++o) {
        for (i = 0; i < num_inputs; ++i) {
            const size_t chunk = (size_t)axis_sizes[i] * (size_t)inner;
            memcpy(output, inputs[i] + (size_t)o * chunk, chunk);
            output += chunk;
        }
    }
}
