/* SPDX-License-Identifier: Apache-2.0 */
/* te_nn_tern_mm_s8.c - the shared matrix core of the ternary FC and CONV_2D
 * kernels: the layer as a matrix, and its portable reference path.
 *
 * A layer is a matrix of O rows by K taps (te_tern_mm). The drivers hand it one
 * input vector (an FC row, or a conv patch gathered im2col style) or two at a
 * time, and it writes one int8 output per row and vector.
 *
 * Portable path (here): per tap, decode the field and multiply-add (any core).
 * DSP path: te_nn_tern_widen_s8.c (inputs), te_nn_tern_dsp_s8.c (row blocks),
 * te_nn_tern_sweep_s8.c (assembly plane sweeps), te_nn_tern_out_s8.c (outputs).
 *
 * Both paths accumulate modulo 2^32 in uint32_t, so they agree bit for bit with
 * each other and with the exact integer contract whenever the final accumulator
 * fits in int32 (which the ternary pass guarantees).
 */
#include "te_tern_internal.h"

te_status te_tern_mm_init(te_tern_mm *mm, int32_t kind, const te_tern_weights *w, int32_t o,
                          int32_t k, const int32_t *bias, const te_pc_quant *quant,
                          int32_t output_offset, te_range act)
{
    if (!w || !w->codes || !w->scales || !quant || !quant->multiplier || !quant->shift || o <= 0 ||
        k <= 0 || w->group <= 0 || (w->scale_bytes != 1 && w->scale_bytes != 2) ||
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

/* ---- portable ---- */

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
        const uint32_t acc =
            (mm->bias ? (uint32_t)mm->bias[o] : 0u) + te_tern_row_portable(mm, o, x);
        out[o] = te_tern_out(acc, mm->mult[o], mm->shift[o], mm->output_offset, mm->act);
    }
}

#if TE_USE_DSP
/* The p2 decode table of the DSP path, from the same weight rule. */
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
#endif /* TE_USE_DSP */
