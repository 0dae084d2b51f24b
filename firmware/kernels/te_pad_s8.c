/* SPDX-License-Identifier: Apache-2.0 */
/* te_pad_s8.c - int8 PAD / PADV2 over 4 dims (NHWC). Mirrors ternembed/kernels/misc.py: pad. */
#include <string.h>

#include "te_kernels_misc.h"

void te_pad_s8(const te_dims *in_dims, const int8_t *input, int8_t *output, const te_pad_params *p)
{
    const int32_t on = in_dims->n + p->before[0] + p->after[0];
    const int32_t oh = in_dims->h + p->before[1] + p->after[1];
    const int32_t ow = in_dims->w + p->before[2] + p->after[2];
    const int32_t oc = in_dims->c + p->before[3] + p->after[3];
    const int8_t value = (int8_t)p->value;
    int32_t b, y, x;
    for (b = 0; b < on; ++b) {
        const int32_t ib = b - p->before[0];
        for (y = 0; y < oh; ++y) {
            const int32_t iy = y - p->before[1];
            for (x = 0; x < ow; ++x) {
                const int32_t ix = x - p->before[2];
                if (ib < 0 || ib >= in_dims->n || iy < 0 || iy >= in_dims->h || ix < 0 ||
                    ix >= in_dims->w) {
                    memset(output, value, (size_t)oc);
                } else {
                    const int8_t *src =
                        input + (((int64_t)ib * in_dims->h + iy) * in_dims->w + ix) * in_dims->c;
                    memset(output, value, (size_t)p->before[3]);
                    memcpy(output + p->before[3], src, (size_t)in_dims->c);
                    memset(output + p->before[3] + in_dims->c, value, (size_t)p->after[3]);
                }
                output += oc;
            }
        }
    }
}
