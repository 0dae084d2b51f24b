# SPDX-License-Identifier: Apache-2.0
"""int8 ADD and MUL with broadcasting, bit-exact with TFLite Micro.

ADD uses TFLM's 8-bit scheme: both inputs are offset, shifted left by 20, scaled by
per-input multipliers (< 1) to a common scale of 2 * max(s1, s2), summed, and
scaled to the output. MUL multiplies offset inputs and requantizes once.
Broadcasting follows numpy rules (TFLM supports up to 6-D; the C kernels take 4-D).
C twins: firmware/kernels/te_add_s8.c, te_mul_s8.c.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..fixedpoint import (
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rounding_divide_by_pot,
    srdhm,
)
from .misc import Range, activation_range, f32

ADD_LEFT_SHIFT = 20


@dataclass(frozen=True)
class AddParams:
    """te_add_params (field names as in the C struct)."""

    input1_offset: int  # -zero_point of input 1
    input2_offset: int
    output_offset: int  # +zero_point of the output
    left_shift: int
    input1_multiplier: int
    input1_shift: int  # <= 0
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    act: Range


def _smaller_than_one(real: float, what: str) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp: TFLM checks 0 < real < 1 and shift <= 0."""
    if not 0.0 < real < 1.0:
        raise UnsupportedOpError(f"ADD {what} multiplier {real} outside (0, 1)")
    multiplier, shift = quantize_multiplier(real)
    if shift > 0:
        raise UnsupportedOpError(f"ADD {what} multiplier {real} needs a left shift")
    return multiplier, shift


def prepare_add(input1_scale: float, input1_zero_point: int, input2_scale: float,
                input2_zero_point: int, output_scale: float, output_zero_point: int,
                activation: str | int | None = None) -> AddParams:
    """TFLM CalculateOpDataAdd, int8 output (double arithmetic on float32 scales)."""
    s1, s2, so = f32(input1_scale), f32(input2_scale), f32(output_scale)
    twice_max_input_scale = 2 * max(s1, s2)
    m1, sh1 = _smaller_than_one(s1 / twice_max_input_scale, "input1")
    m2, sh2 = _smaller_than_one(s2 / twice_max_input_scale, "input2")
    mo, sho = _smaller_than_one(twice_max_input_scale / ((1 << ADD_LEFT_SHIFT) * so), "output")
    lo, hi = activation_range(activation, output_scale, output_zero_point)
    return AddParams(-int(input1_zero_point), -int(input2_zero_point), int(output_zero_point),
                     ADD_LEFT_SHIFT, m1, sh1, m2, sh2, mo, sho, Range(lo, hi))


def _mul_smaller_than_one_exp(x, multiplier: int, shift: int) -> np.ndarray:
    """MultiplyByQuantizedMultiplierSmallerThanOneExp (double rounding)."""
    return rounding_divide_by_pot(srdhm(x, multiplier), -shift)


def add(x1: np.ndarray, x2: np.ndarray, p: AddParams) -> np.ndarray:
    """int8 x1 + x2 with numpy broadcasting (batch axis included in the shapes)."""
    a = (np.asarray(x1, dtype=np.int64) + p.input1_offset) << p.left_shift
    b = (np.asarray(x2, dtype=np.int64) + p.input2_offset) << p.left_shift
    raw_sum = (_mul_smaller_than_one_exp(a, p.input1_multiplier, p.input1_shift)
               + _mul_smaller_than_one_exp(b, p.input2_multiplier, p.input2_shift))
    out = _mul_smaller_than_one_exp(raw_sum, p.output_multiplier, p.output_shift) + p.output_offset
    return np.clip(out, p.act.min, p.act.max).astype(np.int8)


@dataclass(frozen=True)
class MulParams:
    """te_mul_params."""

    input1_offset: int
    input2_offset: int
    output_offset: int
    output_multiplier: int
    output_shift: int
    act: Range


def prepare_mul(input1_scale: float, input1_zero_point: int, input2_scale: float,
                input2_zero_point: int, output_scale: float, output_zero_point: int,
                activation: str | int | None = None) -> MulParams:
    """TFLM CalculateOpDataMul, int8: QuantizeMultiplier(double(s1) * double(s2) / double(so))."""
    real = f32(input1_scale) * f32(input2_scale) / f32(output_scale)
    multiplier, shift = quantize_multiplier(real)
    lo, hi = activation_range(activation, output_scale, output_zero_point)
    return MulParams(-int(input1_zero_point), -int(input2_zero_point), int(output_zero_point),
                     multiplier, shift, Range(lo, hi))


def mul(x1: np.ndarray, x2: np.ndarray, p: MulParams) -> np.ndarray:
    """int8 x1 * x2 with numpy broadcasting."""
    prod = ((np.asarray(x1, dtype=np.int64) + p.input1_offset)
            * (np.asarray(x2, dtype=np.int64) + p.input2_offset))
    out = multiply_by_quantized_multiplier(prod, p.output_multiplier, p.output_shift) + p.output_offset
    return np.clip(out, p.act.min, p.act.max).astype(np.int8)
