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

/* The plain loop: channels [oc0, oc1) of one image (image at channel 0,
 * output at its pixel 0, channel 0; oc_count channels a pixel). W[i][oc] is
 * w[i * ld + oc - oc0] (int8 weights; _s32: int32 ones, modulo 2^32). Every
 * tap, padded ones reading the zero point; pixels whose window lies inside
 * the image without a check per tap. The portable build's whole layer, the
 * DSP build's channels outside whole blocks (and other depth multipliers). */
void te_dw_plain_s8(const te_dwconv_params *p, const te_pc_quant *quant, const te_dims *in,
                    const int8_t *image, int32_t kh, int32_t kw, const int32_t *bias, int32_t oh,
                    int32_t ow, int32_t oc_count, int32_t oc0, int32_t oc1, const int8_t *w, int32_t ld,
                    int8_t *output);
void te_dw_plain_s32(const te_dwconv_params *p, const te_pc_quant *quant, const te_dims *in,
                     const int8_t *image, int32_t kh, int32_t kw, const int32_t *bias, int32_t oh,
                     int32_t ow, int32_t oc_count, int32_t oc0, int32_t oc1, const uint32_t *w, int32_t ld,
                     int8_t *output);

#if TE_USE_DSP
/* Words per table entry: {input byte offset of the tap from the pixel's
 * kernel origin, (W_c0, W_c2), (W_c1, W_c3)} (int16 lanes). */
#define TE_DW_ENTRY 3

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

/* A layer's sweep and tables (te_dw_geom_init). The output is swept in lines
 * along P, one per output coordinate along L (rows: L = y, or columns). */
typedef struct {
    te_dw_axis ay, ax;
    const te_dw_axis *L, *P;
    uint32_t *tab;  /* L-major: entry kL * P->kn + kP */
    uint32_t *tab2; /* P-major (kP * L->kn + kL), or NULL */
    uint32_t *taps; /* the one in tap order (tab for rows, tab2 for columns) */
    int32_t ntaps;
    int32_t batches, in_image, out_image; /* images, bytes of one in / out */
    int32_t mult_depth;
} te_dw_geom;

/* Sets up g with its tables in buf (`words` words; 3 a tap, 6 for the
 * second table, which columns and the line-end spans need) and their
 * offsets, the same for every block. Returns 0 when buf is too small. */
int te_dw_geom_init(te_dw_geom *g, const te_dwconv_params *p, const te_dims *in, int32_t kh, int32_t kw,
                    const te_dims *out, uint32_t *buf, int32_t words);

/* Output channels c .. c+3 of every image (M == 1: input channels c .. c+3;
 * M % 4 == 0: input channel c / M), once words 1 and 2 of every entry of
 * g->taps hold their weights (which must fit int16); sum[j] = sum_i W[i][c+j]
 * (modulo 2^32). */
void te_dw_block(const te_dw_geom *g, const te_dwconv_params *p, const int8_t *input, int8_t *output, int32_t c,
                 const int32_t *bias, const te_pc_quant *quant, const uint32_t *sum);
#endif /* TE_USE_DSP */

#endif /* TE_DW_INTERNAL_H */
