/* SPDX-License-Identifier: Apache-2.0 */
/* te_dw_span_s8.c - the machinery shared by the depthwise kernels: int8
 * (te_dwconv_s8.c) and ternary (te_dwconv_t2_s8.c, _to, _p2). Both run on
 * exact integer weights W[i][oc] (tap i = ky*KW + kx, output channel oc):
 * the int8 kernel widens its weights, the ternary ones decode theirs, and
 * everything after that is here (interface: te_dw_internal.h). Layout,
 * geometry and padding as te_dwconv_s8.
 *
 * DSP path (M == 1 or M % 4 == 0; blocks of four output channels whose
 * weights fit int16), one block at a time:
 *  - its weights sit in a table of the taps, one entry each: {input byte
 *    offset of the tap from the pixel's kernel origin, (W_c0, W_c2),
 *    (W_c1, W_c3)} - the int16 pairs SXTB16 makes of an input word, so one
 *    LDM fetches a tap;
 *  - the output is swept in lines, rows or columns, whichever has less
 *    overhead by an estimate (te_dw_cost: spans, lines, pixels outside
 *    spans), the table ordered by kernel line across the lines. The pixels of
 *    a line whose window lies inside the image along it then share one
 *    stretch of the table, the kernel lines inside the image: one span, and
 *    all lines whose window lies inside both ways share the whole table: one
 *    2D span. The pixels at the line ends share, across the lines, a stretch
 *    of a second copy of the table ordered the other way (when there is room
 *    for it; a 1-D kernel has one order): a span each. The few pixels left
 *    (corners, one-pixel spans) run their in-image taps kernel line by kernel
 *    line;
 *  - a span is one assembly loop: per pixel the starting accumulators, per
 *    tap the LDM, one input word, two SXTB16, four SMLABB/SMLATT (M % 4 == 0:
 *    one LDRSB read by the four lanes; the taps in chunks of three entered
 *    by TBB), then TFLite's requantization from
 *    per-channel records prepared once per block (te_mac_srq, one LDM each,
 *    the offset folded in; te_mac_rq for the shifts it does not cover), SSAT,
 *    the clamp, four bytes in one store. Taps outside the image are not
 *    visited: with z = -input_offset the pad value, bias + sum_taps xt*W =
 *    (bias + z * sum_outside W) + sum_inside x*W (modulo 2^32, like the sums
 *    it replaces), and a span starts its pixels from bias + z * (the weights
 *    outside its stretch). The other pixels use x - z from bias + z*sum W.
 * Other depth multipliers, the last O % 4 channels, weights beyond int16 and
 * the portable build run the plain loop.
 */
#include <stddef.h>
#include <string.h>

#include "te_dw_internal.h"

/* Weight W at w: uint32_t (wide) or int8_t. */
static inline uint32_t te_dw_wload(const uint8_t *w, const int wide)
{
    return wide ? *(const uint32_t *)(const void *)w : (uint32_t)(int32_t)(*(const int8_t *)w);
}

/* te_dw_plain_s8 / _s32 (see te_dw_internal.h); wide: the weights are
 * uint32_t, else int8_t (a constant at each call). A window cut by the image
 * border: bias + z * (sum of all weights) + sum over the taps inside of
 * (x - z) * w, z the pad value, rather than a check per tap. */
TE_DW_INLINE void te_dw_plain(const te_dwconv_params *p, const te_pc_quant *quant,
                              const te_dims *in, const int8_t *image, int32_t kh, int32_t kw,
                              const int32_t *bias, int32_t oh, int32_t ow, int32_t oc_count,
                              int32_t oc0, int32_t oc1, const void *wt, int32_t ld, int8_t *output,
                              const int wide)
{
    const uint32_t z = (uint32_t)-p->input_offset;
    const int32_t dh = p->dilation_h, dw = p->dilation_w;
    const int32_t xstep = dw * in->c,
                  ystep = dh * in->w * in->c; /* input bytes per kernel column / row */
    const int32_t wsize = wide ? 4 : 1, wstep = ld * wsize; /* weight bytes per tap */
    for (int32_t oy = 0; oy < oh; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        int32_t ky0, ky1;
        te_dw_range(iy0, dh, kh, in->h, &ky0, &ky1);
        for (int32_t ox = 0; ox < ow; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            int32_t kx0, kx1;
            te_dw_range(ix0, dw, kw, in->w, &kx0, &kx1);
            const int whole = ky1 - ky0 == kh && kx1 - kx0 == kw;
            const int32_t ny = ky1 - ky0, nx = kx1 - kx0;
            int8_t *out = output + (oy * ow + ox) * oc_count;
            /* the first tap inside the image, input channel 0 */
            const int8_t *x0 = image + ((iy0 + ky0 * dh) * in->w + ix0 + kx0 * dw) * in->c;
            /* input channel ic = oc / M, m = oc % M, counted (no division per channel) */
            int32_t ic = oc0 / p->depth_multiplier, m = oc0 - ic * p->depth_multiplier;
            for (int32_t oc = oc0; oc < oc1; ++oc) {
                uint32_t acc = 0u;
                if (bias) {
                    memcpy(&acc, bias + oc, sizeof(acc));
                }
                const uint8_t *w = (const uint8_t *)wt + (oc - oc0) * wsize;
                const int8_t *xr = x0 + ic;
                if (whole) {
                    for (int32_t ky = 0; ky < kh; ++ky, xr += ystep) {
                        const int8_t *x = xr;
                        for (int32_t kx = 0; kx < kw; ++kx, x += xstep, w += wstep) {
                            acc += (uint32_t)*x * te_dw_wload(w, wide);
                        }
                    }
                } else {
                    uint32_t sum = 0u;
                    for (int32_t i = 0; i < kh * kw; ++i) {
                        sum += te_dw_wload(w + i * wstep, wide);
                    }
                    acc += z * sum;
                    w += (ky0 * kw + kx0) * wstep;
                    for (int32_t ky = 0; ky < ny; ++ky, xr += ystep, w += kw * wstep) {
                        const int8_t *x = xr;
                        const uint8_t *wk = w;
                        for (int32_t kx = 0; kx < nx; ++kx, x += xstep, wk += wstep) {
                            acc += ((uint32_t)*x - z) * te_dw_wload(wk, wide);
                        }
                    }
                }
                out[oc] = te_mac_output((int32_t)acc, quant->multiplier[oc], quant->shift[oc],
                                        p->output_offset, p->activation);
                if (++m == p->depth_multiplier) {
                    m = 0;
                    ++ic;
                }
            }
        }
    }
}

void te_dw_plain_s8(const te_dwconv_params *p, const te_pc_quant *quant, const te_dims *in,
                    const int8_t *image, int32_t kh, int32_t kw, const int32_t *bias, int32_t oh,
                    int32_t ow, int32_t oc_count, int32_t oc0, int32_t oc1, const int8_t *w,
                    int32_t ld, int8_t *output)
{
    te_dw_plain(p, quant, in, image, kh, kw, bias, oh, ow, oc_count, oc0, oc1, w, ld, output, 0);
}

void te_dw_plain_s32(const te_dwconv_params *p, const te_pc_quant *quant, const te_dims *in,
                     const int8_t *image, int32_t kh, int32_t kw, const int32_t *bias, int32_t oh,
                     int32_t ow, int32_t oc_count, int32_t oc0, int32_t oc1, const uint32_t *w,
                     int32_t ld, int8_t *output)
{
    te_dw_plain(p, quant, in, image, kh, kw, bias, oh, ow, oc_count, oc0, oc1, w, ld, output, 1);
}

int te_dw_args_ok(const te_dwconv_params *p, const te_dims *in, const te_dims *filter_dims,
                  const te_dims *output_dims)
{
    const int32_t m = p->depth_multiplier;
    return in->n > 0 && in->h > 0 && in->w > 0 && in->c > 0 && filter_dims->h > 0 &&
           filter_dims->w > 0 && m > 0 && filter_dims->n == 1 && filter_dims->c == in->c * m &&
           output_dims->n == in->n && output_dims->c == in->c * m && output_dims->h > 0 &&
           output_dims->w > 0 && p->stride_h > 0 && p->stride_w > 0 && p->dilation_h > 0 &&
           p->dilation_w > 0 && p->input_offset >= -127 && p->input_offset <= 128 &&
           p->activation.min <= p->activation.max;
}

#if TE_USE_DSP

/* The four accumulators of one pixel. */
typedef struct {
    int32_t a0, a1, a2, a3;
} te_dw_acc;

/* One block of four channels: what its pixels need. The span loop reads the
 * first fields by fixed offsets (checked below). A span: `lines` lines of
 * npix pixels that share one stretch of the table; pixels in_step input and
 * out_step output bytes apart, lines line_in / line_out bytes from the end of
 * one to the start of the next. */
typedef struct {
    te_mac_srq srq[4];    /* 0: short records {m, s, plo, phi} */
    uint32_t sbase[4];    /* 64: starting accumulators of the span's pixels */
    const uint32_t *tp;   /* 80: the span's stretch of table entries */
    int32_t entry;        /* 84: where its taps start in a chunk of three (TE_DW_TAPS_N) */
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
    int32_t z, nz2; /* z, (-z, -z) */
    int32_t fast;   /* output stage: 1 short records, 2 full ones, 0 te_mac_output */
    int32_t bcast;  /* M % 4 == 0 (see te_dw_run) */
    te_range act;
    int32_t mult[4], shift[4]; /* te_mac_output's (fast == 0) */
} te_dw_blk;

#if TE_DW_ASM
typedef char te_dw_blk_layout_check
    [offsetof(te_dw_blk, sbase) == 64 && offsetof(te_dw_blk, tp) == 80 &&
             offsetof(te_dw_blk, entry) == 84 && offsetof(te_dw_blk, tend) == 88 &&
             offsetof(te_dw_blk, clamp) == 100 && offsetof(te_dw_blk, lo4) == 104 &&
             offsetof(te_dw_blk, npix) == 112 && offsetof(te_dw_blk, line_out) == 124 &&
             offsetof(te_dw_blk, out_off) == 128 && offsetof(te_dw_blk, rq) == 132 &&
             sizeof(te_mac_srq) == 16 && sizeof(te_mac_rq) == 28
         ? 1
         : -1];

/* Taps: LDM of the entry {off, W02, W13} (LDM wants ascending registers,
 * hence the fixed r4-r6), the input at origin + off into r12, four
 * multiply-accumulates. _Z forms use x - z (SXTAB16 / ADD with nz), the
 * others x itself; B forms read one byte for all four lanes (M % 4 == 0). */
/* clang-format off */
#define TE_DW_TAP_(WIDEN)                                                      \
    "ldmia %[tp]!, {r4, r5, r6}\n\t"                                           \
    "ldr r12, [%[org], r4]\n\t"                                                \
    WIDEN                                                                      \
    "smlabb %[a0], r12, r5, %[a0]\n\t"                                         \
    "smlatt %[a2], r12, r5, %[a2]\n\t"                                         \
    "smlabb %[a1], r4, r6, %[a1]\n\t"                                          \
    "smlatt %[a3], r4, r6, %[a3]\n\t"
/* clang-format on */
#define TE_DW_TAP TE_DW_TAP_("sxtb16 r4, r12, ror #8\n\tsxtb16 r12, r12\n\t")
#define TE_DW_TAP_Z TE_DW_TAP_("sxtab16 r4, %[nz], r12, ror #8\n\tsxtab16 r12, %[nz], r12\n\t")
/* clang-format off */
#define TE_DW_TAPB_(ADD)                                                       \
    "ldmia %[tp]!, {r4, r5, r6}\n\t"                                           \
    "ldrsb r12, [%[org], r4]\n\t"                                              \
    ADD                                                                        \
    "smlabb %[a0], r12, r5, %[a0]\n\t"                                         \
    "smlabt %[a2], r12, r5, %[a2]\n\t"                                         \
    "smlabb %[a1], r12, r6, %[a1]\n\t"                                         \
    "smlabt %[a3], r12, r6, %[a3]\n\t"
/* clang-format on */
#define TE_DW_TAPB TE_DW_TAPB_("")
#define TE_DW_TAPB_Z TE_DW_TAPB_("add r12, r12, %[nz]\n\t")
/* clang-format off */
#define TE_DW_TAPS_ASM(TAPS)                                                   \
    __asm__ volatile(TAPS                                                      \
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), \
                       [tp] "+r"(tp)                                           \
                     : [org] "r"(origin), [nz] "r"(nz)                         \
                     : "r4", "r5", "r6", "r12", "memory")

/* One channel of the output stage: LDM of the record {m, s, plo, phi} from RP
 * (advancing it); hi:lo = p + acc*m; te_mac_srq then subtracts 2^31 when
 * acc < 0, which lowers hi exactly when also lo < 2^31: hi -= (acc & ~lo) >> 31;
 * then >> s and SSAT into r12. */
#define TE_DW_OUT(ACC, RP)                                                     \
    "ldmia " RP "!, {r4, r5, r6, r12}\n\t"                                     \
    "smlal r6, r12, " ACC ", r4\n\t"                                           \
    "bic r4, " ACC ", r6\n\t"                                                  \
    "sub r12, r12, r4, lsr #31\n\t"                                            \
    "asr r12, r12, r5\n\t"                                                     \
    "ssat r12, #8, r12\n\t"
/* The same from the full record {left, ts, u, m, plo, phi, s} (te_mac_rq) at
 * RP (advancing it) and the output offset at k + 128: a = acc << left;
 * hi:lo = p + (a >> ts)*u + a*m; (hi >> s) + offset, SSAT into r12. */
#define TE_DW_OUTL(ACC, RP)                                                    \
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
/* clang-format on */
#endif

/* acc += sum over n consecutive entries from tp of (x - z) * W, x read at
 * origin + entry offset; nz2 = (-z, -z). bcast (a constant at each call):
 * the four channels share one input byte (M % 4 == 0). */
TE_DW_INLINE void te_dw_run(te_dw_acc *acc, uintptr_t origin, const uint32_t *tp, int32_t n,
                            int32_t nz2, const int bcast)
{
#if TE_DW_ASM
    int32_t a0 = acc->a0, a1 = acc->a1, a2 = acc->a2, a3 = acc->a3;
    if (bcast) {
        const int32_t nz = (int32_t)(int16_t)(uint16_t)((uint32_t)nz2 & 0xFFFFu);
        for (; n > 0; --n) {
            TE_DW_TAPS_ASM(TE_DW_TAPB_Z);
        }
    } else {
        const int32_t nz = nz2;
        for (; n >= 3; n -= 3) {
            TE_DW_TAPS_ASM(TE_DW_TAP_Z TE_DW_TAP_Z TE_DW_TAP_Z);
        }
        for (; n > 0; --n) {
            TE_DW_TAPS_ASM(TE_DW_TAP_Z);
        }
    }
    acc->a0 = a0;
    acc->a1 = a1;
    acc->a2 = a2;
    acc->a3 = a3;
#else
    for (; n > 0; --n, tp += TE_DW_ENTRY) {
        const int8_t *xp = (const int8_t *)(origin + (uintptr_t)(intptr_t)(int32_t)tp[0]);
        const int32_t we = (int32_t)tp[1], wo = (int32_t)tp[2];
        int32_t xe, xo;
        if (bcast) { /* x - z in both lanes */
            const uint32_t x =
                (uint32_t)(*xp + (int32_t)(int16_t)(uint16_t)((uint32_t)nz2 & 0xFFFFu));
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

/* The four output bytes of one pixel: requantization and offset from the short
 * records, SSAT, packed (no clamp). */
static inline uint32_t te_dw_out4(const te_mac_srq *rq, const te_dw_acc *acc)
{
#if TE_DW_ASM
    uint32_t v;
    const te_mac_srq *r = rq;
    /* clang-format off */
    __asm__(TE_DW_OUT("%[a0]", "%[r]") "uxtb %[v], r12\n\t"
            TE_DW_OUT("%[a1]", "%[r]") "bfi %[v], r12, #8, #8\n\t"
            TE_DW_OUT("%[a2]", "%[r]") "bfi %[v], r12, #16, #8\n\t"
            TE_DW_OUT("%[a3]", "%[r]") "bfi %[v], r12, #24, #8\n\t"
            : [v] "=&r"(v), [r] "+r"(r)
            : [a0] "r"(acc->a0), [a1] "r"(acc->a1), [a2] "r"(acc->a2), [a3] "r"(acc->a3)
            : "r4", "r5", "r6", "r12", "memory");
    /* clang-format on */
    return v;
#else
    uint32_t v = (uint32_t)(uint8_t)te_ssat8(te_mac_srq_apply(&rq[0], acc->a0));
    v |= (uint32_t)(uint8_t)te_ssat8(te_mac_srq_apply(&rq[1], acc->a1)) << 8;
    v |= (uint32_t)(uint8_t)te_ssat8(te_mac_srq_apply(&rq[2], acc->a2)) << 16;
    v |= (uint32_t)(uint8_t)te_ssat8(te_mac_srq_apply(&rq[3], acc->a3)) << 24;
    return v;
#endif
}

/* te_mac_output's bytes (exact for any multiplier, shift and activation
 * range): the output stage of pixels out of spans in blocks the short records
 * do not cover. */
TE_DW_COLD uint32_t te_dw_out_gen(const te_dw_blk *k, const te_dw_acc *acc)
{
    const int32_t a[4] = {acc->a0, acc->a1, acc->a2, acc->a3};
    uint32_t v = 0u;
    for (int j = 0; j < 4; ++j) {
        v |= (uint32_t)(uint8_t)te_mac_output(a[j], k->mult[j], k->shift[j], k->out_off, k->act)
             << (8 * j);
    }
    return v;
}

/* The four output bytes of one pixel, whichever stage the block uses. */
static inline uint32_t te_dw_out(const te_dw_blk *k, const te_dw_acc *acc)
{
    if (k->fast == 1) {
        const uint32_t v = te_dw_out4(k->srq, acc);
        return k->clamp ? te_clamp8x4(v, k->lo4, k->hi4) : v;
    }
    return te_dw_out_gen(k, acc);
}

#if TE_DW_ASM
/* The span loop (see te_dw_blk): per pixel the starting accumulators k->sbase,
 * the stretch k->tp .. k->tend (TAPS, reading x itself), the output stage
 * OUT4, the clamp; n: pixels left in the line. */
/* clang-format off */
#define TE_DW_SPAN_ASM(TAPS, OUT4)                                             \
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
#define TE_DW_OUT4(OUT, REC)                                                   \
    REC                                                                        \
    OUT("%[a0]", "%[tp]") "uxtb %[a0], r12\n\t"                                \
    OUT("%[a1]", "%[tp]") "bfi %[a0], r12, #8, #8\n\t"                         \
    OUT("%[a2]", "%[tp]") "bfi %[a0], r12, #16, #8\n\t"                        \
    OUT("%[a3]", "%[tp]") "bfi %[a0], r12, #24, #8\n\t"
/* clang-format on */
#define TE_DW_OUT_SHORT TE_DW_OUT4(TE_DW_OUT, "mov %[tp], %[k]\n\t")
#define TE_DW_OUT_LONG TE_DW_OUT4(TE_DW_OUTL, "add %[tp], %[k], #132\n\t")
/* Any stretch: chunks of three taps up to k->tend, the first one entered by
 * TBB at its tap k->entry = (3 - len % 3) % 3 (3: past it, len == 0), so that
 * no single taps are left over. */
/* clang-format off */
#define TE_DW_TAPS_N(TAP)                                                      \
    "ldr r4, [%[k], #84]\n\t"                                                  \
    "tbb [pc, r4]\n\t"                                                         \
    "7:\n\t"                                                                   \
    ".byte (3f - 7b) / 2, (31f - 7b) / 2, (32f - 7b) / 2, (5f - 7b) / 2\n\t"   \
    "3:\n\t" TAP "31:\n\t" TAP "32:\n\t" TAP                                   \
    "ldr r4, [%[k], #88]\n\t"                                                  \
    "cmp %[tp], r4\n\t"                                                        \
    "bne 3b\n\t"                                                               \
    "5:\n\t"
/* clang-format on */
#endif

/* One span (see te_dw_blk) over stretches of len entries; k->fast == 1, or
 * 2 and !bcast (full records with one byte for four channels, which no model
 * seen needs, would take another copy of the loop). The hot loop, in a
 * function of its own so that the compiler has every register to give it. */
TE_DW_NOINLINE void te_dw_span(te_dw_blk *k, int8_t *out, uintptr_t origin, int32_t len)
{
    int32_t n = k->npix;
#if TE_DW_ASM
    int32_t a0, a1, a2, a3;
    const uint32_t *tp;
    if (k->bcast) {
        TE_DW_SPAN_ASM(TE_DW_TAPS_N(TE_DW_TAPB), TE_DW_OUT_SHORT);
    } else if (k->fast == 2) {
        TE_DW_SPAN_ASM(TE_DW_TAPS_N(TE_DW_TAP), TE_DW_OUT_LONG);
    } else if (len == 9) { /* 3x3, the common kernel: straight through */
        TE_DW_SPAN_ASM(TE_DW_TAP TE_DW_TAP TE_DW_TAP TE_DW_TAP TE_DW_TAP TE_DW_TAP TE_DW_TAP
                           TE_DW_TAP TE_DW_TAP,
                       TE_DW_OUT_SHORT);
    } else {
        TE_DW_SPAN_ASM(TE_DW_TAPS_N(TE_DW_TAP), TE_DW_OUT_SHORT);
    }
#else
    for (;;) {
        te_dw_acc acc = {(int32_t)k->sbase[0], (int32_t)k->sbase[1], (int32_t)k->sbase[2],
                         (int32_t)k->sbase[3]};
        if (k->bcast) { /* z = 0: x itself */
            te_dw_run(&acc, origin, k->tp, len, 0, 1);
        } else {
            te_dw_run(&acc, origin, k->tp, len, 0, 0);
        }
        const uint32_t v = te_dw_out(k, &acc);
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
TE_DW_NOINLINE void te_dw_pixel(const te_dw_blk *k, int8_t *out, uintptr_t origin,
                                const uint32_t *tp, int32_t len, int32_t runs, int32_t run_step)
{
    te_dw_acc acc = {(int32_t)k->base[0], (int32_t)k->base[1], (int32_t)k->base[2],
                     (int32_t)k->base[3]};
    for (int32_t r = 0; r < runs; ++r, tp += run_step) {
        if (k->bcast) {
            te_dw_run(&acc, origin, tp, len, k->nz2, 1);
        } else {
            te_dw_run(&acc, origin, tp, len, k->nz2, 0);
        }
    }
    const uint32_t v = te_dw_out(k, &acc);
    memcpy(out, &v, sizeof(v));
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
} te_dw_axis;

static void te_dw_axis_init(te_dw_axis *a, int32_t n, int32_t stride, int32_t pad, int32_t dil,
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
TE_DW_NOINLINE void te_dw_stretch(te_dw_blk *k, const uint32_t *tab, int32_t taps,
                                  const uint32_t *tp, int32_t len)
{
    const uint32_t *tend = tp + len * TE_DW_ENTRY;
    k->tp = tp;
    k->entry = len == 0 ? 3 : (3 - len % 3) % 3;
    k->tend = tend;
    int32_t s0, s1, s2, s3, zz;
    const uint32_t *a = tp, *b = tend, *c = tend, *d = tend; /* [a, b) and [c, d) */
    if (2 * len <= taps) {                                   /* base - z * inside */
        s0 = (int32_t)k->base[0], s1 = (int32_t)k->base[1], s2 = (int32_t)k->base[2],
        s3 = (int32_t)k->base[3];
        zz = k->nz2;
    } else { /* bias + z * outside */
        s0 = (int32_t)k->bias[0], s1 = (int32_t)k->bias[1], s2 = (int32_t)k->bias[2],
        s3 = (int32_t)k->bias[3];
        zz = (int32_t)((uint32_t)(uint16_t)(int16_t)k->z * 0x00010001u);
        a = tab;
        b = tp;
        d = tab + taps * TE_DW_ENTRY;
    }
    for (int pass = 0; pass < 2; ++pass, a = c, b = d) {
        for (; a < b; a += TE_DW_ENTRY) {
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
static void te_dw_span1(te_dw_blk *k, int8_t *out, uintptr_t origin, int32_t n, int32_t in_step,
                        int32_t out_step, const uint32_t *tab, int32_t taps, const uint32_t *tp,
                        int32_t len)
{
    if (n == 1) { /* cheaper without the span's starting sums */
        te_dw_pixel(k, out, origin, tp, len, 1, 0);
        return;
    }
    te_dw_stretch(k, tab, taps, tp, len);
    k->in_step = in_step;
    k->out_step = out_step;
    k->npix = n;
    k->lines = 1;
    te_dw_span(k, out, origin, len);
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
static void te_dw_sweep(const te_dw_axis *L, const te_dw_axis *P, te_dw_blk *k, const int8_t *image,
                        int8_t *output, const uint32_t *tab, const uint32_t *tab2)
{
    const int32_t taps = L->kn * P->kn;
    const int32_t pin = P->stride * P->in_step; /* input bytes per pixel along a line */
    const int32_t lin = L->stride * L->in_step; /* and per line */
    /* kernel origin of pixel 0 of line 0 (may lie outside the image; only
     * in-image taps are read) */
    const uintptr_t origin =
        (uintptr_t)image - (uintptr_t)(intptr_t)(L->pad * L->in_step + P->pad * P->in_step);
    const int span = k->fast == 1 || (k->fast == 2 && !k->bcast);
    if (span && P->full > 0 && L->full > 0) { /* the window inside both ways */
        te_dw_stretch(k, tab, taps, tab, taps);
        k->in_step = pin;
        k->out_step = P->out_step;
        k->npix = (int32_t)P->full;
        k->lines = (int32_t)L->full;
        k->line_in = lin - (int32_t)P->full * pin;
        k->line_out = L->out_step - (int32_t)P->full * P->out_step;
        te_dw_span(k, output + L->lo * L->out_step + P->lo * P->out_step,
                   origin + (uintptr_t)(intptr_t)(L->lo * lin + P->lo * pin), taps);
    }
    const int ends = span && tab2 && L->full > 0; /* line ends by spans across the lines */
    for (int32_t q = 0; ends && q < P->n; ++q) {
        if ((uint32_t)(q - P->lo) < P->full) {
            q += (int32_t)P->full - 1;
            continue;
        }
        int32_t i0, i1;
        te_dw_range(q * P->stride - P->pad, P->dil, P->kn, P->size, &i0, &i1);
        te_dw_span1(k, output + L->lo * L->out_step + q * P->out_step,
                    origin + (uintptr_t)(intptr_t)(L->lo * lin + q * pin), (int32_t)L->full, lin,
                    L->out_step, tab2, taps, tab2 + i0 * L->kn * TE_DW_ENTRY, (i1 - i0) * L->kn);
    }
    for (int32_t l = 0; l < L->n; ++l) {
        const int line_full = (uint32_t)(l - L->lo) < L->full;
        if (line_full && span && (ends || P->full == (uint32_t)P->n)) {
            continue; /* done */
        }
        int32_t o0, o1;
        te_dw_range(l * L->stride - L->pad, L->dil, L->kn, L->size, &o0, &o1);
        /* the stretch of the kernel lines inside the image */
        const uint32_t *tp = tab + o0 * P->kn * TE_DW_ENTRY;
        const int32_t len = (o1 - o0) * P->kn;
        const uintptr_t lorg = origin + (uintptr_t)(intptr_t)(l * lin);
        int8_t *lout = output + l * L->out_step;
        for (int32_t q = 0; q < P->n; ++q) {
            if ((uint32_t)(q - P->lo) < P->full) {
                if (span) { /* a span */
                    if (!line_full) {
                        te_dw_span1(k, lout + q * P->out_step,
                                    lorg + (uintptr_t)(intptr_t)(q * pin), (int32_t)P->full, pin,
                                    P->out_step, tab, taps, tp, len);
                    }
                    q += (int32_t)P->full - 1;
                    continue;
                }
                te_dw_pixel(k, lout + q * P->out_step, lorg + (uintptr_t)(intptr_t)(q * pin), tp,
                            len, 1, P->kn * TE_DW_ENTRY);
            } else if (!line_full || !ends) { /* the in-image part of each kernel line */
                int32_t i0, i1;
                te_dw_range(q * P->stride - P->pad, P->dil, P->kn, P->size, &i0, &i1);
                te_dw_pixel(k, lout + q * P->out_step, lorg + (uintptr_t)(intptr_t)(q * pin),
                            tab + (o0 * P->kn + i0) * TE_DW_ENTRY, i1 - i0, i1 > i0 ? o1 - o0 : 0,
                            P->kn * TE_DW_ENTRY);
            }
        }
    }
}

/* Channel j of the block's output stage: its short record (te_mac_srq), or
 * with `full` its full one (te_mac_rq); returns 1 when the short one applies,
 * 2 when the full one does. A call of its own: the records' code once, not
 * four times. */
TE_DW_NOINLINE int te_dw_record(te_dw_blk *k, int j, int32_t m, int32_t shift, int full)
{
    if (m < 0) {
        return 0;
    }
    if (!full) {
        return te_mac_srq_init(&k->srq[j], m, shift, k->out_off) |
               (shift >= -31 && shift <= 30 ? 2 : 0);
    }
    te_mac_rq_init(&k->rq[j], m, shift);
    return 2;
}

/* The block's starting values and output stage (channels c .. c+3; sum[j]:
 * of their weights): short records (m >= 0, 1 <= -shift <= 23) or full ones
 * (m >= 0, -31 <= shift <= 30), then SSAT and the clamp (an activation inside
 * int8), else te_mac_output. */
static void te_dw_records(te_dw_blk *k, int32_t c, const int32_t *bias, const te_pc_quant *quant,
                          const uint32_t *sum)
{
    k->bias[0] = k->bias[1] = k->bias[2] = k->bias[3] = 0u;
    if (bias) {
        memcpy(k->bias, bias + c, sizeof(k->bias));
    }
    int all = k->act.min >= -128 && k->act.max <= 127 ? 3 : 0;
    for (int j = 0; j < 4; ++j) {
        k->base[j] = k->bias[j] + (uint32_t)k->z * sum[j];
        all &= te_dw_record(k, j, quant->multiplier[c + j], quant->shift[c + j], 0);
    }
    k->fast = (all & 1) ? 1 : all;
    for (int j = 0; j < 4 && k->fast != 1; ++j) {
        k->mult[j] = quant->multiplier[c + j];
        k->shift[j] = quant->shift[c + j];
        if (k->fast == 2) {
            te_dw_record(k, j, k->mult[j], k->shift[j], 1);
        }
    }
}

/* The cost of sweeping in lines along P, one per output coordinate along L,
 * in about instructions beyond those of the taps and the output stage: a
 * span's set-up, a line's in the 2D span, a pixel outside spans. */
static uint32_t te_dw_cost(const te_dw_axis *L, const te_dw_axis *P, int ends)
{
    const uint32_t lcut = (uint32_t)L->n - L->full, pcut = (uint32_t)P->n - P->full;
    uint32_t spans = (L->full && P->full ? 1u : 0u) + (P->full ? lcut : 0u), alone = lcut * pcut;
    if (ends && L->full) {
        spans += pcut;
    } else {
        alone += L->full * pcut;
    }
    return 64u * spans + 8u * L->full + 48u * alone;
}

int32_t te_dw_blocks(const te_dwconv_params *p, const te_dims *in, const int8_t *input, int32_t kh,
                     int32_t kw, const te_dims *out, int8_t *output, const int32_t *bias,
                     const te_pc_quant *quant, uint32_t *buf, int32_t words, te_dw_fill fill,
                     const void *ctx)
{
    const int32_t taps = kh * kw, mult_depth = p->depth_multiplier, oc_count = out->c;
    if ((mult_depth != 1 && mult_depth % 4 != 0) || oc_count < 4 || words < TE_DW_ENTRY * taps) {
        return 0;
    }
    te_dw_axis ay, ax;
    te_dw_axis_init(&ay, out->h, p->stride_h, p->pad_top, p->dilation_h, in->h, kh, in->w * in->c,
                    out->w * oc_count);
    te_dw_axis_init(&ax, out->w, p->stride_w, p->pad_left, p->dilation_w, in->w, kw, in->c,
                    oc_count);
    /* tab: ordered by kernel line across the lines, tab2 the other way (the
     * line ends; columns need it). A 1-D kernel has one order. */
    uint32_t *tab = buf, *tab2 = NULL;
    if (kh == 1 || kw == 1) {
        tab2 = tab;
    } else if (words >= 2 * TE_DW_ENTRY * taps) {
        tab2 = buf + TE_DW_ENTRY * taps;
    }
    /* sweep rows or columns, whichever costs less */
    const int rows = !tab2 || te_dw_cost(&ay, &ax, 1) <= te_dw_cost(&ax, &ay, 1);
    const te_dw_axis *L = rows ? &ay : &ax, *P = rows ? &ax : &ay;
    if (!rows) { /* tab is the x-major one */
        uint32_t *t = tab;
        tab = tab2;
        tab2 = t;
    }
    /* the callers' tap order (y-major) is tab for rows, tab2 for columns */
    uint32_t *taps_tab = rows ? tab : tab2, *other = rows ? tab2 : tab;
    if (other == taps_tab) {
        other = NULL;
    }
    /* the input offsets, the same for every block: tap ky*KW + kx at entry
     * ky*KW + kx of taps_tab and kx*KH + ky of the other */
    for (int32_t ky = 0; ky < kh; ++ky) {
        for (int32_t kx = 0; kx < kw; ++kx) {
            const uint32_t off = (uint32_t)(ky * ay.dil * ay.in_step + kx * ax.dil * ax.in_step);
            taps_tab[(ky * kw + kx) * TE_DW_ENTRY] = off;
            if (other) {
                other[(kx * kh + ky) * TE_DW_ENTRY] = off;
            }
        }
    }
    const te_range act = p->activation;
    te_dw_blk k;
    k.z = -p->input_offset;
    k.nz2 = (int32_t)((uint32_t)(uint16_t)(int16_t)p->input_offset * 0x00010001u);
    k.out_off = p->output_offset;
    k.act = act;
    k.lo4 = 0x01010101u * (uint8_t)act.min;
    k.hi4 = 0x01010101u * (uint8_t)act.max;
    k.clamp = act.min > -128 || act.max < 127;
    k.bcast = mult_depth != 1;
    const int32_t in_image = in->h * in->w * in->c, out_image = out->h * out->w * oc_count;
    int32_t c = 0;
    for (; c + 4 <= oc_count; c += 4) {
        uint32_t sum[4];
        if (!fill(ctx, c, taps_tab, taps, sum)) {
            break;
        }
        if (other) { /* the weights of entry ky*KW + kx into entry kx*KH + ky */
            const uint32_t *src = taps_tab;
            for (int32_t ky = 0; ky < kh; ++ky) {
                uint32_t *dst = other + ky * TE_DW_ENTRY;
                for (int32_t kx = 0; kx < kw; ++kx, src += TE_DW_ENTRY, dst += kh * TE_DW_ENTRY) {
                    dst[1] = src[1];
                    dst[2] = src[2];
                }
            }
        }
        te_dw_records(&k, c, bias, quant, sum);
        /* M % 4 == 0: the block's four channels read input channel c / M */
        const int32_t ic = mult_depth == 1 ? c : c / mult_depth;
        for (int32_t n = 0; n < in->n; ++n) {
            te_dw_sweep(L, P, &k, input + n * in_image + ic, output + n * out_image + c, tab, tab2);
        }
    }
    return c;
}

#endif /* TE_USE_DSP */
