/* SPDX-License-Identifier: Apache-2.0 */
/* te_dsp.h - the few Cortex-M DSP (SIMD32) instructions the kernels use.
 *
 * Data: a 32-bit word holds either four int8 lanes (byte 0 = lowest address
 * when loaded from memory on little-endian Arm) or two int16 lanes (bits 0-15
 * = "bottom", bits 16-31 = "top").
 *
 * TE_USE_DSP selects the DSP code path in the kernels:
 *   - on a core with the DSP extension (__ARM_FEATURE_DSP: Cortex-M4, M7, M33
 *     with DSP, M55 ...) the wrappers map to the ACLE intrinsics of
 *     <arm_acle.h>, i.e. single instructions;
 *   - with -DTE_EMULATE_DSP on any other target (the host, for tests) they
 *     are exact portable C models of those instructions, so the DSP path can
 *     be compiled and checked bit for bit against the portable path;
 *   - otherwise TE_USE_DSP is 0 and only the portable path is compiled.
 * Define TE_USE_DSP=0 yourself to force the portable path on a DSP core.
 */
#ifndef TE_DSP_H
#define TE_DSP_H

#include <stdint.h>
#include <string.h>

#ifndef TE_USE_DSP
#if defined(__ARM_FEATURE_DSP) || defined(TE_EMULATE_DSP)
#define TE_USE_DSP 1
#else
#define TE_USE_DSP 0
#endif
#endif

#if TE_USE_DSP && !defined(__ARM_FEATURE_DSP) && !defined(TE_EMULATE_DSP)
#error "TE_USE_DSP needs a core with the DSP extension or -DTE_EMULATE_DSP"
#endif

/* Unaligned little-endian loads, memcpy so the compiler emits one LDR where
 * the core allows unaligned access and never invokes undefined behaviour. */
static inline int32_t te_read_s8x4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline int32_t te_read_s8x4_ia(const int8_t **p)
{
    const int32_t v = te_read_s8x4(*p);
    *p += 4;
    return v;
}

/* Rotate right by 8: brings bytes 1 and 3 to lanes 0 and 2. */
static inline int32_t te_ror8(int32_t x)
{
    const uint32_t u = (uint32_t)x;
    return (int32_t)((u >> 8) | (u << 24));
}

#if TE_USE_DSP

#if defined(__ARM_FEATURE_DSP)

#include <arm_acle.h>

/* SXTB16: sign-extend bytes 0 and 2 to the bottom and top int16 lanes. */
static inline int32_t te_sxtb16(int32_t x) { return __sxtb16(x); }
/* SXTAB16: per int16 lane, a.lane + sign_extend(byte 0 / byte 2 of b). */
static inline int32_t te_sxtab16(int32_t a, int32_t b) { return __sxtab16(a, b); }
/* SMLAD: acc + a.bot*b.bot + a.top*b.top (wrapping). */
static inline int32_t te_smlad(int32_t a, int32_t b, int32_t acc) { return __smlad(a, b, acc); }
/* SMLABB / SMLATT: acc + a.bot*b.bot, acc + a.top*b.top (wrapping). */
static inline int32_t te_smlabb(int32_t a, int32_t b, int32_t acc) { return __smlabb(a, b, acc); }
static inline int32_t te_smlatt(int32_t a, int32_t b, int32_t acc) { return __smlatt(a, b, acc); }

/* SXTB16 of bytes 1 and 3. ACLE has no rotate operand and GCC does not fuse
 * __sxtb16(ror(x, 8)), so use the instruction's own ROR #8 when we can. */
static inline int32_t te_sxtb16_ror8(int32_t x)
{
#if defined(__GNUC__) && defined(__thumb2__)
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
#else
    return __sxtb16(te_ror8(x));
#endif
}

#else /* TE_EMULATE_DSP: portable bit-exact models */

static inline int32_t te_dsp_lo16(int32_t x)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)x & 0xFFFFu);
}
static inline int32_t te_dsp_hi16(int32_t x)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)x >> 16);
}
static inline int32_t te_dsp_b0(int32_t x)
{
    return (int32_t)(int8_t)(uint8_t)((uint32_t)x & 0xFFu);
}
static inline int32_t te_dsp_b2(int32_t x)
{
    return (int32_t)(int8_t)(uint8_t)(((uint32_t)x >> 16) & 0xFFu);
}
static inline int32_t te_dsp_pack16(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | (((uint32_t)hi & 0xFFFFu) << 16));
}

static inline int32_t te_sxtb16(int32_t x) { return te_dsp_pack16(te_dsp_b0(x), te_dsp_b2(x)); }

static inline int32_t te_sxtab16(int32_t a, int32_t b)
{
    return te_dsp_pack16(te_dsp_lo16(a) + te_dsp_b0(b), te_dsp_hi16(a) + te_dsp_b2(b));
}

/* The hardware adds modulo 2^32 (it only sets the Q flag), so do the same in
 * unsigned arithmetic; products of two int16 always fit in int32. */
static inline int32_t te_smlad(int32_t a, int32_t b, int32_t acc)
{
    const uint32_t p0 = (uint32_t)(te_dsp_lo16(a) * te_dsp_lo16(b));
    const uint32_t p1 = (uint32_t)(te_dsp_hi16(a) * te_dsp_hi16(b));
    return (int32_t)((uint32_t)acc + p0 + p1);
}

static inline int32_t te_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(te_dsp_lo16(a) * te_dsp_lo16(b)));
}

static inline int32_t te_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(te_dsp_hi16(a) * te_dsp_hi16(b)));
}

static inline int32_t te_sxtb16_ror8(int32_t x) { return te_sxtb16(te_ror8(x)); }

#endif /* __ARM_FEATURE_DSP */

/* Widen four int8 lanes: *even = (b0, b2), *odd = (b1, b3) as int16 pairs.
 * Applying the same split to both operands keeps the pairs matched for SMLAD. */
static inline void te_widen_s8x4(int32_t x, int32_t *even, int32_t *odd)
{
    *even = te_sxtb16(x);
    *odd = te_sxtb16_ror8(x);
}

/* Saturate to int8. */
static inline int32_t te_ssat8(int32_t x)
{
#if defined(__ARM_FEATURE_DSP)
    return __ssat(x, 8);
#else
    return x < -128 ? -128 : (x > 127 ? 127 : x);
#endif
}

/* Per signed byte lane: min(max(v, lo), hi), lo <= hi (SSUB8 sets GE, SEL picks). */
static inline uint32_t te_clamp8x4(uint32_t v, uint32_t lo4, uint32_t hi4)
{
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
    uint32_t t;
    /* clang-format off */
    __asm__("ssub8 %1, %0, %2\n\tsel %0, %0, %2\n\tssub8 %1, %0, %3\n\tsel %0, %3, %0"
            : "+r"(v), "=&r"(t)
            : "r"(lo4), "r"(hi4)
            : "cc");
    /* clang-format on */
    return v;
#else
    uint32_t r = 0;
    for (int i = 0; i < 32; i += 8) {
        int32_t x = (int8_t)(uint8_t)(v >> i);
        const int32_t lo = (int8_t)(uint8_t)(lo4 >> i), hi = (int8_t)(uint8_t)(hi4 >> i);
        x = x < lo ? lo : (x > hi ? hi : x);
        r |= (uint32_t)(uint8_t)x << i;
    }
    return r;
#endif
}

#endif /* TE_USE_DSP */

#endif /* TE_DSP_H */
