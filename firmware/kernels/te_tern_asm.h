/* SPDX-License-Identifier: Apache-2.0 */
/* te_tern_asm.h - private to the ternary DSP core (te_nn_tern_dsp_s8.c,
 * te_nn_tern_sweep_s8.c, te_nn_tern_out_s8.c): when the inline assembly is
 * compiled, the instruction fragments the t2 loops share, and the state the
 * plane sweeps read from memory at fixed offsets (checked at compile time).
 */
#ifndef TE_TERN_ASM_H
#define TE_TERN_ASM_H

#include <stddef.h>

#include "te_tern_internal.h"

/* t2 inner loops: n >= 1 words of 16 taps; the sums hold 2^14-scaled values.
 *
 * On Thumb-2 cores with the DSP extension the main loops are written out in
 * assembly: they need 14 registers (every allocatable one), and GCC, left to
 * itself, spills in them. The C twins compute exactly the same sums (the
 * same products, added modulo 2^32) and are what the emulated-DSP host build
 * runs; the QEMU tests run the assembly.
 *
 * Only in optimized builds: at -O0 GCC keeps r7 as the frame pointer and cannot
 * give the loops their 14 registers. */
#if TE_USE_DSP && defined(__ARM_FEATURE_DSP) && defined(__thumb2__) && defined(__GNUC__) && \
    defined(__OPTIMIZE__)
#define TE_TERN_ASM 1
#else
#define TE_TERN_ASM 0
#endif

/* The mask lives in a register the compiler cannot see through, so that the
 * shift folds into the AND ("and d, mask, w, lsl #k": one instruction); with a
 * visible constant GCC emits an LSL and an AND-immediate instead. */
#if defined(__GNUC__)
#define TE_T2_MASK(v) __asm__("" : "+r"(v))
#else
#define TE_T2_MASK(v) (void)0
#endif
#define TE_T2_DEC(w, m) ((int32_t)(((w) << (14 - 2 * (m))) & mask))

#if TE_TERN_ASM
/* clang-format off */
#define TE_A_MAC_3ROWS(xr, sh)                                   \
    "and %[d], %[mask], %[w0], lsl #" #sh "\n\t"         \
    "smlad %[s0], %[" #xr "], %[d], %[s0]\n\t"           \
    "and %[d], %[mask], %[w1], lsl #" #sh "\n\t"         \
    "smlad %[s1], %[" #xr "], %[d], %[s1]\n\t"           \
    "and %[d], %[mask], %[w2], lsl #" #sh "\n\t"         \
    "smlad %[s2], %[" #xr "], %[d], %[s2]\n\t"
#define TE_A_MAC_2ROWS_2VECS(sh)                                       \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                  \
    "and %[d], %[mask], %[w0], lsl #" #sh "\n\t"         \
    "smlad %[s0], %[xa], %[d], %[s0]\n\t"                \
    "smlad %[s1], %[xb], %[d], %[s1]\n\t"                \
    "and %[d], %[mask], %[w1], lsl #" #sh "\n\t"         \
    "smlad %[s2], %[xa], %[d], %[s2]\n\t"                \
    "smlad %[s3], %[xb], %[d], %[s3]\n\t"
/* One code word of 3 rows against one vector (inputs post-incremented). */
#define TE_A_WORD_3ROWS                                                  \
    "ldr %[w1], [%[c], %[rb]]\n\t"                                   \
    "ldr %[w2], [%[c], %[rb], lsl #1]\n\t"                           \
    "ldr %[w0], [%[c]], #4\n\t"                                      \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                              \
    TE_A_MAC_3ROWS(xa, 14) TE_A_MAC_3ROWS(xb, 12)                                    \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                              \
    TE_A_MAC_3ROWS(xa, 10) TE_A_MAC_3ROWS(xb, 8)                                     \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                              \
    TE_A_MAC_3ROWS(xa, 6) TE_A_MAC_3ROWS(xb, 4)                                      \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                              \
    TE_A_MAC_3ROWS(xa, 2) TE_A_MAC_3ROWS(xb, 0)
/* clang-format on */
#endif /* TE_TERN_ASM */

#if TE_TERN_ASM
/* A whole sweep over nb row blocks of one plane, in one piece of assembly:
 * for each block (R rows), for each of its G groups (gw words each, the last
 * `last` words), the word loop, then pa[i] += scale * (sum_i >> 14) with the
 * uint8 scales of the block's rows; then on to the next block (codes +R rows,
 * accumulators +R*P, scales +R rows, inputs rewound). pa must start zeroed. */
typedef struct {
    uint32_t *pa;      /* 0: accumulators of the current block */
    const uint8_t *sc; /* 4: scale of row 0 of the current block, current group */
    int32_t gc;        /* 8: groups left in this block */
    int32_t g;         /* 12: groups per row (G), also the stride between rows' scales */
    int32_t gw;        /* 16: words per group */
    int32_t last;      /* 20: words of the last group */
    int32_t bc;        /* 24: blocks left */
    int32_t cstep;     /* 28: R*rb - 4*nw: code pointer to the next block */
    int32_t xback;     /* 32: bytes of input consumed per block */
    int32_t sstep;     /* 36: (R-1)*G: scale pointer to the next block */
} te_t2_sweep;

/* The sweeps address these fields by literal offsets: a layout change must
 * fail to compile, not compute garbage. */
#define TE_TERN_LAYOUT(name, type, field, off) \
    typedef char name[offsetof(type, field) == (off) ? 1 : -1]
TE_TERN_LAYOUT(te_t2_sweep_pa_at_0, te_t2_sweep, pa, 0);
TE_TERN_LAYOUT(te_t2_sweep_sc_at_4, te_t2_sweep, sc, 4);
TE_TERN_LAYOUT(te_t2_sweep_gc_at_8, te_t2_sweep, gc, 8);
TE_TERN_LAYOUT(te_t2_sweep_g_at_12, te_t2_sweep, g, 12);
TE_TERN_LAYOUT(te_t2_sweep_gw_at_16, te_t2_sweep, gw, 16);
TE_TERN_LAYOUT(te_t2_sweep_last_at_20, te_t2_sweep, last, 20);
TE_TERN_LAYOUT(te_t2_sweep_bc_at_24, te_t2_sweep, bc, 24);
TE_TERN_LAYOUT(te_t2_sweep_cstep_at_28, te_t2_sweep, cstep, 28);
TE_TERN_LAYOUT(te_t2_sweep_xback_at_32, te_t2_sweep, xback, 32);
TE_TERN_LAYOUT(te_t2_sweep_sstep_at_36, te_t2_sweep, sstep, 36);

/* The plane sweeps (te_nn_tern_sweep_s8.c): 3 rows x 1 vector or 2 rows x 2
 * interleaved vectors per block. scaled: each group's sum times its uint8
 * scale into pa; folded: one group per row, its sum stored as it is (the scale
 * sits in the output records, te_tern_prep_out). */
void te_t2_sweep_scaled_3rows(const uint8_t *c, int32_t rb, const uint32_t *x, te_t2_sweep *stp);
void te_t2_sweep_scaled_2rows_2vecs(const uint8_t *c, int32_t rb, const uint32_t *x,
                                    te_t2_sweep *stp);
void te_t2_sweep_folded_3rows(const uint8_t *c, int32_t rb, const uint32_t *x, te_t2_sweep *stp);
void te_t2_sweep_folded_2rows_2vecs(const uint8_t *c, int32_t rb, const uint32_t *x,
                                    te_t2_sweep *stp);
#endif /* TE_TERN_ASM */

#endif /* TE_TERN_ASM_H */
