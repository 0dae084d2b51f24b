/* SPDX-License-Identifier: Apache-2.0 */
/* te_transpose_conv_s8.c - int8 TRANSPOSE_CONV by gathering: per output pixel, the taps whose
 * input position is a whole input pixel (their ranges computed once per row and column, no
 * division in the loops); per tap a dot product over the input channels, two output channels
 * at a time so each input word is loaded once (the DSP path adds the input offset in int16
 * lanes and takes two products per SMLAD). No scratch.
 * Mirrors ternembed/kernels/transpose_conv.py (which scatters: the same int32 sums). */
#include "te_dsp.h"
#include "te_fixedpoint.h"
#include "te_kernels_data.h"

/* acc0 += sum (x + offset) * w0, acc1 += sum (x + offset) * w1 over n channels. */
static void te_dot2_offset(const int8_t *x, const int8_t *w0, const int8_t *w1, int32_t n,
                           int32_t offset, int32_t *acc0, int32_t *acc1)
{
    int32_t a0 = *acc0, a1 = *acc1, i = 0;
#if TE_USE_DSP
    const int32_t offset2 = (int32_t)(((uint32_t)(uint16_t)offset << 16) | (uint16_t)offset);
    for (; i + 4 <= n; i += 4) {
        const int32_t xv = te_read_s8x4(x + i);
        const int32_t x02 = te_sxtab16(offset2, xv), x13 = te_sxtab16(offset2, te_ror8(xv));
        const int32_t u = te_read_s8x4(w0 + i), v = te_read_s8x4(w1 + i);
        a0 = te_smlad(x02, te_sxtb16(u), a0);
        a0 = te_smlad(x13, te_sxtb16_ror8(u), a0);
        a1 = te_smlad(x02, te_sxtb16(v), a1);
        a1 = te_smlad(x13, te_sxtb16_ror8(v), a1);
    }
#endif
    for (; i < n; ++i) {
        const int32_t xv = x[i] + offset;
        a0 += xv * w0[i];
        a1 += xv * w1[i];
    }
    *acc0 = a0;
    *acc1 = a1;
}

/* Along one axis, output position o: taps k = k0 + j * stride read input i0 - j, for j in [lo, hi). */
typedef struct {
    int32_t k0, i0, lo, hi;
} te_taps;

static te_taps te_taps_for(int32_t o, int32_t pad, int32_t stride, int32_t kernel, int32_t in_size)
{
    te_taps t;
    const int32_t pos = o + pad; /* >= 0: pad >= 0 */
    t.k0 = pos % stride;
    t.i0 = pos / stride;
    t.lo = t.i0 - in_size + 1 > 0 ? t.i0 - in_size + 1 : 0;
    t.hi = t.k0 < kernel ? (kernel - t.k0 + stride - 1) / stride : 0;
    if (t.hi > t.i0 + 1) {
        t.hi = t.i0 + 1;
    }
    return t;
}

static int8_t te_tconv_out(int32_t acc, const te_pc_quant *quant, int32_t oc,
                           const te_transpose_conv_params *p)
{
    acc = te_requantize(acc, quant->multiplier[oc], quant->shift[oc]) + p->output_offset;
    return (int8_t)te_clamp(acc, p->act.min, p->act.max);
}

void te_transpose_conv_s8(const te_transpose_conv_params *p, const te_pc_quant *quant,
                          const te_dims *in_dims, const int8_t *input, const te_dims *filter_dims,
                          const int8_t *weights, const int32_t *bias, const te_dims *out_dims,
                          int8_t *output)
{
    const int32_t in_c = in_dims->c, kh = filter_dims->h, kw = filter_dims->w, out_c = out_dims->c;
    const int32_t oc_stride = kh * kw * in_c; /* weights of one output channel */
    int32_t b, oy, ox, oc, jy, jx;
    for (b = 0; b < out_dims->n; ++b) {
        const int8_t *image = input + b * in_dims->h * in_dims->w * in_c;
        for (oy = 0; oy < out_dims->h; ++oy) {
            const te_taps ty = te_taps_for(oy, p->pad_h, p->stride_h, kh, in_dims->h);
            for (ox = 0; ox < out_dims->w; ++ox) {
                const te_taps tx = te_taps_for(ox, p->pad_w, p->stride_w, kw, in_dims->w);
                for (oc = 0; oc < out_c; oc += 2) {
                    const int32_t oc1 =
                        oc + 1 < out_c ? oc + 1 : oc; /* odd count: last one twice */
                    int32_t acc0 = bias != NULL ? bias[oc] : 0, acc1 = bias != NULL ? bias[oc1] : 0;
                    for (jy = ty.lo; jy < ty.hi; ++jy) {
                        const int32_t ky = ty.k0 + jy * p->stride_h, iy = ty.i0 - jy;
                        for (jx = tx.lo; jx < tx.hi; ++jx) {
                            const int32_t kx = tx.k0 + jx * p->stride_w, ix = tx.i0 - jx;
                            const int32_t w_off = (ky * kw + kx) * in_c;
                            te_dot2_offset(image + (iy * in_dims->w + ix) * in_c,
                                           weights + oc * oc_stride + w_off,
                                           weights + oc1 * oc_stride + w_off, in_c, p->input_offset,
                                           &acc0, &acc1);
                        }
                    }
                    output[oc] = te_tconv_out(acc0, quant, oc, p);
                    output[oc1] = te_tconv_out(acc1, quant, oc1, p);
                }
                output += out_c;
            }
        }
    }
}
