/* SPDX-License-Identifier: Apache-2.0 */
/* te_avgpool_s8.c - int8 AVERAGE_POOL_2D (TFLM reference semantics).
 * Mirrors ternembed/kernels/pool.py: avg_pool2d. */
#include "te_fixedpoint.h"
#include "te_kernels_misc.h"

te_status te_avgpool_s8(const te_dims *in_dims, const int8_t *input, int8_t *output,
                        const te_pool_params *p)
{
    const int32_t in_h = in_dims->h, in_w = in_dims->w, depth = in_dims->c;
    int32_t b, oy, ox, c, y, x;
    for (b = 0; b < in_dims->n; ++b) {
        const int8_t *in_b = input + (int64_t)b * in_h * in_w * depth;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t y_origin = oy * p->stride_h - p->pad_top;
            const int32_t y0 = y_origin < 0 ? 0 : y_origin;
            const int32_t y1 = y_origin + p->filter_h < in_h ? y_origin + p->filter_h : in_h;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t x_origin = ox * p->stride_w - p->pad_left;
                const int32_t x0 = x_origin < 0 ? 0 : x_origin;
                const int32_t x1 = x_origin + p->filter_w < in_w ? x_origin + p->filter_w : in_w;
                const int32_t count = (y1 - y0) * (x1 - x0);
                if (y1 <= y0 || x1 <= x0) {
                    return TE_ERR_ARG; /* no valid tap: TFLM fails here too */
                }
                for (c = 0; c < depth; ++c) {
                    int32_t acc = 0;
                    for (y = y0; y < y1; ++y) {
                        const int8_t *row = in_b + ((int64_t)y * in_w) * depth + c;
                        for (x = x0; x < x1; ++x) {
                            acc += row[(int64_t)x * depth];
                        }
                    }
                    /* Round to nearest, halves away from zero (C division truncates). */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    *output++ = (int8_t)te_clamp(acc, p->act.min, p->act.max);
                }
            }
        }
    }
    return TE_OK;
}
