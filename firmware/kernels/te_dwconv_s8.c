/* te_dwconv_s8.c - DEPTHWISE_CONV_2D, int8 in / int8 out, per-channel requantization.
 *
 * Layout: input [N][H][W][C] int8, weights [1][KH][KW][C*M] int8 (TFLite),
 * folded bias [C*M] int32 (may be NULL), output [N][OH][OW][C*M] int8, where
 * M is the depth multiplier and output channel oc = ic*M + m reads input
 * channel ic. Input row of output row oy, kernel row ky:
 * iy = oy*stride_h - pad_top + ky*dilation_h (columns alike). A tap outside
 * the input reads the input zero point (-input_offset), which the folded bias
 * cancels exactly.
 *
 * DSP path (M == 1): blocks of four channels in the
 * outer loop, every output pixel of the block inside. Per block:
 *  - the weights are widened once into a stack table (per tap, the (c0,c2)
 *    and (c1,c3) int16 pairs, and the tap's input offset; kernels of up to
 *    TE_DW_TAPS taps, larger ones widen in the loop) and the requantization
 *    records (te_mac_rq, te_mac_srq) prepared once;
 *  - padded taps are not visited: with z = -input_offset the pad value,
 *        acc = bias_f + sum_taps xt*w = (bias_f + z*sum_taps w) + sum_in (x - z)*w
 *    (xt = x inside, z outside; exact modulo 2^32 like the int32 sums it
 *    replaces), so each pixel starts from the per-channel constant
 *    bias_f + z*sum w and runs over the kernel rows and columns that fall
 *    inside the image, without a bounds check per tap. x - z is formed by
 *    SXTAB16 on the packed (-z, -z) while widening, at no extra cost;
 *  - per tap: one 4-byte input load, two SXTAB16, one LDRD of the widened
 *    weights, four SMLABB/SMLATT;
 *  - the output stage applies the four records, SSATs and packs the four
 *    bytes, clamps them with SSUB8/SEL when the activation is narrower than
 *    int8, and stores one word.
 * A depth multiplier M % 4 == 0 (e.g. one input channel, micro_speech) runs
 * the same blocks, the four channels of a block reading one input byte per
 * tap (LDRSB, add -z, SMLABB/SMLABT). Remaining channels and other M use the
 * portable loop.
 */
#include <string.h>

#include "te_kernels_mac.h"

#include "te_dsp.h"

/* Largest kernel (KH*KW) of the DSP block path: its widened weights take
 * 12 bytes per tap of stack (972 bytes for 9x9 or 10x8); larger kernels widen
 * the weights in the loop instead. */
#ifndef TE_DW_TAPS
#define TE_DW_TAPS 81
#endif

#if TE_USE_DSP

#if defined(__GNUC__)
#define TE_DW_INLINE static inline __attribute__((always_inline))
#else
#define TE_DW_INLINE static inline
#endif

/* SXTAB16 with ROR #8: per int16 lane, a.lane + sign_extend(byte 1 / byte 3 of x). */
static inline int32_t te_dw_sxtab16_ror8(int32_t a, int32_t x)
{
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__) && defined(__thumb2__)
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
#else
    return te_sxtab16(a, te_ror8(x));
#endif
}

/* SMLABT: acc + a.bottom * b.top. */
static inline int32_t te_dw_smlabt(int32_t a, int32_t b, int32_t acc)
{
#if defined(__ARM_FEATURE_DSP)
    return __smlabt(a, b, acc);
#else
    return (int32_t)((uint32_t)acc + (uint32_t)((int32_t)(int16_t)(uint16_t)((uint32_t)a & 0xFFFFu) *
                                                (int32_t)(int16_t)(uint16_t)((uint32_t)b >> 16)));
#endif
}

static inline int32_t te_dw_ssat8(int32_t x)
{
#if defined(__ARM_FEATURE_DSP)
    return __ssat(x, 8);
#else
    return x < -128 ? -128 : (x > 127 ? 127 : x);
#endif
}

/* Per signed byte lane: min(max(v, lo), hi) (SSUB8 sets GE, SEL picks). */
static inline uint32_t te_dw_clamp8x4(uint32_t v, uint32_t lo4, uint32_t hi4)
{
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
    uint32_t t;
    __asm__("ssub8 %1, %0, %2\n\tsel %0, %0, %2\n\tssub8 %1, %0, %3\n\tsel %0, %3, %0"
            : "+r"(v), "=&r"(t) : "r"(lo4), "r"(hi4));
    return v;
#else
    uint32_t r = 0;
    for (int i = 0; i < 32; i += 8) {
        int32_t x = (int8_t)(uint8_t)(v >> i);
        const int32_t lo = (int8_t)(uint8_t)(lo4 >> i), hi = (int8_t)(uint8_t)(hi4 >> i);
        x = x < lo ? lo : x;
        x = x >= hi ? hi : x;
        r |= (uint32_t)(uint8_t)x << i;
    }
    return r;
#endif
}

#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__) && defined(__GNUC__) && defined(__OPTIMIZE__)
#define TE_DW_ASM 1
#else
#define TE_DW_ASM 0
#endif

/* One tap-table entry: the input byte offset of the tap from the pixel's
 * kernel origin, and the four channels' weights widened to (c0,c2), (c1,c3). */
typedef struct {
    int32_t off;
    uint32_t we, wo;
} te_dw_tap;

/* The four accumulators of one pixel. */
typedef struct {
    int32_t a0, a1, a2, a3;
} te_dw_acc;

#if TE_DW_ASM
/* One tap: LDM of {off, we, wo} into r4-r6 (LDM needs ascending registers,
 * so they are fixed), load x into r12, widen x - z by SXTAB16 (the even lanes
 * into r12, the odd lanes into r4, free after the load), four SMLAxy. Fixed
 * scratch registers leave the compiler only 7 operands to place (it must
 * manage with a frame pointer too). */
#define TE_DW_TAP                                                              \
    "ldmia %[tp]!, {r4, r5, r6}\n\t"                                           \
    "ldr r12, [%[org], r4]\n\t"                                                \
    "sxtab16 r4, %[nz], r12, ror #8\n\t"                                       \
    "sxtab16 r12, %[nz], r12\n\t"                                              \
    "smlabb %[a0], r12, r5, %[a0]\n\t"                                         \
    "smlatt %[a2], r12, r5, %[a2]\n\t"                                         \
    "smlabb %[a1], r4, r6, %[a1]\n\t"                                          \
    "smlatt %[a3], r4, r6, %[a3]\n\t"
#define TE_DW_TAP3 TE_DW_TAP TE_DW_TAP TE_DW_TAP
/* Depth multiplier M % 4 == 0: the four channels read one input byte; nz is -z. */
#define TE_DW_TAPB                                                             \
    "ldmia %[tp]!, {r4, r5, r6}\n\t"                                           \
    "ldrsb r12, [%[org], r4]\n\t"                                              \
    "add r12, r12, %[nz]\n\t"                                                  \
    "smlabb %[a0], r12, r5, %[a0]\n\t"                                         \
    "smlabt %[a2], r12, r5, %[a2]\n\t"                                         \
    "smlabb %[a1], r12, r6, %[a1]\n\t"                                         \
    "smlabt %[a3], r12, r6, %[a3]\n\t"
#define TE_DW_TAPB3 TE_DW_TAPB TE_DW_TAPB TE_DW_TAPB
#define TE_DW_TAPS_ASM(TAPS)                                                   \
    __asm__ volatile(TAPS                                                      \
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), \
                       [tp] "+r"(tp)                                           \
                     : [org] "r"(origin), [nz] "r"(nz2)                        \
                     : "r4", "r5", "r6", "r12", "memory")
#endif

/* acc += sum over n consecutive table entries of (x - z) * w, x read at
 * origin + entry.off, four channels, nz2 = (-z, -z). bcast (a constant at each
 * call): the four channels share one input byte (depth multiplier M % 4 == 0). */
#if TE_DW_ASM && defined(__OPTIMIZE_SIZE__)
/* -Os: GCC may fail to place the tap operands inside the big pixel loop when
 * it also keeps a frame pointer; a call of its own always has the registers. */
static __attribute__((noinline)) void te_dw_run(te_dw_acc *acc, uintptr_t origin, const te_dw_tap *tp,
                                                int32_t n, int32_t nz2, const int bcast)
#else
TE_DW_INLINE void te_dw_run(te_dw_acc *acc, uintptr_t origin, const te_dw_tap *tp, int32_t n,
                            int32_t nz2, const int bcast)
#endif
{
#if TE_DW_ASM
    int32_t a0 = acc->a0, a1 = acc->a1, a2 = acc->a2, a3 = acc->a3;
    if (bcast) {
        nz2 = (int32_t)(int16_t)(uint16_t)((uint32_t)nz2 & 0xFFFFu);
        for (; n >= 3; n -= 3) {
            TE_DW_TAPS_ASM(TE_DW_TAPB3);
        }
        for (; n > 0; --n) {
            TE_DW_TAPS_ASM(TE_DW_TAPB);
        }
    } else if (n == 9) {
        TE_DW_TAPS_ASM(TE_DW_TAP3 TE_DW_TAP3 TE_DW_TAP3);
    } else {
        for (; n >= 3; n -= 3) {
            TE_DW_TAPS_ASM(TE_DW_TAP3);
        }
        for (; n > 0; --n) {
            TE_DW_TAPS_ASM(TE_DW_TAP);
        }
    }
    acc->a0 = a0;
    acc->a1 = a1;
    acc->a2 = a2;
    acc->a3 = a3;
#else
    for (; n > 0; --n, ++tp) {
        const int8_t *xp = (const int8_t *)(origin + (uintptr_t)(intptr_t)tp->off);
        if (bcast) {
            const int32_t x = *xp + (int32_t)(int16_t)(uint16_t)((uint32_t)nz2 & 0xFFFFu);
            acc->a0 = te_smlabb(x, (int32_t)tp->we, acc->a0);
            acc->a2 = te_dw_smlabt(x, (int32_t)tp->we, acc->a2);
            acc->a1 = te_smlabb(x, (int32_t)tp->wo, acc->a1);
            acc->a3 = te_dw_smlabt(x, (int32_t)tp->wo, acc->a3);
            continue;
        }
        const int32_t xw = te_read_s8x4(xp);
        const int32_t xe = te_sxtab16(nz2, xw);
        const int32_t xo = te_dw_sxtab16_ror8(nz2, xw);
        acc->a0 = te_smlabb(xe, (int32_t)tp->we, acc->a0);
        acc->a2 = te_smlatt(xe, (int32_t)tp->we, acc->a2);
        acc->a1 = te_smlabb(xo, (int32_t)tp->wo, acc->a1);
        acc->a3 = te_smlatt(xo, (int32_t)tp->wo, acc->a3);
    }
#endif
}

/* As te_dw_run without a table (kernels of more than TE_DW_TAPS taps): n taps
 * whose inputs are xstep bytes apart from origin and whose weights are wstep
 * bytes apart from w. */
static inline void te_dw_run_direct(te_dw_acc *acc, uintptr_t origin, const int8_t *w, int32_t n,
                                    int32_t xstep, int32_t wstep, int32_t nz2)
{
    for (; n > 0; --n, origin += (uintptr_t)(intptr_t)xstep, w += wstep) {
        const int32_t xw = te_read_s8x4((const int8_t *)origin);
        const int32_t ww = te_read_s8x4(w);
        const int32_t xe = te_sxtab16(nz2, xw), xo = te_dw_sxtab16_ror8(nz2, xw);
        const int32_t we = te_sxtb16(ww), wo = te_sxtb16_ror8(ww);
        acc->a0 = te_smlabb(xe, we, acc->a0);
        acc->a2 = te_smlatt(xe, we, acc->a2);
        acc->a1 = te_smlabb(xo, wo, acc->a1);
        acc->a3 = te_smlatt(xo, wo, acc->a3);
    }
}

/* The four output bytes of one pixel, packed, from the full records rq[0..3]:
 * requantize, add the offset, SSAT. */
static inline uint32_t te_dw_out4(const te_mac_rq *rq, const te_dw_acc *acc, int32_t off)
{
#if TE_DW_ASM
    /* record words: left, ts, u, m, plo, phi, s (te_mac_rq) */
#define TE_DW_OUT(ACC, REC, LANE)                                              \
    "ldrd %[l], %[t], [%[r], #" REC "]\n\t"                                    \
    "lsl %[" ACC "], %[" ACC "], %[l]\n\t"                                     \
    "lsr %[t], %[" ACC "], %[t]\n\t"                                           \
    "ldrd %[lo], %[hi], [%[r], #" REC "+16]\n\t"                               \
    "ldrd %[l], %[m], [%[r], #" REC "+8]\n\t"                                  \
    "smlal %[lo], %[hi], %[t], %[l]\n\t"                                       \
    "smlal %[lo], %[hi], %[" ACC "], %[m]\n\t"                                 \
    "ldr %[t], [%[r], #" REC "+24]\n\t"                                        \
    "asr %[hi], %[hi], %[t]\n\t"                                               \
    "add %[hi], %[hi], %[off]\n\t"                                             \
    "ssat %[hi], #8, %[hi]\n\t"                                                \
    "bfi %[v], %[hi], #" LANE ", #8\n\t"
    int32_t a0 = acc->a0, a1 = acc->a1, a2 = acc->a2, a3 = acc->a3;
    uint32_t v = 0;
    int32_t l, t, m, lo, hi;
    __asm__(TE_DW_OUT("a0", "0", "0") TE_DW_OUT("a1", "28", "8")
            TE_DW_OUT("a2", "56", "16") TE_DW_OUT("a3", "84", "24")
            : [v] "+r"(v), [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
              [l] "=&r"(l), [t] "=&r"(t), [m] "=&r"(m), [lo] "=&r"(lo), [hi] "=&r"(hi)
            : [r] "r"(rq), [off] "r"(off)
            : "memory");
#undef TE_DW_OUT
    return v;
#else
    uint32_t v = (uint32_t)(uint8_t)te_dw_ssat8(te_mac_rq_apply(&rq[0], acc->a0) + off);
    v |= (uint32_t)(uint8_t)te_dw_ssat8(te_mac_rq_apply(&rq[1], acc->a1) + off) << 8;
    v |= (uint32_t)(uint8_t)te_dw_ssat8(te_mac_rq_apply(&rq[2], acc->a2) + off) << 16;
    v |= (uint32_t)(uint8_t)te_dw_ssat8(te_mac_rq_apply(&rq[3], acc->a3) + off) << 24;
    return v;
#endif
}

/* The same from the short records (offset included). */
static inline uint32_t te_dw_out4_short(const te_mac_srq *rq, const te_dw_acc *acc)
{
#if TE_DW_ASM
    /* record words: m, s, plo, phi */
#define TE_DW_OUT(ACC, REC, LANE)                                              \
    "ldrd %[m], %[t], [%[r], #" REC "]\n\t"                                    \
    "ldrd %[lo], %[hi], [%[r], #" REC "+8]\n\t"                                \
    "smlal %[lo], %[hi], %[" ACC "], %[m]\n\t"                                 \
    "lsr %[m], %[" ACC "], #31\n\t"                                            \
    "smlal %[lo], %[hi], %[m], %[imin]\n\t"                                    \
    "asr %[hi], %[hi], %[t]\n\t"                                               \
    "ssat %[hi], #8, %[hi]\n\t"                                                \
    "bfi %[v], %[hi], #" LANE ", #8\n\t"
    uint32_t v = 0;
    int32_t t, m, lo, hi;
    __asm__(TE_DW_OUT("a0", "0", "0") TE_DW_OUT("a1", "16", "8")
            TE_DW_OUT("a2", "32", "16") TE_DW_OUT("a3", "48", "24")
            : [v] "+r"(v), [t] "=&r"(t), [m] "=&r"(m), [lo] "=&r"(lo), [hi] "=&r"(hi)
            : [r] "r"(rq), [a0] "r"(acc->a0), [a1] "r"(acc->a1), [a2] "r"(acc->a2),
              [a3] "r"(acc->a3), [imin] "r"(INT32_MIN)
            : "memory");
#undef TE_DW_OUT
    return v;
#else
    uint32_t v = (uint32_t)(uint8_t)te_dw_ssat8(te_mac_srq_apply(&rq[0], acc->a0));
    v |= (uint32_t)(uint8_t)te_dw_ssat8(te_mac_srq_apply(&rq[1], acc->a1)) << 8;
    v |= (uint32_t)(uint8_t)te_dw_ssat8(te_mac_srq_apply(&rq[2], acc->a2)) << 16;
    v |= (uint32_t)(uint8_t)te_dw_ssat8(te_mac_srq_apply(&rq[3], acc->a3)) << 24;
    return v;
#endif
}

/* First k in [0, n) with start + k*step >= 0 (step > 0), and the end of the
 * run with start + k*step < size: the kernel taps of one output row/column
 * that fall inside [0, size). */
static inline void te_dw_range(int32_t start, int32_t step, int32_t n, int32_t size,
                               int32_t *k0, int32_t *k1)
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

/* te_dw_out4 reads the records at 28-byte steps, te_dw_out4_short at 16. */
typedef char te_mac_srq_layout_check[sizeof(te_mac_rq) == 28 && sizeof(te_mac_srq) == 16 ? 1 : -1];

/* Every output pixel of one channel block; `table` and `bcast` are constants at
 * each call (the tap table, or weights widened in the loop for kernels above
 * TE_DW_TAPS; see te_dw_run for bcast). ch_in: the input channel of lane 0. */
TE_DW_INLINE void te_dw_pixels(const te_dwconv_params *p, const te_dims *in, const int8_t *image,
                               int32_t kh, int32_t kw, const int8_t *filter, int32_t oh, int32_t ow,
                               int32_t oc_count, int32_t c, int8_t *output, const te_dw_tap *tab,
                               const te_mac_rq *rq, const te_mac_srq *srq, const uint32_t *base,
                               int short_rq, int32_t ch_in, const int table, const int bcast)
{
    const int32_t z = -p->input_offset;
    const int32_t off = p->output_offset;
    const int32_t sh = p->stride_h, sw = p->stride_w, dh = p->dilation_h, dw = p->dilation_w;
    const int32_t in_w = in->w, in_c = in->c;
    const int32_t taps = kh * kw;
    const int32_t nz2 = (int32_t)(((uint32_t)(uint16_t)(int16_t)-z) * 0x00010001u);
    const int clamp = p->activation.min > -128 || p->activation.max < 127;
    const uint32_t lo4 = 0x01010101u * (uint8_t)p->activation.min;
    const uint32_t hi4 = 0x01010101u * (uint8_t)p->activation.max;
    /* output columns whose kernel lies inside the image: [ox_lo, ox_hi) */
    const int32_t ox_lo = (p->pad_left + sw - 1) / sw;
    const int32_t last = in_w - 1 - (kw - 1) * dw + p->pad_left; /* ox*sw <= last */
    int32_t ox_hi = last < 0 ? 0 : last / sw + 1;
    ox_hi = ox_hi > ow ? ow : ox_hi;
    const uint32_t ox_n = ox_hi > ox_lo ? (uint32_t)(ox_hi - ox_lo) : 0u;
    const int32_t ostep = sw * in_c; /* origin bytes per output column */

    for (int32_t oy = 0; oy < oh; ++oy) {
        const int32_t iy0 = oy * sh - p->pad_top;
        int32_t ky0, ky1;
        te_dw_range(iy0, dh, kh, in->h, &ky0, &ky1);
        const uint32_t inner_n = ky0 == 0 && ky1 == kh ? ox_n : 0u;
        int8_t *out = output + oy * ow * oc_count + c;
        /* the pixel's kernel origin (may lie outside the image; only in-image
         * taps are read) */
        uintptr_t origin = (uintptr_t)image + (uintptr_t)ch_in +
                           (uintptr_t)(intptr_t)((iy0 * in_w - p->pad_left) * in_c);
        for (int32_t ox = 0; ox < ow; ++ox, out += oc_count, origin += (uintptr_t)(intptr_t)ostep) {
            te_dw_acc acc = {(int32_t)base[0], (int32_t)base[1], (int32_t)base[2], (int32_t)base[3]};
            if (!table) {
                int32_t kx0 = 0, kx1 = kw;
                if ((uint32_t)(ox - ox_lo) >= inner_n) {
                    te_dw_range(ox * sw - p->pad_left, dw, kw, in_w, &kx0, &kx1);
                }
                for (int32_t ky = ky0; ky < ky1 && kx1 > kx0; ++ky) {
                    te_dw_run_direct(&acc, origin + (uintptr_t)(intptr_t)((ky * dh * in_w + kx0 * dw) * in_c),
                                     filter + (ky * kw + kx0) * oc_count + c, kx1 - kx0, dw * in_c,
                                     oc_count, nz2);
                }
            } else if ((uint32_t)(ox - ox_lo) < inner_n) {
                te_dw_run(&acc, origin, tab, taps, nz2, bcast);
            } else {
                int32_t kx0, kx1;
                te_dw_range(ox * sw - p->pad_left, dw, kw, in_w, &kx0, &kx1);
                if (kx1 > kx0) {
                    for (int32_t ky = ky0; ky < ky1; ++ky) {
                        te_dw_run(&acc, origin, tab + ky * kw + kx0, kx1 - kx0, nz2, bcast);
                    }
                }
            }
            uint32_t v = short_rq ? te_dw_out4_short(srq, &acc) : te_dw_out4(rq, &acc, off);
            if (clamp) {
                v = te_dw_clamp8x4(v, lo4, hi4);
            }
            memcpy(out, &v, sizeof(v));
        }
    }
}

/* The block path for channels [c, c + 4) of one image. */
static void te_dw_block4(const te_dwconv_params *p, const te_dims *in, const int8_t *image,
                         int32_t kh, int32_t kw, const int8_t *filter, const int32_t *bias,
                         const te_pc_quant *quant, int32_t oh, int32_t ow, int32_t oc_count,
                         int32_t c, int32_t mult_depth, int8_t *output)
{
    te_dw_tap tab[TE_DW_TAPS];
    te_mac_rq rq[4];
    te_mac_srq srq[4];
    uint32_t base[4]; /* bias_f + z * sum w, modulo 2^32 */
    const int32_t z = -p->input_offset;
    const int32_t off = p->output_offset;
    const int32_t dh = p->dilation_h, dw = p->dilation_w;
    const int32_t in_w = in->w, in_c = in->c;
    int short_rq = 1;
    for (int j = 0; j < 4; ++j) {
        const int32_t m = quant->multiplier[c + j], shift = quant->shift[c + j];
        base[j] = bias ? (uint32_t)bias[c + j] : 0u;
        te_mac_rq_init(&rq[j], m, shift);
        short_rq &= te_mac_srq_init(&srq[j], m, shift, off);
    }
    const int32_t taps = kh * kw;
    const int table = taps <= TE_DW_TAPS;
    for (int32_t ky = 0; ky < kh; ++ky) {
        for (int32_t kx = 0; kx < kw; ++kx) {
            const int32_t t = ky * kw + kx;
            const int8_t *w = filter + t * oc_count + c;
            if (table) {
                const int32_t word = te_read_s8x4(w);
                tab[t].off = (ky * dh * in_w + kx * dw) * in_c;
                tab[t].we = (uint32_t)te_sxtb16(word);
                tab[t].wo = (uint32_t)te_sxtb16_ror8(word);
            }
            for (int j = 0; j < 4; ++j) {
                base[j] += (uint32_t)(z * w[j]);
            }
        }
    }
    if (mult_depth != 1) { /* M % 4 == 0 and a table: lanes c..c+3 read input channel c / M */
        te_dw_pixels(p, in, image, kh, kw, filter, oh, ow, oc_count, c, output, tab, rq, srq, base,
                     short_rq, c / mult_depth, 1, 1);
    } else if (table) {
        te_dw_pixels(p, in, image, kh, kw, filter, oh, ow, oc_count, c, output, tab, rq, srq, base,
                     short_rq, c, 1, 0);
    } else {
        te_dw_pixels(p, in, image, kh, kw, filter, oh, ow, oc_count, c, output, tab, rq, srq, base,
                     short_rq, c, 0, 0);
    }
}

#endif /* TE_USE_DSP */

te_status te_dwconv_s8(const te_dwconv_params *params, const te_pc_quant *quant,
                       const te_dims *input_dims, const int8_t *input,
                       const te_dims *filter_dims, const int8_t *filter,
                       const int32_t *bias,
                       const te_dims *output_dims, int8_t *output)
{
    if (!params || !quant || !quant->multiplier || !quant->shift || !input_dims || !input ||
        !filter_dims || !filter || !output_dims || !output) {
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
        sh <= 0 || sw <= 0 || dh <= 0 || dw <= 0 ||
        params->input_offset < -127 || params->input_offset > 128 ||
        params->activation.min > params->activation.max) {
        return TE_ERR_ARG;
    }
    const int32_t pad_value = -params->input_offset;
    const int32_t *mult = quant->multiplier;
    const int32_t *shift = quant->shift;
    const int32_t out_off = params->output_offset;
    const te_range act = params->activation;

    for (int32_t b = 0; b < in.n; ++b) {
        const int8_t *image = input + b * in.h * in.w * in.c;
        int8_t *out_image = output + b * oh * ow * oc_count;
        int32_t oc_start = 0;
#if TE_USE_DSP
        if (mult_depth == 1 || (mult_depth % 4 == 0 && kh * kw <= TE_DW_TAPS)) {
            for (; oc_start + 4 <= oc_count; oc_start += 4) {
                te_dw_block4(params, &in, image, kh, kw, filter, bias, quant, oh, ow, oc_count,
                             oc_start, mult_depth, out_image);
            }
        }
        if (oc_start == oc_count) {
            continue;
        }
#endif
        for (int32_t oy = 0; oy < oh; ++oy) {
            const int32_t iy0 = oy * sh - params->pad_top;
            for (int32_t ox = 0; ox < ow; ++ox) {
                const int32_t ix0 = ox * sw - params->pad_left;
                int8_t *out = out_image + (oy * ow + ox) * oc_count;
                for (int32_t oc = oc_start; oc < oc_count; ++oc) {
                    const int32_t ic = oc / mult_depth;
                    int32_t acc = bias ? bias[oc] : 0;
                    const int8_t *w = filter + oc;
                    for (int32_t ky = 0; ky < kh; ++ky) {
                        const int32_t iy = iy0 + ky * dh;
                        const int row_in = iy >= 0 && iy < in.h;
                        for (int32_t kx = 0; kx < kw; ++kx, w += oc_count) {
                            const int32_t ix = ix0 + kx * dw;
                            const int32_t x = (row_in && ix >= 0 && ix < in.w)
                                ? image[(iy * in.w + ix) * in.c + ic]
                                : pad_value;
                            acc += x * *w;
                        }
                    }
                    out[oc] = te_mac_output(acc, mult[oc], shift[oc], out_off, act);
                }
            }
        }
    }
    return TE_OK;
}
