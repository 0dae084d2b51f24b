/* SPDX-License-Identifier: Apache-2.0 */
/* te_tern_lut_s8.c - ternary matrix core by table lookup (the T-MAC /
 * bitnet.cpp idea, written for Cortex-M), used by te_fc_t2_lut_s8 and
 * te_conv_t2_lut_s8. Same weights ("2bit" t2 codes, group scales, planes) and
 * same bytes as the default t2 core; a different speed and scratch trade-off.
 *
 * A code byte holds the codes of 4 consecutive taps. For every 4 inputs a table
 * maps each valid byte b to the partial sum T[b] = sum_m t(field m of b) * x[m];
 * it is built once per input vector and shared by every output row and plane,
 * so one row costs one byte load, one table load and one add per 4 weights.
 *
 *   "h" tables (one vector): 256 uint16 entries, T + 1024;
 *   "w" tables (two vectors, conv pixel pairs or FC input rows): 256 words, the
 *       two vectors' T + 512 in the two 16-bit lanes, so one lookup and one add
 *       serve 8 MACs. A lane holds at most 56 lookups (56 * 1024 < 2^16), then
 *       it is emptied into 32-bit accumulators.
 *
 * Entries are biased non-negative so that two lanes are built with one 32-bit
 * add (no borrow crosses a lane); only the 81 entries of valid bytes (no field
 * 0b10) are written. The bias is removed when a group's sum is scaled.
 *
 * Tables are built TE_LUT_NT at a time; one pass over all rows then adds the
 * chunk's lookups into a per-row group sum. On Thumb-2 that pass is assembly:
 * 8 table bases stay in registers, 3 instructions a lookup. Groups must be a
 * multiple of 4 taps or cover the row (te_tern_lut_ok; the kernels fall back
 * to the default core otherwise).
 */
#include "te_tern_internal.h"

#define TE_LUT_NT 8        /* tables per chunk: one pass over the rows */
#define TE_LUT_HBIAS 1024u /* bias of an h entry */
#define TE_LUT_WBIAS 512u  /* bias of a w lane */
#define TE_LUT_WMAX 56     /* lookups a w lane may hold */

#if defined(__thumb2__) && defined(__GNUC__) && defined(__OPTIMIZE__)
#define TE_LUT_ASM 1
#else
#define TE_LUT_ASM 0
#endif

int32_t te_tern_lut_ok(const te_tern_mm *mm)
{
    return mm->kind == TE_TK_T2 && (mm->n >= mm->k || mm->n % 4 == 0);
}

int32_t te_tern_lut_bytes(int32_t wide, int32_t rows)
{
    /* tables, a group sum per row, then 1 or 2 accumulators per row */
    return TE_LUT_NT * (wide ? 1024 : 512) + 4 * rows * (wide ? 3 : 2);
}

/* ---------------------------------------------------------------- tables */

#if !TE_LUT_ASM
/* Valid high nibbles (fields 2 and 3 each 0b00, 0b01 or 0b11). */
static const uint8_t te_lut_hi[9] = {0, 1, 3, 4, 5, 7, 12, 13, 15};

/* h table of x[0..3] into 128 words (entry b is halfword b). */
static void te_lut_build_h(const int8_t *x, uint32_t *tw)
{
    /* lane arithmetic on whole words: c * 0x10001 puts c in both lanes */
    const uint32_t x0 = (uint32_t)(int32_t)x[0] * 0x10000u, x1 = (uint32_t)(int32_t)x[1];
    const uint32_t b = 512u * 0x10001u;
    /* words of a 16-entry row: entries (2w, 2w+1) of the low nibble, whose
     * fields are (c0, c1); an invalid entry just gets some value */
    const uint32_t l0 = b + x0;                 /* (0,0)  (+x0,0) */
    const uint32_t l1 = b - x0;                 /* -      (-x0,0) */
    const uint32_t l2 = b + x1 * 0x10001u + x0; /* (0,+x1) (+x0,+x1) */
    const uint32_t l3 = b + x1 * 0x10001u - x0; /* -      (-x0,+x1) */
    const uint32_t l6 = b - x1 * 0x10001u + x0; /* (0,-x1) (+x0,-x1) */
    const uint32_t l7 = b - x1 * 0x10001u - x0; /* -      (-x0,-x1) */
    const uint32_t x2 = (uint32_t)(int32_t)x[2] * 0x10001u, x3 = (uint32_t)(int32_t)x[3] * 0x10001u;
    const uint32_t hv[9] = {b,           b + x2, b - x2,      b + x3,     b + x2 + x3,
                            b - x2 + x3, b - x3, b + x2 - x3, b - x2 - x3};
    for (int h = 0; h < 9; ++h) {
        uint32_t *row = tw + 8 * te_lut_hi[h];
        const uint32_t d = hv[h];
        row[0] = l0 + d;
        row[1] = l1 + d;
        row[2] = l2 + d;
        row[3] = l3 + d;
        row[6] = l6 + d;
        row[7] = l7 + d;
    }
}

/* w table of a[0..3] (low lanes) and c[0..3] (high lanes) into 256 words. */
static void te_lut_build_w(const int8_t *a, const int8_t *c, uint32_t *tw)
{
    uint32_t v[4];
    for (int m = 0; m < 4; ++m) { /* (a[m], c[m]) as one word, mod 2^32 */
        v[m] = (uint32_t)(int32_t)a[m] + (uint32_t)(int32_t)c[m] * 0x10000u;
    }
    const uint32_t b = 256u * 0x10001u;
    /* low nibble n = c0 + 4*c1 at the 9 valid positions */
    const uint32_t l0 = b, l1 = b + v[0], l3 = b - v[0];
    const uint32_t l4 = b + v[1], l5 = l4 + v[0], l7 = l4 - v[0];
    const uint32_t l12 = b - v[1], l13 = l12 + v[0], l15 = l12 - v[0];
    const uint32_t hv[9] = {0u,        v[2],        0u - v[2],       v[3], v[2] + v[3], v[3] - v[2],
                            0u - v[3], v[2] - v[3], 0u - v[2] - v[3]};
    for (int h = 0; h < 9; ++h) {
        uint32_t *row = tw + 16 * te_lut_hi[h];
        const uint32_t d = hv[h] + b;
        row[0] = l0 + d;
        row[1] = l1 + d;
        row[3] = l3 + d;
        row[4] = l4 + d;
        row[5] = l5 + d;
        row[7] = l7 + d;
        row[12] = l12 + d;
        row[13] = l13 + d;
        row[15] = l15 + d;
    }
}
#endif

#if TE_LUT_ASM
/* The builders in assembly: GCC spills the nine row values and stores word by
 * word; here the low-nibble values stay in registers and pairs go out with
 * STRD (h: 10 instructions a high-nibble row, w: 15). */

/* h row at byte offset o (8 words a row): words 0-1, 2-3, 6-7 = l + d. */
/* clang-format off */
#define TE_LUT_HROW(d, o0, o1, o3)                                                  \
    "add r3, r6, " d "\n\t" "add lr, r7, " d "\n\t" "strd r3, lr, [r1, #" o0 "]\n\t" \
    "add r3, r8, " d "\n\t" "add lr, r9, " d "\n\t" "strd r3, lr, [r1, #" o1 "]\n\t" \
    "add r3, r10, " d "\n\t" "add lr, r11, " d "\n\t" "strd r3, lr, [r1, #" o3 "]\n\t"
/* clang-format on */

/* te_lut_build_h: x r0, tw r1. Lanes as in the C twin: l (r6-r11) + d. */
__attribute__((naked, noinline)) static void
te_lut_build_h_asm(const int8_t *x __attribute__((unused)), uint32_t *tw __attribute__((unused)))
{
    /* clang-format off */
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        "ldrsb r2, [r0, #0]\n\t"
        "ldrsb r3, [r0, #1]\n\t"
        "ldrsb r4, [r0, #2]\n\t"
        "ldrsb r5, [r0, #3]\n\t"
        "movw r12, #0x0200\n\t"
        "movt r12, #0x0200\n\t"      /* 512 in both lanes */
        "lsl r2, r2, #16\n\t"         /* x0 in the high lane */
        "add r3, r3, r3, lsl #16\n\t" /* x1, x2, x3 in both lanes */
        "add r4, r4, r4, lsl #16\n\t"
        "add r5, r5, r5, lsl #16\n\t"
        "add r6, r12, r2\n\t"
        "sub r7, r12, r2\n\t"
        "add r0, r12, r3\n\t"
        "add r8, r0, r2\n\t"
        "sub r9, r0, r2\n\t"
        "sub r0, r12, r3\n\t"
        "add r10, r0, r2\n\t"
        "sub r11, r0, r2\n\t"
        TE_LUT_HROW("r12", "0", "8", "24")
        "add r0, r12, r4\n\t" TE_LUT_HROW("r0", "32", "40", "56")
        "sub r0, r12, r4\n\t" TE_LUT_HROW("r0", "96", "104", "120")
        "add r12, r12, r5\n\t"
        TE_LUT_HROW("r12", "128", "136", "152")
        "add r0, r12, r4\n\t" TE_LUT_HROW("r0", "160", "168", "184")
        "sub r0, r12, r4\n\t" TE_LUT_HROW("r0", "224", "232", "248")
        "sub r12, r12, r5, lsl #1\n\t"
        TE_LUT_HROW("r12", "384", "392", "408")
        "add r0, r12, r4\n\t" TE_LUT_HROW("r0", "416", "424", "440")
        "sub r0, r12, r4\n\t" TE_LUT_HROW("r0", "480", "488", "504")
        "pop {r4-r11, pc}\n\t");
    /* clang-format on */
}

/* w row at byte offset o (16 words a row): slots 0,1,3,4,5,7,12,13,15. */
/* clang-format off */
#define TE_LUT_WROW(o, o12, o20, o28, o48, o60)                                              \
    "ldr r12, [r3], #4\n\t"                                                                 \
    "add r0, r4, r12\n\t" "strd r12, r0, [r2, #" o "]\n\t"                                 \
    "add r0, r6, r12\n\t" "add r1, r5, r12\n\t" "strd r0, r1, [r2, #" o12 "]\n\t"         \
    "add r0, r7, r12\n\t" "add r1, r8, r12\n\t"                                           \
    "str r0, [r2, #" o20 "]\n\t" "str r1, [r2, #" o28 "]\n\t"                             \
    "add r0, r9, r12\n\t" "add r1, r10, r12\n\t" "strd r0, r1, [r2, #" o48 "]\n\t"        \
    "add r0, r11, r12\n\t" "str r0, [r2, #" o60 "]\n\t"
/* clang-format on */

/* te_lut_build_w: a r0, c r1, tw r2, the 9 high-nibble words d (bias included) r3.
 * Low-nibble values without bias: v0 r4, v1 r5, -v0 r6, v1+v0 r7, v1-v0 r8,
 * -v1 r9, v0-v1 r10, -v0-v1 r11. */
__attribute__((naked, noinline)) static void
te_lut_build_w_asm(const int8_t *a __attribute__((unused)), const int8_t *c __attribute__((unused)),
                   uint32_t *tw __attribute__((unused)), const uint32_t *d __attribute__((unused)))
{
    /* clang-format off */
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        "ldrsb r4, [r0, #0]\n\t"
        "ldrsb r12, [r1, #0]\n\t"
        "add r4, r4, r12, lsl #16\n\t"
        "ldrsb r5, [r0, #1]\n\t"
        "ldrsb r12, [r1, #1]\n\t"
        "add r5, r5, r12, lsl #16\n\t"
        "rsb r6, r4, #0\n\t"
        "add r7, r5, r4\n\t"
        "sub r8, r5, r4\n\t"
        "rsb r9, r5, #0\n\t"
        "sub r10, r4, r5\n\t"
        "sub r11, r9, r4\n\t"
        TE_LUT_WROW("0", "12", "20", "28", "48", "60")
        TE_LUT_WROW("64", "76", "84", "92", "112", "124")
        TE_LUT_WROW("192", "204", "212", "220", "240", "252")
        TE_LUT_WROW("256", "268", "276", "284", "304", "316")
        TE_LUT_WROW("320", "332", "340", "348", "368", "380")
        TE_LUT_WROW("448", "460", "468", "476", "496", "508")
        TE_LUT_WROW("768", "780", "788", "796", "816", "828")
        TE_LUT_WROW("832", "844", "852", "860", "880", "892")
        TE_LUT_WROW("960", "972", "980", "988", "1008", "1020")
        "pop {r4-r11, pc}\n\t");
    /* clang-format on */
}

static void te_lut_build_w_fast(const int8_t *a, const int8_t *c, uint32_t *tw)
{
    const uint32_t v2 = (uint32_t)(int32_t)a[2] + (uint32_t)(int32_t)c[2] * 0x10000u;
    const uint32_t v3 = (uint32_t)(int32_t)a[3] + (uint32_t)(int32_t)c[3] * 0x10000u;
    const uint32_t b = 512u * 0x10001u;
    const uint32_t d[9] = {b,           b + v2, b - v2,      b + v3,     b + v2 + v3,
                           b + v3 - v2, b - v3, b + v2 - v3, b - v2 - v3};
    te_lut_build_w_asm(a, c, tw, d);
}
#define TE_LUT_BUILD_H te_lut_build_h_asm
#define TE_LUT_BUILD_W te_lut_build_w_fast
#else
#define TE_LUT_BUILD_H te_lut_build_h
#define TE_LUT_BUILD_W te_lut_build_w
#endif

/* -------------------------------------------------------------- row passes */

/* acc[r] (= 0 first when `store`) += sum_{j < nt} table_j[codes[r*rb + j]]
 * for every row (C twin of the assembly, and the path for chunks of fewer than
 * 8 tables). */
static void te_lut_rows_c(const uint8_t *codes, int32_t rb, uint32_t *acc, int32_t rows,
                          const uint32_t *tables, int32_t nt, int wide, int store)
{
    const uint8_t *t8 = (const uint8_t *)tables;
    for (int32_t r = 0; r < rows; ++r, codes += rb) {
        uint32_t s = store ? 0u : acc[r];
        for (int32_t j = 0; j < nt; ++j) {
            const uint32_t b = codes[j];
            if (wide) {
                s += tables[256 * j + b];
            } else {
                uint16_t e;
                memcpy(&e, t8 + 512 * j + 2 * b, sizeof(e));
                s += e;
            }
        }
        acc[r] = s;
    }
}

#if TE_LUT_ASM
/* One lookup: byte j of the row indexes table j (its base in a register). */
/* clang-format off */
#define TE_LUT_LOOKUP(j, base, ld, lsl)            \
    "ldrb lr, [r0, #" #j "]\n\t"                   \
    ld " lr, [" base ", lr, lsl #" lsl "]\n\t"     \
    "add r12, r12, lr\n\t"
#define TE_LUT_PASS(start, ld, lsl, s1, s2, s3, s4, s5, s6, s7)                       \
    "push {r4-r11, lr}\n\t"                                                           \
    "ldr r4, [sp, #36]\n\t"                                                           \
    "add r5, r4, #" s1 "\n\t"                                                         \
    "add r6, r4, #" s2 "\n\t"                                                         \
    "add r7, r4, #" s3 "\n\t"                                                         \
    "add r8, r4, #" s4 "\n\t"                                                         \
    "add r9, r4, #" s5 "\n\t"                                                         \
    "add r10, r4, #" s6 "\n\t"                                                        \
    "add r11, r4, #" s7 "\n\t"                                                        \
    "1:\n\t"                                                                          \
    start "\n\t"                                                                      \
    TE_LUT_LOOKUP(0, "r4", ld, lsl) TE_LUT_LOOKUP(1, "r5", ld, lsl)                   \
    TE_LUT_LOOKUP(2, "r6", ld, lsl) TE_LUT_LOOKUP(3, "r7", ld, lsl)                   \
    TE_LUT_LOOKUP(4, "r8", ld, lsl) TE_LUT_LOOKUP(5, "r9", ld, lsl)                   \
    TE_LUT_LOOKUP(6, "r10", ld, lsl) TE_LUT_LOOKUP(7, "r11", ld, lsl)                 \
    "add r0, r0, r1\n\t"                                                              \
    "str r12, [r2], #4\n\t"                                                           \
    "cmp r2, r3\n\t"                                                                  \
    "bne 1b\n\t"                                                                      \
    "pop {r4-r11, pc}\n\t"

/* acc[r] += 8 lookups for r in [acc, acc_end) (the _s passes store instead):
 * codes r0 (row stride r1), acc r2, acc_end r3, tables on the stack. 29
 * instructions a row. */
#define TE_LUT_PASS_FN(name, start, ...)                                                        \
    __attribute__((naked, noinline)) static void name(                                          \
        const uint8_t *codes __attribute__((unused)), int32_t rb __attribute__((unused)),         \
        uint32_t *acc __attribute__((unused)), const uint32_t *acc_end __attribute__((unused)),   \
        const uint32_t *tables __attribute__((unused)))                                         \
    {                                                                                           \
        __asm__ volatile(TE_LUT_PASS(start, __VA_ARGS__));                                     \
    }
/* clang-format on */
#define TE_LUT_H "ldrh", "1", "512", "1024", "1536", "2048", "2560", "3072", "3584"
#define TE_LUT_W "ldr", "2", "1024", "2048", "3072", "4096", "5120", "6144", "7168"
TE_LUT_PASS_FN(te_lut_pass_h8, "ldr r12, [r2]", TE_LUT_H)
TE_LUT_PASS_FN(te_lut_pass_h8s, "mov r12, #0", TE_LUT_H)
TE_LUT_PASS_FN(te_lut_pass_w8, "ldr r12, [r2]", TE_LUT_W)
TE_LUT_PASS_FN(te_lut_pass_w8s, "mov r12, #0", TE_LUT_W)
#endif

static void te_lut_rows(const uint8_t *codes, int32_t rb, uint32_t *acc, int32_t rows,
                        const uint32_t *tables, int32_t nt, int wide, int store)
{
#if TE_LUT_ASM
    if (nt == TE_LUT_NT) {
        (wide ? (store ? te_lut_pass_w8s : te_lut_pass_w8)
              : (store ? te_lut_pass_h8s : te_lut_pass_h8))(codes, rb, acc, acc + rows, tables);
        return;
    }
#endif
    te_lut_rows_c(codes, rb, acc, rows, tables, nt, wide, store);
}

/* ------------------------------------------------------------------- core */

/* Moves the group sums (n lookups) into the accumulators, scaled by group g
 * (first: the accumulators start here). gsum may be acc itself (one lane).
 * One plain loop per case, so that each compiles to a few instructions a row. */
static void te_lut_fold(const te_tern_mm *mm, int wide, int32_t g, int32_t n, const uint32_t *gsum,
                        uint32_t *acc, int32_t rows, int first)
{
    const te_tern_weights *w = mm->w;
    const int32_t G = mm->g;
    const uint32_t bias = (wide ? TE_LUT_WBIAS : TE_LUT_HBIAS) * (uint32_t)n;
    if (w->scale_bytes != 1 && !mm->fold) { /* uint16 scales: the general loop */
        for (int32_t r = 0; r < rows; ++r) {
            const uint32_t sc = te_tern_scale(w, r * G + g), s = gsum[r];
            if (wide) {
                acc[2 * r] = (first ? 0u : acc[2 * r]) + sc * ((s & 0xFFFFu) - bias);
                acc[2 * r + 1] = (first ? 0u : acc[2 * r + 1]) + sc * ((s >> 16) - bias);
            } else {
                acc[r] = (first ? 0u : acc[r]) + sc * (s - bias);
            }
        }
        return;
    }
    const uint8_t *sc = (const uint8_t *)w->scales + g;
    const int32_t step = mm->fold ? 0 : G; /* folded: the scale waits in the output record */
    static const uint8_t one = 1;
    if (mm->fold) {
        sc = &one;
    }
    const uint32_t *end = gsum + rows;
    if (wide && first) {
        for (; gsum < end; ++gsum, sc += step, acc += 2) {
            acc[0] = *sc * ((*gsum & 0xFFFFu) - bias);
            acc[1] = *sc * ((*gsum >> 16) - bias);
        }
    } else if (wide) {
        for (; gsum < end; ++gsum, sc += step, acc += 2) {
            acc[0] += *sc * ((*gsum & 0xFFFFu) - bias);
            acc[1] += *sc * ((*gsum >> 16) - bias);
        }
    } else if (first) {
        for (; gsum < end; ++gsum, sc += step, ++acc) {
            *acc = *sc * (*gsum - bias);
        }
    } else {
        for (; gsum < end; ++gsum, sc += step, ++acc) {
            *acc += *sc * (*gsum - bias);
        }
    }
}

/* Copies 4*nt taps from x + t0 (zeros past k) when they would run past k. */
static const int8_t *te_lut_taps(const int8_t *x, int32_t t0, int32_t nt, int32_t k, int8_t *pad)
{
    if (t0 + 4 * nt <= k) {
        return x + t0;
    }
    for (int32_t i = 0; i < 4 * nt; ++i) {
        pad[i] = t0 + i < k ? x[t0 + i] : 0;
    }
    return pad;
}

void te_tern_lut_mm(const te_tern_mm *mm, const int8_t *x0, const int8_t *x1, uint32_t *scratch,
                    uint32_t *acc)
{
    const int wide = x1 != 0;
    const int32_t tables_per_row = mm->rb, rows = mm->active * mm->o;
    const int32_t gt = mm->n >= mm->k ? tables_per_row : mm->n / 4; /* tables a group */
    uint32_t *tables = scratch;
    /* one lane, one group: the sums collect in acc itself */
    uint32_t *gsum = !wide && gt == tables_per_row ? acc : tables + TE_LUT_NT * (wide ? 256 : 128);
    int8_t pad0[4 * TE_LUT_NT], pad1[4 * TE_LUT_NT];
    int first = 1; /* no fold into acc yet */
    int32_t j = 0, g = 0;
    while (j < tables_per_row) {
        const int32_t gend = j + gt < tables_per_row ? j + gt : tables_per_row;
        int32_t held = 0; /* lookups in gsum */
        while (j < gend) {
            int32_t nt = gend - j < TE_LUT_NT ? gend - j : TE_LUT_NT;
            if (wide && nt > TE_LUT_WMAX - held) {
                te_lut_fold(mm, wide, g, held, gsum, acc, rows, first);
                held = 0;
                first = 0;
            }
            const int8_t *a = te_lut_taps(x0, 4 * j, nt, mm->k, pad0);
            if (wide) {
                const int8_t *c = te_lut_taps(x1, 4 * j, nt, mm->k, pad1);
                for (int32_t t = 0; t < nt; ++t) {
                    TE_LUT_BUILD_W(a + 4 * t, c + 4 * t, tables + 256 * t);
                }
            } else {
                for (int32_t t = 0; t < nt; ++t) {
                    TE_LUT_BUILD_H(a + 4 * t, tables + 128 * t);
                }
            }
            te_lut_rows(mm->w->codes + j, mm->rb, gsum, rows, tables, nt, wide, held == 0);
            j += nt;
            held += nt;
        }
        te_lut_fold(mm, wide, g, held, gsum, acc, rows, first);
        first = 0;
        ++g;
    }
    /* planes into plane 0's rows: acc[o] (or acc[2o], acc[2o+1]); with folded
     * output records (te_tern_prep_out) scale and shift are applied there */
    if (!mm->fold && (mm->active > 1 || mm->w->plane_shift)) {
        const int32_t q = wide ? 2 : 1;
        for (int32_t o = 0; o < mm->o; ++o) {
            for (int32_t i = 0; i < q; ++i) {
                uint32_t s = 0;
                for (int32_t p = 0; p < mm->active; ++p) {
                    const int32_t r = p * mm->o + o;
                    s += acc[q * r + i] << te_tern_pshift(mm->w, r);
                }
                acc[q * o + i] = s;
            }
        }
    }
}

/* Output bytes of one or two vectors from the accumulators of te_tern_lut_mm. */
void te_tern_lut_out(const te_tern_mm *mm, const uint32_t *acc, int8_t *out0, int8_t *out1)
{
#if TE_USE_DSP
    te_tern_outputs(mm, out1 ? 2 : 1, acc, 0, 0, out0, out1);
#else
    const int32_t q = out1 ? 2 : 1;
    for (int32_t o = 0; o < mm->o; ++o) {
        const uint32_t b = mm->bias ? (uint32_t)mm->bias[o] : 0u;
        out0[o] =
            te_tern_out(b + acc[q * o], mm->mult[o], mm->shift[o], mm->output_offset, mm->act);
        if (out1) {
            out1[o] = te_tern_out(b + acc[q * o + 1], mm->mult[o], mm->shift[o], mm->output_offset,
                                  mm->act);
        }
    }
#endif
}
