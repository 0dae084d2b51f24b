/* SPDX-License-Identifier: Apache-2.0 */
/* te_tern_internal.h - private to the ternary kernels (te_*_t2/to/p2_s8.c,
 * te_nn_tern_*_s8.c): the shared matrix core and the family drivers. Not part of
 * the public API; see te_kernels_ternary.h for the contract.
 */
#ifndef TE_TERN_INTERNAL_H
#define TE_TERN_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "te_dsp.h"
#include "te_kernels_ternary.h"

/* An empty statement the compiler cannot see through: keeps GCC from turning
 * short copy/fill loops into calls of newlib-nano's byte-by-byte memcpy/memset. */
#if defined(__GNUC__)
#define TE_TERN_KEEP_LOOP() __asm__ volatile("")
#else
#define TE_TERN_KEEP_LOOP() (void)0
#endif

#if defined(__GNUC__)
#define TE_TERN_INLINE static inline __attribute__((always_inline))
#else
#define TE_TERN_INLINE static inline
#endif

static inline int32_t te_tern_min(int32_t a, int32_t b) { return a < b ? a : b; }

/* Low half of v as the low int16 lane of a word. */
static inline uint32_t te_lo16(int32_t v) { return (uint32_t)v & 0xFFFFu; }

/* Kernel families. */
#define TE_TK_T2 0
#define TE_TK_TO 1
#define TE_TK_P2 2

/* Taps per DSP word: 16 two-bit codes (t2/to) or 8 nibbles (p2). */
#define TE_T2_WORD_TAPS 16
#define TE_P2_WORD_TAPS 8

/* Words between flushes of the 2^14-scaled t2 sums (<= 1023 taps). */
#define TE_T2_FLUSH_WORDS 32

/* The p2 family's DSP block functions (te_nn_tern_dsp_s8.c). Only the p2 entry
 * points reference te_tern_p2_blocks, so a model without p2 layers links none
 * of that code (--gc-sections). */
typedef struct te_tern_blocks te_tern_blocks;
extern const te_tern_blocks te_tern_p2_blocks;

/* One ternary layer seen as a matrix [O][K] plus its output stage. */
typedef struct {
    int32_t kind;   /* TE_TK_* */
    int32_t k;      /* reduction length K */
    int32_t o;      /* output rows O */
    int32_t rb;     /* bytes of one packed code row */
    int32_t g;      /* groups per row, ceil(K / group) */
    int32_t n;      /* group size */
    int32_t planes; /* planes stored (P) */
    int32_t active; /* planes used */
    const te_tern_weights *w;
    const int32_t *bias; /* may be NULL */
    const int32_t *mult;
    const int32_t *shift;
    int32_t output_offset;
    te_range act;
    int simple_out;           /* every shift <= 0 and act = [-128, 127] */
    const int32_t *rec;       /* DSP: per-row output records (te_tern_prep_out), or NULL */
    int rec_short;            /* DSP: the records are the short SMMULR form */
    const te_tern_blocks *p2; /* DSP, p2 only: its block functions */
    int fold;                 /* DSP: scales folded into the records, accumulators unscaled */
} te_tern_mm;

/* Checks the weights for `kind` and fills mm; returns TE_OK or TE_ERR_ARG. */
te_status te_tern_mm_init(te_tern_mm *mm, int32_t kind, const te_tern_weights *w, int32_t o,
                          int32_t k, const int32_t *bias, const te_pc_quant *quant,
                          int32_t output_offset, te_range act);

/* Bytes of DSP working copy of one input vector (int16, padded to whole words). */
int32_t te_tern_vec_bytes(int32_t kind, int32_t k);

static inline uint32_t te_tern_scale(const te_tern_weights *w, int32_t idx)
{
    if (w->scale_bytes == 1) {
        return ((const uint8_t *)w->scales)[idx];
    }
    uint16_t v;
    memcpy(&v, (const uint8_t *)w->scales + 2 * idx, sizeof(v));
    return v;
}

static inline uint32_t te_tern_pshift(const te_tern_weights *w, int32_t idx)
{
    return w->plane_shift ? w->plane_shift[idx] : 0u;
}

/* The output stage of te_mac_output (TFLite's MultiplyByQuantizedMultiplier,
 * output offset, clamp), same bytes, in about half the instructions: the
 * rounding doubling high multiply is (a*m + 2^30) >> 31 (one SMLAL), which
 * equals TFLite's nudge-and-truncate form for every a and every m >= 0 (the
 * only case where they differ, a = m = INT32_MIN, needs a negative
 * multiplier, which TFLite never produces), and the rounding right shift is
 * done without a branch. */
static inline int32_t te_tern_rq(uint32_t acc, int32_t left, int32_t right, int32_t mult,
                                 int32_t mask, int32_t half, int32_t off, te_range act)
{
    const int32_t a = (int32_t)(acc << left);
    const uint64_t ab = (uint64_t)((int64_t)a * mult) + (1u << 30);
    int32_t x = (int32_t)(uint32_t)(ab >> 31);
    const int32_t thr = half + (int32_t)((uint32_t)x >> 31);
    x = (x >> right) + ((x & mask) > thr);
    x += off;
    x = x < act.min ? act.min : x;
    x = x > act.max ? act.max : x;
    return x;
}

static inline int8_t te_tern_out(uint32_t acc, int32_t mult, int32_t shift, int32_t off,
                                 te_range act)
{
    const int32_t left = shift & ~(shift >> 31);      /* max(shift, 0) */
    const int32_t right = (-shift) & ~(-shift >> 31); /* max(-shift, 0) */
    const int32_t mask = (int32_t)((1u << right) - 1u);
    return (int8_t)te_tern_rq(acc, left, right, mult, mask, mask >> 1, off, act);
}

/* Portable: the weight part of the accumulator of row o (planes, groups,
 * offset*S included; bias not), modulo 2^32, for an int8 vector x[K]. */
uint32_t te_tern_row_portable(const te_tern_mm *mm, int32_t o, const int8_t *x);

/* Writes out[o*stride] for every row o from the int8 vector x (portable path). */
void te_tern_vec_portable(const te_tern_mm *mm, const int8_t *x, int8_t *out);

/* DSP fast path available for this layer (group layout fits the word size)? */
int te_tern_dsp_ok(const te_tern_mm *mm);

#if TE_USE_DSP
/* Widens x[K] into the kind's int16 working copy: word j at xw[j * stride]
 * (stride 2 interleaves two vectors), zero padded to whole code words; returns
 * sum_i x[i] (used by the offset family). */
int32_t te_tern_widen(int32_t kind, const int8_t *x, int32_t k, uint32_t *xw, int32_t stride);
/* Writes out0[o] for every row o from one widened vector x (stride 1), or
 * out0[o] and out1[o] from two interleaved ones (pair != 0), with patch sums
 * s0, s1. tbl: the p2 decode table (else NULL); accbuf: 2*O words of scratch per
 * vector. */
void te_tern_mm_dsp(const te_tern_mm *mm, const uint32_t *x, int pair, int32_t s0, int32_t s1,
                    int8_t *out0, int8_t *out1, const uint32_t *tbl, uint32_t *accbuf);
/* p2: the 256-entry byte -> (e(lo nibble), e(hi nibble)) int16 pair table. */
void te_p2_build_table(int32_t levels, uint32_t *tbl);
/* Output bytes of P (1 or 2) vectors from the weight parts acc[o*P + q]
 * (bias, requantization, clamp; s0/s1 are the offset family's patch sums). */
void te_tern_outputs(const te_tern_mm *mm, int P, const uint32_t *acc, int32_t s0, int32_t s1,
                     int8_t *out0, int8_t *out1);
#endif

/* Table lookup core (te_tern_lut_s8.c). te_tern_lut_ok: t2 with groups of a
 * multiple of 4 taps or one group per row. te_tern_lut_bytes: scratch of
 * te_tern_lut_mm for `rows` = planes * O rows, one vector or two (wide).
 * te_tern_lut_mm: the weight parts of x0 (x1 NULL: acc[o]) or of x0 and x1
 * (acc[2o], acc[2o+1]); acc must not overlap the first te_tern_lut_bytes - 4 *
 * rows * (wide ? 2 : 1) bytes of scratch. te_tern_lut_out: their output bytes. */
int32_t te_tern_lut_ok(const te_tern_mm *mm);
int32_t te_tern_lut_bytes(int32_t wide, int32_t rows);
void te_tern_lut_mm(const te_tern_mm *mm, const int8_t *x0, const int8_t *x1, uint32_t *scratch,
                    uint32_t *acc);
void te_tern_lut_out(const te_tern_mm *mm, const uint32_t *acc, int8_t *out0, int8_t *out1);

#if TE_USE_DSP
/* Words of scratch te_tern_prep_out needs: 6 per row. */
#define TE_TERN_REC_WORDS 6
#define TE_TERN_SREC_WORDS 5 /* the short form (mm->rec_short) */
/* For the simple output stage (see te_tern_mm.simple_out): per row {bias, multiplier,
 * right shift, rounding mask, half mask, scale}, so that the output loop loads them
 * with one LDM. Sets mm->rec (left NULL when the simple stage does not apply) and
 * mm->fold (one group per row and one plane: the group scale, shifted by the plane
 * shift, goes into the record instead of the accumulation; else scale = 1). */
void te_tern_prep_out(te_tern_mm *mm, uint32_t *rec);
#endif

/* Family drivers (te_fc_t2_s8.c, te_conv_t2_s8.c, te_dwconv_t2_s8.c). The
 * *_setup functions check a call's arguments and fill mm (the other variants
 * of a family share them); te_tern_conv_direct: a 1x1 stride-1 unpadded conv
 * whose patches are the input pixels themselves. */
te_status te_tern_fc_setup(te_tern_mm *mm, int32_t kind, const te_fc_params *params,
                           const te_pc_quant *quant, const te_dims *input_dims, const int8_t *input,
                           const te_dims *filter_dims, const te_tern_weights *weights,
                           const int32_t *bias, const te_dims *output_dims, const int8_t *output);
te_status te_tern_conv_setup(te_tern_mm *mm, int32_t kind, const te_conv_params *params,
                             const te_pc_quant *quant, const te_dims *input_dims,
                             const int8_t *input, const te_dims *filter_dims,
                             const te_tern_weights *weights, const int32_t *bias,
                             const te_dims *output_dims, const int8_t *output, const void *scratch);
int te_tern_conv_direct(const te_conv_params *p, const te_dims *in, const te_dims *filter_dims,
                        const te_dims *output_dims);
int32_t te_tern_fc_buffer_size(int32_t kind, const te_dims *input_dims, const te_dims *filter_dims);
te_status te_tern_fc(int32_t kind, const te_tern_blocks *p2, const te_fc_params *params,
                     const te_pc_quant *quant, const te_dims *input_dims, const int8_t *input,
                     const te_dims *filter_dims, const te_tern_weights *weights,
                     const int32_t *bias, const te_dims *output_dims, int8_t *output,
                     void *scratch);
int32_t te_tern_conv_buffer_size(int32_t kind, const te_dims *input_dims,
                                 const te_dims *filter_dims);
te_status te_tern_conv(int32_t kind, const te_tern_blocks *p2, const te_conv_params *params,
                       const te_pc_quant *quant, const te_dims *input_dims, const int8_t *input,
                       const te_dims *filter_dims, const te_tern_weights *weights,
                       const int32_t *bias, const te_dims *output_dims, int8_t *output,
                       void *scratch);
/* The int8 patch [KH][KW][C] of output pixel (oy, ox) of a conv (te_conv_t2_s8.c). */
void te_tern_gather(const int8_t *image, const te_dims *in, int32_t kh, int32_t kw,
                    const te_conv_params *p, int32_t oy, int32_t ox, int8_t pad_value, int8_t *dst);
int32_t te_tern_dwconv_buffer_size(const te_dims *input_dims, const te_dims *filter_dims);
te_status te_tern_dwconv(int32_t kind, const te_dwconv_params *params, const te_pc_quant *quant,
                         const te_dims *input_dims, const int8_t *input, const te_dims *filter_dims,
                         const te_tern_weights *weights, const int32_t *bias,
                         const te_dims *output_dims, int8_t *output, void *scratch);

#endif /* TE_TERN_INTERNAL_H */
