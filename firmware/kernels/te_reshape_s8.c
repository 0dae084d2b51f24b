/* SPDX-License-Identifier: Apache-2.0 */
/* te_reshape_s8.c - RESHAPE / SQUEEZE: the bytes do not change. */
#include <string.h>

#include "te_kernels_misc.h"

void te_copy_s8(const int8_t *input, int8_t *output, int32_t size)
{
    if (input != output && size > 0) {
        memmove(output, input, (size_t)size);
    }
}
