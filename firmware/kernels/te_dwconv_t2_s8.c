/* SPDX-License-Identifier: Apache-2.0 */
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
 * The convolution itself is te_dw_span_s8.c's, shared with the int8 kernel
 * (method there). DSP path (M == 1 or M % 4 == 0): per block of four output
 * channels whose weights fit int16, the weights are decoded straight into its
 * int16 tap table in the scratch (te_dwt_weights), which te_dw_block sweeps.
 * Other depth multipliers, the last O % 4 channels, weights beyond int16 and
 * the portable build decode an int32 table W[i][oc] for the plain loop
 * (te_dw_plain_s32).
 *
 * Scratch (te_dwconv_t2_s8_get_buffer_size): 4 * KH*KW*C*M bytes, enough for
 * the int32 table; the DSP path uses 12 (24 with the second copy) bytes a tap.
 */
#include "te_dw_internal.h"
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

/* Taps decoded per pass (a stack buffer of 4 * TE_DWT_CHUNK words). */
#define TE_DWT_CHUNK 32

/* col[j] = W[i0 + j][oc] (modulo 2^32) for j < cnt: the general decoder
 * (any groups and planes; the block tables have a faster one for the usual
 * rows, te_dwt_weights). */
TE_DW_COLD void te_dwt_decode(const te_tern_mm *mm, int32_t oc, int32_t i0, int32_t cnt,
                              uint32_t *col)
{
    /* locals: the stores to col (uint32_t) may alias mm's int32_t fields */
    const te_tern_weights *w = mm->w;
    const int32_t kind = mm->kind, n = mm->n, planes = mm->active, o = mm->o, rb = mm->rb,
                  gs = mm->g;
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
                /* p2: sign(v) * (a << (levels - |v|)), the nibble sign-extended */
                if (kind == TE_TK_P2) {
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
TE_DW_NOINLINE void te_dwt_decode_int32(const te_tern_mm *mm, int32_t oc0, int32_t oc1,
                                        uint32_t *dst, int32_t ld)
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

#if TE_USE_DSP

/* PKHBT: the bottom halves of lo and hi as one word. */
static inline uint32_t te_dwt_pack16(uint32_t lo, uint32_t hi)
{
#if TE_DW_ASM
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
#if TE_DW_ASM
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
/* The common row (t2, one plane, one uint8 scale, no plane shift, at most 128
 * taps): per channel pair a 16-entry table of the lane pair for the two 2-bit
 * codes, so one tap costs two bit-field extracts, one load and one store; the
 * sums collect in the int16 lanes (|sum| <= 128 * 255). */
static void te_dwt_weights_t2(const te_tern_mm *mm, int32_t oc, uint32_t *to, uint32_t *sum)
{
    const te_tern_weights *w = mm->w;
    const int32_t taps = mm->k, rb = mm->rb;
    const uint8_t *sc = (const uint8_t *)w->scales;
    for (int32_t j = 0; j < 2; ++j) {
        const int32_t r0 = oc + j, r1 = oc + j + 2;
        const uint32_t a0 = sc[r0], a1 = sc[r1];
        const uint32_t v0[4] = {0u, a0, 0u - 2u * a0, 0u - a0}; /* code 0b10 is never written */
        const uint32_t v1[4] = {0u, a1, 0u - 2u * a1, 0u - a1};
        uint32_t lut[16];
        for (int32_t f = 0; f < 16; ++f) {
            lut[f] = te_dwt_pack16(v0[f & 3], v1[f >> 2]);
        }
        const uint8_t *c0 = w->codes + r0 * rb, *c1 = w->codes + r1 * rb;
        uint32_t *ent = to + 1 + j, acc = 0u;
        for (int32_t i = 0; i < taps; ++i, ent += TE_DW_ENTRY) {
            const int32_t sh = 2 * (i & 3);
            const uint32_t f =
                ((uint32_t)(c0[i >> 2] >> sh) & 3u) | (((uint32_t)(c1[i >> 2] >> sh) & 3u) << 2);
            *ent = lut[f];
            acc = te_dwt_add16(acc, lut[f]);
        }
        sum[j] = (uint32_t)(int32_t)(int16_t)(acc & 0xFFFFu);
        sum[j + 2] = (uint32_t)((int32_t)acc >> 16);
    }
}

static int te_dwt_weights(const te_tern_mm *mm, int32_t oc, uint32_t *to, uint32_t *sum)
{
    const te_tern_weights *w = mm->w;
    const int32_t taps = mm->k, planes = mm->active;
    if (mm->kind == TE_TK_T2 && planes == 1 && mm->n >= taps && taps <= 128 &&
        w->scale_bytes == 1 && te_tern_pshift(w, oc) == 0 && te_tern_pshift(w, oc + 1) == 0 &&
        te_tern_pshift(w, oc + 2) == 0 && te_tern_pshift(w, oc + 3) == 0) {
        te_dwt_weights_t2(mm, oc, to, sum);
        return 1;
    }
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
                for (int32_t i = 0; i < taps; ++i, ent += TE_DW_ENTRY) {
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
                    const uint32_t lane0 = q == 0 ? (uint32_t)b0 : 0u,
                                   lane1 = q == 0 ? (uint32_t)b1 : 0u;
                    uint32_t *e = ent;
                    for (int32_t i = 0; i < taps; ++i, e += TE_DW_ENTRY) {
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
        uint32_t *ent = to + i0 * TE_DW_ENTRY;
        for (int32_t t = 0; t < cnt; ++t, ent += TE_DW_ENTRY) {
            const uint32_t w0 = col[t], w1 = col[cnt + t], w2 = col[2 * cnt + t],
                           w3 = col[3 * cnt + t];
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

/* te_dw_fill of the ternary kernels (ctx: the te_tern_mm). */
static int te_dwt_fill(const void *ctx, int32_t c, uint32_t *taps, int32_t ntaps, uint32_t *sum)
{
    (void)ntaps; /* mm->k */
    return te_dwt_weights((const te_tern_mm *)ctx, c, taps, sum);
}

#endif /* TE_USE_DSP */

te_status te_tern_dwconv(int32_t kind, const te_dwconv_params *params, const te_pc_quant *quant,
                         const te_dims *input_dims, const int8_t *input, const te_dims *filter_dims,
                         const te_tern_weights *weights, const int32_t *bias,
                         const te_dims *output_dims, int8_t *output, void *scratch)
{
    if (!params || !input_dims || !input || !filter_dims || !output_dims || !output || !scratch ||
        !te_dw_args_ok(params, input_dims, filter_dims, output_dims)) {
        return TE_ERR_ARG;
    }
    const te_dims in = *input_dims;
    const int32_t kh = filter_dims->h, kw = filter_dims->w;
    const int32_t oh = output_dims->h, ow = output_dims->w, oc_count = output_dims->c;
    te_tern_mm mm;
    if (te_tern_mm_init(&mm, kind, weights, oc_count, kh * kw, bias, quant, params->output_offset,
                        params->activation) != TE_OK) {
        return TE_ERR_ARG;
    }
    uint32_t *wt = (uint32_t *)scratch;
    const int32_t in_image = in.h * in.w * in.c, out_image = oh * ow * oc_count;
    int32_t oc0 = 0; /* channels [0, oc0) done by the block path */
#if TE_USE_DSP
    /* blocks of four channels (M == 1 or M % 4 == 0), one block's tables at a
     * time at the start of the scratch (a second one when it has room: O >= 6) */
    oc0 = te_dw_blocks(params, &in, input, kh, kw, output_dims, output, bias, quant, wt,
                       kh * kw * oc_count, te_dwt_fill, &mm);
#endif
    if (oc0 == oc_count) {
        return TE_OK;
    }
    /* the channels left (all of them without the block path): int32 table */
    te_dwt_decode_int32(&mm, oc0, oc_count, wt, oc_count - oc0);
    for (int32_t b = 0; b < in.n; ++b) {
        te_dw_plain_s32(params, quant, &in, input + b * in_image, kh, kw, bias, oh, ow, oc_count,
                        oc0, oc_count, wt, oc_count - oc0, output + b * out_image);
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
