/* SPDX-License-Identifier: Apache-2.0 */
/* te_strided_copy_s8.c - STRIDED_SLICE, SLICE, SPLIT, SPLIT_V, UNPACK, TRANSPOSE: TFLM copies
 * the int8 bytes, so all are one strided gather. Mirrors ternembed/kernels/data.py. */
#include <string.h>

#include "te_kernels_data.h"

void te_strided_copy_s8(const int8_t *input, int8_t *output, const te_strided_copy_params *p)
{
    const int32_t *n = p->count, *s = p->stride;
    const int32_t run = n[4], step = s[4];
    int32_t a, b, c, d, k;
    for (a = 0; a < n[0]; ++a) {
        for (b = 0; b < n[1]; ++b) {
            for (c = 0; c < n[2]; ++c) {
                const int8_t *row = input + p->offset + a * s[0] + b * s[1] + c * s[2];
                for (d = 0; d < n[3]; ++d, row += s[3]) {
                    if (step == 1) { /* contiguous run: the library copy is word-wise */
                        memcpy(output, row, (size_t)run);
                        output += run;
                    } else {
                        const int8_t *src = row;
                        for (k = 0; k < run; ++k, src += step) {
                            *output++ = *src;
                        }
                    }
                }
            }
        }
    }
}
