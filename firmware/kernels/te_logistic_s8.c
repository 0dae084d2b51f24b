/* SPDX-License-Identifier: Apache-2.0 */
/* te_logistic_s8.c - int8 LOGISTIC, output zero point -128 / scale 1/256 (TFLM reference).
 * Mirrors ternembed/kernels/activation.py: logistic. */
#include "te_fixedpoint.h"
#include "te_fxmath.h"
#include "te_kernels_misc.h"

void te_logistic_s8(const int8_t *input, int8_t *output, int32_t size, const te_logistic_params *p)
{
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t x = (int32_t)input[i] - p->input_zero_point;
        if (x <= -p->input_range_radius) {
            output[i] = -128;
        } else if (x >= p->input_range_radius) {
            output[i] = 127;
        } else {
            const int32_t q4 = te_requantize(x, p->input_multiplier, p->input_left_shift);
            const int32_t v = te_rdbpot(te_fx_logistic(q4, 4), 31 - 8) - 128;
            output[i] = (int8_t)te_clamp(v, -128, 127);
        }
    }
}
