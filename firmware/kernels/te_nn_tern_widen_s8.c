/* SPDX-License-Identifier: Apache-2.0 */
/* te_nn_tern_widen_s8.c - the input side of the ternary DSP core: an int8
 * vector widened once to the int16 words its inner loops consume (t2/to:
 * word m of each 16-tap block is (x[m], x[m+8]); p2: natural pairs), so every
 * output row of the pass reuses it.
 */
#include "te_tern_internal.h"

#if TE_USE_DSP

/* PKHBT / PKHTB: (lo16 of a, lo16 of b) and (hi16 of a, hi16 of b) as int16 pairs. */
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
static inline uint32_t te_pk_lo(int32_t a, int32_t b)
{
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
static inline uint32_t te_pk_hi(int32_t a, int32_t b)
{
    uint32_t r;
    __asm__("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
#else
static inline uint32_t te_pk_lo(int32_t a, int32_t b) { return te_lo16(a) | ((uint32_t)b << 16); }
static inline uint32_t te_pk_hi(int32_t a, int32_t b)
{
    return ((uint32_t)a >> 16) | ((uint32_t)b & 0xFFFF0000u);
}
#endif

/* One 16-tap block of t2/to: words m = (x[m], x[m+8]) at o[m * S]. */
TE_TERN_INLINE void te_t2_widen_block(const int8_t *xb, uint32_t *o, int S)
{
    const int32_t a0 = te_read_s8x4(xb), a1 = te_read_s8x4(xb + 4);
    const int32_t c0 = te_read_s8x4(xb + 8), c1 = te_read_s8x4(xb + 12);
    const int32_t a0e = te_sxtb16(a0), a0o = te_sxtb16_ror8(a0);
    const int32_t c0e = te_sxtb16(c0), c0o = te_sxtb16_ror8(c0);
    const int32_t a1e = te_sxtb16(a1), a1o = te_sxtb16_ror8(a1);
    const int32_t c1e = te_sxtb16(c1), c1o = te_sxtb16_ror8(c1);
    o[0 * S] = te_pk_lo(a0e, c0e); /* (x0, x8) */
    o[1 * S] = te_pk_lo(a0o, c0o); /* (x1, x9) */
    o[2 * S] = te_pk_hi(a0e, c0e); /* (x2, x10) */
    o[3 * S] = te_pk_hi(a0o, c0o);
    o[4 * S] = te_pk_lo(a1e, c1e);
    o[5 * S] = te_pk_lo(a1o, c1o);
    o[6 * S] = te_pk_hi(a1e, c1e);
    o[7 * S] = te_pk_hi(a1o, c1o);
}

static void te_t2_widen_s1(const int8_t *x, int32_t blocks, uint32_t *xw)
{
    for (int32_t b = 0; b < blocks; ++b) {
        te_t2_widen_block(x + 16 * b, xw + 8 * b, 1);
    }
}

static void te_t2_widen_s2(const int8_t *x, int32_t blocks, uint32_t *xw)
{
    for (int32_t b = 0; b < blocks; ++b) {
        te_t2_widen_block(x + 16 * b, xw + 16 * b, 2);
    }
}

int32_t te_tern_widen(int32_t kind, const int8_t *x, int32_t k, uint32_t *xw, int32_t stride)
{
    int32_t sum = 0;
    if (kind == TE_TK_P2) {
        /* natural pairs: xw[j] = (x[2j], x[2j+1]), 8 taps per 4 words */
        const int32_t full = k >> 2;
        int32_t b = 0;
        for (; b < full; ++b) {
            const int32_t a = te_read_s8x4(x + 4 * b);
            const int32_t e = te_sxtb16(a), od = te_sxtb16_ror8(a);
            xw[(2 * b) * stride] = te_pk_lo(e, od);
            xw[(2 * b + 1) * stride] = te_pk_hi(e, od);
        }
        const int32_t words = ((k + 7) >> 3) * 4;
        for (int32_t j = 2 * b; j < words; ++j) {
            const int32_t lo = 2 * j < k ? x[2 * j] : 0;
            const int32_t hi = 2 * j + 1 < k ? x[2 * j + 1] : 0;
            xw[j * stride] = te_lo16(lo) | ((uint32_t)hi << 16);
        }
        return 0; /* p2 has no offset term */
    }
    /* t2/to: block b of 16 taps -> words 8b+m = (x[16b+m], x[16b+m+8]) */
    const int32_t full = k >> 4;
    if (stride == 1) {
        te_t2_widen_s1(x, full, xw);
    } else {
        te_t2_widen_s2(x, full, xw);
    }
    if (kind == TE_TK_TO) {
        const int32_t ones = 0x00010001;
        for (int32_t j = 0; j < 8 * full; ++j) {
            sum = te_smlad((int32_t)xw[j * stride], ones, sum);
        }
    }
    const int32_t b = full;
    if (16 * b < k) {
        for (int32_t m = 0; m < 8; ++m) {
            const int32_t i = 16 * b + m;
            const int32_t lo = i < k ? x[i] : 0;
            const int32_t hi = i + 8 < k ? x[i + 8] : 0;
            xw[(8 * b + m) * stride] = te_lo16(lo) | ((uint32_t)hi << 16);
            sum += lo + hi;
        }
    }
    return sum;
}

#endif /* TE_USE_DSP */
