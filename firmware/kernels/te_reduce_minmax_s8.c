/* SPDX-License-Identifier: Apache-2.0 */
/* te_reduce_minmax_s8.c - int8 REDUCE_MAX / REDUCE_MIN over any set of axes (raw values, as TFLM).
 * Mirrors ternembed/kernels/data.py: reduce_minmax. */
#include "te_kernels_data.h"

static int8_t te_extreme(const int8_t *base, const te_strided_copy_params *r, int32_t is_max)
{
    const int32_t *n = r->count, *s = r->stride;
    int8_t best = base[r->offset];
    int32_t a, b, c, d, e;
    for (a = 0; a < n[0]; ++a) {
        for (b = 0; b < n[1]; ++b) {
            for (c = 0; c < n[2]; ++c) {
                for (d = 0; d < n[3]; ++d) {
                    const int8_t *row =
                        base + r->offset + a * s[0] + b * s[1] + c * s[2] + d * s[3];
                    for (e = 0; e < n[4]; ++e) {
                        const int8_t v = row[e * s[4]];
                        if (is_max ? v > best : v < best) {
                            best = v;
                        }
                    }
                }
            }
        }
    }
    return best;
}

void te_reduce_minmax_s8(const int8_t *input, int8_t *output, const te_reduce_minmax_params *p)
{
    const int32_t *n = p->keep.count, *s = p->keep.stride;
    int32_t a, b, c, d, e;
    for (a = 0; a < n[0]; ++a) {
        for (b = 0; b < n[1]; ++b) {
            for (c = 0; c < n[2]; ++c) {
                for (d = 0; d < n[3]; ++d) {
                    for (e = 0; e < n[4]; ++e) {
                        const int8_t *base = input + p->keep.offset + a * s[0] + b * s[1] +
                                             c * s[2] + d * s[3] + e * s[4];
                        *output++ = te_extreme(base, &p->reduce, p->is_max);
                    }
                }
            }
        }
    }
}
