/* te_fc_t2_lut_s8.c - FULLY_CONNECTED with 2-bit ternary weights by table
 * lookup (the T-MAC / bitnet.cpp idea, written for Cortex-M): same arguments and
 * results as te_fc_t2_s8, different speed trade-off.
 *
 * A code byte holds the codes of 4 consecutive taps. For every 4 inputs
 * x[4j..4j+3] a table T_j of 256 entries holds the partial sum for every byte
 * value, T_j[b] = sum_{m<4} t(field m of b) * x[4j+m]; it is built once per input
 * row and then shared by every output row and every plane, so one output row
 * costs one byte extract, one load and one add per 4 weights. Tables are built
 * for TE_LUT_CHUNK taps at a time (scratch stays small) and the rows' partial
 * sums wait in an int32 accumulator per (plane, row) in scratch.
 *
 * Table entries are stored biased, T + 1024 in [0, 2048] as uint16, so that two
 * entries are built with one 32-bit add (no carry crosses the lanes); only the
 * 9 x 6 words that hold entries of valid code bytes are written (a byte with the
 * invalid field 0b10 reads an unspecified entry). The bias is removed once per
 * group segment.
 *
 * Plain C: the same code on every core (no DSP instructions needed), so the
 * portable and DSP builds are identical. Groups must be a multiple of 4 taps (or
 * one group per row); otherwise the portable per-tap loop of te_fc_t2_s8 runs.
 *
 * Scratch (te_fc_t2_lut_s8_get_buffer_size): TE_LUT_CHUNK/4 tables of 512 bytes
 * plus 4 * planes * O bytes.
 */
#include "te_tern_internal.h"

#ifndef TE_LUT_CHUNK
#define TE_LUT_CHUNK 64 /* taps per table batch, a multiple of 4 */
#endif
#define TE_LUT_TABLES (TE_LUT_CHUNK / 4)
#define TE_LUT_BIAS 1024u

int32_t te_fc_t2_lut_s8_get_buffer_size(const te_dims *input_dims, const te_dims *filter_dims,
                                        int32_t planes)
{
    (void)input_dims;
    return TE_LUT_TABLES * 512 + 4 * planes * filter_dims->n;
}

/* Biased partial sums of two taps for the 16 values of a code nibble. */
static void te_lut_pair(int32_t x0, int32_t x1, uint32_t *v)
{
    static const int8_t t[4] = {0, 1, -2, -1};
    for (uint32_t n = 0; n < 16; ++n) {
        v[n] = (uint32_t)(t[n & 3u] * x0 + t[n >> 2] * x1 + 512);
    }
}

/* Table for x[0..3]: entry b at tbl[b] (uint16, biased by 1024). */
static void te_lut_build(const int8_t *x, uint32_t *tbl_words)
{
    static const uint8_t valid_hi[9] = {0, 1, 3, 4, 5, 7, 12, 13, 15};
    static const uint8_t valid_q[6] = {0, 1, 2, 3, 6, 7}; /* low-nibble pairs holding a valid code */
    uint32_t a[16], b[16];
    te_lut_pair(x[0], x[1], a);
    te_lut_pair(x[2], x[3], b);
    uint32_t ap[6];
    for (int q = 0; q < 6; ++q) {
        ap[q] = a[2 * valid_q[q]] | (a[2 * valid_q[q] + 1] << 16);
    }
    for (int h = 0; h < 9; ++h) {
        const uint32_t hi = valid_hi[h];
        const uint32_t bd = b[hi] * 0x00010001u;
        uint32_t *row = tbl_words + 8 * hi;
        row[0] = ap[0] + bd;
        row[1] = ap[1] + bd;
        row[2] = ap[2] + bd;
        row[3] = ap[3] + bd;
        row[6] = ap[4] + bd;
        row[7] = ap[5] + bd;
    }
}

/* Entry b of a table (memcpy: the tables are written as 32-bit words). */
static inline uint32_t te_lut_entry(const uint8_t *tbl, uint32_t b)
{
    uint16_t v;
    memcpy(&v, tbl + 2 * b, sizeof(v));
    return v;
}

static inline uint32_t te_lut_rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

te_status te_fc_t2_lut_s8(const te_fc_params *params, const te_pc_quant *quant,
                          const te_dims *input_dims, const int8_t *input,
                          const te_dims *filter_dims, const te_tern_weights *weights,
                          const int32_t *bias, const te_dims *output_dims, int8_t *output,
                          void *scratch)
{
    if (!params || !input_dims || !input || !filter_dims || !output_dims || !output) {
        return TE_ERR_ARG;
    }
    const int32_t batches = input_dims->n;
    const int32_t k = input_dims->h * input_dims->w * input_dims->c;
    const int32_t rows = filter_dims->n;
    if (batches <= 0 || k <= 0 || rows <= 0 ||
        filter_dims->h * filter_dims->w * filter_dims->c != k || output_dims->n != batches ||
        output_dims->h * output_dims->w * output_dims->c != rows) {
        return TE_ERR_ARG;
    }
    te_tern_mm mm;
    if (te_tern_mm_init(&mm, TE_TK_T2, weights, rows, k, bias, quant, params->output_offset,
                        params->activation) != TE_OK) {
        return TE_ERR_ARG;
    }
    if (!(mm.n >= k || mm.n % 4 == 0)) {
        for (int32_t b = 0; b < batches; ++b) {
            te_tern_vec_portable(&mm, input + b * k, output + b * rows);
        }
        return TE_OK;
    }
    if (!scratch) {
        return TE_ERR_ARG;
    }
    uint32_t *tables = (uint32_t *)scratch;      /* TE_LUT_TABLES x 128 words */
    uint32_t *acc = tables + TE_LUT_TABLES * 128; /* [active][rows] */
    const uint8_t *t8 = (const uint8_t *)(void *)tables;
    const int32_t active = mm.active, g_count = mm.g, rb = mm.rb;
    /* group size in taps; one group per row rounds up to whole lookups */
    const int32_t n = mm.n >= k ? ((k + 3) & ~3) : mm.n;
    int8_t xpad[TE_LUT_CHUNK];

    for (int32_t bt = 0; bt < batches; ++bt) {
        const int8_t *x = input + bt * k;
        memset(acc, 0, (size_t)(4 * active * rows));
        for (int32_t c0 = 0; c0 < k; c0 += TE_LUT_CHUNK) {
            const int32_t len = k - c0 < TE_LUT_CHUNK ? k - c0 : TE_LUT_CHUNK;
            const int32_t nbytes = (len + 3) >> 2; /* lookups of this chunk */
            const int8_t *xc = x + c0;
            if (len & 3) { /* zero the taps past K in the last table */
                memset(xpad, 0, sizeof(xpad));
                memcpy(xpad, xc, (size_t)len);
                xc = xpad;
            }
            for (int32_t j = 0; j < nbytes; ++j) {
                te_lut_build(xc + 4 * j, tables + 128 * j);
            }
            const int32_t byte0 = c0 >> 2;
            for (int32_t p = 0; p < active; ++p) {
                for (int32_t o = 0; o < rows; ++o) {
                    const int32_t row = p * rows + o;
                    const uint8_t *c = weights->codes + row * rb + byte0;
                    uint32_t a_acc = acc[row];
                    int32_t j = 0;
                    while (j < nbytes) {
                        /* lookups up to the end of this group or chunk */
                        const int32_t tap = c0 + 4 * j;
                        const int32_t g = tap / n;
                        int32_t jend = ((g + 1) * n - c0) >> 2;
                        if (jend > nbytes) {
                            jend = nbytes;
                        }
                        uint32_t s = 0;
                        int32_t jj = j;
                        for (; jj + 4 <= jend; jj += 4) {
                            const uint32_t w = te_lut_rd32(c + jj);
                            const uint8_t *tb = t8 + 512 * jj;
                            s += te_lut_entry(tb, w & 0xFFu);
                            s += te_lut_entry(tb + 512, (w >> 8) & 0xFFu);
                            s += te_lut_entry(tb + 1024, (w >> 16) & 0xFFu);
                            s += te_lut_entry(tb + 1536, w >> 24);
                        }
                        for (; jj < jend; ++jj) {
                            s += te_lut_entry(t8 + 512 * jj, c[jj]);
                        }
                        s -= TE_LUT_BIAS * (uint32_t)(jend - j);
                        a_acc += te_tern_scale(weights, row * g_count + g) * s;
                        j = jend;
                    }
                    acc[row] = a_acc;
                }
            }
        }
        int8_t *out = output + bt * rows;
        for (int32_t o = 0; o < rows; ++o) {
            uint32_t total = bias ? (uint32_t)bias[o] : 0u;
            for (int32_t p = 0; p < active; ++p) {
                total += acc[p * rows + o] << te_tern_pshift(weights, p * rows + o);
            }
            out[o] = te_mac_output((int32_t)total, mm.mult[o], mm.shift[o], mm.output_offset,
                                   mm.act);
        }
    }
    return TE_OK;
}
