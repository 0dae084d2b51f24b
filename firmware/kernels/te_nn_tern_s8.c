/* te_nn_tern_s8.c - the shared matrix core of the ternary FC and CONV_2D kernels.
 *
 * A layer is a matrix of O rows by K taps (te_tern_mm). The drivers hand it one
 * input vector (an FC row, or a conv patch gathered im2col style) or two at a
 * time, and it writes one int8 output per row and vector.
 *
 * Portable path: per tap, decode the field and multiply-add (any core).
 *
 * DSP path, t2/to ("2bit" codes): the input vector is widened once to int16 and
 * permuted so that word m of every 16-tap block holds (x[m], x[m+8]). In a
 * little-endian 32-bit word of codes, weight m sits at bits 2m+1..2m and weight
 * m+8 at bits 2m+17..2m+16, so one AND with a shifted operand,
 *     (w << (14 - 2m)) & 0xC000C000,
 * puts both 2-bit codes at the top of the two int16 lanes: (t[m]*2^14, t[m+8]*2^14),
 * sign included (0b01 -> +16384, 0b11 -> -16384, 0b00 -> 0). One SMLAD then adds
 * 2^14 * (t[m]*x[m] + t[m+8]*x[m+8]). So two weights cost one AND and one SMLAD,
 * the input word is shared by all rows of a pass (4 rows x 1 vector, or 2 rows x
 * 2 vectors), and one word load of codes serves 16 weights. The 2^14-scaled sums
 * are exact and are shifted back at every group end, or every 32 words (512 taps,
 * |sum| <= 512 * 128 * 2^14 = 2^30), then multiplied by the group scale.
 *
 * DSP path, p2 ("int4" nibbles): the input is widened to natural int16 pairs
 * (x[2j], x[2j+1]); a 256-entry table (built per call) maps a code byte to the
 * int16 pair of effective weights (sign * 2^(levels-|v|)), consumed by SMLAD.
 *
 * Both paths accumulate modulo 2^32 in uint32_t, so they agree bit for bit with
 * each other and with the exact integer contract whenever the final accumulator
 * fits in int32 (which the ternary pass guarantees).
 */
#include "te_tern_internal.h"

#if defined(__GNUC__)
#define TE_TERN_INLINE static inline __attribute__((always_inline))
#else
#define TE_TERN_INLINE static inline
#endif

/* Words between flushes of the 2^14-scaled t2 sums (<= 1023 taps). */
#define TE_T2_FLUSH_WORDS 32

static int32_t te_tern_min(int32_t a, int32_t b) { return a < b ? a : b; }

te_status te_tern_mm_init(te_tern_mm *mm, int32_t kind, const te_tern_weights *w, int32_t o,
                          int32_t k, const int32_t *bias, const te_pc_quant *quant,
                          int32_t output_offset, te_range act)
{
    if (!w || !w->codes || !w->scales || !quant || !quant->multiplier || !quant->shift ||
        o <= 0 || k <= 0 || w->group <= 0 || (w->scale_bytes != 1 && w->scale_bytes != 2) ||
        act.min > act.max) {
        return TE_ERR_ARG;
    }
    mm->planes = 1;
    mm->active = 1;
    if (kind == TE_TK_T2) {
        if (w->planes < 1 || w->active_planes < 1 || w->active_planes > w->planes) {
            return TE_ERR_ARG;
        }
        mm->planes = w->planes;
        mm->active = w->active_planes;
    } else if (kind == TE_TK_TO) {
        if (!w->offset) {
            return TE_ERR_ARG;
        }
    } else if (kind == TE_TK_P2) {
        if (w->levels < 1 || w->levels > 7) {
            return TE_ERR_ARG;
        }
    } else {
        return TE_ERR_ARG;
    }
    mm->kind = kind;
    mm->k = k;
    mm->o = o;
    mm->rb = kind == TE_TK_P2 ? (k + 1) / 2 : (k + 3) / 4;
    mm->n = w->group;
    mm->g = (k + w->group - 1) / w->group;
    mm->w = w;
    mm->bias = bias;
    mm->mult = quant->multiplier;
    mm->shift = quant->shift;
    mm->output_offset = output_offset;
    mm->act = act;
    mm->rec = 0;
    mm->rec_short = 0;
    mm->p2 = 0;
    mm->fold = 0;
    mm->simple_out = act.min == -128 && act.max == 127;
    for (int32_t i = 0; i < o && mm->simple_out; ++i) {
        mm->simple_out = quant->shift[i] <= 0;
    }
    return TE_OK;
}

int32_t te_tern_vec_bytes(int32_t kind, int32_t k)
{
    const int32_t taps = kind == TE_TK_P2 ? TE_P2_WORD_TAPS : TE_T2_WORD_TAPS;
    return ((k + taps - 1) / taps) * taps * 2;
}

int te_tern_dsp_ok(const te_tern_mm *mm)
{
    const int32_t taps = mm->kind == TE_TK_P2 ? TE_P2_WORD_TAPS : TE_T2_WORD_TAPS;
    if (mm->kind == TE_TK_P2 && !mm->p2) {
        return 0; /* p2 without its block functions: the portable loop */
    }
    return mm->n >= mm->k || mm->n % taps == 0;
}

/* ------------------------------------------------------------------ portable */

/* Effective p2 weight of a nibble: sign(v) * 2^(levels - |v|), 0 for v == 0. */
static int32_t te_p2_weight(uint32_t nibble, int32_t levels)
{
    const int32_t v = (int32_t)((nibble & 15u) ^ 8u) - 8;
    if (v == 0) {
        return 0;
    }
    int32_t sh = levels - (v < 0 ? -v : v);
    if (sh < 0) {
        sh = 0; /* |v| > levels is invalid input; stay defined */
    }
    return v < 0 ? -(1 << sh) : (1 << sh);
}

/* Code i of a "2bit" row as -1, 0, +1 (the invalid 0b10 reads -2, as numpy's unpack would). */
static inline int32_t te_t2_code(const uint8_t *c, int32_t i)
{
    return (int32_t)((((uint32_t)c[i >> 2] >> ((i & 3) * 2)) & 3u) ^ 2u) - 2;
}

/* sum_{i0 <= i < i1} t[i] * x[i] for one 2-bit code row (exact, small). */
static int32_t te_t2_span(const uint8_t *c, const int8_t *x, int32_t i0, int32_t i1)
{
    int32_t s = 0;
    int32_t i = i0;
    for (; i < i1 && (i & 3); ++i) {
        s += te_t2_code(c, i) * x[i];
    }
    for (; i + 4 <= i1; i += 4) {
        const uint32_t b = c[i >> 2];
        s += ((int32_t)((b & 3u) ^ 2u) - 2) * x[i];
        s += ((int32_t)(((b >> 2) & 3u) ^ 2u) - 2) * x[i + 1];
        s += ((int32_t)(((b >> 4) & 3u) ^ 2u) - 2) * x[i + 2];
        s += ((int32_t)(((b >> 6) & 3u) ^ 2u) - 2) * x[i + 3];
    }
    for (; i < i1; ++i) {
        s += te_t2_code(c, i) * x[i];
    }
    return s;
}

uint32_t te_tern_row_portable(const te_tern_mm *mm, int32_t o, const int8_t *x)
{
    const te_tern_weights *w = mm->w;
    const int32_t k = mm->k, n = mm->n, g_count = mm->g;
    uint32_t total = 0;
    if (mm->kind == TE_TK_P2) {
        const uint8_t *c = w->codes + o * mm->rb;
        for (int32_t g = 0; g < g_count; ++g) {
            const int32_t i1 = te_tern_min(g * n + n, k);
            int32_t s = 0;
            for (int32_t i = g * n; i < i1; ++i) {
                s += te_p2_weight((uint32_t)c[i >> 1] >> ((i & 1) * 4), w->levels) * x[i];
            }
            total += te_tern_scale(w, o * g_count + g) * (uint32_t)s;
        }
        return total;
    }
    for (int32_t p = 0; p < mm->active; ++p) {
        const int32_t row = p * mm->o + o;
        const uint8_t *c = w->codes + row * mm->rb;
        uint32_t pacc = 0;
        for (int32_t g = 0; g < g_count; ++g) {
            const int32_t s = te_t2_span(c, x, g * n, te_tern_min(g * n + n, k));
            pacc += te_tern_scale(w, row * g_count + g) * (uint32_t)s;
        }
        total += pacc << te_tern_pshift(w, row);
    }
    if (mm->kind == TE_TK_TO) {
        int32_t sum = 0;
        for (int32_t i = 0; i < k; ++i) {
            sum += x[i];
        }
        total += (uint32_t)w->offset[o] * (uint32_t)sum;
    }
    return total;
}

void te_tern_vec_portable(const te_tern_mm *mm, const int8_t *x, int8_t *out)
{
    for (int32_t o = 0; o < mm->o; ++o) {
        const uint32_t acc = (mm->bias ? (uint32_t)mm->bias[o] : 0u) + te_tern_row_portable(mm, o, x);
        out[o] = te_tern_out(acc, mm->mult[o], mm->shift[o], mm->output_offset, mm->act);
    }
}

/* ----------------------------------------------------------------------- DSP */
#if TE_USE_DSP

static inline uint32_t te_tern_rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline uint32_t te_lo16(int32_t v) { return (uint32_t)v & 0xFFFFu; }

/* Words of zeros (newlib-nano's memset goes byte by byte). */
static inline void te_tern_zero(uint32_t *p, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        TE_TERN_KEEP_LOOP();
        p[i] = 0;
    }
}

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

void te_p2_build_table(int32_t levels, uint32_t *tbl)
{
    int32_t e[16];
    for (uint32_t v = 0; v < 16; ++v) {
        e[v] = te_p2_weight(v, levels);
    }
    for (uint32_t b = 0; b < 256; ++b) {
        tbl[b] = te_lo16(e[b & 15u]) | ((uint32_t)e[b >> 4] << 16);
    }
}

/* ---- t2 inner loops: n >= 1 words of 16 taps; s[] hold 2^14-scaled sums ----
 *
 * On Thumb-2 cores with the DSP extension the two main loops are written out in
 * assembly: they need 14 registers (every allocatable one), and GCC, left to
 * itself, spills in them. The C twins below compute exactly the same sums (the
 * same products, added modulo 2^32) and are what the emulated-DSP host build
 * runs; the QEMU tests run the assembly. */
/* Only in optimized builds: at -O0 GCC keeps r7 as the frame pointer and cannot
 * give the loops their 14 registers. */
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__) && defined(__GNUC__) && defined(__OPTIMIZE__)
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
#define TE_A31(xr, sh)                                   \
    "and %[d], %[mask], %[w0], lsl #" #sh "\n\t"         \
    "smlad %[s0], %[" #xr "], %[d], %[s0]\n\t"           \
    "and %[d], %[mask], %[w1], lsl #" #sh "\n\t"         \
    "smlad %[s1], %[" #xr "], %[d], %[s1]\n\t"           \
    "and %[d], %[mask], %[w2], lsl #" #sh "\n\t"         \
    "smlad %[s2], %[" #xr "], %[d], %[s2]\n\t"
#define TE_A22(sh)                                       \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                  \
    "and %[d], %[mask], %[w0], lsl #" #sh "\n\t"         \
    "smlad %[s0], %[xa], %[d], %[s0]\n\t"                \
    "smlad %[s1], %[xb], %[d], %[s1]\n\t"                \
    "and %[d], %[mask], %[w1], lsl #" #sh "\n\t"         \
    "smlad %[s2], %[xa], %[d], %[s2]\n\t"                \
    "smlad %[s3], %[xb], %[d], %[s3]\n\t"
#endif

/* 3 rows (stride rb) x 1 vector: per word 3 code loads, 4 LDRD of inputs,
 * 24 AND + 24 SMLAD for 48 MACs. */
TE_TERN_INLINE void te_t2_k31(const uint8_t *c, int32_t rb, const uint32_t *x, int32_t n,
                              int32_t *s)
{
    int32_t s0 = s[0], s1 = s[1], s2 = s[2];
    uint32_t mask = 0xC000C000u;
    TE_T2_MASK(mask);
#if TE_TERN_ASM
    uint32_t w0, w1, w2, xa, xb, d;
    __asm__ volatile(
        "1:\n\t"
        "ldr %[w1], [%[c], %[rb]]\n\t"
        "ldr %[w2], [%[c], %[rb], lsl #1]\n\t"
        "ldr %[w0], [%[c]], #4\n\t"
        "ldrd %[xa], %[xb], [%[x]], #8\n\t"
        TE_A31(xa, 14) TE_A31(xb, 12)
        "ldrd %[xa], %[xb], [%[x]], #8\n\t"
        TE_A31(xa, 10) TE_A31(xb, 8)
        "ldrd %[xa], %[xb], [%[x]], #8\n\t"
        TE_A31(xa, 6) TE_A31(xb, 4)
        "ldrd %[xa], %[xb], [%[x]], #8\n\t"
        TE_A31(xa, 2) TE_A31(xb, 0)
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [c] "+r"(c), [x] "+r"(x), [n] "+r"(n),
          [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [xa] "=&r"(xa), [xb] "=&r"(xb),
          [d] "=&r"(d)
        : [rb] "r"(rb), [mask] "r"(mask)
        : "cc", "memory");
#else
    for (; n > 0; --n) {
        const uint32_t w0 = te_tern_rd32(c), w1 = te_tern_rd32(c + rb), w2 = te_tern_rd32(c + 2 * rb);
        c += 4;
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
    }
#endif
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
}

/* 2 rows x 2 vectors, interleaved (word m of vector q at x[2m + q]):
 * s = {r0q0, r0q1, r1q0, r1q1}; per word 2 code loads, 8 LDRD, 16 AND and
 * 32 SMLAD for 64 MACs: each decoded pair feeds both vectors. */
TE_TERN_INLINE void te_t2_k22(const uint8_t *c, int32_t rb, const uint32_t *x, int32_t n,
                              int32_t *s)
{
    int32_t s00 = s[0], s01 = s[1], s10 = s[2], s11 = s[3];
    uint32_t mask = 0xC000C000u;
    TE_T2_MASK(mask);
#if TE_TERN_ASM
    uint32_t w0, w1, xa, xb, d;
    __asm__ volatile(
        "1:\n\t"
        "ldr %[w1], [%[c], %[rb]]\n\t"
        "ldr %[w0], [%[c]], #4\n\t"
        TE_A22(14) TE_A22(12) TE_A22(10) TE_A22(8) TE_A22(6) TE_A22(4) TE_A22(2) TE_A22(0)
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [s0] "+r"(s00), [s1] "+r"(s01), [s2] "+r"(s10), [s3] "+r"(s11), [c] "+r"(c),
          [x] "+r"(x), [n] "+r"(n), [w0] "=&r"(w0), [w1] "=&r"(w1), [xa] "=&r"(xa),
          [xb] "=&r"(xb), [d] "=&r"(d)
        : [rb] "r"(rb), [mask] "r"(mask)
        : "cc", "memory");
#else
    for (; n > 0; --n) {
        const uint32_t w0 = te_tern_rd32(c), w1 = te_tern_rd32(c + rb);
        c += 4;
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
    }
#endif
    s[0] = s00;
    s[1] = s01;
    s[2] = s10;
    s[3] = s11;
}

#if TE_TERN_ASM
/* Whole groups in one piece of assembly: ng groups of L words each, the last
 * of them `last` words (all <= 32),
 * and after each group, for every row r, pacc[r] += scale[r] * (sum >> 14) with
 * the uint8 scale read at scp + r*G (scp then steps one group). Keeps the
 * per-group bookkeeping (about 25 instructions for 3 rows) out of the
 * compiler's hands, which would otherwise spill around the 14-register loop. */
#define TE_A_WORD31                                                  \
    "ldr %[w1], [%[c], %[rb]]\n\t"                                   \
    "ldr %[w2], [%[c], %[rb], lsl #1]\n\t"                           \
    "ldr %[w0], [%[c]], #4\n\t"                                      \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                              \
    TE_A31(xa, 14) TE_A31(xb, 12)                                    \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                              \
    TE_A31(xa, 10) TE_A31(xb, 8)                                     \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                              \
    TE_A31(xa, 6) TE_A31(xb, 4)                                      \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                              \
    TE_A31(xa, 2) TE_A31(xb, 0)
/* After a group: sum >> 14 times the row's scale (register wr) into the
 * partial sum at [d, #off], and clear the sum. */
#define TE_A_FLUSH(sr, wr, off)                                      \
    "asrs %[" #sr "], %[" #sr "], #14\n\t"                           \
    "ldr %[n], [%[d], #" #off "]\n\t"                                \
    "mla %[n], %[" #wr "], %[" #sr "], %[n]\n\t"                     \
    "str %[n], [%[d], #" #off "]\n\t"                                \
    "movs %[" #sr "], #0\n\t"

/* State of the group loop, in memory (the registers are all taken). */
typedef struct {
    uint32_t pacc[4];  /* offset 0 */
    const uint8_t *sc; /* 16: scale of row 0 for the current group */
    int32_t gc;        /* 20: groups left */
    int32_t words;     /* 24: words per group */
    int32_t stride;    /* 28: bytes between two rows' scales (G) */
    int32_t last;      /* 32: words of the last group */
} te_t2_gstate;

static inline __attribute__((always_inline)) void
te_t2_groups31(const uint8_t *c, int32_t rb, const uint32_t *x, int32_t L, int32_t ng,
               int32_t last, const uint8_t *scp, int32_t G, uint32_t *pacc)
{
    te_t2_gstate st = {{pacc[0], pacc[1], pacc[2], 0}, scp, ng, L, G, last};
    te_t2_gstate *stp = &st;
    int32_t s0 = 0, s1 = 0, s2 = 0, n;
    uint32_t w0, w1, w2, xa, xb, d, mask = 0xC000C000u;
    __asm__ volatile(
        "2:\n\t"
        "ldr %[d], %[stp]\n\t"
        "ldr %[n], [%[d], #20]\n\t"
        "cmp %[n], #1\n\t"
        "ite eq\n\t"
        "ldreq %[n], [%[d], #32]\n\t"
        "ldrne %[n], [%[d], #24]\n\t"
        "1:\n\t"
        TE_A_WORD31
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
    pacc[0] = st.pacc[0];
    pacc[1] = st.pacc[1];
    pacc[2] = st.pacc[2];
}

/* The same for 2 rows x 2 interleaved vectors: pacc = {r0q0, r0q1, r1q0, r1q1}. */
static inline __attribute__((always_inline)) void
te_t2_groups22(const uint8_t *c, int32_t rb, const uint32_t *x, int32_t L, int32_t ng,
               int32_t last, const uint8_t *scp, int32_t G, uint32_t *pacc)
{
    te_t2_gstate st = {{pacc[0], pacc[1], pacc[2], pacc[3]}, scp, ng, L, G, last};
    te_t2_gstate *stp = &st;
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, n;
    uint32_t w0, w1, xa, xb, d, mask = 0xC000C000u;
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
        TE_A22(14) TE_A22(12) TE_A22(10) TE_A22(8) TE_A22(6) TE_A22(4) TE_A22(2) TE_A22(0)
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
    pacc[0] = st.pacc[0];
    pacc[1] = st.pacc[1];
    pacc[2] = st.pacc[2];
    pacc[3] = st.pacc[3];
}

/* A whole sweep over nb row blocks of one plane, in one piece of assembly:
 * for each block (R rows), for each of its G groups (gw words each, the last
 * `last` words), the word loop, then pa[i] += scale * (sum_i >> 14) with the
 * uint8 scales of the block's rows; then on to the next block (codes +R rows,
 * accumulators +R*P, scales +R rows, inputs rewound). pa must start zeroed. */
typedef struct {
    uint32_t *pa;       /* 0: accumulators of the current block */
    const uint8_t *sc;  /* 4: scale of row 0 of the current block, current group */
    int32_t gc;         /* 8: groups left in this block */
    int32_t g;          /* 12: groups per row (G), also the stride between rows' scales */
    int32_t gw;         /* 16: words per group */
    int32_t last;       /* 20: words of the last group */
    int32_t bc;         /* 24: blocks left */
    int32_t cstep;      /* 28: R*rb - 4*nw: code pointer to the next block */
    int32_t xback;      /* 32: bytes of input consumed per block */
    int32_t sstep;      /* 36: (R-1)*G: scale pointer to the next block */
} te_t2_sweep;

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

static void te_t2_sweep31(const uint8_t *c, int32_t rb, const uint32_t *x, te_t2_sweep *stp)
{
    int32_t s0 = 0, s1 = 0, s2 = 0, n;
    uint32_t w0, w1, w2, xa, xb, d, mask = 0xC000C000u;
    __asm__ volatile(
        "2:\n\t"
        TE_A_GROUP_START
        "1:\n\t"
        TE_A_WORD31
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
}

static void te_t2_sweep22(const uint8_t *c, int32_t rb, const uint32_t *x, te_t2_sweep *stp)
{
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, n;
    uint32_t w0, w1, xa, xb, d, mask = 0xC000C000u;
    __asm__ volatile(
        "2:\n\t"
        TE_A_GROUP_START
        "1:\n\t"
        "ldr %[w1], [%[c], %[rb]]\n\t"
        "ldr %[w0], [%[c]], #4\n\t"
        TE_A22(14) TE_A22(12) TE_A22(10) TE_A22(8) TE_A22(6) TE_A22(4) TE_A22(2) TE_A22(0)
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
}

/* Sweeps for one group per row and one plane with the scales folded into the
 * output records (te_tern_prep_out): each block is `last` words, then the
 * sums, shifted back by 14, are stored as they are. */
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

static void te_t2_fsweep31(const uint8_t *c, int32_t rb, const uint32_t *x, te_t2_sweep *stp)
{
    int32_t s0 = 0, s1 = 0, s2 = 0, n;
    uint32_t w0, w1, w2, xa, xb, d, mask = 0xC000C000u;
    __asm__ volatile(
        "2:\n\t"
        "ldr %[d], %[stp]\n\t"
        "ldr %[n], [%[d], #20]\n\t"
        "1:\n\t"
        TE_A_WORD31
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
}

static void te_t2_fsweep22(const uint8_t *c, int32_t rb, const uint32_t *x, te_t2_sweep *stp)
{
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, n;
    uint32_t w0, w1, xa, xb, d, mask = 0xC000C000u;
    __asm__ volatile(
        "2:\n\t"
        "ldr %[d], %[stp]\n\t"
        "ldr %[n], [%[d], #20]\n\t"
        "1:\n\t"
        "ldr %[w1], [%[c], %[rb]]\n\t"
        "ldr %[w0], [%[c]], #4\n\t"
        TE_A22(14) TE_A22(12) TE_A22(10) TE_A22(8) TE_A22(6) TE_A22(4) TE_A22(2) TE_A22(0)
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
}
#endif /* TE_TERN_ASM */

/* 2 rows x 1 vector */
TE_TERN_INLINE void te_t2_k21(const uint8_t *c, int32_t rb, const uint32_t *x, int32_t n,
                              int32_t *s)
{
    int32_t s0 = s[0], s1 = s[1];
    uint32_t mask = 0xC000C000u;
    TE_T2_MASK(mask);
    for (; n > 0; --n) {
        const uint32_t w0 = te_tern_rd32(c), w1 = te_tern_rd32(c + rb);
        c += 4;
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
    }
    s[0] = s0;
    s[1] = s1;
}

/* 1 row x 2 vectors */
TE_TERN_INLINE void te_t2_k12(const uint8_t *c, const uint32_t *x, int32_t n, int32_t *s)
{
    int32_t s0 = s[0], s1 = s[1];
    uint32_t mask = 0xC000C000u;
    TE_T2_MASK(mask);
    for (; n > 0; --n) {
        const uint32_t w0 = te_tern_rd32(c);
        c += 4;
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
    }
    s[0] = s0;
    s[1] = s1;
}

/* 1 row x 1 vector */
TE_TERN_INLINE void te_t2_k11(const uint8_t *c, const uint32_t *x, int32_t n, int32_t *s)
{
    int32_t s0 = s[0];
    uint32_t mask = 0xC000C000u;
    TE_T2_MASK(mask);
    for (; n > 0; --n) {
        const uint32_t w0 = te_tern_rd32(c);
        c += 4;
#define TE_T2_STEP11(m) s0 = te_smlad((int32_t)x[m], TE_T2_DEC(w0, m), s0);
        TE_T2_STEP11(0) TE_T2_STEP11(1) TE_T2_STEP11(2) TE_T2_STEP11(3)
        TE_T2_STEP11(4) TE_T2_STEP11(5) TE_T2_STEP11(6) TE_T2_STEP11(7)
#undef TE_T2_STEP11
        x += 8;
    }
    s[0] = s0;
}

/* ---- p2 inner loops: n words of 8 taps (4 code bytes); unscaled sums ---- */

#define TE_P2_DEC(tbl, w, j) ((int32_t)(tbl)[((w) >> (8 * (j))) & 0xFFu])

/* R rows (R <= 3, stride rb) x 1 vector */
TE_TERN_INLINE void te_p2_kr1(int R, const uint8_t *c, int32_t rb, const uint32_t *x, int32_t n,
                              int32_t *s, const uint32_t *tbl)
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
TE_TERN_INLINE void te_p2_kr2(int R, const uint8_t *c, int32_t rb, const uint32_t *x, int32_t n,
                              int32_t *s, const uint32_t *tbl)
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
TE_TERN_INLINE void te_tern_inner(int32_t kind, int R, int P, const uint8_t *c, int32_t rb,
                                  const uint32_t *x, int32_t n, int32_t *s, const uint32_t *tbl)
{
    if (kind == TE_TK_P2) {
        if (P == 1) {
            te_p2_kr1(R, c, rb, x, n, s, tbl);
        } else {
            te_p2_kr2(R, c, rb, x, n, s, tbl);
        }
    } else if (P == 1) {
        if (R == 3) {
            te_t2_k31(c, rb, x, n, s);
        } else if (R == 2) {
            te_t2_k21(c, rb, x, n, s);
        } else {
            te_t2_k11(c, x, n, s);
        }
    } else {
        if (R == 2) {
            te_t2_k22(c, rb, x, n, s);
        } else {
            te_t2_k12(c, x, n, s);
        }
    }
}

/* Everything a row block needs, computed once per call. */
typedef struct {
    const te_tern_mm *mm;
    int32_t nw;      /* code words per row, the partial tail word included */
    int32_t nfull;   /* whole 4-byte words inside a row */
    int32_t gw;      /* code words per group */
    int32_t xwords;  /* input words per code word (both vectors when paired) */
    int32_t flush;   /* most words between two flushes of the sums */
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
                    te_tern_inner(kind, R, P, crow + 4 * wb, rb, x + pl->xwords * wb, nf, s, pl->tbl);
                }
                if (nf < n) { /* the buffer's last, partial word: assemble it from bytes */
                    uint8_t tb[12] = {0};
                    for (int r = 0; r < R; ++r) {
                        memcpy(tb + 4 * r, crow + r * rb + 4 * pl->nfull, (size_t)(rb & 3));
                    }
                    te_tern_inner(kind, R, P, tb, 4, x + pl->xwords * pl->nfull, 1, s, pl->tbl);
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

/* One function per block shape, so that each is compiled on its own. */
#define TE_TERN_BLOCK_FN(name, R, P, P2)                                                       \
    static void name(const te_tern_plan *pl, int32_t o, const uint32_t *x, uint32_t *accbuf)   \
    {                                                                                          \
        te_tern_block(pl, o, R, P, P2, x, accbuf);                                             \
    }
TE_TERN_BLOCK_FN(te_t2_b31, 3, 1, 0)
TE_TERN_BLOCK_FN(te_t2_b21, 2, 1, 0)
TE_TERN_BLOCK_FN(te_t2_b11, 1, 1, 0)
TE_TERN_BLOCK_FN(te_t2_b22, 2, 2, 0)
TE_TERN_BLOCK_FN(te_t2_b12, 1, 2, 0)
TE_TERN_BLOCK_FN(te_p2_b31, 3, 1, 1)
TE_TERN_BLOCK_FN(te_p2_b21, 2, 1, 1)
TE_TERN_BLOCK_FN(te_p2_b11, 1, 1, 1)
TE_TERN_BLOCK_FN(te_p2_b22, 2, 2, 1)
TE_TERN_BLOCK_FN(te_p2_b12, 1, 2, 1)

typedef void (*te_tern_block_fn)(const te_tern_plan *, int32_t, const uint32_t *, uint32_t *);
struct te_tern_blocks {
    te_tern_block_fn b31, b21, b11, b22, b12;
};
const te_tern_blocks te_tern_p2_blocks = {te_p2_b31, te_p2_b21, te_p2_b11, te_p2_b22, te_p2_b12};

#if TE_TERN_ASM
/* Lean blocks for the common case (t2/to, uint8 scales): every plane of a row
 * block in one call of the assembly group loop (two for groups over 512
 * taps). The block that holds the last row of the code buffer (whose partial
 * last word must not be read whole) takes the generic block instead. */
TE_TERN_INLINE void te_t2_lean(int R, const te_tern_plan *pl, int32_t o, const uint32_t *x,
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
                te_t2_groups31(crow, rb, x, gw, g_count, lw, scp, g_count, pacc);
            } else {
                te_t2_groups22(crow, rb, x, gw, g_count, lw, scp, g_count, pacc);
            }
        } else {
            for (int32_t g = 0; g < g_count; ++g) { /* long groups: flush every 32 words */
                const int32_t we = te_tern_min(g * gw + gw, nw);
                for (int32_t wb = g * gw; wb < we; wb += TE_T2_FLUSH_WORDS) {
                    const int32_t k = te_tern_min(we - wb, TE_T2_FLUSH_WORDS);
                    if (R == 3) {
                        te_t2_groups31(crow + 4 * wb, rb, x + xw * wb, k, 1, k, scp + g, g_count, pacc);
                    } else {
                        te_t2_groups22(crow + 4 * wb, rb, x + xw * wb, k, 1, k, scp + g, g_count, pacc);
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

static void te_t2_l31(const te_tern_plan *pl, int32_t o, const uint32_t *x, uint32_t *accbuf)
{
    te_t2_lean(3, pl, o, x, accbuf);
}

static void te_t2_l22(const te_tern_plan *pl, int32_t o, const uint32_t *x, uint32_t *accbuf)
{
    te_t2_lean(2, pl, o, x, accbuf);
}
#endif /* TE_TERN_ASM */

/* The output stage for every row: bias (+ offset * patch sum) + acc[o * P + q],
 * requantized, for P vectors. Specialized for the common case of no left shift
 * (every shift <= 0) and the full int8 clamp range. */
TE_TERN_INLINE void te_tern_outputs_impl(const te_tern_mm *mm, int P, int simple,
                                         const uint32_t *acc, int32_t s0, int32_t s1,
                                         int8_t *out0, int8_t *out1)
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
        const int8_t v0 = (int8_t)te_tern_rq(b + acc[o * P] + f * (uint32_t)s0, left, right, m, mask,
                                             half, out_off, act);
        if (P == 2) {
            out1[o] = (int8_t)te_tern_rq(b + acc[o * P + 1] + f * (uint32_t)s1, left, right, m,
                                         mask, half, out_off, act);
        }
        out0[o] = v0;
    }
}

#define TE_TERN_OUT_FN(name, P, SIMPLE)                                                        \
    static void name(const te_tern_mm *mm, const uint32_t *acc, int32_t s0, int32_t s1,        \
                     int8_t *out0, int8_t *out1)                                               \
    {                                                                                          \
        te_tern_outputs_impl(mm, P, SIMPLE, acc, s0, s1, out0, out1);                          \
    }
TE_TERN_OUT_FN(te_tern_out1s, 1, 1)
TE_TERN_OUT_FN(te_tern_out1g, 1, 0)
TE_TERN_OUT_FN(te_tern_out2s, 2, 1)
TE_TERN_OUT_FN(te_tern_out2g, 2, 0)

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

static void te_tern_outvec_asm(const uint32_t *acc, int stride2, const int32_t *rec, int32_t off,
                               int32_t n, int8_t *out)
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
        __asm__ volatile(TE_A_OUTVEC(8)
                         : [acc] "+r"(acc), [rec] "+r"(rec), [out] "+r"(out), [n] "+r"(n), [a] "=&r"(a),
                           [lo] "=&r"(lo), [hi] "=&r"(hi), [b] "=&r"(b), [m] "=&r"(m), [r] "=&r"(r),
                           [mk] "=&r"(mk), [hf] "=&r"(hf), [sc] "=&r"(sc)
                         : [off] "r"(off)
                         : "cc", "memory");
    } else {
        __asm__ volatile(TE_A_OUTVEC(4)
                         : [acc] "+r"(acc), [rec] "+r"(rec), [out] "+r"(out), [n] "+r"(n), [a] "=&r"(a),
                           [lo] "=&r"(lo), [hi] "=&r"(hi), [b] "=&r"(b), [m] "=&r"(m), [r] "=&r"(r),
                           [mk] "=&r"(mk), [hf] "=&r"(hf), [sc] "=&r"(sc)
                         : [off] "r"(off)
                         : "cc", "memory");
    }
}
#endif

#if TE_TERN_ASM
/* The short-record output stage: per row {2*bias, 2*scale, multiplier,
 * 2^(right-1) + offset*2^right, right} (te_tern_prep_out). SMMULR of twice the
 * accumulator is TFLite's rounding doubling high multiply; the rounding right
 * shift (half away from zero) is one add of the sign, one of the half. 11
 * instructions an output. */
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

static void te_tern_outvec_short(const uint32_t *acc, int stride2, const int32_t *rec, int32_t n,
                                 int8_t *out)
{
    register uint32_t b __asm__("r4");
    register uint32_t sc __asm__("r5");
    register uint32_t m __asm__("r6");
    register uint32_t hf __asm__("r7");
    register uint32_t r __asm__("r8");
    uint32_t a, t;
    if (stride2) {
        __asm__ volatile(TE_A_OUTVEC_SHORT(8)
                         : [acc] "+r"(acc), [rec] "+r"(rec), [out] "+r"(out), [n] "+r"(n), [a] "=&r"(a),
                           [t] "=&r"(t), [b] "=&r"(b), [sc] "=&r"(sc), [m] "=&r"(m), [hf] "=&r"(hf),
                           [r] "=&r"(r)
                         :
                         : "cc", "memory");
    } else {
        __asm__ volatile(TE_A_OUTVEC_SHORT(4)
                         : [acc] "+r"(acc), [rec] "+r"(rec), [out] "+r"(out), [n] "+r"(n), [a] "=&r"(a),
                           [t] "=&r"(t), [b] "=&r"(b), [sc] "=&r"(sc), [m] "=&r"(m), [hf] "=&r"(hf),
                           [r] "=&r"(r)
                         :
                         : "cc", "memory");
    }
}
#endif

#if TE_TERN_ASM
/* The same without records (when they would not pay for themselves, e.g. one
 * FC input row): 26 instructions an output. */
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

static void te_tern_outvec_direct(const uint32_t *acc, const int32_t *bias, const int32_t *mult,
                                  const int32_t *shift, int32_t off, int32_t n, int8_t *out)
{
    uint32_t a, t, lo, hi, r, mk;
    __asm__ volatile(TE_A_OUTVEC_DIRECT(4)
                     : [acc] "+r"(acc), [bias] "+r"(bias), [mult] "+r"(mult), [shift] "+r"(shift),
                       [out] "+r"(out), [n] "+r"(n), [a] "=&r"(a), [t] "=&r"(t), [lo] "=&r"(lo),
                       [hi] "=&r"(hi), [r] "=&r"(r), [mk] "=&r"(mk)
                     : [off] "r"(off)
                     : "cc", "memory");
}
#endif

void te_tern_outputs(const te_tern_mm *mm, int P, const uint32_t *acc, int32_t s0,
                            int32_t s1, int8_t *out0, int8_t *out1)
{
#if TE_TERN_ASM
    if (mm->rec_short) {
        te_tern_outvec_short(acc, P == 2, mm->rec, mm->o, out0);
        if (P == 2) {
            te_tern_outvec_short(acc + 1, 1, mm->rec, mm->o, out1);
        }
        return;
    }
    if (mm->rec) {
        te_tern_outvec_asm(acc, P == 2, mm->rec, mm->output_offset, mm->o, out0);
        if (P == 2) {
            te_tern_outvec_asm(acc + 1, 1, mm->rec, mm->output_offset, mm->o, out1);
        }
        return;
    }
#else
    if (mm->rec_short) { /* the C twin of te_tern_outvec_short */
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
    if (mm->rec) { /* the C twin of te_tern_outvec_asm */
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
        (mm->simple_out ? te_tern_out2s : te_tern_out2g)(mm, acc, s0, s1, out0, out1);
    } else {
        (mm->simple_out ? te_tern_out1s : te_tern_out1g)(mm, acc, s0, s1, out0, out1);
    }
}

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
    const int lean = !p2 && mm->w->scale_bytes == 1;
#else
    (void)o_safe;
#endif
#if TE_TERN_ASM
    /* full row blocks below o_safe: one assembly sweep per plane */
    const int32_t R = pair ? 2 : 3;
    const int32_t nb = (lean || mm->fold) && pl.gw <= TE_T2_FLUSH_WORDS ? o_safe / R : 0;
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
                (pair ? te_t2_fsweep22 : te_t2_fsweep31)(c, mm->rb, x, &st);
            } else {
                (pair ? te_t2_sweep22 : te_t2_sweep31)(c, mm->rb, x, &st);
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
            if (lean && !mm->fold && o + 2 <= o_safe) {
                te_t2_l22(&pl, o, x, accbuf);
                continue;
            }
#endif
            (p2 ? mm->p2->b22 : te_t2_b22)(&pl, o, x, accbuf);
        }
        if (o < rows) {
            (p2 ? mm->p2->b12 : te_t2_b12)(&pl, o, x, accbuf);
        }
        te_tern_outputs(mm, 2, accbuf, s0, s1, out0, out1);
        return;
    }
    for (; o + 3 <= rows; o += 3) {
#if TE_TERN_ASM
        if (lean && !mm->fold && o + 3 <= o_safe) {
            te_t2_l31(&pl, o, x, accbuf);
            continue;
        }
#endif
        (p2 ? mm->p2->b31 : te_t2_b31)(&pl, o, x, accbuf);
    }
    if (o + 2 <= rows) {
        (p2 ? mm->p2->b21 : te_t2_b21)(&pl, o, x, accbuf);
        o += 2;
    }
    if (o < rows) {
        (p2 ? mm->p2->b11 : te_t2_b11)(&pl, o, x, accbuf);
    }
    te_tern_outputs(mm, 1, accbuf, s0, 0, out0, 0);
}

#else
struct te_tern_blocks {
    int unused; /* no DSP code to point at */
};
const te_tern_blocks te_tern_p2_blocks = {0};
#endif /* TE_USE_DSP */
