/* SPDX-License-Identifier: Apache-2.0 */
/* te_types.h - small structs shared by every kernel, in the CMSIS-NN manner:
 * a kernel takes dims, op params and quant params, so calls look alike across ops.
 * Tensors are NHWC, int8, row-major; weights are [out][kh][kw][in]. */
#ifndef TE_TYPES_H
#define TE_TYPES_H

#include <stdint.h>

typedef enum { TE_OK = 0, TE_ERR_ARG = 1 } te_status;

typedef struct {
    int32_t n, h, w, c;
} te_dims;

/* Clamp applied after requantization (fused activation and int8 limits). */
typedef struct {
    int32_t min, max;
} te_range;

/* Per-output-channel requantization: out = requantize(acc, multiplier[c], shift[c]). */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
} te_pc_quant;

#endif /* TE_TYPES_H */
