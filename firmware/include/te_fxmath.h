/* SPDX-License-Identifier: Apache-2.0 */
/* te_fxmath.h - fixed-point exp, reciprocal, logistic and tanh on int32 raws.
 *
 * The gemmlowp-style arithmetic that TFLite Micro's int8 SOFTMAX, LOGISTIC and TANH
 * use, bit for bit; mirrors the functions at the top of ternembed/kernels/activation.py.
 * A value "Qm" has m integer bits and 31 - m fractional bits in an int32.
 */
#ifndef TE_FXMATH_H
#define TE_FXMATH_H

#include <stdint.h>

#include "te_fixedpoint.h"

/* x * 2^exponent: saturating for exponent > 0, rounding (te_rdbpot) for exponent < 0. */
static inline int32_t te_sat_mul_pot(int32_t x, int32_t exponent)
{
    if (exponent > 0) {
        const int32_t threshold = (int32_t)((1LL << (31 - exponent)) - 1);
        if (x > threshold) {
            return INT32_MAX;
        }
        if (x < -threshold) {
            return INT32_MIN;
        }
        return (int32_t)((uint32_t)x << exponent);
    }
    return exponent < 0 ? te_rdbpot(x, -exponent) : x;
}

/* (a + b) / 2, halves away from zero. */
static inline int32_t te_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    return (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
}

/* Leading zero bits of a uint32 (32 for 0). */
static inline int32_t te_clz32(uint32_t x)
{
#if defined(__GNUC__)
    return x == 0u ? 32 : (int32_t)__builtin_clz(x);
#else
    int32_t n = 0;
    if (x == 0u) {
        return 32;
    }
    while ((x & 0x80000000u) == 0u) {
        x <<= 1;
        ++n;
    }
    return n;
#endif
}

/* exp(a) for a in [-1/4, 0); Q0 in and out. */
static inline int32_t te_exp_quarter_interval(int32_t a)
{
    const int32_t constant_term = 1895147668; /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;
    const int32_t x = a + (1 << 28);
    const int32_t x2 = te_srdhm(x, x);
    const int32_t x3 = te_srdhm(x2, x);
    const int32_t x4 = te_srdhm(x2, x2);
    const int32_t x4_over_4 = te_rdbpot(x4, 2);
    const int32_t poly = te_rdbpot(te_srdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1);
    return constant_term + te_srdhm(constant_term, x + poly);
}

/* exp(a) for a <= 0 given with integer_bits integer bits (1..6); result Q0. */
static inline int32_t te_exp_on_negative_values(int32_t a, int32_t integer_bits)
{
    static const int32_t multipliers[7] = {
        1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242,
    }; /* exp(-2^e), e = -2 .. 4 */
    const int32_t frac = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (frac - 2);
    const int32_t a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter;
    int32_t result = te_exp_quarter_interval(
        (int32_t)((uint32_t)a_mod_quarter_minus_one_quarter << integer_bits));
    const int32_t remainder = a_mod_quarter_minus_one_quarter - a;
    int32_t k;
    for (k = 0; k < 7; ++k) {
        const int32_t exponent = k - 2;
        if (integer_bits > exponent && (remainder & ((int32_t)1 << (frac + exponent))) != 0) {
            result = te_srdhm(result, multipliers[k]);
        }
    }
    if (integer_bits > 5 && a < -((int32_t)1 << (36 - integer_bits))) {
        result = 0; /* below -32 */
    }
    return a == 0 ? INT32_MAX : result;
}

/* Newton-Raphson 1/half_denominator, result Q2. */
static inline int32_t te_newton_reciprocal_q2(int32_t half_denominator)
{
    int32_t x = 1515870810 + te_srdhm(half_denominator, -1010580540); /* 48/17 - 32/17 d */
    int32_t i;
    for (i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = te_srdhm(half_denominator, x);
        const int32_t one_minus = (1 << 29) - half_denominator_times_x;
        x = x + te_sat_mul_pot(te_srdhm(x, one_minus), 2);
    }
    return x;
}

/* 1 / (1 + a) for a in [0, 1); Q0 in and out. */
static inline int32_t te_one_over_one_plus_x(int32_t a)
{
    return te_sat_mul_pot(te_newton_reciprocal_q2(te_rounding_half_sum(a, INT32_MAX)), 1);
}

/* (1 - a) / (1 + a) for a in [0, 1); Q0 in and out. */
static inline int32_t te_one_minus_x_over_one_plus_x(int32_t a)
{
    return te_sat_mul_pot(te_newton_reciprocal_q2(te_rounding_half_sum(a, INT32_MAX)) - (1 << 29),
                          2);
}

/* logistic(a), a with integer_bits integer bits; result Q0. */
static inline int32_t te_fx_logistic(int32_t a, int32_t integer_bits)
{
    if (a == 0) {
        return 1 << 30;
    }
    {
        const int32_t abs_a = a > 0 ? a : -a;
        const int32_t pos = te_one_over_one_plus_x(te_exp_on_negative_values(-abs_a, integer_bits));
        return a > 0 ? pos : INT32_MAX - pos;
    }
}

/* tanh(a), a with integer_bits integer bits; result Q0. */
static inline int32_t te_fx_tanh(int32_t a, int32_t integer_bits)
{
    if (a == 0) {
        return 0;
    }
    {
        const int32_t n = a < 0 ? a : -a;
        const int32_t t =
            te_one_minus_x_over_one_plus_x(te_exp_on_negative_values(n, integer_bits + 1));
        return a < 0 ? -t : t;
    }
}

#endif /* TE_FXMATH_H */
