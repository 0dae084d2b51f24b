/* SPDX-License-Identifier: Apache-2.0 */
/* te_nn_tern_dsp_s8.c - the DSP path of the ternary matrix core (te_tern_mm_dsp),
 * on cores with SMLAD (or with it emulated, -DTE_EMULATE_DSP on the host).
 *
 * t2/to ("2bit" codes): the input vector is widened once to int16 and permuted
 * (te_nn_tern_widen_s8.c) so that word m of every 16-tap block holds (x[m],
 * x[m+8]). In a little-endian 32-bit word of codes, weight m sits at bits
 * 2m+1..2m and weight m+8 at bits 2m+17..2m+16, so one AND with a shifted
 * operand,
 *     (w << (14 - 2m)) & 0xC000C000,
 * puts both 2-bit codes at the top of the two int16 lanes: (t[m]*2^14, t[m+8]*2^14),
 * sign included (0b01 -> +16384, 0b11 -> -16384, 0b00 -> 0). One SMLAD then adds
 * 2^14 * (t[m]*x[m] + t[m+8]*x[m+8]). So two weights cost one AND and one SMLAD,
 * the input word is shared by all rows of a pass (3 rows x 1 vector, or 2 rows x
 * 2 vectors), and one word load of codes serves 16 weights. The 2^14-scaled sums
 * are exact and are shifted back at every group end, or every 32 words (512 taps,
 * |sum| <= 512 * 128 * 2^14 = 2^30), then multiplied by the group scale.
 *
 * p2 ("int4" nibbles): the input is widened to natural int16 pairs (x[2j],
 * x[2j+1]); a 256-entry table (te_p2_build_table) maps a code byte to the
 * int16 pair of effective weights (sign * 2^(levels-|v|)), consumed by SMLAD.
 *
 * Row blocks run here; whole planes of t2 rows run in the assembly sweeps
 * (te_nn_tern_sweep_s8.c); the output stage is te_nn_tern_out_s8.c.
 */
#include "te_tern_asm.h"

#if TE_USE_DSP

static inline uint32_t te_tern_rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Words of zeros (newlib-nano's memset goes byte by byte). */
static inline void te_tern_zero(uint32_t *p, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        TE_TERN_KEEP_LOOP();
        p[i] = 0;
    }
}

/* 3 rows (stride rb) x 1 vector: per word 3 code loads, 4 LDRD of inputs,
 * 24 AND + 24 SMLAD for 48 MACs. */
TE_TERN_INLINE void te_t2_mac_3rows(const uint8_t *c, int32_t rb, const uint32_t *x, int32_t n,
                                    int32_t *s)
{
    int32_t s0 = s[0], s1 = s[1], s2 = s[2];
    uint32_t mask = 0xC000C000u;
    TE_T2_MASK(mask);
#if TE_TERN_ASM
    uint32_t w0, w1, w2, xa, xb, d;
    /* clang-format off */
    __asm__ volatile(
        "1:\n\t"
        "ldr %[w1], [%[c], %[rb]]\n\t"
        "ldr %[w2], [%[c], %[rb], lsl #1]\n\t"
        "ldr %[w0], [%[c]], #4\n\t"
        "ldrd %[xa], %[xb], [%[x]], #8\n\t"
        TE_A_MAC_3ROWS(xa, 14) TE_A_MAC_3ROWS(xb, 12)
        "ldrd %[xa], %[xb], [%[x]], #8\n\t"
        TE_A_MAC_3ROWS(xa, 10) TE_A_MAC_3ROWS(xb, 8)
        "ldrd %[xa], %[xb], [%[x]], #8\n\t"
        TE_A_MAC_3ROWS(xa, 6) TE_A_MAC_3ROWS(xb, 4)
        "ldrd %[xa], %[xb], [%[x]], #8\n\t"
        TE_A_MAC_3ROWS(xa, 2) TE_A_MAC_3ROWS(xb, 0)
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [c] "+r"(c), [x] "+r"(x), [n] "+r"(n),
          [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [xa] "=&r"(xa), [xb] "=&r"(xb),
          [d] "=&r"(d)
        : [rb] "r"(rb), [mask] "r"(mask)
        : "cc", "memory");
    /* clang-format on */
#else
    for (; n > 0; --n) {
        const uint32_t w0 = te_tern_rd32(c), w1 = te_tern_rd32(c + rb),
                       w2 = te_tern_rd32(c + 2 * rb);
        c += 4;
        /* clang-format off */
#define TE_T2_STEP31(m)                                  \
    {                                                    \
        const int32_t xv = (int32_t)x[m];                \
        s0 = te_smlad(xv, TE_T2_DEC(w0, m), s0);         \
        s1 = te_smlad(xv, TE_T2_DEC(w1, m), s1);         \
        s2 = te_smlad(xv, TE_T2_DEC(w2, m), s2);         \
    }
        TE_T2_STEP31(0) TE_T2_STEP31(1) TE_T2_STEP31(2) TE_T2_STEP31(3)
        TE_T2_STEP31(4) TE_T2_STEP31(5) TE_T2_STEP31(6) TE_T2_STEP31(7)
#undef TE_T2_STEP31
        x += 8;
        /* clang-format on */
    }
#endif
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
}

/* 2 rows x 2 vectors, interleaved (word m of vector q at x[2m + q]):
 * s = {r0q0, r0q1, r1q0, r1q1}; per word 2 code loads, 8 LDRD, 16 AND and
 * 32 SMLAD for 64 MACs: each decoded pair feeds both vectors. */
TE_TERN_INLINE void te_t2_mac_2rows_2vecs(const uint8_t *c, int32_t rb, const uint32_t *x,
                                          int32_t n, int32_t *s)
{
    int32_t s00 = s[0], s01 = s[1], s10 = s[2], s11 = s[3];
    uint32_t mask = 0xC000C000u;
    TE_T2_MASK(mask);
#if TE_TERN_ASM
    uint32_t w0, w1, xa, xb, d;
    /* clang-format off */
    __asm__ volatile(
        "1:\n\t"
        "ldr %[w1], [%[c], %[rb]]\n\t"
        "ldr %[w0], [%[c]], #4\n\t"
        TE_A_MAC_2ROWS_2VECS(14) TE_A_MAC_2ROWS_2VECS(12) TE_A_MAC_2ROWS_2VECS(10)
        TE_A_MAC_2ROWS_2VECS(8) TE_A_MAC_2ROWS_2VECS(6) TE_A_MAC_2ROWS_2VECS(4)
        TE_A_MAC_2ROWS_2VECS(2) TE_A_MAC_2ROWS_2VECS(0)
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [s0] "+r"(s00), [s1] "+r"(s01), [s2] "+r"(s10), [s3] "+r"(s11), [c] "+r"(c),
          [x] "+r"(x), [n] "+r"(n), [w0] "=&r"(w0), [w1] "=&r"(w1), [xa] "=&r"(xa),
          [xb] "=&r"(xb), [d] "=&r"(d)
        : [rb] "r"(rb), [mask] "r"(mask)
        : "cc", "memory");
    /* clang-format on */
#else
    for (; n > 0; --n) {
        const uint32_t w0 = te_tern_rd32(c), w1 = te_tern_rd32(c + rb);
        c += 4;
        /* clang-format off */
#define TE_T2_STEP22(m)                                  \
    {                                                    \
        const int32_t xa = (int32_t)x[2 * (m)];          \
        const int32_t xb = (int32_t)x[2 * (m) + 1];      \
        const int32_t d0 = TE_T2_DEC(w0, m);             \
        s00 = te_smlad(xa, d0, s00);                     \
        s01 = te_smlad(xb, d0, s01);                     \
        const int32_t d1 = TE_T2_DEC(w1, m);             \
        s10 = te_smlad(xa, d1, s10);                     \
        s11 = te_smlad(xb, d1, s11);                     \
    }
        TE_T2_STEP22(0) TE_T2_STEP22(1) TE_T2_STEP22(2) TE_T2_STEP22(3)
        TE_T2_STEP22(4) TE_T2_STEP22(5) TE_T2_STEP22(6) TE_T2_STEP22(7)
#undef TE_T2_STEP22
        x += 16;
        /* clang-format on */
    }
#endif
    s[0] = s00;
    s[1] = s01;
    s[2] = s10;
    s[3] = s11;
}

#if TE_TERN_ASM
/* After a group: sum >> 14 times the row's scale (register wr) into the
 * partial sum at [d, #off], and clear the sum. */
/* clang-format off */
#define TE_A_FLUSH(sr, wr, off)                                      \
    "asrs %[" #sr "], %[" #sr "], #14\n\t"                           \
    "ldr %[n], [%[d], #" #off "]\n\t"                                \
    "mla %[n], %[" #wr "], %[" #sr "], %[n]\n\t"                     \
    "str %[n], [%[d], #" #off "]\n\t"                                \
    "movs %[" #sr "], #0\n\t"
/* clang-format on */

/* State of the group loop, in memory (the registers are all taken). */
typedef struct {
    uint32_t pacc[4];  /* offset 0 */
    const uint8_t *sc; /* 16: scale of row 0 for the current group */
    int32_t gc;        /* 20: groups left */
    int32_t words;     /* 24: words per group */
    int32_t stride;    /* 28: bytes between two rows' scales (G) */
    int32_t last;      /* 32: words of the last group */
} te_t2_gstate;
TE_TERN_LAYOUT(te_t2_gstate_pacc_at_0, te_t2_gstate, pacc, 0);
TE_TERN_LAYOUT(te_t2_gstate_sc_at_16, te_t2_gstate, sc, 16);
TE_TERN_LAYOUT(te_t2_gstate_gc_at_20, te_t2_gstate, gc, 20);
TE_TERN_LAYOUT(te_t2_gstate_words_at_24, te_t2_gstate, words, 24);
TE_TERN_LAYOUT(te_t2_gstate_stride_at_28, te_t2_gstate, stride, 28);
TE_TERN_LAYOUT(te_t2_gstate_last_at_32, te_t2_gstate, last, 32);

/* Whole groups in one piece of assembly: ng groups of L words each, the last
 * of them `last` words (all <= 32),
 * and after each group, for every row r, pacc[r] += scale[r] * (sum >> 14) with
 * the uint8 scale read at scp + r*G (scp then steps one group). Keeps the
 * per-group bookkeeping (about 25 instructions for 3 rows) out of the
 * compiler's hands, which would otherwise spill around the 14-register loop. */
static inline __attribute__((always_inline)) void
te_t2_groups_3rows(const uint8_t *c, int32_t rb, const uint32_t *x, int32_t L, int32_t ng,
                   int32_t last, const uint8_t *scp, int32_t G, uint32_t *pacc)
{
    te_t2_gstate st = {{pacc[0], pacc[1], pacc[2], 0}, scp, ng, L, G, last};
    te_t2_gstate *stp = &st;
    int32_t s0 = 0, s1 = 0, s2 = 0, n;
    uint32_t w0, w1, w2, xa, xb, d, mask = 0xC000C000u;
    /* clang-format off */
    __asm__ volatile(
        "2:\n\t"
        "ldr %[d], %[stp]\n\t"
        "ldr %[n], [%[d], #20]\n\t"
        "cmp %[n], #1\n\t"
        "ite eq\n\t"
        "ldreq %[n], [%[d], #32]\n\t"
        "ldrne %[n], [%[d], #24]\n\t"
        "1:\n\t"
        TE_A_WORD_3ROWS
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "ldr %[d], %[stp]\n\t"
        "ldr %[xb], [%[d], #28]\n\t"
        "ldr %[xa], [%[d], #16]\n\t"
        "ldrb %[w0], [%[xa]]\n\t"
        "ldrb %[w1], [%[xa], %[xb]]\n\t"
        "ldrb %[w2], [%[xa], %[xb], lsl #1]\n\t"
        "adds %[xa], %[xa], #1\n\t"
        "str %[xa], [%[d], #16]\n\t"
        TE_A_FLUSH(s0, w0, 0) TE_A_FLUSH(s1, w1, 4) TE_A_FLUSH(s2, w2, 8)
        "ldr %[n], [%[d], #20]\n\t"
        "subs %[n], %[n], #1\n\t"
        "str %[n], [%[d], #20]\n\t"
        "bne 2b\n\t"
        : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [c] "+r"(c), [x] "+r"(x), [n] "=&r"(n),
          [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [xa] "=&r"(xa), [xb] "=&r"(xb),
          [d] "=&r"(d)
        : [rb] "r"(rb), [mask] "r"(mask), [stp] "m"(stp)
        : "cc", "memory");
    /* clang-format on */
    pacc[0] = st.pacc[0];
    pacc[1] = st.pacc[1];
    pacc[2] = st.pacc[2];
}

/* The same for 2 rows x 2 interleaved vectors: pacc = {r0q0, r0q1, r1q0, r1q1}. */
static inline __attribute__((always_inline)) void
te_t2_groups_2rows_2vecs(const uint8_t *c, int32_t rb, const uint32_t *x, int32_t L, int32_t ng,
                         int32_t last, const uint8_t *scp, int32_t G, uint32_t *pacc)
{
    te_t2_gstate st = {{pacc[0], pacc[1], pacc[2], pacc[3]}, scp, ng, L, G, last};
    te_t2_gstate *stp = &st;
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, n;
    uint32_t w0, w1, xa, xb, d, mask = 0xC000C000u;
    /* clang-format off */
    __asm__ volatile(
        "2:\n\t"
        "ldr %[d], %[stp]\n\t"
        "ldr %[n], [%[d], #20]\n\t"
        "cmp %[n], #1\n\t"
        "ite eq\n\t"
        "ldreq %[n], [%[d], #32]\n\t"
        "ldrne %[n], [%[d], #24]\n\t"
        "1:\n\t"
        "ldr %[w1], [%[c], %[rb]]\n\t"
        "ldr %[w0], [%[c]], #4\n\t"
        TE_A_MAC_2ROWS_2VECS(14) TE_A_MAC_2ROWS_2VECS(12) TE_A_MAC_2ROWS_2VECS(10)
        TE_A_MAC_2ROWS_2VECS(8) TE_A_MAC_2ROWS_2VECS(6) TE_A_MAC_2ROWS_2VECS(4)
        TE_A_MAC_2ROWS_2VECS(2) TE_A_MAC_2ROWS_2VECS(0)
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "ldr %[d], %[stp]\n\t"
        "ldr %[xb], [%[d], #28]\n\t"
        "ldr %[xa], [%[d], #16]\n\t"
        "ldrb %[w0], [%[xa]]\n\t"
        "ldrb %[w1], [%[xa], %[xb]]\n\t"
        "adds %[xa], %[xa], #1\n\t"
        "str %[xa], [%[d], #16]\n\t"
        TE_A_FLUSH(s0, w0, 0) TE_A_FLUSH(s1, w0, 4) TE_A_FLUSH(s2, w1, 8) TE_A_FLUSH(s3, w1, 12)
        "ldr %[n], [%[d], #20]\n\t"
        "subs %[n], %[n], #1\n\t"
        "str %[n], [%[d], #20]\n\t"
        "bne 2b\n\t"
        : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [c] "+r"(c), [x] "+r"(x),
          [n] "=&r"(n), [w0] "=&r"(w0), [w1] "=&r"(w1), [xa] "=&r"(xa), [xb] "=&r"(xb),
          [d] "=&r"(d)
        : [rb] "r"(rb), [mask] "r"(mask), [stp] "m"(stp)
        : "cc", "memory");
    /* clang-format on */
    pacc[0] = st.pacc[0];
    pacc[1] = st.pacc[1];
    pacc[2] = st.pacc[2];
    pacc[3] = st.pacc[3];
}
#endif /* TE_TERN_ASM */

/* 2 rows x 1 vector */
TE_TERN_INLINE void te_t2_mac_2rows(const uint8_t *c, int32_t rb, const uint32_t *x, int32_t n,
                                    int32_t *s)
{
    int32_t s0 = s[0], s1 = s[1];
    uint32_t mask = 0xC000C000u;
    TE_T2_MASK(mask);
    for (; n > 0; --n) {
        const uint32_t w0 = te_tern_rd32(c), w1 = te_tern_rd32(c + rb);
        c += 4;
        /* clang-format off */
#define TE_T2_STEP21(m)                                  \
    {                                                    \
        const int32_t xv = (int32_t)x[m];                \
        s0 = te_smlad(xv, TE_T2_DEC(w0, m), s0);         \
        s1 = te_smlad(xv, TE_T2_DEC(w1, m), s1);         \
    }
        TE_T2_STEP21(0) TE_T2_STEP21(1) TE_T2_STEP21(2) TE_T2_STEP21(3)
        TE_T2_STEP21(4) TE_T2_STEP21(5) TE_T2_STEP21(6) TE_T2_STEP21(7)
#undef TE_T2_STEP21
        x += 8;
        /* clang-format on */
    }
    s[0] = s0;
    s[1] = s1;
}

/* 1 row x 2 vectors */
TE_TERN_INLINE void te_t2_mac_1row_2vecs(const uint8_t *c, const uint32_t *x, int32_t n, int32_t *s)
{
    int32_t s0 = s[0], s1 = s[1];
    uint32_t mask = 0xC000C000u;
    TE_T2_MASK(mask);
    for (; n > 0; --n) {
        const uint32_t w0 = te_tern_rd32(c);
        c += 4;
        /* clang-format off */
#define TE_T2_STEP12(m)                                  \
    {                                                    \
        const int32_t d0 = TE_T2_DEC(w0, m);             \
        s0 = te_smlad((int32_t)x[2 * (m)], d0, s0);      \
        s1 = te_smlad((int32_t)x[2 * (m) + 1], d0, s1);  \
    }
        TE_T2_STEP12(0) TE_T2_STEP12(1) TE_T2_STEP12(2) TE_T2_STEP12(3)
        TE_T2_STEP12(4) TE_T2_STEP12(5) TE_T2_STEP12(6) TE_T2_STEP12(7)
#undef TE_T2_STEP12
        x += 16;
        /* clang-format on */
    }
    s[0] = s0;
    s[1] = s1;
}

/* 1 row x 1 vector */
TE_TERN_INLINE void te_t2_mac_1row(const uint8_t *c, const uint32_t *x, int32_t n, int32_t *s)
{
    int32_t s0 = s[0];
    uint32_t mask = 0xC000C000u;
    TE_T2_MASK(mask);
    for (; n > 0; --n) {
        const uint32_t w0 = te_tern_rd32(c);
        c += 4;
        /* clang-format off */
#define TE_T2_STEP11(m) s0 = te_smlad((int32_t)x[m], TE_T2_DEC(w0, m), s0);
        TE_T2_STEP11(0) TE_T2_STEP11(1) TE_T2_STEP11(2) TE_T2_STEP11(3)
        TE_T2_STEP11(4) TE_T2_STEP11(5) TE_T2_STEP11(6) TE_T2_STEP11(7)
#undef TE_T2_STEP11
        x += 8;
        /* clang-format on */
    }
    s[0] = s0;
}

/* ---- p2 inner loops: n words of 8 taps (4 code bytes); unscaled sums ---- */

#define TE_P2_DEC(tbl, w, j) ((int32_t)(tbl)[((w) >> (8 * (j))) & 0xFFu])

/* R rows (R <= 3, stride rb) x 1 vector */
TE_TERN_INLINE void te_p2_mac_rows(int R, const uint8_t *c, int32_t rb, const uint32_t *x,
                                   int32_t n, int32_t *s, const uint32_t *tbl)
{
    int32_t s0 = s[0], s1 = R > 1 ? s[1] : 0, s2 = R > 2 ? s[2] : 0;
    for (; n > 0; --n) {
        const uint32_t w0 = te_tern_rd32(c);
        const uint32_t w1 = R > 1 ? te_tern_rd32(c + rb) : 0;
        const uint32_t w2 = R > 2 ? te_tern_rd32(c + 2 * rb) : 0;
        c += 4;
        for (int j = 0; j < 4; ++j) {
            const int32_t xv = (int32_t)x[j];
            s0 = te_smlad(xv, TE_P2_DEC(tbl, w0, j), s0);
            if (R > 1) {
                s1 = te_smlad(xv, TE_P2_DEC(tbl, w1, j), s1);
            }
            if (R > 2) {
                s2 = te_smlad(xv, TE_P2_DEC(tbl, w2, j), s2);
            }
        }
        x += 4;
    }
    s[0] = s0;
    if (R > 1) {
        s[1] = s1;
    }
    if (R > 2) {
        s[2] = s2;
    }
}

/* R rows (R <= 2) x 2 interleaved vectors */
TE_TERN_INLINE void te_p2_mac_rows_2vecs(int R, const uint8_t *c, int32_t rb, const uint32_t *x,
                                         int32_t n, int32_t *s, const uint32_t *tbl)
{
    int32_t s00 = s[0], s01 = s[1], s10 = R > 1 ? s[2] : 0, s11 = R > 1 ? s[3] : 0;
    for (; n > 0; --n) {
        const uint32_t w0 = te_tern_rd32(c);
        const uint32_t w1 = R > 1 ? te_tern_rd32(c + rb) : 0;
        c += 4;
        for (int j = 0; j < 4; ++j) {
            const int32_t xa = (int32_t)x[2 * j];
            const int32_t xb = (int32_t)x[2 * j + 1];
            const int32_t d0 = TE_P2_DEC(tbl, w0, j);
            s00 = te_smlad(xa, d0, s00);
            s01 = te_smlad(xb, d0, s01);
            if (R > 1) {
                const int32_t d1 = TE_P2_DEC(tbl, w1, j);
                s10 = te_smlad(xa, d1, s10);
                s11 = te_smlad(xb, d1, s11);
            }
        }
        x += 8;
    }
    s[0] = s00;
    s[1] = s01;
    if (R > 1) {
        s[2] = s10;
        s[3] = s11;
    }
}

/* Runs the inner loop of shape R x P over n >= 1 words starting at code pointer c. */
TE_TERN_INLINE void te_tern_mac_words(int32_t kind, int R, int P, const uint8_t *c, int32_t rb,
                                      const uint32_t *x, int32_t n, int32_t *s, const uint32_t *tbl)
{
    if (kind == TE_TK_P2) {
        if (P == 1) {
            te_p2_mac_rows(R, c, rb, x, n, s, tbl);
        } else {
            te_p2_mac_rows_2vecs(R, c, rb, x, n, s, tbl);
        }
    } else if (P == 1) {
        if (R == 3) {
            te_t2_mac_3rows(c, rb, x, n, s);
        } else if (R == 2) {
            te_t2_mac_2rows(c, rb, x, n, s);
        } else {
            te_t2_mac_1row(c, x, n, s);
        }
    } else {
        if (R == 2) {
            te_t2_mac_2rows_2vecs(c, rb, x, n, s);
        } else {
            te_t2_mac_1row_2vecs(c, x, n, s);
        }
    }
}

/* Everything a row block needs, computed once per call. */
typedef struct {
    const te_tern_mm *mm;
    int32_t nw;     /* code words per row, the partial tail word included */
    int32_t nfull;  /* whole 4-byte words inside a row */
    int32_t gw;     /* code words per group */
    int32_t xwords; /* input words per code word (both vectors when paired) */
    int32_t flush;  /* most words between two flushes of the sums */
    const uint32_t *tbl;
} te_tern_plan;

/* Rows o..o+R-1 against P vectors: acc[(o + r) * P + q] = the weight part of the
 * accumulator (planes, groups and plane shifts; no bias, no offset term). */
TE_TERN_INLINE void te_tern_block(const te_tern_plan *pl, int32_t o, int R, int P, int p2,
                                  const uint32_t *x, uint32_t *accbuf)
{
    const te_tern_mm *mm = pl->mm;
    const te_tern_weights *w = mm->w;
    const int32_t rb = mm->rb, nw = pl->nw, gw = pl->gw, g_count = mm->g;
    const int32_t kind = p2 ? TE_TK_P2 : TE_TK_T2;
    uint32_t acc[6] = {0, 0, 0, 0, 0, 0};
    for (int32_t p = 0; p < mm->active; ++p) {
        const int32_t row0 = p * mm->o + o;
        const uint8_t *crow = w->codes + row0 * rb;
        /* A row's last word may be read whole (its spare bytes hold the next
         * row's codes, which meet zero inputs), except at the very end of the
         * code buffer. */
        const int32_t nsafe = (p == mm->planes - 1 && o + R == mm->o) ? pl->nfull : nw;
        uint32_t pacc[6] = {0, 0, 0, 0, 0, 0};
        int32_t wb = 0;
        for (int32_t g = 0; g < g_count; ++g) {
            const int32_t we = te_tern_min(wb + gw, nw);
            do {
                const int32_t n = te_tern_min(we - wb, pl->flush);
                int32_t s[6] = {0, 0, 0, 0, 0, 0};
                const int32_t nf = te_tern_min(wb + n, nsafe) - wb;
                if (nf > 0) {
                    te_tern_mac_words(kind, R, P, crow + 4 * wb, rb, x + pl->xwords * wb, nf, s,
                                      pl->tbl);
                }
                if (nf < n) { /* the buffer's last, partial word: assemble it from bytes */
                    uint8_t tb[12] = {0};
                    for (int r = 0; r < R; ++r) {
                        memcpy(tb + 4 * r, crow + r * rb + 4 * pl->nfull, (size_t)(rb & 3));
                    }
                    te_tern_mac_words(kind, R, P, tb, 4, x + pl->xwords * pl->nfull, 1, s, pl->tbl);
                }
                for (int r = 0; r < R; ++r) {
                    /* fold: the scale (and plane shift) sit in the output records */
                    const uint32_t a = mm->fold ? 1u : te_tern_scale(w, (row0 + r) * g_count + g);
                    for (int q = 0; q < P; ++q) {
                        const int32_t v = p2 ? s[r * P + q] : (s[r * P + q] >> 14);
                        pacc[r * P + q] += a * (uint32_t)v;
                    }
                }
                wb += n;
            } while (wb < we);
        }
        for (int r = 0; r < R; ++r) {
            const uint32_t e = mm->fold ? 0u : te_tern_pshift(w, row0 + r);
            for (int q = 0; q < P; ++q) {
                acc[r * P + q] += pacc[r * P + q] << e;
            }
        }
    }
    for (int i = 0; i < R * P; ++i) {
        accbuf[o * P + i] = acc[i];
    }
}

/* One function per block shape (rows x vectors), so that each is compiled on
 * its own with R and P constant. */
#define TE_TERN_BLOCK_FN(name, R, P, P2)                                                     \
    static void name(const te_tern_plan *pl, int32_t o, const uint32_t *x, uint32_t *accbuf) \
    {                                                                                        \
        te_tern_block(pl, o, R, P, P2, x, accbuf);                                           \
    }
TE_TERN_BLOCK_FN(te_t2_block_3rows, 3, 1, 0)
TE_TERN_BLOCK_FN(te_t2_block_2rows, 2, 1, 0)
TE_TERN_BLOCK_FN(te_t2_block_1row, 1, 1, 0)
TE_TERN_BLOCK_FN(te_t2_block_2rows_2vecs, 2, 2, 0)
TE_TERN_BLOCK_FN(te_t2_block_1row_2vecs, 1, 2, 0)
TE_TERN_BLOCK_FN(te_p2_block_3rows, 3, 1, 1)
TE_TERN_BLOCK_FN(te_p2_block_2rows, 2, 1, 1)
TE_TERN_BLOCK_FN(te_p2_block_1row, 1, 1, 1)
TE_TERN_BLOCK_FN(te_p2_block_2rows_2vecs, 2, 2, 1)
TE_TERN_BLOCK_FN(te_p2_block_1row_2vecs, 1, 2, 1)

typedef void (*te_tern_block_fn)(const te_tern_plan *, int32_t, const uint32_t *, uint32_t *);
struct te_tern_blocks {
    te_tern_block_fn rows3, rows2, rows1, rows2_2vecs, rows1_2vecs;
};
const te_tern_blocks te_tern_p2_blocks = {te_p2_block_3rows, te_p2_block_2rows, te_p2_block_1row,
                                          te_p2_block_2rows_2vecs, te_p2_block_1row_2vecs};

#if TE_TERN_ASM
/* Assembly row blocks for the common case (t2/to, uint8 scales): every plane
 * of a row block in one call of the assembly group loop (two for groups over 512
 * taps). The block that holds the last row of the code buffer (whose partial
 * last word must not be read whole) takes the generic block instead. */
TE_TERN_INLINE void te_t2_block_asm(int R, const te_tern_plan *pl, int32_t o, const uint32_t *x,
                                    uint32_t *accbuf)
{
    const te_tern_mm *mm = pl->mm;
    const te_tern_weights *w = mm->w;
    const int32_t rb = mm->rb, nw = pl->nw, gw = pl->gw, g_count = mm->g;
    const int32_t xw = pl->xwords;
    const int n = R == 3 ? 3 : 4; /* accumulators: 3 x 1 or 2 x 2 */
    uint32_t *acc = accbuf + (R == 3 ? o : 2 * o);
    for (int32_t p = 0; p < mm->active; ++p) {
        const int32_t row0 = p * mm->o + o;
        const uint8_t *crow = w->codes + row0 * rb;
        const uint8_t *scp = (const uint8_t *)w->scales + row0 * g_count;
        uint32_t pacc[4] = {0, 0, 0, 0};
        if (gw <= TE_T2_FLUSH_WORDS) {
            const int32_t lw = nw - (g_count - 1) * gw; /* words of the last group */
            if (R == 3) {
                te_t2_groups_3rows(crow, rb, x, gw, g_count, lw, scp, g_count, pacc);
            } else {
                te_t2_groups_2rows_2vecs(crow, rb, x, gw, g_count, lw, scp, g_count, pacc);
            }
        } else {
            for (int32_t g = 0; g < g_count; ++g) { /* long groups: flush every 32 words */
                const int32_t we = te_tern_min(g * gw + gw, nw);
                for (int32_t wb = g * gw; wb < we; wb += TE_T2_FLUSH_WORDS) {
                    const int32_t k = te_tern_min(we - wb, TE_T2_FLUSH_WORDS);
                    if (R == 3) {
                        te_t2_groups_3rows(crow + 4 * wb, rb, x + xw * wb, k, 1, k, scp + g,
                                           g_count, pacc);
                    } else {
                        te_t2_groups_2rows_2vecs(crow + 4 * wb, rb, x + xw * wb, k, 1, k, scp + g,
                                                 g_count, pacc);
                    }
                }
            }
        }
        if (p == 0 && !w->plane_shift) {
            for (int i = 0; i < n; ++i) {
                acc[i] = pacc[i];
            }
            continue;
        }
        for (int i = 0; i < n; ++i) {
            const uint32_t e = te_tern_pshift(w, row0 + (R == 3 ? i : i >> 1));
            acc[i] = (p == 0 ? 0u : acc[i]) + (pacc[i] << e);
        }
    }
}

static void te_t2_block_asm_3rows(const te_tern_plan *pl, int32_t o, const uint32_t *x,
                                  uint32_t *accbuf)
{
    te_t2_block_asm(3, pl, o, x, accbuf);
}

static void te_t2_block_asm_2rows_2vecs(const te_tern_plan *pl, int32_t o, const uint32_t *x,
                                        uint32_t *accbuf)
{
    te_t2_block_asm(2, pl, o, x, accbuf);
}
#endif /* TE_TERN_ASM */

void te_tern_mm_dsp(const te_tern_mm *mm, const uint32_t *x, int pair, int32_t s0, int32_t s1,
                    int8_t *out0, int8_t *out1, const uint32_t *tbl, uint32_t *accbuf)
{
    const int p2 = mm->kind == TE_TK_P2;
    const int32_t taps = p2 ? TE_P2_WORD_TAPS : TE_T2_WORD_TAPS;
    te_tern_plan pl;
    pl.mm = mm;
    pl.nw = (mm->k + taps - 1) / taps;
    pl.nfull = mm->rb >> 2;
    pl.gw = mm->n >= mm->k ? pl.nw : mm->n / taps;
    pl.xwords = (p2 ? 4 : 8) * (pair ? 2 : 1);
    pl.flush = p2 ? pl.gw : TE_T2_FLUSH_WORDS;
    pl.tbl = tbl;
    const int32_t rows = mm->o;
    int32_t o = 0;
    /* the block holding the code buffer's last row may not over-read its last word */
    const int32_t o_safe = (mm->active == mm->planes && (mm->rb & 3)) ? rows - 3 : rows;
#if TE_TERN_ASM
    const int asm_ok = !p2 && mm->w->scale_bytes == 1; /* the assembly reads uint8 scales */
#else
    (void)o_safe;
#endif
#if TE_TERN_ASM
    /* full row blocks below o_safe: one assembly sweep per plane */
    const int32_t R = pair ? 2 : 3;
    const int32_t nb = (asm_ok || mm->fold) && pl.gw <= TE_T2_FLUSH_WORDS ? o_safe / R : 0;
    if (nb > 0) {
        const te_tern_weights *w = mm->w;
        const int32_t P = pair ? 2 : 1, g_count = mm->g, n_acc = nb * R * P;
        const int shifted = mm->active > 1 && w->plane_shift;
        uint32_t *tmp = accbuf + P * rows; /* second half of the accumulator scratch */
        te_tern_zero(accbuf, n_acc);
        for (int32_t p = 0; p < mm->active; ++p) {
            uint32_t *dst = shifted ? tmp : accbuf;
            if (shifted) {
                te_tern_zero(tmp, n_acc);
            }
            te_t2_sweep st;
            st.pa = dst;
            st.sc = (const uint8_t *)w->scales + p * rows * g_count;
            st.gc = g_count;
            st.g = g_count;
            st.gw = pl.gw;
            st.last = pl.nw - (g_count - 1) * pl.gw;
            st.bc = nb;
            st.cstep = R * mm->rb - 4 * pl.nw;
            st.xback = 4 * pl.nw * pl.xwords;
            st.sstep = (R - 1) * g_count;
            const uint8_t *c = w->codes + p * rows * mm->rb;
            if (mm->fold) {
                (pair ? te_t2_sweep_folded_2rows_2vecs : te_t2_sweep_folded_3rows)(c, mm->rb, x,
                                                                                   &st);
            } else {
                (pair ? te_t2_sweep_scaled_2rows_2vecs : te_t2_sweep_scaled_3rows)(c, mm->rb, x,
                                                                                   &st);
            }
            if (shifted) {
                for (int32_t i = 0; i < n_acc; ++i) {
                    accbuf[i] += tmp[i] << w->plane_shift[p * rows + i / P];
                }
            }
        }
        o = nb * R;
    }
#endif
    if (pair) {
        for (; o + 2 <= rows; o += 2) {
#if TE_TERN_ASM
            if (asm_ok && !mm->fold && o + 2 <= o_safe) {
                te_t2_block_asm_2rows_2vecs(&pl, o, x, accbuf);
                continue;
            }
#endif
            (p2 ? mm->p2->rows2_2vecs : te_t2_block_2rows_2vecs)(&pl, o, x, accbuf);
        }
        if (o < rows) {
            (p2 ? mm->p2->rows1_2vecs : te_t2_block_1row_2vecs)(&pl, o, x, accbuf);
        }
        te_tern_outputs(mm, 2, accbuf, s0, s1, out0, out1);
        return;
    }
    for (; o + 3 <= rows; o += 3) {
#if TE_TERN_ASM
        if (asm_ok && !mm->fold && o + 3 <= o_safe) {
            te_t2_block_asm_3rows(&pl, o, x, accbuf);
            continue;
        }
#endif
        (p2 ? mm->p2->rows3 : te_t2_block_3rows)(&pl, o, x, accbuf);
    }
    if (o + 2 <= rows) {
        (p2 ? mm->p2->rows2 : te_t2_block_2rows)(&pl, o, x, accbuf);
        o += 2;
    }
    if (o < rows) {
        (p2 ? mm->p2->rows1 : te_t2_block_1row)(&pl, o, x, accbuf);
    }
    te_tern_outputs(mm, 1, accbuf, s0, 0, out0, 0);
}

#else
struct te_tern_blocks {
    int unused; /* no DSP code to point at */
};
const te_tern_blocks te_tern_p2_blocks = {0};
#endif /* TE_USE_DSP */
