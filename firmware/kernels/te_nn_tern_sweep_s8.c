/* SPDX-License-Identifier: Apache-2.0 */
/* te_nn_tern_sweep_s8.c - the t2 plane sweeps of the ternary DSP core: every
 * full row block of one plane in one piece of assembly (te_t2_sweep holds the
 * loop state the registers have no room for). te_tern_mm_dsp runs them when
 * the scales are uint8 and a group fits one flush (<= 32 code words); the
 * rows they leave go through the row blocks of te_nn_tern_dsp_s8.c.
 */
#include "te_tern_asm.h"

#if TE_TERN_ASM

/* clang-format off */
#define TE_A_GROUP_START                                             \
    "ldr %[d], %[stp]\n\t"                                           \
    "ldr %[n], [%[d], #8]\n\t"                                       \
    "cmp %[n], #1\n\t"                                               \
    "ite eq\n\t"                                                     \
    "ldreq %[n], [%[d], #20]\n\t"                                    \
    "ldrne %[n], [%[d], #16]\n\t"
#define TE_A_SFLUSH(sr, wr, off)                                     \
    "asrs %[" #sr "], %[" #sr "], #14\n\t"                           \
    "ldr %[n], [%[xa], #" #off "]\n\t"                               \
    "mla %[n], %[" #wr "], %[" #sr "], %[n]\n\t"                     \
    "str %[n], [%[xa], #" #off "]\n\t"                               \
    "movs %[" #sr "], #0\n\t"
#define TE_A_BLOCK_END(accbytes)                                     \
    "ldr %[n], [%[d], #8]\n\t"                                       \
    "subs %[n], %[n], #1\n\t"                                        \
    "str %[n], [%[d], #8]\n\t"                                       \
    "bne 2b\n\t"                                                     \
    "ldr %[n], [%[d], #28]\n\t"                                      \
    "add %[c], %[c], %[n]\n\t"                                       \
    "ldr %[n], [%[d], #32]\n\t"                                      \
    "sub %[x], %[x], %[n]\n\t"                                       \
    "ldr %[n], [%[d], #36]\n\t"                                      \
    "ldr %[xa], [%[d], #4]\n\t"                                      \
    "add %[xa], %[xa], %[n]\n\t"                                     \
    "str %[xa], [%[d], #4]\n\t"                                      \
    "ldr %[xa], [%[d], #0]\n\t"                                      \
    "add %[xa], %[xa], #" #accbytes "\n\t"                           \
    "str %[xa], [%[d], #0]\n\t"                                      \
    "ldr %[n], [%[d], #12]\n\t"                                      \
    "str %[n], [%[d], #8]\n\t"                                       \
    "ldr %[n], [%[d], #24]\n\t"                                      \
    "subs %[n], %[n], #1\n\t"                                        \
    "str %[n], [%[d], #24]\n\t"                                      \
    "bne 2b\n\t"
/* clang-format on */

void te_t2_sweep_scaled_3rows(const uint8_t *c, int32_t rb, const uint32_t *x, te_t2_sweep *stp)
{
    int32_t s0 = 0, s1 = 0, s2 = 0, n;
    uint32_t w0, w1, w2, xa, xb, d, mask = 0xC000C000u;
    /* clang-format off */
    __asm__ volatile(
        "2:\n\t"
        TE_A_GROUP_START
        "1:\n\t"
        TE_A_WORD_3ROWS
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "ldr %[d], %[stp]\n\t"
        "ldr %[xb], [%[d], #12]\n\t"
        "ldr %[xa], [%[d], #4]\n\t"
        "ldrb %[w0], [%[xa]]\n\t"
        "ldrb %[w1], [%[xa], %[xb]]\n\t"
        "ldrb %[w2], [%[xa], %[xb], lsl #1]\n\t"
        "adds %[xa], %[xa], #1\n\t"
        "str %[xa], [%[d], #4]\n\t"
        "ldr %[xa], [%[d], #0]\n\t"
        TE_A_SFLUSH(s0, w0, 0) TE_A_SFLUSH(s1, w1, 4) TE_A_SFLUSH(s2, w2, 8)
        TE_A_BLOCK_END(12)
        : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [c] "+r"(c), [x] "+r"(x), [n] "=&r"(n),
          [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [xa] "=&r"(xa), [xb] "=&r"(xb),
          [d] "=&r"(d)
        : [rb] "r"(rb), [mask] "r"(mask), [stp] "m"(stp)
        : "cc", "memory");
    /* clang-format on */
}

void te_t2_sweep_scaled_2rows_2vecs(const uint8_t *c, int32_t rb, const uint32_t *x,
                                    te_t2_sweep *stp)
{
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, n;
    uint32_t w0, w1, xa, xb, d, mask = 0xC000C000u;
    /* clang-format off */
    __asm__ volatile(
        "2:\n\t"
        TE_A_GROUP_START
        "1:\n\t"
        "ldr %[w1], [%[c], %[rb]]\n\t"
        "ldr %[w0], [%[c]], #4\n\t"
        TE_A_MAC_2ROWS_2VECS(14) TE_A_MAC_2ROWS_2VECS(12) TE_A_MAC_2ROWS_2VECS(10) TE_A_MAC_2ROWS_2VECS(8) TE_A_MAC_2ROWS_2VECS(6) TE_A_MAC_2ROWS_2VECS(4) TE_A_MAC_2ROWS_2VECS(2) TE_A_MAC_2ROWS_2VECS(0)
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "ldr %[d], %[stp]\n\t"
        "ldr %[xb], [%[d], #12]\n\t"
        "ldr %[xa], [%[d], #4]\n\t"
        "ldrb %[w0], [%[xa]]\n\t"
        "ldrb %[w1], [%[xa], %[xb]]\n\t"
        "adds %[xa], %[xa], #1\n\t"
        "str %[xa], [%[d], #4]\n\t"
        "ldr %[xa], [%[d], #0]\n\t"
        TE_A_SFLUSH(s0, w0, 0) TE_A_SFLUSH(s1, w0, 4) TE_A_SFLUSH(s2, w1, 8) TE_A_SFLUSH(s3, w1, 12)
        TE_A_BLOCK_END(16)
        : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [c] "+r"(c), [x] "+r"(x),
          [n] "=&r"(n), [w0] "=&r"(w0), [w1] "=&r"(w1), [xa] "=&r"(xa), [xb] "=&r"(xb),
          [d] "=&r"(d)
        : [rb] "r"(rb), [mask] "r"(mask), [stp] "m"(stp)
        : "cc", "memory");
    /* clang-format on */
}

/* Sweeps for one group per row and one plane with the scales folded into the
 * output records (te_tern_prep_out): each block is `last` words, then the
 * sums, shifted back by 14, are stored as they are. */
/* clang-format off */
#define TE_A_FSTORE(sr, off)                                         \
    "asrs %[" #sr "], %[" #sr "], #14\n\t"                           \
    "str %[" #sr "], [%[xa], #" #off "]\n\t"                         \
    "movs %[" #sr "], #0\n\t"
#define TE_A_FBLOCK_END(accbytes)                                    \
    "ldr %[n], [%[d], #28]\n\t"                                      \
    "add %[c], %[c], %[n]\n\t"                                       \
    "ldr %[n], [%[d], #32]\n\t"                                      \
    "sub %[x], %[x], %[n]\n\t"                                       \
    "add %[xa], %[xa], #" #accbytes "\n\t"                           \
    "str %[xa], [%[d], #0]\n\t"                                      \
    "ldr %[n], [%[d], #24]\n\t"                                      \
    "subs %[n], %[n], #1\n\t"                                        \
    "str %[n], [%[d], #24]\n\t"                                      \
    "bne 2b\n\t"
/* clang-format on */

void te_t2_sweep_folded_3rows(const uint8_t *c, int32_t rb, const uint32_t *x, te_t2_sweep *stp)
{
    int32_t s0 = 0, s1 = 0, s2 = 0, n;
    uint32_t w0, w1, w2, xa, xb, d, mask = 0xC000C000u;
    /* clang-format off */
    __asm__ volatile(
        "2:\n\t"
        "ldr %[d], %[stp]\n\t"
        "ldr %[n], [%[d], #20]\n\t"
        "1:\n\t"
        TE_A_WORD_3ROWS
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "ldr %[d], %[stp]\n\t"
        "ldr %[xa], [%[d], #0]\n\t"
        TE_A_FSTORE(s0, 0) TE_A_FSTORE(s1, 4) TE_A_FSTORE(s2, 8)
        TE_A_FBLOCK_END(12)
        : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [c] "+r"(c), [x] "+r"(x), [n] "=&r"(n),
          [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [xa] "=&r"(xa), [xb] "=&r"(xb),
          [d] "=&r"(d)
        : [rb] "r"(rb), [mask] "r"(mask), [stp] "m"(stp)
        : "cc", "memory");
    /* clang-format on */
}

void te_t2_sweep_folded_2rows_2vecs(const uint8_t *c, int32_t rb, const uint32_t *x,
                                    te_t2_sweep *stp)
{
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, n;
    uint32_t w0, w1, xa, xb, d, mask = 0xC000C000u;
    /* clang-format off */
    __asm__ volatile(
        "2:\n\t"
        "ldr %[d], %[stp]\n\t"
        "ldr %[n], [%[d], #20]\n\t"
        "1:\n\t"
        "ldr %[w1], [%[c], %[rb]]\n\t"
        "ldr %[w0], [%[c]], #4\n\t"
        TE_A_MAC_2ROWS_2VECS(14) TE_A_MAC_2ROWS_2VECS(12) TE_A_MAC_2ROWS_2VECS(10) TE_A_MAC_2ROWS_2VECS(8) TE_A_MAC_2ROWS_2VECS(6) TE_A_MAC_2ROWS_2VECS(4) TE_A_MAC_2ROWS_2VECS(2) TE_A_MAC_2ROWS_2VECS(0)
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        "ldr %[d], %[stp]\n\t"
        "ldr %[xa], [%[d], #0]\n\t"
        TE_A_FSTORE(s0, 0) TE_A_FSTORE(s1, 4) TE_A_FSTORE(s2, 8) TE_A_FSTORE(s3, 12)
        TE_A_FBLOCK_END(16)
        : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [c] "+r"(c), [x] "+r"(x),
          [n] "=&r"(n), [w0] "=&r"(w0), [w1] "=&r"(w1), [xa] "=&r"(xa), [xb] "=&r"(xb),
          [d] "=&r"(d)
        : [rb] "r"(rb), [mask] "r"(mask), [stp] "m"(stp)
        : "cc", "memory");
    /* clang-format on */
}
#endif /* TE_TERN_ASM */
