/* SPDX-License-Identifier: Apache-2.0 */
/* te_rowstream.h - the row windows of a streamed segment (ternembed/segments.py).
 *
 * A window holds the newest `rows` rows of a tensor [H][row_bytes]: slot 0 is tensor row
 * `first`. Putting rows `made`.. when the window is full drops the oldest rows (memmove): the
 * export-time schedule guarantees no consumer needs them again. A whole tensor is a window
 * with rows = H, which never slides. */
#ifndef TE_ROWSTREAM_H
#define TE_ROWSTREAM_H

#include <stdint.h>
#include <string.h>

typedef struct {
    uint8_t *buf;
    int32_t row_bytes;
    int32_t rows;  /* capacity */
    int32_t first; /* tensor row in slot 0 */
    int32_t made;  /* rows written so far (the next row to put) */
} te_window;

/* Where tensor row y is (it must be in the window). */
static inline uint8_t *te_window_row(const te_window *w, int32_t y)
{
    return w->buf + (y - w->first) * w->row_bytes;
}

/* Where the next n rows go; slides the window when they do not fit. */
static inline uint8_t *te_window_put(te_window *w, int32_t n)
{
    int32_t slot = w->made - w->first;
    if (slot + n > w->rows) {
        const int32_t drop = slot + n - w->rows;
        memmove(w->buf, w->buf + drop * w->row_bytes, (size_t)((slot - drop) * w->row_bytes));
        w->first += drop;
        slot -= drop;
    }
    w->made += n;
    return w->buf + slot * w->row_bytes;
}

/* A streamed global average pool (segments.accumulates): add one input row of w pixels of c
 * channels to the sums (first row: start them at 0) ... */
static inline void te_rows_gap_add(int32_t *acc, const int8_t *row, int32_t w, int32_t c, int first)
{
    if (first) {
        memset(acc, 0, (size_t)c * sizeof(int32_t));
    }
    for (int32_t x = 0; x < w; ++x, row += c) {
        for (int32_t ch = 0; ch < c; ++ch) {
            acc[ch] += row[ch];
        }
    }
}

/* ... and after the last row, the averages, rounded as te_avgpool_s8 rounds them. */
static inline void te_rows_gap_end(const int32_t *acc, int8_t *out, int32_t c, int32_t count,
                                   int32_t act_min, int32_t act_max)
{
    for (int32_t ch = 0; ch < c; ++ch) {
        int32_t v = acc[ch];
        v = v > 0 ? (v + count / 2) / count : (v - count / 2) / count;
        out[ch] = (int8_t)(v < act_min ? act_min : (v > act_max ? act_max : v));
    }
}

#endif /* TE_ROWSTREAM_H */
