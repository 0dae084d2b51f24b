/* SPDX-License-Identifier: Apache-2.0 */
/* te_nn_mat_mult_s8.c - the shared int8 inner loop of FC and CONV_2D.
 *
 * Layout: lhs [rows][k] int8 (FC: one input vector per row; conv: one im2col
 * patch [KH][KW][C] per output pixel), rhs [cols][k] int8 (one output
 * channel's weights contiguous), out [rows][cols] int8 (NHWC: pixel-major).
 * acc = bias[o] (folded) + sum_i lhs[r][i] * rhs[o][i], then requantize per
 * output channel, add output_offset, clamp.
 *
 * DSP path. Each 4-byte load is widened by SXTB16 into (b0,b2) and (b1,b3)
 * int16 pairs consumed by SMLAD. Pairs of rows go 2 rows x 2 output channels
 * per block (4 loads + 8 SXTB16 feed 16 MACs), output channels in the outer
 * loop so that each channel's requantization record (te_mac_rq) is prepared
 * once; a last odd row (FC with one batch) goes 1 row x 4 channels (5 loads +
 * 10 SXTB16 per 16 MACs). The output stage is te_mac_rq_apply, SSAT to int8,
 * the bytes packed into one word and clamped four lanes at a time (SSUB8 +
 * SEL). Tails (k % 4, odd channels) use scalar loops. The portable path is a
 * plain 2 x 2 blocked loop with te_mac_output.
 */
#include <string.h>

#include "te_kernels_mac.h"

#include "te_dsp.h"

/* Thumb-2 inner loops (GCC inline assembly, optimized builds only: at -O0 the
 * compiler keeps r7 as frame pointer and cannot give the loops 13-14 registers).
 * They compute exactly the C loops above (same SXTB16/SMLAD sequence). */
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__) && defined(__GNUC__) && defined(__OPTIMIZE__)
#define TE_MM_ASM 1
#else
#define TE_MM_ASM 0
#endif

#if TE_MM_ASM
/* One word of x (4 taps) against the word at [ptr + k] (OFF = ", %[k]") or
 * [ptr] with post-increment (OFF = "], #4" form), into accumulator ACC. */
/* clang-format off */
#define TE_MM_W(ADDR, ACC)                                                      \
    "ldr %[w], " ADDR "\n\t"                                                    \
    "sxtb16 %[wo], %[w], ror #8\n\t"                                            \
    "sxtb16 %[w], %[w]\n\t"                                                     \
    "smlad %[" ACC "], %[xe], %[w], %[" ACC "]\n\t"                             \
    "smlad %[" ACC "], %[xo], %[wo], %[" ACC "]\n\t"
#define TE_MM_1X4_STEP                                                          \
    "ldr %[xe], [%[a]], #4\n\t"                                                 \
    "sxtb16 %[xo], %[xe], ror #8\n\t"                                           \
    "sxtb16 %[xe], %[xe]\n\t"                                                   \
    TE_MM_W("[%[b0], %[k]]", "s1")                                              \
    TE_MM_W("[%[b0]], #4", "s0")                                                \
    TE_MM_W("[%[b2], %[k]]", "s3")                                              \
    TE_MM_W("[%[b2]], #4", "s2")
/* clang-format on */

/* 1 x 4 over n4 steps of 4 taps; advances *a and *b0 by 4*n4. */
static inline void te_mm_1x4_asm(const int8_t **a, const int8_t **b0, int32_t k, int32_t n4,
                                 int32_t *r0, int32_t *r1, int32_t *r2, int32_t *r3)
{
    const int8_t *pa = *a, *p0 = *b0, *p2 = *b0 + 2 * k;
    int32_t s0 = *r0, s1 = *r1, s2 = *r2, s3 = *r3;
    int32_t xe, xo, w, wo;
    if (n4 & 1) {
        /* clang-format off */
        __asm__ volatile(TE_MM_1X4_STEP
                         : [a] "+r"(pa), [b0] "+r"(p0), [b2] "+r"(p2), [s0] "+r"(s0),
                           [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [xe] "=&r"(xe),
                           [xo] "=&r"(xo), [w] "=&r"(w), [wo] "=&r"(wo)
                         : [k] "r"(k)
                         : "memory");
        /* clang-format on */
    }
    if (n4 >> 1) {
        const int8_t *const end = pa + 8 * (n4 >> 1); /* in memory: leaves 12 registers */
        /* clang-format off */
        __asm__ volatile("1:\n\t" TE_MM_1X4_STEP TE_MM_1X4_STEP
                         "ldr %[w], %[end]\n\t"
                         "cmp %[a], %[w]\n\t"
                         "bne 1b\n\t"
                         : [a] "+r"(pa), [b0] "+r"(p0), [b2] "+r"(p2), [s0] "+r"(s0),
                           [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [xe] "=&r"(xe),
                           [xo] "=&r"(xo), [w] "=&r"(w), [wo] "=&r"(wo)
                         : [k] "r"(k), [end] "m"(end)
                         : "cc", "memory");
        /* clang-format on */
    }
    *a = pa;
    *b0 = p0;
    *r0 = s0;
    *r1 = s1;
    *r2 = s2;
    *r3 = s3;
}

/* The 2 x 2 step: rows [a], [a + k]; channels [b], [b + k]. */
/* clang-format off */
#define TE_MM_2X2_STEP                                                          \
    "ldr %[t0], [%[a], %[k]]\n\t"                                               \
    "sxtb16 %[t1], %[t0], ror #8\n\t"                                           \
    "sxtb16 %[t0], %[t0]\n\t"                                                   \
    "ldr %[t2], [%[b], %[k]]\n\t"                                               \
    "sxtb16 %[t3], %[t2], ror #8\n\t"                                           \
    "sxtb16 %[t2], %[t2]\n\t"                                                   \
    "smlad %[s11], %[t0], %[t2], %[s11]\n\t"                                    \
    "smlad %[s11], %[t1], %[t3], %[s11]\n\t"                                    \
    "ldr %[t4], [%[b]], #4\n\t"                                                 \
    "sxtb16 %[t5], %[t4], ror #8\n\t"                                           \
    "sxtb16 %[t4], %[t4]\n\t"                                                   \
    "smlad %[s10], %[t0], %[t4], %[s10]\n\t"                                    \
    "smlad %[s10], %[t1], %[t5], %[s10]\n\t"                                    \
    "ldr %[t0], [%[a]], #4\n\t"                                                 \
    "sxtb16 %[t1], %[t0], ror #8\n\t"                                           \
    "sxtb16 %[t0], %[t0]\n\t"                                                   \
    "smlad %[s00], %[t0], %[t4], %[s00]\n\t"                                    \
    "smlad %[s00], %[t1], %[t5], %[s00]\n\t"                                    \
    "smlad %[s01], %[t0], %[t2], %[s01]\n\t"                                    \
    "smlad %[s01], %[t1], %[t3], %[s01]\n\t"
/* clang-format on */

/* 2 x 2 over n4 steps of 4 taps; advances *a and *b by 4*n4. */
static inline void te_mm_2x2_asm(const int8_t **a, const int8_t **b, int32_t k, int32_t n4,
                                 int32_t *s00, int32_t *s01, int32_t *s10, int32_t *s11)
{
    const int8_t *pa = *a, *pb = *b;
    int32_t a00 = *s00, a01 = *s01, a10 = *s10, a11 = *s11;
    int32_t t0, t1, t2, t3, t4, t5;
    if (n4 & 1) {
        /* clang-format off */
        __asm__ volatile(TE_MM_2X2_STEP
                         : [a] "+r"(pa), [b] "+r"(pb), [s00] "+r"(a00), [s01] "+r"(a01),
                           [s10] "+r"(a10), [s11] "+r"(a11), [t0] "=&r"(t0), [t1] "=&r"(t1),
                           [t2] "=&r"(t2), [t3] "=&r"(t3), [t4] "=&r"(t4), [t5] "=&r"(t5)
                         : [k] "r"(k)
                         : "memory");
        /* clang-format on */
    }
    if (n4 >> 1) {
        const int8_t *const end = pa + 8 * (n4 >> 1); /* in memory: leaves 13 registers */
        /* clang-format off */
        __asm__ volatile("1:\n\t" TE_MM_2X2_STEP TE_MM_2X2_STEP
                         "ldr %[t0], %[end]\n\t"
                         "cmp %[a], %[t0]\n\t"
                         "bne 1b\n\t"
                         : [a] "+r"(pa), [b] "+r"(pb), [s00] "+r"(a00), [s01] "+r"(a01),
                           [s10] "+r"(a10), [s11] "+r"(a11), [t0] "=&r"(t0), [t1] "=&r"(t1),
                           [t2] "=&r"(t2), [t3] "=&r"(t3), [t4] "=&r"(t4), [t5] "=&r"(t5)
                         : [k] "r"(k), [end] "m"(end)
                         : "cc", "memory");
        /* clang-format on */
    }
    *a = pa;
    *b = pb;
    *s00 = a00;
    *s01 = a01;
    *s10 = a10;
    *s11 = a11;
}
#endif /* TE_MM_ASM */

/* Two rows against two channels, k/4 steps of 4 taps. */
static inline void te_dot_2x2(const int8_t *a0, const int8_t *b0, int32_t k, int32_t *s00,
                              int32_t *s01, int32_t *s10, int32_t *s11)
{
    const int8_t *a1 = a0 + k;
    const int8_t *b1 = b0 + k;
#if TE_MM_ASM
    te_mm_2x2_asm(&a0, &b0, k, k >> 2, s00, s01, s10, s11);
    a1 = a0 + k;
    b1 = b0 + k;
    k &= 3;
#endif
    int32_t acc00 = *s00, acc01 = *s01, acc10 = *s10, acc11 = *s11;
#if TE_USE_DSP && !TE_MM_ASM
    for (int32_t n = k >> 2; n > 0; --n) {
        int32_t a0e, a0o, a1e, a1o, be, bo;
        te_widen_s8x4(te_read_s8x4_ia(&a0), &a0e, &a0o);
        te_widen_s8x4(te_read_s8x4_ia(&a1), &a1e, &a1o);
        te_widen_s8x4(te_read_s8x4_ia(&b0), &be, &bo);
        acc00 = te_smlad(a0e, be, acc00);
        acc00 = te_smlad(a0o, bo, acc00);
        acc10 = te_smlad(a1e, be, acc10);
        acc10 = te_smlad(a1o, bo, acc10);
        te_widen_s8x4(te_read_s8x4_ia(&b1), &be, &bo);
        acc01 = te_smlad(a0e, be, acc01);
        acc01 = te_smlad(a0o, bo, acc01);
        acc11 = te_smlad(a1e, be, acc11);
        acc11 = te_smlad(a1o, bo, acc11);
    }
    k &= 3;
#endif
    for (int32_t i = k; i > 0; --i) {
        const int32_t x0 = *a0++, x1 = *a1++, w0 = *b0++, w1 = *b1++;
        acc00 += x0 * w0;
        acc01 += x0 * w1;
        acc10 += x1 * w0;
        acc11 += x1 * w1;
    }
    *s00 = acc00;
    *s01 = acc01;
    *s10 = acc10;
    *s11 = acc11;
}

/* One vector a against two b0, b0 + k (also two rows against one channel). */
static inline void te_dot_1x2(const int8_t *a, const int8_t *b0, int32_t k, int32_t *s0,
                              int32_t *s1)
{
    const int8_t *b1 = b0 + k;
    int32_t acc0 = *s0, acc1 = *s1;
#if TE_USE_DSP
    for (int32_t n = k >> 2; n > 0; --n) {
        int32_t ae, ao, be, bo;
        te_widen_s8x4(te_read_s8x4_ia(&a), &ae, &ao);
        te_widen_s8x4(te_read_s8x4_ia(&b0), &be, &bo);
        acc0 = te_smlad(ae, be, acc0);
        acc0 = te_smlad(ao, bo, acc0);
        te_widen_s8x4(te_read_s8x4_ia(&b1), &be, &bo);
        acc1 = te_smlad(ae, be, acc1);
        acc1 = te_smlad(ao, bo, acc1);
    }
    k &= 3;
#endif
    for (int32_t i = k; i > 0; --i) {
        const int32_t x = *a++;
        acc0 += x * *b0++;
        acc1 += x * *b1++;
    }
    *s0 = acc0;
    *s1 = acc1;
}

/* One vector against four channels b0 + j*k. */
static inline void te_dot_1x4(const int8_t *a, const int8_t *b0, int32_t k, int32_t *s0,
                              int32_t *s1, int32_t *s2, int32_t *s3)
{
#if TE_MM_ASM
    te_mm_1x4_asm(&a, &b0, k, k >> 2, s0, s1, s2, s3);
    const int8_t *b1 = b0 + k, *b2 = b1 + k, *b3 = b2 + k;
    k &= 3;
#else
    const int8_t *b1 = b0 + k, *b2 = b1 + k, *b3 = b2 + k;
#endif
    int32_t acc0 = *s0, acc1 = *s1, acc2 = *s2, acc3 = *s3;
#if TE_USE_DSP && !TE_MM_ASM
    for (int32_t n = k >> 2; n > 0; --n) {
        int32_t ae, ao, be, bo;
        te_widen_s8x4(te_read_s8x4_ia(&a), &ae, &ao);
        te_widen_s8x4(te_read_s8x4_ia(&b0), &be, &bo);
        acc0 = te_smlad(ae, be, acc0);
        acc0 = te_smlad(ao, bo, acc0);
        te_widen_s8x4(te_read_s8x4_ia(&b1), &be, &bo);
        acc1 = te_smlad(ae, be, acc1);
        acc1 = te_smlad(ao, bo, acc1);
        te_widen_s8x4(te_read_s8x4_ia(&b2), &be, &bo);
        acc2 = te_smlad(ae, be, acc2);
        acc2 = te_smlad(ao, bo, acc2);
        te_widen_s8x4(te_read_s8x4_ia(&b3), &be, &bo);
        acc3 = te_smlad(ae, be, acc3);
        acc3 = te_smlad(ao, bo, acc3);
    }
    k &= 3;
#endif
    for (int32_t i = k; i > 0; --i) {
        const int32_t x = *a++;
        acc0 += x * *b0++;
        acc1 += x * *b1++;
        acc2 += x * *b2++;
        acc3 += x * *b3++;
    }
    *s0 = acc0;
    *s1 = acc1;
    *s2 = acc2;
    *s3 = acc3;
}

static inline int32_t te_dot_1x1(const int8_t *a, const int8_t *b, int32_t k, int32_t acc)
{
#if TE_USE_DSP
    for (int32_t n = k >> 2; n > 0; --n) {
        int32_t ae, ao, be, bo;
        te_widen_s8x4(te_read_s8x4_ia(&a), &ae, &ao);
        te_widen_s8x4(te_read_s8x4_ia(&b), &be, &bo);
        acc = te_smlad(ae, be, acc);
        acc = te_smlad(ao, bo, acc);
    }
    k &= 3;
#endif
    for (int32_t i = k; i > 0; --i) {
        acc += *a++ * *b++;
    }
    return acc;
}

#if TE_USE_DSP

/* The output stage state of one call. */
typedef struct {
    int32_t off;
    uint32_t lo4, hi4;
    int clamp; /* activation narrower than [-128, 127] */
} te_mm_out;

static inline uint32_t te_mm_byte(const te_mac_rq *r, int32_t acc, int32_t off)
{
    return (uint32_t)(uint8_t)te_ssat8(te_mac_rq_apply(r, acc) + off);
}

static inline uint32_t te_mm_finish(const te_mm_out *o, uint32_t v)
{
    return o->clamp ? te_clamp8x4(v, o->lo4, o->hi4) : v;
}

static inline void te_mm_store16(int8_t *p, uint32_t v)
{
    const uint16_t h = (uint16_t)v;
    memcpy(p, &h, sizeof(h));
}

static inline void te_mm_store32(int8_t *p, uint32_t v) { memcpy(p, &v, sizeof(v)); }

/* Four output bytes from short records (offset included), packed little
 * endian: lane j from accumulator xj and record r[RJ]. */
#if TE_MM_ASM
/* clang-format off */
#define TE_MM_OUT(ACC, REC, LANE)                                              \
    "ldrd %[m], %[t], [%[r], #" REC "]\n\t"                                    \
    "ldrd %[lo], %[hi], [%[r], #" REC "+8]\n\t"                                \
    "smlal %[lo], %[hi], %[" ACC "], %[m]\n\t"                                 \
    "lsr %[m], %[" ACC "], #31\n\t"                                            \
    "smlal %[lo], %[hi], %[m], %[imin]\n\t"                                    \
    "asr %[hi], %[hi], %[t]\n\t"                                               \
    "ssat %[hi], #8, %[hi]\n\t"                                                \
    "bfi %[v], %[hi], #" LANE ", #8\n\t"
#define TE_MM_OUT4(R0, R1, R2, R3)                                             \
    uint32_t v = 0;                                                            \
    int32_t t, m, lo, hi;                                                      \
    __asm__(TE_MM_OUT("x0", R0, "0") TE_MM_OUT("x1", R1, "8")                  \
            TE_MM_OUT("x2", R2, "16") TE_MM_OUT("x3", R3, "24")                \
            : [v] "+r"(v), [t] "=&r"(t), [m] "=&r"(m), [lo] "=&r"(lo), [hi] "=&r"(hi) \
            : [r] "r"(r), [x0] "r"(x0), [x1] "r"(x1), [x2] "r"(x2), [x3] "r"(x3), \
              [imin] "r"(INT32_MIN)                                            \
            : "memory");                                                       \
    return v
/* clang-format on */
#endif

/* lanes: (x0, r[0]), (x1, r[1]), (x2, r[0]), (x3, r[1]) - a 2 x 2 block */
static inline uint32_t te_mm_out22(const te_mac_srq *r, int32_t x0, int32_t x1, int32_t x2,
                                   int32_t x3)
{
#if TE_MM_ASM
    TE_MM_OUT4("0", "16", "0", "16");
#else
    return (uint32_t)(uint8_t)te_ssat8(te_mac_srq_apply(&r[0], x0)) |
           (uint32_t)(uint8_t)te_ssat8(te_mac_srq_apply(&r[1], x1)) << 8 |
           (uint32_t)(uint8_t)te_ssat8(te_mac_srq_apply(&r[0], x2)) << 16 |
           (uint32_t)(uint8_t)te_ssat8(te_mac_srq_apply(&r[1], x3)) << 24;
#endif
}

/* lanes: (xj, r[j]) - four channels of one row */
static inline uint32_t te_mm_out14(const te_mac_srq *r, int32_t x0, int32_t x1, int32_t x2,
                                   int32_t x3)
{
#if TE_MM_ASM
    TE_MM_OUT4("0", "16", "32", "48");
#else
    return (uint32_t)(uint8_t)te_ssat8(te_mac_srq_apply(&r[0], x0)) |
           (uint32_t)(uint8_t)te_ssat8(te_mac_srq_apply(&r[1], x1)) << 8 |
           (uint32_t)(uint8_t)te_ssat8(te_mac_srq_apply(&r[2], x2)) << 16 |
           (uint32_t)(uint8_t)te_ssat8(te_mac_srq_apply(&r[3], x3)) << 24;
#endif
}

static void te_mm_dsp(const int8_t *lhs, int32_t rows, int32_t k, const int8_t *rhs, int32_t cols,
                      const int32_t *bias, const te_pc_quant *quant, const te_mm_out *o,
                      int8_t *out)
{
    const int32_t *mult = quant->multiplier;
    const int32_t *shift = quant->shift;
    const int32_t off = o->off;
    const int32_t pairs = rows >> 1;
    te_mac_rq r0 = {0, 0, 0, 0, 0, 0, 0}, r1 = r0, r2 = r0, r3 = r0; /* set before use */
    te_mac_srq q[4];

    if (pairs > 0) {
        int32_t c = 0;
        for (; c + 2 <= cols; c += 2) {
            int short_rq = te_mac_srq_init(&q[0], mult[c], shift[c], off);
            short_rq &= te_mac_srq_init(&q[1], mult[c + 1], shift[c + 1], off);
            if (!short_rq) {
                te_mac_rq_init(&r0, mult[c], shift[c]);
                te_mac_rq_init(&r1, mult[c + 1], shift[c + 1]);
            }
            const int32_t bias0 = bias ? bias[c] : 0;
            const int32_t bias1 = bias ? bias[c + 1] : 0;
            const int8_t *b0 = rhs + c * k;
            const int8_t *a0 = lhs;
            int8_t *o0 = out + c;
            for (int32_t p = pairs; p > 0; --p) {
                int32_t s00 = bias0, s01 = bias1, s10 = bias0, s11 = bias1;
                te_dot_2x2(a0, b0, k, &s00, &s01, &s10, &s11);
                uint32_t v;
                if (short_rq) {
                    v = te_mm_out22(q, s00, s01, s10, s11);
                } else {
                    v = te_mm_byte(&r0, s00, off);
                    v |= te_mm_byte(&r1, s01, off) << 8;
                    v |= te_mm_byte(&r0, s10, off) << 16;
                    v |= te_mm_byte(&r1, s11, off) << 24;
                }
                v = te_mm_finish(o, v);
                te_mm_store16(o0, v);
                te_mm_store16(o0 + cols, v >> 16);
                a0 += 2 * k;
                o0 += 2 * cols;
            }
        }
        if (c < cols) {
            te_mac_rq_init(&r0, mult[c], shift[c]);
            const int32_t bias0 = bias ? bias[c] : 0;
            const int8_t *a0 = lhs;
            int8_t *o0 = out + c;
            for (int32_t p = pairs; p > 0; --p) {
                int32_t s0 = bias0, s1 = bias0;
                te_dot_1x2(rhs + c * k, a0, k, &s0, &s1);
                uint32_t v = te_mm_byte(&r0, s0, off) | (te_mm_byte(&r0, s1, off) << 8);
                v = te_mm_finish(o, v);
                o0[0] = (int8_t)v;
                o0[cols] = (int8_t)(v >> 8);
                a0 += 2 * k;
                o0 += 2 * cols;
            }
        }
    }
    if (rows & 1) {
        const int8_t *a = lhs + (rows - 1) * k;
        int8_t *o0 = out + (rows - 1) * cols;
        int32_t c = 0;
        for (; c + 4 <= cols; c += 4) {
            int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            if (bias) {
                s0 = bias[c];
                s1 = bias[c + 1];
                s2 = bias[c + 2];
                s3 = bias[c + 3];
            }
            te_dot_1x4(a, rhs + c * k, k, &s0, &s1, &s2, &s3);
            int short_rq = te_mac_srq_init(&q[0], mult[c], shift[c], off);
            short_rq &= te_mac_srq_init(&q[1], mult[c + 1], shift[c + 1], off);
            short_rq &= te_mac_srq_init(&q[2], mult[c + 2], shift[c + 2], off);
            short_rq &= te_mac_srq_init(&q[3], mult[c + 3], shift[c + 3], off);
            uint32_t v;
            if (short_rq) {
                v = te_mm_out14(q, s0, s1, s2, s3);
            } else {
                te_mac_rq_init(&r0, mult[c], shift[c]);
                te_mac_rq_init(&r1, mult[c + 1], shift[c + 1]);
                te_mac_rq_init(&r2, mult[c + 2], shift[c + 2]);
                te_mac_rq_init(&r3, mult[c + 3], shift[c + 3]);
                v = te_mm_byte(&r0, s0, off);
                v |= te_mm_byte(&r1, s1, off) << 8;
                v |= te_mm_byte(&r2, s2, off) << 16;
                v |= te_mm_byte(&r3, s3, off) << 24;
            }
            te_mm_store32(o0 + c, te_mm_finish(o, v));
        }
        for (; c < cols; ++c) {
            te_mac_rq_init(&r0, mult[c], shift[c]);
            const int32_t s = te_dot_1x1(a, rhs + c * k, k, bias ? bias[c] : 0);
            o0[c] = (int8_t)te_mm_finish(o, te_mm_byte(&r0, s, off));
        }
    }
}

#endif /* TE_USE_DSP */

void te_nn_mat_mult_s8(const int8_t *lhs, int32_t rows, int32_t k, const int8_t *rhs, int32_t cols,
                       const int32_t *bias, const te_pc_quant *quant, int32_t output_offset,
                       te_range activation, int8_t *out)
{
#if TE_USE_DSP
    te_mm_out o;
    o.off = output_offset;
    o.lo4 = 0x01010101u * (uint8_t)activation.min;
    o.hi4 = 0x01010101u * (uint8_t)activation.max;
    o.clamp = activation.min > -128 || activation.max < 127;
    te_mm_dsp(lhs, rows, k, rhs, cols, bias, quant, &o, out);
#else
    const int32_t *mult = quant->multiplier;
    const int32_t *shift = quant->shift;
    int32_t r = 0;
    for (; r + 2 <= rows; r += 2) {
        const int8_t *a0 = lhs + r * k;
        int8_t *out0 = out + r * cols;
        int8_t *out1 = out0 + cols;
        int32_t c = 0;
        for (; c + 2 <= cols; c += 2) {
            const int32_t bias0 = bias ? bias[c] : 0;
            const int32_t bias1 = bias ? bias[c + 1] : 0;
            int32_t s00 = bias0, s01 = bias1, s10 = bias0, s11 = bias1;
            te_dot_2x2(a0, rhs + c * k, k, &s00, &s01, &s10, &s11);
            out0[c] = te_mac_output(s00, mult[c], shift[c], output_offset, activation);
            out0[c + 1] = te_mac_output(s01, mult[c + 1], shift[c + 1], output_offset, activation);
            out1[c] = te_mac_output(s10, mult[c], shift[c], output_offset, activation);
            out1[c + 1] = te_mac_output(s11, mult[c + 1], shift[c + 1], output_offset, activation);
        }
        if (c < cols) {
            int32_t s0 = bias ? bias[c] : 0;
            int32_t s1 = s0;
            te_dot_1x2(rhs + c * k, a0, k, &s0, &s1);
            out0[c] = te_mac_output(s0, mult[c], shift[c], output_offset, activation);
            out1[c] = te_mac_output(s1, mult[c], shift[c], output_offset, activation);
        }
    }
    if (r < rows) {
        const int8_t *a = lhs + r * k;
        int8_t *out0 = out + r * cols;
        int32_t c = 0;
        for (; c + 2 <= cols; c += 2) {
            int32_t s0 = bias ? bias[c] : 0;
            int32_t s1 = bias ? bias[c + 1] : 0;
            te_dot_1x2(a, rhs + c * k, k, &s0, &s1);
            out0[c] = te_mac_output(s0, mult[c], shift[c], output_offset, activation);
            out0[c + 1] = te_mac_output(s1, mult[c + 1], shift[c + 1], output_offset, activation);
        }
        if (c < cols) {
            const int32_t s = te_dot_1x1(a, rhs + c * k, k, bias ? bias[c] : 0);
            out0[c] = te_mac_output(s, mult[c], shift[c], output_offset, activation);
        }
    }
#endif
}
