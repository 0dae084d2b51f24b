/* te_kernels_data.h - int8 data movement and the elementwise ops added with them:
 * STRIDED_SLICE, SLICE, SPLIT, SPLIT_V, UNPACK, TRANSPOSE (one strided copy; PACK is
 * te_concat_s8), SUB, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE, LEAKY_RELU, HARD_SWISH,
 * PRELU, RESIZE_NEAREST_NEIGHBOR. Mirrors ternembed/kernels/data.py and arith.py;
 * every kernel is bit-exact with TFLite Micro's reference int8 kernel. */
#ifndef TE_KERNELS_DATA_H
#define TE_KERNELS_DATA_H

#include <stdint.h>

#include "te_types.h"

/* ---- strided copy: out[i] = in[offset + sum_k i_k * stride[k]], 5 dims outermost first --
 * Python merges contiguous dims, so the innermost run is as long as possible; a run with
 * stride 1 is one memcpy. Input and output must not overlap. */
typedef struct {
    int32_t offset;
    int32_t count[5];
    int32_t stride[5];
} te_strided_copy_params;

void te_strided_copy_s8(const int8_t *input, int8_t *output, const te_strided_copy_params *p);

#endif /* TE_KERNELS_DATA_H */
