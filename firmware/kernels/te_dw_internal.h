/* SPDX-License-Identifier: Apache-2.0 */
/* te_dw_internal.h - private to the depthwise kernels (te_dwconv_s8.c,
 * te_dwconv_t2_s8.c and its families): the machinery of te_dw_span_s8.c that
 * they share. Each kernel only brings its weights as exact integers
 * W[i][oc] (tap i = ky*KW + kx, output channel oc): the int8 kernel widens
 * its int8 weights, the ternary ones decode theirs. Not part of the API.
 */
#ifndef TE_DW_INTERNAL_H
#define TE_DW_INTERNAL_H

#include <stdint.h>

#include "te_dsp.h"
#include "te_kernels_mac.h"

/* TE_DW_NOINLINE: a function of its own (registers to itself, one copy:
 * GCC would otherwise clone some for constant arguments); TE_DW_COLD: rare
 * code, which GCC then compiles for size. */
#if defined(__GNUC__) && !defined(__clang__)
#define TE_DW_INLINE static inline __attribute__((always_inline))
#define TE_DW_NOINLINE static __attribute__((noinline, noclone))
#define TE_DW_COLD static __attribute__((noinline, noclone, cold))
#elif defined(__GNUC__)
#define TE_DW_INLINE static inline __attribute__((always_inline))
#define TE_DW_NOINLINE static __attribute__((noinline))
#define TE_DW_COLD static __attribute__((noinline, cold))
#else
#define TE_DW_INLINE static inline
#define TE_DW_NOINLINE static
#define TE_DW_COLD static
#endif

/* The shape and parameter checks both depthwise kernels make (their pointers
 * apart): positive sizes, strides and dilations, C*M channels in and out, an
 * input offset a padded tap can take, a non-empty activation range. */
int te_dw_args_ok(const te_dwconv_params *p, const te_dims *in, const te_dims *filter_dims,
                  const te_dims *output_dims);

/* The plain loop: channels [oc0, oc1) of one image (image at channel 0,
 * output at its pixel 0, channel 0; oc_count channels a pixel). W[i][oc] is
 * w[i * ld + oc - oc0] (int8 weights; _s32: int32 ones, modulo 2^32). Every
 * tap, padded ones reading the zero point; pixels whose window lies inside
 * the image without a check per tap. The portable build's whole layer, the
 * DSP build's channels outside whole blocks (and other depth multipliers). */
void te_dw_plain_s8(const te_dwconv_params *p, const te_pc_quant *quant, const te_dims *in,
                    const int8_t *image, int32_t kh, int32_t kw, const int32_t *bias, int32_t oh,
                    int32_t ow, int32_t oc_count, int32_t oc0, int32_t oc1, const int8_t *w,
                    int32_t ld, int8_t *output);
void te_dw_plain_s32(const te_dwconv_params *p, const te_pc_quant *quant, const te_dims *in,
                     const int8_t *image, int32_t kh, int32_t kw, const int32_t *bias, int32_t oh,
                     int32_t ow, int32_t oc_count, int32_t oc0, int32_t oc1, const uint32_t *w,
                     int32_t ld, int8_t *output);

/* The kernel taps k in [*k0, *k1) of one output row/column with
 * 0 <= start + k*step < size (step > 0, k < n). */
static inline void te_dw_range(int32_t start, int32_t step, int32_t n, int32_t size, int32_t *k0,
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

#if TE_USE_DSP
/* Inline assembly for the DSP instructions (GCC-compatible, Thumb-2,
 * optimized builds); C otherwise. */
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__) && defined(__GNUC__) && defined(__OPTIMIZE__)
#define TE_DW_ASM 1
#else
#define TE_DW_ASM 0
#endif

/* Words per table entry: {input byte offset of the tap from the pixel's
 * kernel origin, (W_c0, W_c2), (W_c1, W_c3)} (int16 lanes). */
#define TE_DW_ENTRY 3

/* A kernel's weights for the block path: fills words 1 and 2 of the ntaps
 * entries from taps (tap order i = ky*KW + kx) with the weights of output
 * channels c .. c+3, (W[i][c], W[i][c+2]) and (W[i][c+1], W[i][c+3]), and
 * sum[j] = sum_i W[i][c+j] (modulo 2^32). Returns 0 when some weight does not
 * fit int16. */
typedef int (*te_dw_fill)(const void *ctx, int32_t c, uint32_t *taps, int32_t ntaps, uint32_t *sum);

/* The DSP block path (M == 1 or M % 4 == 0): output channels c .. c+3 of
 * every image, for c = 0, 4, ... as long as `fill` succeeds, on the tap
 * tables in buf (`words` words: 3 a tap, 6 for a second table ordered the
 * other way, which 2-D kernels need for columns and the line ends). Returns
 * the channels done: 0 when buf or M do not allow blocks. */
int32_t te_dw_blocks(const te_dwconv_params *p, const te_dims *in, const int8_t *input, int32_t kh,
                     int32_t kw, const te_dims *out, int8_t *output, const int32_t *bias,
                     const te_pc_quant *quant, uint32_t *buf, int32_t words, te_dw_fill fill,
                     const void *ctx);
#endif /* TE_USE_DSP */

#endif /* TE_DW_INTERNAL_H */
