/* SPDX-License-Identifier: Apache-2.0 */
/* te_axis_gather_s8.c - a separable gather: one input-offset table per axis (MIRROR_PAD; TFLM
 * copies bytes). Mirrors ternembed/kernels/data.py: axis_gather_run. */
#include <string.h>

#include "te_kernels_data.h"

void te_axis_gather_s8(const int8_t *input, int8_t *output, const int32_t *offsets,
                       const te_axis_gather_params *p)
{
    const int32_t *t0 = offsets, *t1 = t0 + p->count[0], *t2 = t1 + p->count[1],
                  *t3 = t2 + p->count[2];
    const int32_t n3 = p->count[3];
    int32_t a, b, c, d;
    for (a = 0; a < p->count[0]; ++a) {
        for (b = 0; b < p->count[1]; ++b) {
            for (c = 0; c < p->count[2]; ++c) {
                const int8_t *src = input + t0[a] + t1[b] + t2[c];
                if (p->contiguous) {
                    memcpy(output, src, (size_t)n3);
                    output += n3;
                } else {
                    for (d = 0; d < n3; ++d) {
                        *output++ = src[t3[d]];
                    }
                }
            }
        }
    }
}
