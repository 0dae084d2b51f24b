# SPDX-License-Identifier: Apache-2.0
"""int8 SUB, SQUARED_DIFFERENCE, MAXIMUM and MINIMUM with 4-D broadcasting, bit-exact with TFLite Micro.

SUB is ADD's scheme with a difference, but TFLM's Prepare computes its multipliers in float32
(ADD's in double). SQUARED_DIFFERENCE scales both inputs (left shift 7) to a common scale,
squares the difference and requantizes with a general multiplier. MAXIMUM/MINIMUM compare the
raw int8 values (TFLM ignores the quantization). C twins: firmware/kernels/te_sub_s8.c,
te_minmax_s8.c (both take te_add_params-shaped structs where they need parameters).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from .elementwise import AddParams, _mul_smaller_than_one_exp, _smaller_than_one
from .misc import Range, activation_range, f32

SUB_LEFT_SHIFT = 20
SQUARED_DIFFERENCE_LEFT_SHIFT = 7


def prepare_sub(input1_scale: float, input1_zero_point: int, input2_scale: float, input2_zero_point: int,
                output_scale: float, output_zero_point: int, activation: str | int | None = None) -> AddParams:
    """TFLM CalculateOpDataSub, int8: the scale ratios in float32, then to double."""
    s1, s2, so = np.float32(input1_scale), np.float32(input2_scale), np.float32(output_scale)
    twice = np.float32(2) * max(s1, s2)
    m1, sh1 = _smaller_than_one(float(s1 / twice), "input1")
    m2, sh2 = _smaller_than_one(float(s2 / twice), "input2")
    mo, sho = _smaller_than_one(float(twice / (np.float32(1 << SUB_LEFT_SHIFT) * so)), "output")
    lo, hi = activation_range(activation, output_scale, output_zero_point)
    return AddParams(-int(input1_zero_point), -int(input2_zero_point), int(output_zero_point),
                     SUB_LEFT_SHIFT, m1, sh1, m2, sh2, mo, sho, Range(lo, hi))


def prepare_squared_difference(input1_scale: float, input1_zero_point: int, input2_scale: float,
                               input2_zero_point: int, output_scale: float, output_zero_point: int
                               ) -> AddParams:
    """TFLM SquaredDifferencePrepare, int8 (double arithmetic; the output multiplier may exceed 1)."""
    s1, s2, so = f32(input1_scale), f32(input2_scale), f32(output_scale)
    twice = 2.0 * max(s1, s2)
    m1, sh1 = _smaller_than_one(s1 / twice, "input1")
    m2, sh2 = _smaller_than_one(s2 / twice, "input2")
    denominator = float(np.float32(1 << (2 * SQUARED_DIFFERENCE_LEFT_SHIFT)) * np.float32(so))
    mo, sho = quantize_multiplier(twice * twice / denominator)
    return AddParams(-int(input1_zero_point), -int(input2_zero_point), int(output_zero_point),
                     SQUARED_DIFFERENCE_LEFT_SHIFT, m1, sh1, m2, sh2, mo, sho, Range(-128, 127))


def _scaled(x1, x2, p: AddParams) -> tuple[np.ndarray, np.ndarray]:
    a = (np.asarray(x1, dtype=np.int64) + p.input1_offset) << p.left_shift
    b = (np.asarray(x2, dtype=np.int64) + p.input2_offset) << p.left_shift
    return (_mul_smaller_than_one_exp(a, p.input1_multiplier, p.input1_shift),
            _mul_smaller_than_one_exp(b, p.input2_multiplier, p.input2_shift))


def sub(x1: np.ndarray, x2: np.ndarray, p: AddParams) -> np.ndarray:
    a, b = _scaled(x1, x2, p)
    out = _mul_smaller_than_one_exp(a - b, p.output_multiplier, p.output_shift) + p.output_offset
    return np.clip(out, p.act.min, p.act.max).astype(np.int8)


def squared_difference(x1: np.ndarray, x2: np.ndarray, p: AddParams) -> np.ndarray:
    a, b = _scaled(x1, x2, p)
    d = a - b
    out = multiply_by_quantized_multiplier(d * d, p.output_multiplier, p.output_shift) + p.output_offset
    return np.clip(out, p.act.min, p.act.max).astype(np.int8)


def maximum(x1: np.ndarray, x2: np.ndarray, p=None) -> np.ndarray:
    return np.maximum(np.asarray(x1, np.int8), np.asarray(x2, np.int8))


def minimum(x1: np.ndarray, x2: np.ndarray, p=None) -> np.ndarray:
    return np.minimum(np.asarray(x1, np.int8), np.asarray(x2, np.int8))


KERNELS = {"sub_s8": sub, "squared_difference_s8": squared_difference, "maximum_s8": maximum,
           "minimum_s8": minimum}


def dims4(shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(d) for d in shape)
    return (1,) * (4 - len(shape)) + shape


def broadcast_samples(kernel: str, x1: np.ndarray, x2: np.ndarray, shapes: Sequence[Sequence[int]],
                      p) -> np.ndarray:
    """x1, x2: [samples, ...] holding whole tensors of shapes[0], shapes[1] (4-D at most); the
    sample axis stays apart from the broadcast axes."""
    n = len(x1)
    a = np.asarray(x1).reshape((n,) + dims4(shapes[0]))
    b = np.asarray(x2).reshape((n,) + dims4(shapes[1]))
    return KERNELS[kernel](a, b, p)
