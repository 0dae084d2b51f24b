/* te_transpose_conv_s8.c - int8 TRANSPOSE_CONV by gathering: per output pixel, the taps whose
 * input position is a whole input pixel; per tap a dot product over the input channels (the DSP
 * path adds the input offset in int16 lanes and takes two products per SMLAD). No scratch.
 * Mirrors ternembed/kernels/transpose_conv.py (which scatters: the same int32 sums). */
#include "te_dsp.h"
#include "te_fixedpoint.h"
#include "te_kernels_data.h"

static int32_t te_dot_offset(const int8_t *x, const int8_t *w, int32_t n, int32_t offset)
{
    int32_t acc = 0, i = 0;
#if TE_USE_DSP
    const int32_t offset2 = (int32_t)(((uint32_t)(uint16_t)offset << 16) | (uint16_t)offset);
    for (; i + 4 <= n; i += 4) {
        const int32_t xv = te_read_s8x4(x + i), wv = te_read_s8x4(w + i);
        acc = te_smlad(te_sxtab16(offset2, xv), te_sxtb16(wv), acc);
        acc = te_smlad(te_sxtab16(offset2, te_ror8(xv)), te_sxtb16_ror8(wv), acc);
    }
#endif
    for (; i < n; ++i) {
        acc += (x[i] + offset) * w[i];
    }
    return acc;
}

/* First tap k and input index of output position o along one axis: o + pad - k = i * stride. */
static int32_t te_first_tap(int32_t o, int32_t pad, int32_t stride)
{
    const int32_t t = o + pad;
    return t < 0 ? -1 : t % stride;
}

void te_transpose_conv_s8(const te_transpose_conv_params *p, const te_pc_quant *quant,
                          const te_dims *in_dims, const int8_t *input, const te_dims *filter_dims,
                          const int8_t *weights, const int32_t *bias, const te_dims *out_dims,
                          int8_t *output)
{
    const int32_t in_c = in_dims->c, kh = filter_dims->h, kw = filter_dims->w;
    int32_t b, oy, ox, oc, ky, kx;
    for (b = 0; b < out_dims->n; ++b) {
        const int8_t *image = input + b * in_dims->h * in_dims->w * in_c;
        for (oy = 0; oy < out_dims->h; ++oy) {
            const int32_t ky0 = te_first_tap(oy, p->pad_h, p->stride_h);
            for (ox = 0; ox < out_dims->w; ++ox) {
                const int32_t kx0 = te_first_tap(ox, p->pad_w, p->stride_w);
                for (oc = 0; oc < out_dims->c; ++oc) {
                    int32_t acc = bias != NULL ? bias[oc] : 0;
                    for (ky = ky0; ky >= 0 && ky < kh; ky += p->stride_h) {
                        const int32_t iy = (oy + p->pad_h - ky) / p->stride_h;
                        if (iy < 0 || iy >= in_dims->h) {
                            continue;
                        }
                        for (kx = kx0; kx >= 0 && kx < kw; kx += p->stride_w) {
                            const int32_t ix = (ox + p->pad_w - kx) / p->stride_w;
                            if (ix < 0 || ix >= in_dims->w) {
                                continue;
                            }
                            acc += te_dot_offset(image + (iy * in_dims->w + ix) * in_c,
                                                 weights + ((oc * kh + ky) * kw + kx) * in_c, in_c,
                                                 p->input_offset);
                        }
                    }
                    acc = te_requantize(acc, quant->multiplier[oc], quant->shift[oc]) +
                          p->output_offset;
                    *output++ = (int8_t)te_clamp(acc, p->act.min, p->act.max);
                }
            }
        }
    }
}
