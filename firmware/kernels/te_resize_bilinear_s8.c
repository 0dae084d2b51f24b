/* SPDX-License-Identifier: Apache-2.0 */
/* te_resize_bilinear_s8.c - int8 RESIZE_BILINEAR with TFLM's integer arithmetic: four taps weighted
 * in 20 fractional bits, rounded half away from zero. Mirrors ternembed/kernels/data.py:
 * resize_bilinear. Weights lie in [-512, 1536] (half-pixel centres reach below the first
 * pixel), so each sum is below 128 * 2048 * 2048 = 2^29 in magnitude: int32 is exact. */
#include "te_kernels_data.h"

void te_resize_bilinear_s8(const te_dims *in_dims, const int8_t *input, int32_t out_h,
                           int32_t out_w, const int32_t *rows, const int32_t *cols, int8_t *output)
{
    const int32_t depth = in_dims->c, row = in_dims->w * depth, one = 1 << 10;
    int32_t b, y, x, c;
    for (b = 0; b < in_dims->n; ++b) {
        const int8_t *image = input + b * in_dims->h * row;
        for (y = 0; y < out_h; ++y) {
            const int8_t *r0 = image + rows[3 * y] * row, *r1 = image + rows[3 * y + 1] * row;
            const int32_t wy = rows[3 * y + 2];
            for (x = 0; x < out_w; ++x) {
                const int32_t c0 = cols[3 * x] * depth, c1 = cols[3 * x + 1] * depth,
                              wx = cols[3 * x + 2];
                const int32_t w00 = (one - wy) * (one - wx), w10 = wy * (one - wx);
                const int32_t w01 = (one - wy) * wx, w11 = wy * wx;
                for (c = 0; c < depth; ++c) {
                    const int32_t sum =
                        r0[c0 + c] * w00 + r1[c0 + c] * w10 + r0[c1 + c] * w01 + r1[c1 + c] * w11;
                    const int32_t rounded = sum + (sum > 0 ? (1 << 19) : -(1 << 19));
                    *output++ = (int8_t)(rounded / (1 << 20));
                }
            }
        }
    }
}
