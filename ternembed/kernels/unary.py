# SPDX-License-Identifier: Apache-2.0
"""int8 HARD_SWISH and LEAKY_RELU as 256-entry tables, and PRELU, bit-exact with TFLite Micro.

An int8 -> int8 function of one value is a table of 256 bytes: TFLM's integer arithmetic runs
here once per possible input at export time, and the kernel (te_table_s8.c) is one load per
value on any core. PRELU depends on two values (input, alpha) and is computed per element
(te_prelu_s8.c). C twins: firmware/kernels/te_table_s8.c, te_prelu_s8.c.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, rounding_divide_by_pot

INT8_VALUES = np.arange(-128, 128, dtype=np.int64)


def table_lookup(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """table[byte + 128], the byte read as int8 (a uint8 input or output is the same bytes)."""
    return np.asarray(table, np.int8)[np.asarray(x).astype(np.int8).astype(np.int64) + 128]


# ---- LEAKY_RELU ------------------------------------------------------------------------------

def leaky_relu_table(input_scale: float, input_zero_point: int, output_scale: float,
                     output_zero_point: int, alpha: float) -> np.ndarray:
    """TFLM CalculateOpDataLeakyRelu (multipliers from float32 products) + QuantizeLeakyRelu."""
    si, so, a = np.float32(input_scale), np.float32(output_scale), np.float32(alpha)
    m_alpha, sh_alpha = quantize_multiplier(float(si * a / so))
    m_id, sh_id = quantize_multiplier(float(si / so))
    v = INT8_VALUES - int(input_zero_point)
    identity = multiply_by_quantized_multiplier(v, m_id, sh_id)
    scaled = multiply_by_quantized_multiplier(v, abs(m_alpha), sh_alpha)
    out = int(output_zero_point) + np.where(v >= 0, identity, -scaled if m_alpha < 0 else scaled)
    return np.clip(out, -128, 127).astype(np.int8)


# ---- HARD_SWISH --------------------------------------------------------------------------------

def _srdhm16(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int16."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    q = ab + nudge
    res = np.where(q >= 0, q >> 15, -((-q) >> 15))  # C division truncates toward zero
    return np.where((a == b) & (a == -32768), 32767, res)


def _doubling_high_mul16(a, b) -> np.ndarray:
    """TFLM's SaturatingDoublingHighMul (no rounding)."""
    ab = np.asarray(a, np.int64) * np.asarray(b, np.int64)
    res = np.where(ab >= 0, ab >> 15, -((-ab) >> 15))
    return np.where((np.asarray(a) == b) & (np.asarray(a) == -32768), 32767, res)


def _sat_left_shift16(x, amount: int) -> np.ndarray:
    return np.clip(np.asarray(x, np.int64) * (1 << amount), -32768, 32767)


def _int16_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier, then DownScaleInt32ToInt16Multiplier."""
    m32, shift = quantize_multiplier(real)
    if m32 >= 2**31 - 1 - (1 << 15):
        return 32767, shift
    return (m32 + (1 << 15)) >> 16, shift


def hard_swish_table(input_scale: float, input_zero_point: int, output_scale: float,
                     output_zero_point: int) -> np.ndarray:
    """TFLM HardSwishPrepare (float32 scale ratios) + reference_ops::HardSwish on int8."""
    hires_scale = np.float32(1.0 / 128.0) * np.float32(input_scale)
    out_m, out_exp = _int16_multiplier(float(hires_scale / np.float32(output_scale)))
    if out_exp > 0:
        raise UnsupportedOpError("HARD_SWISH output scale below 1/128 of the input scale (TFLM refuses it)")
    relu_m, relu_exp = _int16_multiplier(float(hires_scale / np.float32(3.0 / 32768.0)))
    hires = (INT8_VALUES - int(input_zero_point)) * 128
    preshift = _srdhm16(hires, out_m)
    reluish = hires
    if relu_exp > 0:
        reluish = _sat_left_shift16(reluish, relu_exp - 1)
    reluish = _srdhm16(reluish, relu_m)
    if relu_exp > 0:
        reluish = _sat_left_shift16(reluish, 1)
    if relu_exp < 0:
        reluish = rounding_divide_by_pot(reluish, -relu_exp)
    reluish = (reluish + (1 << 15)) >> 1
    out = rounding_divide_by_pot(_doubling_high_mul16(reluish, preshift), -out_exp) + int(output_zero_point)
    return np.clip(out, -128, 127).astype(np.int8)


# ---- PRELU -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PreluParams:
    """te_prelu_params."""

    input_offset: int
    alpha_offset: int
    output_offset: int
    output_multiplier_1: int
    output_shift_1: int
    output_multiplier_2: int
    output_shift_2: int


def prepare_prelu(input_scale: float, input_zero_point: int, alpha_scale: float, alpha_zero_point: int,
                  output_scale: float, output_zero_point: int) -> PreluParams:
    """TFLM CalculatePreluParams (double arithmetic on the float32 scales)."""
    si, sa, so = (float(np.float32(s)) for s in (input_scale, alpha_scale, output_scale))
    m1, s1 = quantize_multiplier(si / so)
    m2, s2 = quantize_multiplier(si * sa / so)
    return PreluParams(-int(input_zero_point), -int(alpha_zero_point), int(output_zero_point), m1, s1, m2, s2)


def prelu(x: np.ndarray, alpha: np.ndarray, p: PreluParams) -> np.ndarray:
    """x and alpha broadcast against each other (numpy rules)."""
    v = np.asarray(x, np.int64) + p.input_offset
    a = np.asarray(alpha, np.int64) + p.alpha_offset
    pos = multiply_by_quantized_multiplier(v, p.output_multiplier_1, p.output_shift_1)
    neg = multiply_by_quantized_multiplier(v * a, p.output_multiplier_2, p.output_shift_2)
    out = np.where(v >= 0, pos, neg) + p.output_offset
    return np.clip(out, -128, 127).astype(np.int8)
