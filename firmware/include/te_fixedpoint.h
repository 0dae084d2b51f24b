/* SPDX-License-Identifier: Apache-2.0 */
/* te_fixedpoint.h - TFLite's integer requantization, bit for bit.
 * Mirrors ternembed/fixedpoint.py: rounding-doubling high multiply, rounding
 * right shift (halves away from zero), shift > 0 means a left shift first. */
#ifndef TE_FIXEDPOINT_H
#define TE_FIXEDPOINT_H

#include <stdint.h>

/* High 32 bits of 2*a*b, rounded to nearest; saturates the one overflow case. */
static inline int32_t te_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    /* TFLM's nudge (2^30, or 1 - 2^30 when ab < 0) and truncation toward zero are one floor:
     * trunc((ab + 1 - 2^30) / 2^31) = floor((ab + 2^30) / 2^31) for ab < 0: SMLAL + shift. */
    return (int32_t)(((int64_t)a * (int64_t)b + (1LL << 30)) >> 31);
}

/* x / 2^exponent, rounded to nearest with halves away from zero. */
static inline int32_t te_rdbpot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1LL << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* MultiplyByQuantizedMultiplier: x * multiplier * 2^(shift - 31). */
static inline int32_t te_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return te_rdbpot(te_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

static inline int32_t te_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* ADD/SUB's per-input rescale te_rdbpot(te_srdhm((x + offset) << left_shift, m), shift), its
 * invariants hoisted out of the element loops. */
typedef struct {
    int32_t offset, left_shift, multiplier, shift;
    int32_t round, neg; /* 2^(shift-1) and -1 when shift > 0, else 0 and 0 */
} te_rescale;

static inline te_rescale te_rescale_of(int32_t offset, int32_t left_shift, int32_t multiplier,
                                       int32_t shift)
{
    te_rescale s = {offset,
                    left_shift,
                    multiplier,
                    shift,
                    shift > 0 ? (int32_t)(1u << (shift - 1)) : 0,
                    shift > 0 ? -1 : 0};
    return s;
}

/* te_rdbpot(te_srdhm(x, m), e). te_srdhm's nudge and truncation toward zero equal one floor:
 * trunc((ab + 1 - 2^30) / 2^31) = floor((ab + 2^30) / 2^31) for ab < 0, so SMULL + add + shift
 * (its INT32_MIN * INT32_MIN case cannot occur: the multipliers are positive). */
/* Valid for |x| < 2^30 (ADD/SUB values: int8 << 20 scaled by multipliers < 1). */
static inline int32_t te_rescale_apply(int32_t x, const te_rescale *s)
{
    const int32_t v = (int32_t)(((int64_t)x * s->multiplier + (1LL << 30)) >> 31);
    /* te_rdbpot: halves away from zero = floor((v + 2^(e-1) - (v < 0)) / 2^e); |v| < 2^30 here */
    return (v + s->round + ((v >> 31) & s->neg)) >> s->shift;
}

#endif /* TE_FIXEDPOINT_H */
