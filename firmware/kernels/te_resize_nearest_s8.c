/* SPDX-License-Identifier: Apache-2.0 */
/* te_resize_nearest_s8.c - int8 RESIZE_NEAREST_NEIGHBOR: whole pixels copied by index tables.
 * Mirrors ternembed/kernels/data.py: resize_nearest. */
#include <string.h>

#include "te_kernels_data.h"

void te_resize_nearest_s8(const te_dims *in_dims, const int8_t *input, int32_t out_h, int32_t out_w,
                          const int32_t *rows, const int32_t *cols, int8_t *output)
{
    const size_t depth = (size_t)in_dims->c;
    const size_t row = (size_t)in_dims->w * depth;
    int32_t b, y, x;
    for (b = 0; b < in_dims->n; ++b) {
        const int8_t *image = input + (size_t)b * (size_t)in_dims->h * row;
        for (y = 0; y < out_h; ++y) {
            const int8_t *src = image + (size_t)rows[y] * row;
            for (x = 0; x < out_w; ++x) {
                memcpy(output, src + (size_t)cols[x] * depth, depth);
                output += depth;
            }
        }
    }
}
