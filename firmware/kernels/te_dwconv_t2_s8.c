/* te_dwconv_t2_s8.c - DEPTHWISE_CONV_2D with 2-bit ternary weights (group
 * scales, residual planes), int8 in / int8 out; also the driver of
 * te_dwconv_to_s8 and te_dwconv_p2_s8.
 *
 * Layout: input [N][H][W][C] int8, weights as in te_kernels_ternary.h with
 * O = C*M rows (output channel oc = ic*M + m reads input channel ic) of
 * K = KH*KW taps i = ky*KW + kx, bias [C*M] int32 (folded; may be NULL), output
 * [N][OH][OW][C*M] int8. Geometry and padding as te_dwconv_s8.
 *
 * Method: a depthwise row has only KH*KW taps, far too few for the per-row
 * machinery of FC/conv to pay off, and the reduction runs across pixels rather
 * than along a row. So the weights are decoded once per call into exact
 * integer weights W[i][oc] = sum_p (a * t) << shift (+ offset for the offset
 * family, since offset * sum_i x_i = sum_i offset * x_i; p2:
 * a * sign * 2^(levels-|v|)) and the convolution runs on those, as the int8
 * kernel (te_dwconv_s8.c) runs on its int8 weights.
 *
 * DSP path (M == 1 or M % 4 == 0; blocks of four output channels whose
 * weights fit int16), one block at a time:
 *  - its weights are decoded straight into a table of the taps in the
 *    scratch, one entry each: {input byte offset of the tap from the pixel's
 *    kernel origin, (W_c0, W_c2), (W_c1, W_c3)} - the int16 pairs SXTB16 makes
 *    of an input word, so one LDM fetches a tap;
 *  - the output is swept in lines (rows, or columns when that leaves fewer
 *    pixels whose window is cut along the line: tall, narrow inputs), the
 *    table ordered by kernel line across the lines. The pixels of a line
 *    whose window lies inside the image along it then share one stretch of
 *    the table, the kernel lines inside the image: one span, and all lines
 *    whose window lies inside both ways share the whole table: one 2D span.
 *    The pixels at the line ends share, across the lines, a stretch of a
 *    second copy of the table ordered the other way (when the scratch holds
 *    it, O >= 6): a span each. The few pixels left (corners) run their
 *    in-image taps kernel line by kernel line;
 *  - a span is one assembly loop: per pixel the starting accumulators, per
 *    tap the LDM, one input word, two SXTB16, four SMLABB/SMLATT (M % 4 == 0:
 *    one LDRSB read by the four lanes), then TFLite's requantization from
 *    per-channel records prepared once per block (te_mac_srq, one LDM each,
 *    the offset folded in; te_mac_rq for the shifts it does not cover), SSAT,
 *    the clamp, four bytes in one store. Taps outside the image are not
 *    visited: with z = -input_offset the pad value, bias + sum_taps xt*W =
 *    (bias + z * sum_outside W) + sum_inside x*W (modulo 2^32, like the sums
 *    it replaces), and a span starts its pixels from bias + z * (the weights
 *    outside its stretch). The other pixels use x - z from bias + z*sum W.
 * Other depth multipliers, the last O % 4 channels, weights beyond int16 and
 * the portable build use an int32 table W[i][oc] and a plain loop.
 *
 * Scratch (te_dwconv_t2_s8_get_buffer_size): 4 * KH*KW*C*M bytes, enough for
 * the int32 table; the DSP path uses 12 (24 with the second copy) bytes a tap.
 */
#include <stddef.h>

#include "te_tern_internal.h"

int32_t te_tern_dwconv_buffer_size(const te_dims *input_dims, const te_dims *filter_dims)
{
    (void)input_dims;
    return 4 * filter_dims->h * filter_dims->w * filter_dims->c;
}

int32_t te_dwconv_t2_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims)
{
    return te_tern_dwconv_buffer_size(input_dims, filter_dims);
}

/* TE_DWT_NOINLINE: a function of its own (registers to itself, one copy:
 * GCC would otherwise clone some for constant arguments); TE_DWT_COLD: rare
 * code, which GCC then compiles for size. */
#if defined(__GNUC__) && !defined(__clang__)
#define TE_DWT_INLINE static inline __attribute__((always_inline))
#define TE_DWT_NOINLINE static __attribute__((noinline, noclone))
#define TE_DWT_COLD static __attribute__((noinline, noclone, cold))
#elif defined(__GNUC__)
#define TE_DWT_INLINE static inline __attribute__((always_inline))
#define TE_DWT_NOINLINE static __attribute__((noinline))
#define TE_DWT_COLD static __attribute__((noinline, cold))
#else
#define TE_DWT_INLINE static inline
#define TE_DWT_NOINLINE static
#define TE_DWT_COLD static
#endif

/* The plain loop: the whole layer in the portable build, a few channels at
 * most in the DSP one (compiled for size there). */
#if TE_USE_DSP
#define TE_DWT_PLAIN TE_DWT_COLD
#else
#define TE_DWT_PLAIN TE_DWT_NOINLINE
#endif

/* Taps decoded per pass (a stack buffer of 4 * TE_DWT_CHUNK words). */
#define TE_DWT_CHUNK 32

/* col[j] = W[i0 + j][oc] (modulo 2^32) for j < cnt: the general decoder
 * (any groups and planes; the block tables have a faster one for the usual
 * rows, te_dwt_weights). */
TE_DWT_COLD void te_dwt_decode(const te_tern_mm *mm, int32_t oc, int32_t i0, int32_t cnt, uint32_t *col)
{
    /* locals: the stores to col (uint32_t) may alias mm's int32_t fields */
    const te_tern_weights *w = mm->w;
    const int32_t kind = mm->kind, n = mm->n, planes = mm->active, o = mm->o, rb = mm->rb, gs = mm->g;
    const int32_t end = i0 + cnt;
    uint32_t init = 0u; /* what plane 0 adds to */
    if (kind == TE_TK_TO) {
        memcpy(&init, w->offset + oc, sizeof(init)); /* weight arrays may be unaligned */
    }
    for (int32_t p = 0; p < planes; ++p) {
        const int32_t row = p * o + oc;
        const uint8_t *c = w->codes + row * rb;
        const uint32_t e = kind == TE_TK_P2 ? 0u : te_tern_pshift(w, row);
        uint32_t *cp = col;
        /* one scale per group: walk the taps group by group */
        for (int32_t i = i0, g = i0 / n; i < end; ++g) {
            const int32_t g_end = (g + 1) * n < end ? (g + 1) * n : end;
            const uint32_t a = te_tern_scale(w, row * gs + g) << e;
            for (; i < g_end; ++i, ++cp) {
                uint32_t v;
                if (kind == TE_TK_P2) { /* sign(v) * (a << (levels - |v|)), the nibble sign-extended */
                    const int32_t q = (int32_t)((uint32_t)c[i >> 1] << (28 - 4 * (i & 1))) >> 28;
                    const int32_t sh = w->levels - (q < 0 ? -q : q);
                    v = q == 0 ? 0u : a << (sh < 0 ? 0 : sh);
                    v = q < 0 ? 0u - v : v;
                } else { /* the code as a signed 2-bit number: 0, 1, -1 (0b11), -2 (0b10, unused) */
                    v = (uint32_t)((int32_t)((uint32_t)c[i >> 2] << (30 - 2 * (i & 3))) >> 30) * a;
                }
                *cp = (p == 0 ? init : *cp) + v;
            }
        }
    }
}

/* dst[i * ld + oc - oc0] = W[i][oc] for every tap i and oc0 <= oc < oc1. */
TE_DWT_NOINLINE void te_dwt_decode_int32(const te_tern_mm *mm, int32_t oc0, int32_t oc1, uint32_t *dst, int32_t ld)
{
    uint32_t col[TE_DWT_CHUNK];
    for (int32_t oc = oc0; oc < oc1; ++oc) {
        for (int32_t i0 = 0; i0 < mm->k; i0 += TE_DWT_CHUNK) {
            const int32_t cnt = mm->k - i0 < TE_DWT_CHUNK ? mm->k - i0 : TE_DWT_CHUNK;
            te_dwt_decode(mm, oc, i0, cnt, col);
            for (int32_t j = 0; j < cnt; ++j) {
                dst[(i0 + j) * ld + oc - oc0] = col[j];
            }
        }
    }
}

/* Channels [oc0, oc1) of one image from the int32 table (weight of tap i and
 * channel oc at wt[i * ld + oc - oc0]): every tap, padded ones reading z;
 * pixels whose window lies inside the image without a check per tap. */
TE_DWT_PLAIN void te_dwt_portable(const te_dwconv_params *p, const te_pc_quant *quant, const te_dims *in,
                                  const int8_t *image, int32_t kh, int32_t kw, const int32_t *bias,
                                  int32_t oh, int32_t ow, int32_t oc_count, int32_t oc0, int32_t oc1,
                                  const uint32_t *wt, int32_t ld, int8_t *output)
{
    const int32_t pad_value = -p->input_offset;
    const int32_t dh = p->dilation_h, dw = p->dilation_w;
    const int32_t xstep = dw * in->c, ystep = dh * in->w * in->c; /* input bytes per kernel column / row */
    for (int32_t oy = 0; oy < oh; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        for (int32_t ox = 0; ox < ow; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            const int inside = iy0 >= 0 && iy0 + (kh - 1) * dh < in->h && ix0 >= 0 &&
                               ix0 + (kw - 1) * dw < in->w;
            int8_t *out = output + (oy * ow + ox) * oc_count;
            /* input channel ic = oc / M, m = oc % M, counted (no division per channel) */
            int32_t ic = oc0 / p->depth_multiplier, m = oc0 - ic * p->depth_multiplier;
            for (int32_t oc = oc0; oc < oc1; ++oc) {
                uint32_t acc = 0u;
                if (bias) {
                    memcpy(&acc, bias + oc, sizeof(acc));
                }
                const uint32_t *w = wt + (oc - oc0);
                if (inside) {
                    const int8_t *xr = image + (iy0 * in->w + ix0) * in->c + ic;
                    for (int32_t ky = 0; ky < kh; ++ky, xr += ystep) {
                        const int8_t *x = xr;
                        for (int32_t kx = 0; kx < kw; ++kx, x += xstep, w += ld) {
                            acc += (uint32_t)*x * *w;
                        }
                    }
                } else {
                    for (int32_t ky = 0; ky < kh; ++ky) {
                        const int32_t iy = iy0 + ky * dh;
                        const int row_in = iy >= 0 && iy < in->h;
                        for (int32_t kx = 0; kx < kw; ++kx, w += ld) {
                            const int32_t ix = ix0 + kx * dw;
                            const int32_t x = (row_in && ix >= 0 && ix < in->w)
                                ? image[(iy * in->w + ix) * in->c + ic]
                                : pad_value;
                            acc += (uint32_t)x * *w;
                        }
                    }
                }
                out[oc] = te_tern_out(acc, quant->multiplier[oc], quant->shift[oc], p->output_offset,
                                      p->activation);
                if (++m == p->depth_multiplier) {
                    m = 0;
                    ++ic;
                }
            }
        }
    }
}

#if TE_USE_DSP

#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__) && defined(__GNUC__) && defined(__OPTIMIZE__)
#define TE_DWT_ASM 1
#else
#define TE_DWT_ASM 0
#endif

/* Words per table entry: offset, (W0, W2), (W1, W3). */
#define TE_DWT_ENTRY 3

/* The four accumulators of one pixel. */
typedef struct {
    int32_t a0, a1, a2, a3;
} te_dwt_acc;

/* te_tern_rq's arguments for one channel (the output stage when the short
 * record does not apply). */
typedef struct {
    int32_t left, right, mult, mask, half;
} te_dwt_gen;

/* One block of four channels: what its pixels need. The span loop reads the
 * first fields by fixed offsets (checked below). A span: `lines` lines of
 * npix pixels that share one stretch of the table; pixels in_step input and
 * out_step output bytes apart, lines line_in / line_out bytes from the end of
 * one to the start of the next. */
typedef struct {
    te_mac_srq srq[4];    /* 0: short records {m, s, plo, phi} */
    uint32_t sbase[4];    /* 64: starting accumulators of the span's pixels */
    const uint32_t *tp;   /* 80: the span's stretch of table entries */
    const uint32_t *tp3;  /* 84: its end, rounded down to whole 3-entry chunks */
    const uint32_t *tend; /* 88: its end */
    int32_t in_step;      /* 92 */
    int32_t out_step;     /* 96 */
    int32_t clamp;        /* 100: activation narrower than int8 */
    uint32_t lo4, hi4;    /* 104, 108: its bounds, in every byte */
    int32_t npix;         /* 112 */
    int32_t lines;        /* 116 (counted down by the loop) */
    int32_t line_in;      /* 120 */
    int32_t line_out;     /* 124 */
    int32_t out_off;      /* 128 */
    te_mac_rq rq[4];      /* 132: full records (fast == 2) */
    uint32_t base[4];     /* bias + z * sum_i W, modulo 2^32 */
    uint32_t bias[4];
    int32_t z, nz2;       /* z, (-z, -z) */
    int32_t fast;         /* output stage: 1 short records, 2 full ones, 0 te_tern_rq */
    int32_t bcast;        /* M % 4 == 0 (see te_dwt_run) */
    te_range act;
    te_dwt_gen gen[4];
} te_dwt_blk;

#if TE_DWT_ASM
typedef char te_dwt_blk_layout_check[offsetof(te_dwt_blk, sbase) == 64 && offsetof(te_dwt_blk, tp) == 80 &&
                                     offsetof(te_dwt_blk, tend) == 88 && offsetof(te_dwt_blk, clamp) == 100 &&
                                     offsetof(te_dwt_blk, lo4) == 104 && offsetof(te_dwt_blk, npix) == 112 &&
                                     offsetof(te_dwt_blk, line_out) == 124 && offsetof(te_dwt_blk, out_off) == 128 &&
                                     offsetof(te_dwt_blk, rq) == 132 && sizeof(te_mac_srq) == 16 &&
                                     sizeof(te_mac_rq) == 28 ? 1 : -1];

/* Taps: LDM of the entry {off, W02, W13} (LDM wants ascending registers,
 * hence the fixed r4-r6), the input at origin + off into r12, four
 * multiply-accumulates. _Z forms use x - z (SXTAB16 / ADD with nz), the
 * others x itself; B forms read one byte for all four lanes (M % 4 == 0). */
#define TE_DWT_TAP_(WIDEN)                                                     \
    "ldmia %[tp]!, {r4, r5, r6}\n\t"                                           \
    "ldr r12, [%[org], r4]\n\t"                                                \
    WIDEN                                                                      \
    "smlabb %[a0], r12, r5, %[a0]\n\t"                                         \
    "smlatt %[a2], r12, r5, %[a2]\n\t"                                         \
    "smlabb %[a1], r4, r6, %[a1]\n\t"                                          \
    "smlatt %[a3], r4, r6, %[a3]\n\t"
#define TE_DWT_TAP TE_DWT_TAP_("sxtb16 r4, r12, ror #8\n\tsxtb16 r12, r12\n\t")
#define TE_DWT_TAP_Z TE_DWT_TAP_("sxtab16 r4, %[nz], r12, ror #8\n\tsxtab16 r12, %[nz], r12\n\t")
#define TE_DWT_TAPB_(ADD)                                                      \
    "ldmia %[tp]!, {r4, r5, r6}\n\t"                                           \
    "ldrsb r12, [%[org], r4]\n\t"                                              \
    ADD                                                                        \
    "smlabb %[a0], r12, r5, %[a0]\n\t"                                         \
    "smlabt %[a2], r12, r5, %[a2]\n\t"                                         \
    "smlabb %[a1], r12, r6, %[a1]\n\t"                                         \
    "smlabt %[a3], r12, r6, %[a3]\n\t"
#define TE_DWT_TAPB TE_DWT_TAPB_("")
#define TE_DWT_TAPB_Z TE_DWT_TAPB_("add r12, r12, %[nz]\n\t")
#define TE_DWT_TAPS_ASM(TAPS)                                                  \
    __asm__ volatile(TAPS                                                      \
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), \
                       [tp] "+r"(tp)                                           \
                     : [org] "r"(origin), [nz] "r"(nz)                         \
                     : "r4", "r5", "r6", "r12", "memory")

/* One channel of the output stage: LDM of the record {m, s, plo, phi} from RP
 * (advancing it); hi:lo = p + acc*m; te_mac_srq then subtracts 2^31 when
 * acc < 0, which lowers hi exactly when also lo < 2^31: hi -= (acc & ~lo) >> 31;
 * then >> s and SSAT into r12. */
#define TE_DWT_OUT(ACC, RP)                                                    \
    "ldmia " RP "!, {r4, r5, r6, r12}\n\t"                                     \
    "smlal r6, r12, " ACC ", r4\n\t"                                           \
    "bic r4, " ACC ", r6\n\t"                                                  \
    "sub r12, r12, r4, lsr #31\n\t"                                            \
    "asr r12, r12, r5\n\t"                                                     \
    "ssat r12, #8, r12\n\t"
/* The same from the full record {left, ts, u, m, plo, phi, s} (te_mac_rq) at
 * RP (advancing it) and the output offset at k + 128: a = acc << left;
 * hi:lo = p + (a >> ts)*u + a*m; (hi >> s) + offset, SSAT into r12. */
#define TE_DWT_OUTL(ACC, RP)                                                   \
    "ldrd r4, r5, [" RP "]\n\t"                                                \
    "lsl " ACC ", " ACC ", r4\n\t"                                             \
    "lsr r4, " ACC ", r5\n\t"                                                  \
    "ldr r5, [" RP ", #12]\n\t"                                                \
    "ldrd r6, r12, [" RP ", #16]\n\t"                                          \
    "smlal r6, r12, " ACC ", r5\n\t"                                           \
    "ldr r5, [" RP ", #8]\n\t"                                                 \
    "smlal r6, r12, r4, r5\n\t"                                                \
    "ldr r4, [" RP ", #24]\n\t"                                                \
    "asr r12, r12, r4\n\t"                                                     \
    "ldr r4, [%[k], #128]\n\t"                                                 \
    "add r12, r12, r4\n\t"                                                     \
    "ssat r12, #8, r12\n\t"                                                    \
    "add " RP ", " RP ", #28\n\t"
#endif

/* acc += sum over n consecutive entries from tp of (x - z) * W, x read at
 * origin + entry offset; nz2 = (-z, -z). bcast (a constant at each call):
 * the four channels share one input byte (M % 4 == 0). */
TE_DWT_INLINE void te_dwt_run(te_dwt_acc *acc, uintptr_t origin, const uint32_t *tp, int32_t n,
                              int32_t nz2, const int bcast)
{
#if TE_DWT_ASM
    int32_t a0 = acc->a0, a1 = acc->a1, a2 = acc->a2, a3 = acc->a3;
    if (bcast) {
        const int32_t nz = (int32_t)(int16_t)(uint16_t)((uint32_t)nz2 & 0xFFFFu);
        for (; n > 0; --n) {
            TE_DWT_TAPS_ASM(TE_DWT_TAPB_Z);
        }
    } else {
        const int32_t nz = nz2;
        for (; n >= 3; n -= 3) {
            TE_DWT_TAPS_ASM(TE_DWT_TAP_Z TE_DWT_TAP_Z TE_DWT_TAP_Z);
        }
        for (; n > 0; --n) {
            TE_DWT_TAPS_ASM(TE_DWT_TAP_Z);
        }
    }
    acc->a0 = a0;
    acc->a1 = a1;
    acc->a2 = a2;
    acc->a3 = a3;
#else
    for (; n > 0; --n, tp += TE_DWT_ENTRY) {
        const int8_t *xp = (const int8_t *)(origin + (uintptr_t)(intptr_t)(int32_t)tp[0]);
        const int32_t we = (int32_t)tp[1], wo = (int32_t)tp[2];
        int32_t xe, xo;
        if (bcast) { /* x - z in both lanes */
            const uint32_t x = (uint32_t)(*xp + (int32_t)(int16_t)(uint16_t)((uint32_t)nz2 & 0xFFFFu));
            xe = xo = (int32_t)((x & 0xFFFFu) * 0x00010001u);
        } else {
            const int32_t xw = te_read_s8x4(xp);
            xe = te_sxtab16(nz2, xw);
            xo = te_sxtab16(nz2, te_ror8(xw));
        }
        acc->a0 = te_smlabb(xe, we, acc->a0);
        acc->a2 = te_smlatt(xe, we, acc->a2);
        acc->a1 = te_smlabb(xo, wo, acc->a1);
        acc->a3 = te_smlatt(xo, wo, acc->a3);
    }
#endif
}

static inline int32_t te_dwt_sat8(int32_t x)
{
#if defined(__ARM_FEATURE_DSP)
    return __ssat(x, 8);
#else
    return x < -128 ? -128 : (x > 127 ? 127 : x);
#endif
}

/* Per signed byte lane: min(max(v, lo), hi). */
static inline uint32_t te_dwt_clamp8x4(uint32_t v, uint32_t lo4, uint32_t hi4)
{
    uint32_t r = 0;
    for (int i = 0; i < 32; i += 8) {
        int32_t x = (int8_t)(uint8_t)(v >> i);
        const int32_t lo = (int8_t)(uint8_t)(lo4 >> i), hi = (int8_t)(uint8_t)(hi4 >> i);
        x = x < lo ? lo : (x > hi ? hi : x);
        r |= (uint32_t)(uint8_t)x << i;
    }
    return r;
}

/* The four output bytes of one pixel: requantization and offset from the short
 * records, SSAT, packed (no clamp). */
static inline uint32_t te_dwt_out4(const te_mac_srq *rq, const te_dwt_acc *acc)
{
#if TE_DWT_ASM
    uint32_t v;
    const te_mac_srq *r = rq;
    __asm__(TE_DWT_OUT("%[a0]", "%[r]") "uxtb %[v], r12\n\t"
            TE_DWT_OUT("%[a1]", "%[r]") "bfi %[v], r12, #8, #8\n\t"
            TE_DWT_OUT("%[a2]", "%[r]") "bfi %[v], r12, #16, #8\n\t"
            TE_DWT_OUT("%[a3]", "%[r]") "bfi %[v], r12, #24, #8\n\t"
            : [v] "=&r"(v), [r] "+r"(r)
            : [a0] "r"(acc->a0), [a1] "r"(acc->a1), [a2] "r"(acc->a2), [a3] "r"(acc->a3)
            : "r4", "r5", "r6", "r12", "memory");
    return v;
#else
    uint32_t v = (uint32_t)(uint8_t)te_dwt_sat8(te_mac_srq_apply(&rq[0], acc->a0));
    v |= (uint32_t)(uint8_t)te_dwt_sat8(te_mac_srq_apply(&rq[1], acc->a1)) << 8;
    v |= (uint32_t)(uint8_t)te_dwt_sat8(te_mac_srq_apply(&rq[2], acc->a2)) << 16;
    v |= (uint32_t)(uint8_t)te_dwt_sat8(te_mac_srq_apply(&rq[3], acc->a3)) << 24;
    return v;
#endif
}

/* te_tern_rq's bytes (exact for any multiplier, shift and activation range):
 * the output stage of pixels out of spans in blocks the short records do not
 * cover. */
TE_DWT_COLD uint32_t te_dwt_out_gen(const te_dwt_blk *k, const te_dwt_acc *acc)
{
    const int32_t a[4] = {acc->a0, acc->a1, acc->a2, acc->a3};
    uint32_t v = 0u;
    for (int j = 0; j < 4; ++j) {
        const te_dwt_gen *r = &k->gen[j];
        const int32_t y = te_tern_rq((uint32_t)a[j], r->left, r->right, r->mult, r->mask, r->half,
                                     k->out_off, k->act);
        v |= (uint32_t)(uint8_t)(int8_t)y << (8 * j);
    }
    return v;
}

/* The four output bytes of one pixel, whichever stage the block uses. */
static inline uint32_t te_dwt_out(const te_dwt_blk *k, const te_dwt_acc *acc)
{
    if (k->fast == 1) {
        const uint32_t v = te_dwt_out4(k->srq, acc);
        return k->clamp ? te_dwt_clamp8x4(v, k->lo4, k->hi4) : v;
    }
    return te_dwt_out_gen(k, acc);
}

#if TE_DWT_ASM
/* The span loop (see te_dwt_blk): per pixel the starting accumulators k->sbase,
 * the stretch k->tp .. k->tend (TAPS, reading x itself), the output stage
 * OUT4, the clamp; n: pixels left in the line. */
#define TE_DWT_SPAN_ASM(TAPS, OUT4)                                            \
    __asm__ volatile("1:\n\t"                                                  \
                     "ldrd %[a0], %[a1], [%[k], #64]\n\t"                      \
                     "ldrd %[a2], %[a3], [%[k], #72]\n\t"                      \
                     "ldr %[tp], [%[k], #80]\n\t"                              \
                     TAPS                                                      \
                     OUT4                                                      \
                     "ldr r4, [%[k], #100]\n\t"                                \
                     "cbz r4, 2f\n\t"                                          \
                     "ldrd r4, r5, [%[k], #104]\n\t" /* clamp: SSUB8 sets GE, SEL picks */ \
                     "ssub8 r6, %[a0], r4\n\t"                                 \
                     "sel %[a0], %[a0], r4\n\t"                                \
                     "ssub8 r6, %[a0], r5\n\t"                                 \
                     "sel %[a0], r5, %[a0]\n\t"                                \
                     "2:\n\t"                                                  \
                     "str %[a0], [%[out]]\n\t"                                 \
                     "ldrd r4, r5, [%[k], #92]\n\t"                            \
                     "add %[org], %[org], r4\n\t"                              \
                     "add %[out], %[out], r5\n\t"                              \
                     "subs %[n], %[n], #1\n\t"                                 \
                     "bne 1b\n\t"                                              \
                     "ldr r4, [%[k], #116]\n\t" /* next line */                \
                     "subs r4, r4, #1\n\t"                                     \
                     "beq 6f\n\t"                                              \
                     "str r4, [%[k], #116]\n\t"                                \
                     "ldrd r4, r5, [%[k], #120]\n\t"                           \
                     "add %[org], %[org], r4\n\t"                              \
                     "add %[out], %[out], r5\n\t"                              \
                     "ldr %[n], [%[k], #112]\n\t"                              \
                     "b 1b\n\t"                                                \
                     "6:\n\t"                                                  \
                     : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), \
                       [tp] "=&r"(tp), [org] "+r"(origin), [out] "+r"(out), [n] "+r"(n) \
                     : [k] "r"(k)                                              \
                     : "r4", "r5", "r6", "r12", "cc", "memory")
/* The output stages of the span loop: the four bytes packed into a0. */
#define TE_DWT_OUT4(OUT, REC)                                                  \
    REC                                                                        \
    OUT("%[a0]", "%[tp]") "uxtb %[a0], r12\n\t"                               \
    OUT("%[a1]", "%[tp]") "bfi %[a0], r12, #8, #8\n\t"                        \
    OUT("%[a2]", "%[tp]") "bfi %[a0], r12, #16, #8\n\t"                       \
    OUT("%[a3]", "%[tp]") "bfi %[a0], r12, #24, #8\n\t"
#define TE_DWT_OUT_SHORT TE_DWT_OUT4(TE_DWT_OUT, "mov %[tp], %[k]\n\t")
#define TE_DWT_OUT_LONG TE_DWT_OUT4(TE_DWT_OUTL, "add %[tp], %[k], #132\n\t")
/* Any stretch: chunks of three taps up to k->tp3, then single ones. */
#define TE_DWT_TAPS_N(TAP)                                                     \
    "ldr r4, [%[k], #84]\n\t"                                                  \
    "cmp %[tp], r4\n\t"                                                        \
    "beq 4f\n\t"                                                               \
    "3:\n\t" TAP TAP TAP                                                       \
    "ldr r4, [%[k], #84]\n\t"                                                  \
    "cmp %[tp], r4\n\t"                                                        \
    "bne 3b\n\t"                                                               \
    "4:\n\t"                                                                   \
    "ldr r4, [%[k], #88]\n\t"                                                  \
    "cmp %[tp], r4\n\t"                                                        \
    "beq 5f\n\t" TAP                                                           \
    "b 4b\n\t"                                                                 \
    "5:\n\t"
#endif

/* One span (see te_dwt_blk; k->fast, or k->fast == 2 and !bcast) of
 * stretches of len entries. The hot loop, in a function of its own so that
 * the compiler has every register to give it. */
TE_DWT_NOINLINE void te_dwt_span(te_dwt_blk *k, int8_t *out, uintptr_t origin, int32_t len)
{
    int32_t n = k->npix;
#if TE_DWT_ASM
    int32_t a0, a1, a2, a3;
    const uint32_t *tp;
    if (k->bcast) {
        TE_DWT_SPAN_ASM(TE_DWT_TAPS_N(TE_DWT_TAPB), TE_DWT_OUT_SHORT);
    } else if (k->fast == 2) {
        TE_DWT_SPAN_ASM(TE_DWT_TAPS_N(TE_DWT_TAP), TE_DWT_OUT_LONG);
    } else if (len == 9) { /* 3x3, the common kernel: straight through */
        TE_DWT_SPAN_ASM(TE_DWT_TAP TE_DWT_TAP TE_DWT_TAP TE_DWT_TAP TE_DWT_TAP TE_DWT_TAP TE_DWT_TAP
                        TE_DWT_TAP TE_DWT_TAP, TE_DWT_OUT_SHORT);
    } else {
        TE_DWT_SPAN_ASM(TE_DWT_TAPS_N(TE_DWT_TAP), TE_DWT_OUT_SHORT);
    }
#else
    for (;;) {
        te_dwt_acc acc = {(int32_t)k->sbase[0], (int32_t)k->sbase[1], (int32_t)k->sbase[2],
                          (int32_t)k->sbase[3]};
        if (k->bcast) { /* z = 0: x itself */
            te_dwt_run(&acc, origin, k->tp, len, 0, 1);
        } else {
            te_dwt_run(&acc, origin, k->tp, len, 0, 0);
        }
        const uint32_t v = te_dwt_out(k, &acc);
        memcpy(out, &v, sizeof(v));
        out += k->out_step;
        origin += (uintptr_t)(intptr_t)k->in_step;
        if (--n == 0) {
            if (--k->lines == 0) {
                break;
            }
            out += k->line_out;
            origin += (uintptr_t)(intptr_t)k->line_in;
            n = k->npix;
        }
    }
#endif
}

/* One pixel in general: `runs` stretches of len entries, run_step words
 * apart, from tp, on x - z from k->base; any output stage. */
TE_DWT_NOINLINE void te_dwt_pixel(const te_dwt_blk *k, int8_t *out, uintptr_t origin, const uint32_t *tp,
                                  int32_t len, int32_t runs, int32_t run_step)
{
    te_dwt_acc acc = {(int32_t)k->base[0], (int32_t)k->base[1], (int32_t)k->base[2], (int32_t)k->base[3]};
    for (int32_t r = 0; r < runs; ++r, tp += run_step) {
        if (k->bcast) {
            te_dwt_run(&acc, origin, tp, len, k->nz2, 1);
        } else {
            te_dwt_run(&acc, origin, tp, len, k->nz2, 0);
        }
    }
    const uint32_t v = te_dwt_out(k, &acc);
    memcpy(out, &v, sizeof(v));
}

/* The kernel taps k in [*k0, *k1) of one output row/column with
 * 0 <= start + k*step < size (step > 0, k < n). */
static inline void te_dwt_range(int32_t start, int32_t step, int32_t n, int32_t size, int32_t *k0,
                                int32_t *k1)
{
    int32_t a = 0, b = n;
    if (start < 0) {
        a = (-start + step - 1) / step;
    }
    const int32_t room = size - start; /* taps with start + k*step <= size - 1 */
    if (room <= 0) {
        b = 0;
    } else if ((room - 1) / step + 1 < n) {
        b = (room - 1) / step + 1;
    }
    *k0 = a;
    *k1 = b > a ? b : a;
}

/* One direction (rows or columns) of the output grid: output coordinate o
 * reads input coordinates o*stride - pad + k*dil, kernel index k < kn. */
typedef struct {
    int32_t n;                      /* output size */
    int32_t stride, pad, dil, size; /* size: of the input */
    int32_t kn;                     /* kernel size */
    int32_t in_step, out_step;      /* bytes per input / output coordinate */
    int32_t lo;                     /* outputs lo .. lo + full - 1 have */
    uint32_t full;                  /* every kernel index inside */
} te_dwt_axis;

static void te_dwt_axis_init(te_dwt_axis *a, int32_t n, int32_t stride, int32_t pad, int32_t dil,
                             int32_t size, int32_t kn, int32_t in_step, int32_t out_step)
{
    a->n = n;
    a->stride = stride;
    a->pad = pad;
    a->dil = dil;
    a->size = size;
    a->kn = kn;
    a->in_step = in_step;
    a->out_step = out_step;
    a->lo = (pad + stride - 1) / stride;
    const int32_t last = size - 1 - (kn - 1) * dil + pad; /* o*stride <= last */
    int32_t hi = last < 0 ? 0 : last / stride + 1;
    hi = hi > n ? n : hi;
    a->full = hi > a->lo ? (uint32_t)(hi - a->lo) : 0u;
}

/* Sets k's stretch to the len entries from tp, of the table of taps entries
 * from tab, and the span's starting accumulators: bias + z * (the weights
 * outside the stretch), summed over the fewer of inside and outside. */
TE_DWT_NOINLINE void te_dwt_stretch(te_dwt_blk *k, const uint32_t *tab, int32_t taps, const uint32_t *tp,
                                    int32_t len)
{
    const uint32_t *tend = tp + len * TE_DWT_ENTRY;
    k->tp = tp;
    k->tp3 = tp + len / 3 * 3 * TE_DWT_ENTRY;
    k->tend = tend;
    int32_t s0, s1, s2, s3, zz;
    const uint32_t *a = tp, *b = tend, *c = tend, *d = tend; /* [a, b) and [c, d) */
    if (2 * len <= taps) { /* base - z * inside */
        s0 = (int32_t)k->base[0], s1 = (int32_t)k->base[1], s2 = (int32_t)k->base[2], s3 = (int32_t)k->base[3];
        zz = k->nz2;
    } else { /* bias + z * outside */
        s0 = (int32_t)k->bias[0], s1 = (int32_t)k->bias[1], s2 = (int32_t)k->bias[2], s3 = (int32_t)k->bias[3];
        zz = (int32_t)((uint32_t)(uint16_t)(int16_t)k->z * 0x00010001u);
        a = tab;
        b = tp;
        d = tab + taps * TE_DWT_ENTRY;
    }
    for (int pass = 0; pass < 2; ++pass, a = c, b = d) {
        for (; a < b; a += TE_DWT_ENTRY) {
            s0 = te_smlabb(zz, (int32_t)a[1], s0);
            s2 = te_smlatt(zz, (int32_t)a[1], s2);
            s1 = te_smlabb(zz, (int32_t)a[2], s1);
            s3 = te_smlatt(zz, (int32_t)a[2], s3);
        }
    }
    k->sbase[0] = (uint32_t)s0;
    k->sbase[1] = (uint32_t)s1;
    k->sbase[2] = (uint32_t)s2;
    k->sbase[3] = (uint32_t)s3;
}

/* A span of one line: n pixels in_step input and out_step output bytes apart,
 * over the stretch of len entries from tp. */
static void te_dwt_span1(te_dwt_blk *k, int8_t *out, uintptr_t origin, int32_t n, int32_t in_step,
                         int32_t out_step, const uint32_t *tab, int32_t taps, const uint32_t *tp, int32_t len)
{
    te_dwt_stretch(k, tab, taps, tp, len);
    k->in_step = in_step;
    k->out_step = out_step;
    k->npix = n;
    k->lines = 1;
    te_dwt_span(k, out, origin, len);
}

/* Every output pixel of one block of one image (image: at the block's input
 * channel; output: at its first output channel), seen as lines along axis P,
 * one per output coordinate along L. tab is ordered L-major (entry
 * kL * P->kn + kP), tab2 (or NULL) P-major. With a window inside the image
 * along P, the pixels of a line share the stretch of tab of the kernel lines
 * inside along L; if also inside along L, the whole table: one span for all
 * such lines, one for each other line. At a position along P with the window
 * cut there (a line end), the pixels of the lines inside along L share a
 * stretch of tab2: one span each. The rest (corners, and everything when no
 * records apply) run their in-image taps kernel line by line. */
static void te_dwt_sweep(const te_dwt_axis *L, const te_dwt_axis *P, te_dwt_blk *k, const int8_t *image,
                         int8_t *output, const uint32_t *tab, const uint32_t *tab2)
{
    const int32_t taps = L->kn * P->kn;
    const int32_t pin = P->stride * P->in_step; /* input bytes per pixel along a line */
    const int32_t lin = L->stride * L->in_step; /* and per line */
    /* kernel origin of pixel 0 of line 0 (may lie outside the image; only
     * in-image taps are read) */
    const uintptr_t origin = (uintptr_t)image - (uintptr_t)(intptr_t)(L->pad * L->in_step + P->pad * P->in_step);
    const int span = k->fast == 1 || (k->fast == 2 && !k->bcast);
    if (span && P->full > 0 && L->full > 0) { /* the window inside both ways */
        te_dwt_stretch(k, tab, taps, tab, taps);
        k->in_step = pin;
        k->out_step = P->out_step;
        k->npix = (int32_t)P->full;
        k->lines = (int32_t)L->full;
        k->line_in = lin - (int32_t)P->full * pin;
        k->line_out = L->out_step - (int32_t)P->full * P->out_step;
        te_dwt_span(k, output + L->lo * L->out_step + P->lo * P->out_step,
                    origin + (uintptr_t)(intptr_t)(L->lo * lin + P->lo * pin), taps);
    }
    const int ends = span && tab2 && L->full > 0; /* line ends by spans across the lines */
    for (int32_t q = 0; ends && q < P->n; ++q) {
        if ((uint32_t)(q - P->lo) < P->full) {
            q += (int32_t)P->full - 1;
            continue;
        }
        int32_t i0, i1;
        te_dwt_range(q * P->stride - P->pad, P->dil, P->kn, P->size, &i0, &i1);
        te_dwt_span1(k, output + L->lo * L->out_step + q * P->out_step,
                     origin + (uintptr_t)(intptr_t)(L->lo * lin + q * pin), (int32_t)L->full, lin, L->out_step,
                     tab2, taps, tab2 + i0 * L->kn * TE_DWT_ENTRY, (i1 - i0) * L->kn);
    }
    for (int32_t l = 0; l < L->n; ++l) {
        const int line_full = (uint32_t)(l - L->lo) < L->full;
        if (line_full && span && (ends || P->full == (uint32_t)P->n)) {
            continue; /* done */
        }
        int32_t o0, o1;
        te_dwt_range(l * L->stride - L->pad, L->dil, L->kn, L->size, &o0, &o1);
        /* the stretch of the kernel lines inside the image */
        const uint32_t *tp = tab + o0 * P->kn * TE_DWT_ENTRY;
        const int32_t len = (o1 - o0) * P->kn;
        const uintptr_t lorg = origin + (uintptr_t)(intptr_t)(l * lin);
        int8_t *lout = output + l * L->out_step;
        for (int32_t q = 0; q < P->n; ++q) {
            if ((uint32_t)(q - P->lo) < P->full) {
                if (span) { /* a span */
                    if (!line_full) {
                        te_dwt_span1(k, lout + q * P->out_step, lorg + (uintptr_t)(intptr_t)(q * pin),
                                     (int32_t)P->full, pin, P->out_step, tab, taps, tp, len);
                    }
                    q += (int32_t)P->full - 1;
                    continue;
                }
                te_dwt_pixel(k, lout + q * P->out_step, lorg + (uintptr_t)(intptr_t)(q * pin), tp, len, 1,
                             P->kn * TE_DWT_ENTRY);
            } else if (!line_full || !ends) { /* the in-image part of each kernel line */
                int32_t i0, i1;
                te_dwt_range(q * P->stride - P->pad, P->dil, P->kn, P->size, &i0, &i1);
                te_dwt_pixel(k, lout + q * P->out_step, lorg + (uintptr_t)(intptr_t)(q * pin),
                             tab + (o0 * P->kn + i0) * TE_DWT_ENTRY, i1 - i0, i1 > i0 ? o1 - o0 : 0,
                             P->kn * TE_DWT_ENTRY);
            }
        }
    }
}

/* PKHBT: the bottom halves of lo and hi as one word. */
static inline uint32_t te_dwt_pack16(uint32_t lo, uint32_t hi)
{
#if TE_DWT_ASM
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
    return r;
#else
    return (lo & 0xFFFFu) | (hi << 16);
#endif
}

/* SADD16: lane-wise int16 sum. */
static inline uint32_t te_dwt_add16(uint32_t x, uint32_t y)
{
#if TE_DWT_ASM
    uint32_t r;
    __asm__("sadd16 %0, %1, %2" : "=r"(r) : "r"(x), "r"(y) : "cc");
    return r;
#else
    return te_dwt_pack16(x + y, (x >> 16) + (y >> 16));
#endif
}

/* Entries in tap order (i = ky*KW + kx), weights only, of the block of
 * channels oc .. oc+3 into to: word 1 of entry i = (W[i][oc], W[i][oc+2]),
 * word 2 = (W[i][oc+1], W[i][oc+3]); sum[j] = sum_i W[i][oc+j]. Returns 0 when
 * some weight does not fit int16. */
TE_DWT_NOINLINE int te_dwt_weights(const te_tern_mm *mm, int32_t oc, uint32_t *to, uint32_t *sum)
{
    const te_tern_weights *w = mm->w;
    const int32_t taps = mm->k, planes = mm->active;
    if (mm->n >= taps) {
        /* one group (the usual depthwise row): one scale per row and plane;
         * the channels in pairs (j, j+2), the two lanes of a word */
        for (int32_t j = 0; j < 2; ++j) {
            const int32_t r0 = oc + j, r1 = oc + j + 2;
            uint32_t *ent = to + 1 + j;
            uint32_t s0 = 0u, s1 = 0u;
            if (mm->kind == TE_TK_P2) {
                /* W = sign(v) * mag[|v|], mag[k] = a << max(levels - k, 0), mag[0] = 0 */
                uint32_t mag0[9], mag1[9];
                const uint32_t a0 = te_tern_scale(w, r0 * mm->g), a1 = te_tern_scale(w, r1 * mm->g);
                mag0[0] = mag1[0] = 0u;
                for (int32_t k = 1; k < 9; ++k) {
                    const int32_t sh = w->levels - k < 0 ? 0 : w->levels - k;
                    mag0[k] = a0 << sh;
                    mag1[k] = a1 << sh;
                }
                if (mag0[1] > 32767u || mag1[1] > 32767u) { /* the largest */
                    goto general;
                }
                const uint8_t *c0 = w->codes + r0 * mm->rb, *c1 = w->codes + r1 * mm->rb;
                for (int32_t i = 0; i < taps; ++i, ent += TE_DWT_ENTRY) {
                    const int32_t sh = 28 - 4 * (i & 1); /* the nibble, sign-extended */
                    const int32_t v0 = (int32_t)((uint32_t)c0[i >> 1] << sh) >> 28;
                    const int32_t v1 = (int32_t)((uint32_t)c1[i >> 1] << sh) >> 28;
                    const uint32_t m0 = mag0[v0 < 0 ? -v0 : v0], m1 = mag1[v1 < 0 ? -v1 : v1];
                    const uint32_t w0 = v0 < 0 ? 0u - m0 : m0, w1 = v1 < 0 ? 0u - m1 : m1;
                    s0 += w0;
                    s1 += w1;
                    *ent = te_dwt_pack16(w0, w1);
                }
            } else {
                /* W = base + sum_p t_p * (a_p << shift_p), t the code as a
                 * signed 2-bit number (0, 1, -1 = 0b11, -2 = 0b10, unused),
                 * base the offset (to) or 0: plane by plane, adding into
                 * the int16 lanes (every partial sum is within the bound
                 * checked below, so the lanes never wrap) */
                int32_t b0 = 0, b1 = 0;
                if (mm->kind == TE_TK_TO) { /* weight arrays may be unaligned */
                    memcpy(&b0, w->offset + r0, sizeof(b0));
                    memcpy(&b1, w->offset + r1, sizeof(b1));
                }
                int64_t m0 = b0 < 0 ? -(int64_t)b0 : b0, m1 = b1 < 0 ? -(int64_t)b1 : b1;
                for (int32_t q = 0; q < planes; ++q) {
                    const int32_t q0 = q * mm->o + r0, q1 = q * mm->o + r1;
                    m0 += 2 * (int64_t)(te_tern_scale(w, q0 * mm->g) << te_tern_pshift(w, q0));
                    m1 += 2 * (int64_t)(te_tern_scale(w, q1 * mm->g) << te_tern_pshift(w, q1));
                }
                if (m0 > 32767 || m1 > 32767) { /* |W| <= |base| + 2 * sum_p a_p */
                    goto general;
                }
                s0 = (uint32_t)taps * (uint32_t)b0;
                s1 = (uint32_t)taps * (uint32_t)b1;
                for (int32_t q = 0; q < planes; ++q) {
                    const int32_t q0 = q * mm->o + r0, q1 = q * mm->o + r1;
                    const uint8_t *c0 = w->codes + q0 * mm->rb, *c1 = w->codes + q1 * mm->rb;
                    const uint32_t a0 = te_tern_scale(w, q0 * mm->g) << te_tern_pshift(w, q0);
                    const uint32_t a1 = te_tern_scale(w, q1 * mm->g) << te_tern_pshift(w, q1);
                    /* plane 0 stores base + t*a, the others add t*a */
                    const uint32_t lane0 = q == 0 ? (uint32_t)b0 : 0u, lane1 = q == 0 ? (uint32_t)b1 : 0u;
                    uint32_t *e = ent;
                    for (int32_t i = 0; i < taps; ++i, e += TE_DWT_ENTRY) {
                        const int32_t sh = 30 - 2 * (i & 3);
                        const uint32_t t0 = (uint32_t)((int32_t)((uint32_t)c0[i >> 2] << sh) >> 30);
                        const uint32_t t1 = (uint32_t)((int32_t)((uint32_t)c1[i >> 2] << sh) >> 30);
                        s0 += t0 * a0;
                        s1 += t1 * a1;
                        const uint32_t v = te_dwt_pack16(t0 * a0 + lane0, t1 * a1 + lane1);
                        *e = q == 0 ? v : te_dwt_add16(*e, v);
                    }
                }
            }
            sum[j] = s0;
            sum[j + 2] = s1;
        }
        return 1;
    }
general:;
    uint32_t col[4 * TE_DWT_CHUNK];
    uint32_t over = 0u, s0 = 0u, s1 = 0u, s2 = 0u, s3 = 0u;
    for (int32_t i0 = 0; i0 < taps; i0 += TE_DWT_CHUNK) {
        const int32_t cnt = taps - i0 < TE_DWT_CHUNK ? taps - i0 : TE_DWT_CHUNK;
        for (int32_t j = 0; j < 4; ++j) {
            te_dwt_decode(mm, oc + j, i0, cnt, col + j * cnt);
        }
        uint32_t *ent = to + i0 * TE_DWT_ENTRY;
        for (int32_t t = 0; t < cnt; ++t, ent += TE_DWT_ENTRY) {
            const uint32_t w0 = col[t], w1 = col[cnt + t], w2 = col[2 * cnt + t], w3 = col[3 * cnt + t];
            /* nonzero bits above 15 unless every weight fits int16 */
            over |= (w0 + 32768u) | (w1 + 32768u) | (w2 + 32768u) | (w3 + 32768u);
            s0 += w0;
            s1 += w1;
            s2 += w2;
            s3 += w3;
            ent[1] = te_dwt_pack16(w0, w2);
            ent[2] = te_dwt_pack16(w1, w3);
        }
    }
    sum[0] = s0;
    sum[1] = s1;
    sum[2] = s2;
    sum[3] = s3;
    return (over >> 16) == 0u;
}

/* The tables of the block of channels oc .. oc+3: tab ordered L-major (entry
 * kL * P->kn + kP for the tap at kernel index kL along L and kP along P;
 * rows: L = y), tab2 (unless NULL; required when !rows) P-major
 * (kP * L->kn + kL); entries {offset of the tap's input byte from the
 * pixel's kernel origin, (W_oc, W_oc+2), (W_oc+1, W_oc+3)}. The offsets are
 * the same for every block: written when `offsets`. The tap-order one (tab
 * for rows, tab2 for columns) is filled, the other one permuted from it.
 * Returns 0 (tables unusable) when some weight does not fit int16. */
TE_DWT_NOINLINE int te_dwt_table(const te_tern_mm *mm, const te_dwt_axis *L, const te_dwt_axis *P, int rows,
                                 int32_t oc, uint32_t *tab, uint32_t *tab2, int offsets, uint32_t *sum)
{
    uint32_t *to = rows ? tab : tab2, *other = rows ? tab2 : tab;
    const te_dwt_axis *Y = rows ? L : P, *X = rows ? P : L;
    if (!te_dwt_weights(mm, oc, to, sum)) {
        return 0;
    }
    if (offsets) {
        uint32_t *ent = to;
        for (int32_t ky = 0; ky < Y->kn; ++ky) {
            for (int32_t kx = 0; kx < X->kn; ++kx, ent += TE_DWT_ENTRY) {
                ent[0] = (uint32_t)(ky * Y->dil * Y->in_step + kx * X->dil * X->in_step);
            }
        }
    }
    if (other) { /* entry kx * KH + ky of the other from entry ky * KW + kx */
        const uint32_t *src = to;
        for (int32_t ky = 0; ky < Y->kn; ++ky) {
            uint32_t *dst = other + ky * TE_DWT_ENTRY;
            for (int32_t kx = 0; kx < X->kn; ++kx, src += TE_DWT_ENTRY, dst += Y->kn * TE_DWT_ENTRY) {
                if (offsets) {
                    dst[0] = src[0];
                }
                dst[1] = src[1];
                dst[2] = src[2];
            }
        }
    }
    return 1;
}

/* Block of channels c .. c+3 of every image from its table. */
TE_DWT_NOINLINE void te_dwt_block(const te_dwconv_params *p, const te_dwt_axis *L, const te_dwt_axis *P,
                                  int32_t batches, int32_t in_image, int32_t out_image, const int8_t *input,
                                  int8_t *output, const uint32_t *tab, const uint32_t *tab2,
                                  const uint32_t *sum, int32_t c, const int32_t *bias,
                                  const te_pc_quant *quant)
{
    const int32_t mult_depth = p->depth_multiplier;
    const te_range act = p->activation;
    te_dwt_blk k;
    k.z = -p->input_offset;
    k.nz2 = (int32_t)((uint32_t)(uint16_t)(int16_t)p->input_offset * 0x00010001u);
    k.out_off = p->output_offset;
    k.act = act;
    k.lo4 = 0x01010101u * (uint8_t)act.min;
    k.hi4 = 0x01010101u * (uint8_t)act.max;
    k.clamp = act.min > -128 || act.max < 127;
    k.bcast = mult_depth != 1;
    k.bias[0] = k.bias[1] = k.bias[2] = k.bias[3] = 0u;
    if (bias) {
        memcpy(k.bias, bias + c, sizeof(k.bias));
    }
    /* the output stage: short records (te_mac_srq: m >= 0, 1 <= -shift <= 23)
     * or full ones (te_mac_rq: m >= 0, -31 <= shift <= 30), then SSAT and the
     * clamp (an activation inside int8), else te_tern_rq */
    int sh = act.min >= -128 && act.max <= 127, full = sh;
    for (int j = 0; j < 4; ++j) {
        k.base[j] = k.bias[j] + (uint32_t)k.z * sum[j];
        const int32_t m = quant->multiplier[c + j], shift = quant->shift[c + j];
        sh &= m >= 0 && te_mac_srq_init(&k.srq[j], m, shift, p->output_offset);
        full &= m >= 0 && shift >= -31 && shift <= 30;
    }
    k.fast = sh ? 1 : (full ? 2 : 0);
    for (int j = 0; j < 4 && k.fast != 1; ++j) {
        const int32_t m = quant->multiplier[c + j], shift = quant->shift[c + j];
        if (k.fast == 2) {
            te_mac_rq_init(&k.rq[j], m, shift);
        }
        k.gen[j].left = shift & ~(shift >> 31);
        k.gen[j].right = (-shift) & ~(-shift >> 31);
        k.gen[j].mult = m;
        k.gen[j].mask = (int32_t)((1u << (k.gen[j].right & 31)) - 1u);
        k.gen[j].half = k.gen[j].mask >> 1;
    }
    for (int32_t n = 0; n < batches; ++n) {
        /* M % 4 == 0: the block's four channels read input channel c / M */
        te_dwt_sweep(L, P, &k, input + n * in_image + (mult_depth == 1 ? c : c / mult_depth),
                     output + n * out_image + c, tab, tab2);
    }
}

#endif /* TE_USE_DSP */

te_status te_tern_dwconv(int32_t kind, const te_dwconv_params *params, const te_pc_quant *quant,
                         const te_dims *input_dims, const int8_t *input,
                         const te_dims *filter_dims, const te_tern_weights *weights,
                         const int32_t *bias, const te_dims *output_dims, int8_t *output,
                         void *scratch)
{
    if (!params || !input_dims || !input || !filter_dims || !output_dims || !output || !scratch) {
        return TE_ERR_ARG;
    }
    const te_dims in = *input_dims;
    const int32_t mult_depth = params->depth_multiplier;
    const int32_t kh = filter_dims->h, kw = filter_dims->w;
    const int32_t oh = output_dims->h, ow = output_dims->w, oc_count = output_dims->c;
    const int32_t sh = params->stride_h, sw = params->stride_w;
    const int32_t dh = params->dilation_h, dw = params->dilation_w;
    if (in.n <= 0 || in.h <= 0 || in.w <= 0 || in.c <= 0 || kh <= 0 || kw <= 0 ||
        mult_depth <= 0 || filter_dims->n != 1 || filter_dims->c != in.c * mult_depth ||
        output_dims->n != in.n || oc_count != in.c * mult_depth || oh <= 0 || ow <= 0 ||
        sh <= 0 || sw <= 0 || dh <= 0 || dw <= 0 || params->input_offset < -127 ||
        params->input_offset > 128) {
        return TE_ERR_ARG;
    }
    te_tern_mm mm;
    if (te_tern_mm_init(&mm, kind, weights, oc_count, kh * kw, bias, quant,
                        params->output_offset, params->activation) != TE_OK) {
        return TE_ERR_ARG;
    }
    uint32_t *wt = (uint32_t *)scratch;
    const int32_t in_image = in.h * in.w * in.c, out_image = oh * ow * oc_count;
    int32_t oc0 = 0; /* channels [0, oc0) done by the block path */
#if TE_USE_DSP
    /* blocks of four channels: M == 1 (the lanes read four input channels)
     * or M % 4 == 0 (they read one) */
    const int32_t nb = mult_depth == 1 || mult_depth % 4 == 0 ? oc_count / 4 : 0;
    if (nb > 0) {
        te_dwt_axis ay, ax;
        te_dwt_axis_init(&ay, oh, sh, params->pad_top, dh, in.h, kh, in.w * in.c, ow * oc_count);
        te_dwt_axis_init(&ax, ow, sw, params->pad_left, dw, in.w, kw, in.c, oc_count);
        /* sweep rows, or columns if that leaves fewer line ends (pixels
         * whose window is cut along the line) */
        const int32_t taps = kh * kw;
        /* the tables of one block at a time, at the start of the scratch; the
         * second (line ends; columns need it) when the scratch has room (O >= 6) */
        uint32_t *wt2 = 2 * TE_DWT_ENTRY * taps <= taps * oc_count ? wt + TE_DWT_ENTRY * taps : NULL;
        const int rows = !wt2 || (uint32_t)(ow - (int32_t)ax.full) * (uint32_t)oh <=
                                 (uint32_t)(oh - (int32_t)ay.full) * (uint32_t)ow;
        const te_dwt_axis *L = rows ? &ay : &ax, *P = rows ? &ax : &ay;
        uint32_t sum[4];
        while (oc0 < 4 * nb && te_dwt_table(&mm, L, P, rows, oc0, wt, wt2, oc0 == 0, sum)) {
            te_dwt_block(params, L, P, in.n, in_image, out_image, input, output, wt, wt2, sum, oc0, bias, quant);
            oc0 += 4;
        }
    }
#endif
    if (oc0 == oc_count) {
        return TE_OK;
    }
    /* the channels left (all of them without the block path): int32 table */
    te_dwt_decode_int32(&mm, oc0, oc_count, wt, oc_count - oc0);
    for (int32_t b = 0; b < in.n; ++b) {
        te_dwt_portable(params, quant, &in, input + b * in_image, kh, kw, bias, oh, ow, oc_count, oc0,
                        oc_count, wt, oc_count - oc0, output + b * out_image);
    }
    return TE_OK;
}

te_status te_dwconv_t2_s8(const te_dwconv_params *params, const te_pc_quant *quant,
                          const te_dims *input_dims, const int8_t *input,
                          const te_dims *filter_dims, const te_tern_weights *weights,
                          const int32_t *bias, const te_dims *output_dims, int8_t *output,
                          void *scratch)
{
    return te_tern_dwconv(TE_TK_T2, params, quant, input_dims, input, filter_dims, weights, bias,
                          output_dims, output, scratch);
}
