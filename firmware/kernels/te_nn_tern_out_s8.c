/* SPDX-License-Identifier: Apache-2.0 */
/* te_nn_tern_out_s8.c - the output stage of the ternary matrix core's DSP path
 * (te_tern_outputs): bias, the offset family's patch-sum term, TFLite's
 * requantization and the clamp, for every row of one or two vectors.
 *
 * te_tern_prep_out packs per-row records once per call so that the common
 * case (every shift <= 0, clamp [-128, 127]) runs one LDM and a short
 * assembly sequence per output; the C twins below give the same bytes on the
 * emulated-DSP host build. The lookup core (te_tern_lut_s8.c) shares it.
 */
#include "te_tern_asm.h"

#if TE_USE_DSP

/* The output stage for every row: bias (+ offset * patch sum) + acc[o * P + q],
 * requantized, for P vectors. Specialized for the common case of no left shift
 * (every shift <= 0) and the full int8 clamp range. */
TE_TERN_INLINE void te_tern_outputs_impl(const te_tern_mm *mm, int P, int simple,
                                         const uint32_t *acc, int32_t s0, int32_t s1, int8_t *out0,
                                         int8_t *out1)
{
    const int32_t *bias = mm->bias, *mult = mm->mult, *shift = mm->shift;
    const int32_t *offs = mm->kind == TE_TK_TO ? mm->w->offset : 0;
    const int32_t out_off = mm->output_offset, rows = mm->o;
    const te_range act = simple ? (te_range){-128, 127} : mm->act;
    for (int32_t o = 0; o < rows; ++o) {
        const uint32_t b = bias ? (uint32_t)bias[o] : 0u;
        const uint32_t f = offs ? (uint32_t)offs[o] : 0u;
        const int32_t sh = shift[o], m = mult[o];
        const int32_t left = simple ? 0 : sh & ~(sh >> 31);
        const int32_t right = simple ? -sh : (-sh) & ~(-sh >> 31);
        const int32_t mask = (int32_t)((1u << right) - 1u), half = mask >> 1;
        const int8_t v0 = (int8_t)te_tern_rq(b + acc[o * P] + f * (uint32_t)s0, left, right, m,
                                             mask, half, out_off, act);
        if (P == 2) {
            out1[o] = (int8_t)te_tern_rq(b + acc[o * P + 1] + f * (uint32_t)s1, left, right, m,
                                         mask, half, out_off, act);
        }
        out0[o] = v0;
    }
}

#define TE_TERN_OUT_FN(name, P, SIMPLE)                                                 \
    static void name(const te_tern_mm *mm, const uint32_t *acc, int32_t s0, int32_t s1, \
                     int8_t *out0, int8_t *out1)                                        \
    {                                                                                   \
        te_tern_outputs_impl(mm, P, SIMPLE, acc, s0, s1, out0, out1);                   \
    }
TE_TERN_OUT_FN(te_tern_out_1vec_simple, 1, 1)
TE_TERN_OUT_FN(te_tern_out_1vec_general, 1, 0)
TE_TERN_OUT_FN(te_tern_out_2vecs_simple, 2, 1)
TE_TERN_OUT_FN(te_tern_out_2vecs_general, 2, 0)

/* Largest |weight| of row o over its groups and active planes (p2: levels). */
static uint32_t te_tern_row_wmax(const te_tern_mm *mm, int32_t o)
{
    uint32_t total = 0;
    for (int32_t p = 0; p < mm->active; ++p) {
        const int32_t r = p * mm->o + o;
        uint32_t m = 0;
        for (int32_t g = 0; g < mm->g; ++g) {
            const uint32_t a = te_tern_scale(mm->w, r * mm->g + g);
            m = a > m ? a : m;
        }
        total += m << te_tern_pshift(mm->w, r);
    }
    return mm->kind == TE_TK_P2 ? total << (mm->w->levels - 1) : total;
}

/* Short records apply when every row's accumulator (bias included) stays
 * below 2^30 in magnitude (so twice it fits SMMULR's operand), its right
 * shift is 1..22 and the output offset times 2^shift fits beside it. */
static int te_tern_short_ok(const te_tern_mm *mm)
{
    if (mm->output_offset < -128 || mm->output_offset > 127) {
        return 0;
    }
    for (int32_t o = 0; o < mm->o; ++o) {
        const int32_t right = -mm->shift[o];
        const int64_t b = mm->bias[o] < 0 ? -(int64_t)mm->bias[o] : (int64_t)mm->bias[o];
        if (right < 1 || right > 22 || mm->mult[o] < 0 ||
            b + 128 * (int64_t)mm->k * te_tern_row_wmax(mm, o) >= ((int64_t)1 << 30)) {
            return 0;
        }
    }
    return 1;
}

void te_tern_prep_out(te_tern_mm *mm, uint32_t *rec)
{
    mm->rec = 0;
    mm->rec_short = 0;
    mm->fold = 0;
    if (!mm->simple_out || !mm->bias || mm->kind == TE_TK_TO) {
        return;
    }
    /* one group per row, one plane, short rows: the scale moves into the record */
    const int fold = mm->kind == TE_TK_T2 && mm->g == 1 && mm->active == 1 &&
                     (mm->k + TE_T2_WORD_TAPS - 1) / TE_T2_WORD_TAPS <= TE_T2_FLUSH_WORDS;
    if (te_tern_short_ok(mm)) {
        for (int32_t o = 0; o < mm->o; ++o) {
            const uint32_t right = (uint32_t)(-mm->shift[o]);
            uint32_t *r = rec + TE_TERN_SREC_WORDS * o;
            r[0] = 2u * (uint32_t)mm->bias[o];
            r[1] = 2u * (fold ? te_tern_scale(mm->w, o) << te_tern_pshift(mm->w, o) : 1u);
            r[2] = (uint32_t)mm->mult[o];
            r[3] = (1u << (right - 1)) + ((uint32_t)mm->output_offset << right);
            r[4] = right;
        }
        mm->rec = (const int32_t *)rec;
        mm->rec_short = 1;
        mm->fold = fold;
        return;
    }
    for (int32_t o = 0; o < mm->o; ++o) {
        const uint32_t right = (uint32_t)(-mm->shift[o]);
        const uint32_t mask = (1u << right) - 1u;
        uint32_t *r = rec + TE_TERN_REC_WORDS * o;
        r[0] = (uint32_t)mm->bias[o];
        r[1] = (uint32_t)mm->mult[o];
        r[2] = right;
        r[3] = mask;
        r[4] = mask >> 1;
        r[5] = fold ? te_tern_scale(mm->w, o) << te_tern_pshift(mm->w, o) : 1u;
    }
    mm->rec = (const int32_t *)rec;
    mm->fold = fold;
}

#if TE_TERN_ASM
/* The simple output stage (no left shift, clamp [-128, 127], no offset term)
 * for n rows of one vector, accumulators `stride` words apart, per-row records
 * from te_tern_prep_out (the scale, 1 unless folded, times the accumulator plus
 * the bias, then te_tern_rq's arithmetic), 19 instructions an output. */
/* clang-format off */
#define TE_A_OUTVEC(stride_bytes)                                    \
    "1:\n\t"                                                         \
    "ldr %[a], [%[acc]], #" #stride_bytes "\n\t"                     \
    "ldmia %[rec]!, {%[b], %[m], %[r], %[mk], %[hf], %[sc]}\n\t"    \
    "mla %[a], %[a], %[sc], %[b]\n\t"                                \
    "mov %[lo], #0x40000000\n\t"                                     \
    "mov %[hi], #0\n\t"                                              \
    "smlal %[lo], %[hi], %[a], %[m]\n\t"                             \
    "lsr %[lo], %[lo], #31\n\t"                                      \
    "orr %[a], %[lo], %[hi], lsl #1\n\t"                             \
    "and %[mk], %[a], %[mk]\n\t"                                     \
    "add %[hf], %[hf], %[a], lsr #31\n\t"                            \
    "asr %[a], %[a], %[r]\n\t"                                       \
    "cmp %[mk], %[hf]\n\t"                                           \
    "it gt\n\t"                                                      \
    "addgt %[a], %[a], #1\n\t"                                       \
    "add %[a], %[a], %[off]\n\t"                                     \
    "ssat %[a], #8, %[a]\n\t"                                        \
    "strb %[a], [%[out]], #1\n\t"                                    \
    "subs %[n], %[n], #1\n\t"                                        \
    "bne 1b\n\t"
/* clang-format on */

static void te_tern_outvec_records(const uint32_t *acc, int stride2, const int32_t *rec,
                                   int32_t off, int32_t n, int8_t *out)
{
    /* ldmia needs its registers in ascending order: pin them */
    register uint32_t b __asm__("r4");
    register uint32_t m __asm__("r5");
    register uint32_t r __asm__("r6");
    register uint32_t mk __asm__("r7");
    register uint32_t hf __asm__("r8");
    register uint32_t sc __asm__("r9");
    uint32_t a, lo, hi;
    if (stride2) {
        /* clang-format off */
        __asm__ volatile(TE_A_OUTVEC(8)
                         : [acc] "+r"(acc), [rec] "+r"(rec), [out] "+r"(out), [n] "+r"(n), [a] "=&r"(a),
                           [lo] "=&r"(lo), [hi] "=&r"(hi), [b] "=&r"(b), [m] "=&r"(m), [r] "=&r"(r),
                           [mk] "=&r"(mk), [hf] "=&r"(hf), [sc] "=&r"(sc)
                         : [off] "r"(off)
                         : "cc", "memory");
        /* clang-format on */
    } else {
        /* clang-format off */
        __asm__ volatile(TE_A_OUTVEC(4)
                         : [acc] "+r"(acc), [rec] "+r"(rec), [out] "+r"(out), [n] "+r"(n), [a] "=&r"(a),
                           [lo] "=&r"(lo), [hi] "=&r"(hi), [b] "=&r"(b), [m] "=&r"(m), [r] "=&r"(r),
                           [mk] "=&r"(mk), [hf] "=&r"(hf), [sc] "=&r"(sc)
                         : [off] "r"(off)
                         : "cc", "memory");
        /* clang-format on */
    }
}
#endif

#if TE_TERN_ASM
/* The short-record output stage: per row {2*bias, 2*scale, multiplier,
 * 2^(right-1) + offset*2^right, right} (te_tern_prep_out). SMMULR of twice the
 * accumulator is TFLite's rounding doubling high multiply; the rounding right
 * shift (half away from zero) is one add of the sign, one of the half. 11
 * instructions an output. */
/* clang-format off */
#define TE_A_OUTVEC_SHORT(stride_bytes)                              \
    "1:\n\t"                                                         \
    "ldr %[a], [%[acc]], #" #stride_bytes "\n\t"                     \
    "ldmia %[rec]!, {%[b], %[sc], %[m], %[hf], %[r]}\n\t"           \
    "mla %[a], %[a], %[sc], %[b]\n\t"                                \
    "smmulr %[a], %[a], %[m]\n\t"                                    \
    "add %[t], %[a], %[hf]\n\t"                                      \
    "add %[t], %[t], %[a], asr #31\n\t"                              \
    "asr %[t], %[t], %[r]\n\t"                                       \
    "ssat %[t], #8, %[t]\n\t"                                        \
    "strb %[t], [%[out]], #1\n\t"                                    \
    "subs %[n], %[n], #1\n\t"                                        \
    "bne 1b\n\t"
/* clang-format on */

static void te_tern_outvec_short_records(const uint32_t *acc, int stride2, const int32_t *rec,
                                         int32_t n, int8_t *out)
{
    register uint32_t b __asm__("r4");
    register uint32_t sc __asm__("r5");
    register uint32_t m __asm__("r6");
    register uint32_t hf __asm__("r7");
    register uint32_t r __asm__("r8");
    uint32_t a, t;
    if (stride2) {
        /* clang-format off */
        __asm__ volatile(TE_A_OUTVEC_SHORT(8)
                         : [acc] "+r"(acc), [rec] "+r"(rec), [out] "+r"(out), [n] "+r"(n), [a] "=&r"(a),
                           [t] "=&r"(t), [b] "=&r"(b), [sc] "=&r"(sc), [m] "=&r"(m), [hf] "=&r"(hf),
                           [r] "=&r"(r)
                         :
                         : "cc", "memory");
        /* clang-format on */
    } else {
        /* clang-format off */
        __asm__ volatile(TE_A_OUTVEC_SHORT(4)
                         : [acc] "+r"(acc), [rec] "+r"(rec), [out] "+r"(out), [n] "+r"(n), [a] "=&r"(a),
                           [t] "=&r"(t), [b] "=&r"(b), [sc] "=&r"(sc), [m] "=&r"(m), [hf] "=&r"(hf),
                           [r] "=&r"(r)
                         :
                         : "cc", "memory");
        /* clang-format on */
    }
}
#endif

#if TE_TERN_ASM
/* The same without records (when they would not pay for themselves, e.g. one
 * FC input row): 26 instructions an output. */
/* clang-format off */
#define TE_A_OUTVEC_DIRECT(stride_bytes)                             \
    "1:\n\t"                                                         \
    "ldr %[a], [%[acc]], #" #stride_bytes "\n\t"                     \
    "ldr %[t], [%[bias]], #4\n\t"                                    \
    "add %[a], %[a], %[t]\n\t"                                       \
    "ldr %[t], [%[mult]], #4\n\t"                                    \
    "mov %[lo], #0x40000000\n\t"                                     \
    "mov %[hi], #0\n\t"                                              \
    "smlal %[lo], %[hi], %[a], %[t]\n\t"                             \
    "lsr %[lo], %[lo], #31\n\t"                                      \
    "orr %[a], %[lo], %[hi], lsl #1\n\t"                             \
    "ldr %[r], [%[shift]], #4\n\t"                                   \
    "rsb %[r], %[r], #0\n\t"                                         \
    "mvn %[mk], #0\n\t"                                              \
    "lsl %[mk], %[mk], %[r]\n\t"                                     \
    "mvn %[mk], %[mk]\n\t"                                           \
    "and %[t], %[a], %[mk]\n\t"                                      \
    "lsr %[mk], %[mk], #1\n\t"                                       \
    "add %[mk], %[mk], %[a], lsr #31\n\t"                            \
    "asr %[a], %[a], %[r]\n\t"                                       \
    "cmp %[t], %[mk]\n\t"                                            \
    "it gt\n\t"                                                      \
    "addgt %[a], %[a], #1\n\t"                                       \
    "add %[a], %[a], %[off]\n\t"                                     \
    "ssat %[a], #8, %[a]\n\t"                                        \
    "strb %[a], [%[out]], #1\n\t"                                    \
    "subs %[n], %[n], #1\n\t"                                        \
    "bne 1b\n\t"
/* clang-format on */

static void te_tern_outvec_direct(const uint32_t *acc, const int32_t *bias, const int32_t *mult,
                                  const int32_t *shift, int32_t off, int32_t n, int8_t *out)
{
    uint32_t a, t, lo, hi, r, mk;
    /* clang-format off */
    __asm__ volatile(TE_A_OUTVEC_DIRECT(4)
                     : [acc] "+r"(acc), [bias] "+r"(bias), [mult] "+r"(mult), [shift] "+r"(shift),
                       [out] "+r"(out), [n] "+r"(n), [a] "=&r"(a), [t] "=&r"(t), [lo] "=&r"(lo),
                       [hi] "=&r"(hi), [r] "=&r"(r), [mk] "=&r"(mk)
                     : [off] "r"(off)
                     : "cc", "memory");
    /* clang-format on */
}
#endif

void te_tern_outputs(const te_tern_mm *mm, int P, const uint32_t *acc, int32_t s0, int32_t s1,
                     int8_t *out0, int8_t *out1)
{
#if TE_TERN_ASM
    if (mm->rec_short) {
        te_tern_outvec_short_records(acc, P == 2, mm->rec, mm->o, out0);
        if (P == 2) {
            te_tern_outvec_short_records(acc + 1, 1, mm->rec, mm->o, out1);
        }
        return;
    }
    if (mm->rec) {
        te_tern_outvec_records(acc, P == 2, mm->rec, mm->output_offset, mm->o, out0);
        if (P == 2) {
            te_tern_outvec_records(acc + 1, 1, mm->rec, mm->output_offset, mm->o, out1);
        }
        return;
    }
#else
    if (mm->rec_short) { /* the C twin of te_tern_outvec_short_records */
        for (int q = 0; q < P; ++q) {
            int8_t *out = q ? out1 : out0;
            for (int32_t o = 0; o < mm->o; ++o) {
                const int32_t *r = mm->rec + TE_TERN_SREC_WORDS * o;
                const int32_t a = (int32_t)((uint32_t)r[1] * acc[o * P + q] + (uint32_t)r[0]);
                const int32_t x = (int32_t)(((int64_t)a * r[2] + ((int64_t)1 << 31)) >> 32);
                int32_t t = (int32_t)((uint32_t)x + (uint32_t)r[3] + (uint32_t)(x >> 31)) >> r[4];
                out[o] = (int8_t)(t < -128 ? -128 : t > 127 ? 127 : t);
            }
        }
        return;
    }
    if (mm->rec) { /* the C twin of te_tern_outvec_records */
        const te_range full = {-128, 127};
        for (int q = 0; q < P; ++q) {
            int8_t *out = q ? out1 : out0;
            for (int32_t o = 0; o < mm->o; ++o) {
                const int32_t *r = mm->rec + TE_TERN_REC_WORDS * o;
                const uint32_t a = (uint32_t)r[5] * acc[o * P + q] + (uint32_t)r[0];
                out[o] = (int8_t)te_tern_rq(a, 0, r[2], r[1], r[3], r[4], mm->output_offset, full);
            }
        }
        return;
    }
#endif
#if TE_TERN_ASM
    if (P == 1 && mm->simple_out && mm->bias && mm->kind != TE_TK_TO) {
        te_tern_outvec_direct(acc, mm->bias, mm->mult, mm->shift, mm->output_offset, mm->o, out0);
        return;
    }
#endif
    if (P == 2) {
        (mm->simple_out ? te_tern_out_2vecs_simple : te_tern_out_2vecs_general)(mm, acc, s0, s1,
                                                                                out0, out1);
    } else {
        (mm->simple_out ? te_tern_out_1vec_simple : te_tern_out_1vec_general)(mm, acc, s0, s1, out0,
                                                                              out1);
    }
}

#endif /* TE_USE_DSP */
