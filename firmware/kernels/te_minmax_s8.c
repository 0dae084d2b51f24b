/* SPDX-License-Identifier: Apache-2.0 */
/* te_minmax_s8.c - int8 MAXIMUM / MINIMUM (raw values compared, as TFLM does). The DSP path
 * takes four lanes per SSUB8 + SEL. Mirrors ternembed/kernels/arith.py: maximum, minimum. */
#include <string.h>

#include "te_dsp.h"
#include "te_kernels_data.h"

#if TE_USE_DSP
/* Per signed byte lane: a >= b ? a : b (want_max) or a >= b ? b : a. */
static inline uint32_t te_pick8x4(uint32_t a, uint32_t b, int want_max)
{
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
    uint32_t r;
    if (want_max) {
        __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(r) : "r"(a), "r"(b) : "cc");
    } else {
        __asm__("ssub8 %0, %1, %2\n\tsel %0, %2, %1" : "=&r"(r) : "r"(a), "r"(b) : "cc");
    }
    return r;
#else
    uint32_t r = 0;
    int i;
    for (i = 0; i < 32; i += 8) {
        const int32_t x = (int8_t)(uint8_t)(a >> i), y = (int8_t)(uint8_t)(b >> i);
        const int32_t v = (x >= y) == (want_max != 0) ? x : y;
        r |= (uint32_t)(uint8_t)v << i;
    }
    return r;
#endif
}
#endif

static void te_minmax_row(const int8_t *a, int32_t sa, const int8_t *b, int32_t sb, int8_t *out,
                          int32_t n, const void *params)
{
    const int want_max = params != NULL;
    int32_t i = 0;
#if TE_USE_DSP
    if (sa == 1 && sb == 1) {
        for (; i + 4 <= n; i += 4) {
            const uint32_t r =
                te_pick8x4((uint32_t)te_read_s8x4(a + i), (uint32_t)te_read_s8x4(b + i), want_max);
            memcpy(out + i, &r, sizeof(r));
        }
    }
#endif
    for (; i < n; ++i) {
        const int8_t x = a[i * sa], y = b[i * sb];
        out[i] = (x >= y) == want_max ? x : y;
    }
}

/* params: non-NULL selects the maximum (the rows take no other parameter). */
static const int te_max_tag = 1;

void te_maximum_s8(const int8_t *input1, const int8_t *input2, int8_t *output, int32_t size)
{
    te_minmax_row(input1, 1, input2, 1, output, size, &te_max_tag);
}

void te_minimum_s8(const int8_t *input1, const int8_t *input2, int8_t *output, int32_t size)
{
    te_minmax_row(input1, 1, input2, 1, output, size, NULL);
}

void te_maximum_bcast_s8(const te_dims *dims1, const int8_t *input1, const te_dims *dims2,
                         const int8_t *input2, const te_dims *out_dims, int8_t *output)
{
    te_broadcast4(dims1, input1, dims2, input2, out_dims, output, te_minmax_row, &te_max_tag);
}

void te_minimum_bcast_s8(const te_dims *dims1, const int8_t *input1, const te_dims *dims2,
                         const int8_t *input2, const te_dims *out_dims, int8_t *output)
{
    te_broadcast4(dims1, input1, dims2, input2, out_dims, output, te_minmax_row, NULL);
}
