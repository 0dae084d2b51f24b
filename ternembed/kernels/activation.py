# SPDX-License-Identifier: Apache-2.0
"""int8 activation kernels (SOFTMAX, LOGISTIC, TANH, RELU, RELU6), bit-exact with TFLite Micro.

Each kernel has a `prepare_*` function, run at export time, that computes the
integer parameters exactly as TFLM's Prepare does (same float/double arithmetic),
and an eval function that takes a leading batch axis and is vectorised.
The C twins live in firmware/kernels/te_{softmax,logistic,tanh,relu}_s8.c and
firmware/include/te_fxmath.h (the fixed-point exp / reciprocal below).

The fixed-point functions follow gemmlowp's fixedpoint.h semantics (as vendored by
TFLM): values are int32 raws held in int64 numpy arrays; FixedPoint<int32, IB> has
31 - IB fractional bits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedOpError
from ..fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    round_half_away,
    rounding_divide_by_pot,
    srdhm,
)
from .misc import f32

# --- gemmlowp-style fixed-point math ------------------------------------------------


def sat_rounding_mul_by_pot(x, exponent: int) -> np.ndarray:
    """SaturatingRoundingMultiplyByPOT<exponent>: saturating left shift or rounding right shift."""
    x = np.asarray(x, dtype=np.int64)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def rounding_half_sum(a, b) -> np.ndarray:
    """(a + b) / 2 rounded half away from zero (gemmlowp RoundingHalfSum for int32)."""
    s = np.asarray(a, dtype=np.int64) + np.asarray(b, dtype=np.int64)
    t = s + np.where(s >= 0, 1, -1)
    return np.where(t >= 0, t >> 1, -((-t) >> 1))  # C division truncates toward zero


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    """exp(a) for a in [-1/4, 0), Q0.31 in and out."""
    constant_term = 1895147668  # exp(-1/8)
    constant_1_over_3 = 715827883
    x = a + (1 << 28)  # a + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(srdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1)
    return constant_term + srdhm(constant_term, x + poly)


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """exp(a) for a <= 0 given as FixedPoint<int32, integer_bits>; result in Q0.31."""
    a = np.asarray(a, dtype=np.int64)
    frac = 31 - integer_bits
    one_quarter = 1 << (frac - 2)
    a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        sat_rounding_mul_by_pot(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = a_mod_quarter_minus_one_quarter - a
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (frac + exponent)
            result = np.where(remainder & bit, srdhm(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))  # -32.0
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _newton_reciprocal_f2(half_denominator: np.ndarray) -> np.ndarray:
    """Three Newton-Raphson steps for 1/half_denominator; result as FixedPoint<int32, 2>."""
    x = 1515870810 + srdhm(half_denominator, -1010580540)  # 48/17 - 32/17 * d
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus = (1 << 29) - half_denominator_times_x
        x = x + sat_rounding_mul_by_pot(srdhm(x, one_minus), 2)
    return x


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """1 / (1 + a) for a in [0, 1), Q0.31 in and out."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    return sat_rounding_mul_by_pot(_newton_reciprocal_f2(half_denominator), 1)


def one_minus_x_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """(1 - a) / (1 + a) for a in [0, 1), Q0.31 in and out."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    return sat_rounding_mul_by_pot(_newton_reciprocal_f2(half_denominator) - (1 << 29), 2)


def fixed_logistic(a, integer_bits: int) -> np.ndarray:
    """gemmlowp::logistic: input FixedPoint<int32, integer_bits>, output Q0.31."""
    a = np.asarray(a, dtype=np.int64)
    positive = a > 0
    abs_input = np.where(positive, a, -a)
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(-abs_input, integer_bits))
    result_if_negative = INT32_MAX - result_if_positive
    return np.where(a == 0, 1 << 30, np.where(positive, result_if_positive, result_if_negative))


def fixed_tanh(a, integer_bits: int) -> np.ndarray:
    """gemmlowp::tanh: input FixedPoint<int32, integer_bits>, output Q0.31."""
    a = np.asarray(a, dtype=np.int64)
    negative = a < 0
    n = np.where(negative, a, -a)
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(negative, -t, t))


def count_leading_zeros32(x) -> np.ndarray:
    """Leading zero bits of uint32 values (32 for zero)."""
    x = np.asarray(x, dtype=np.int64) & 0xFFFFFFFF
    _, exp = np.frexp(x.astype(np.float64))  # exact for integers < 2**53
    return np.where(x == 0, 32, 32 - exp).astype(np.int64)


def get_reciprocal(x, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLM GetReciprocal: (Q0.31 scale, num_bits_over_unit) with 1/x = scale * 2^-bits."""
    x = np.asarray(x, dtype=np.int64)
    headroom_plus_one = count_leading_zeros32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = ((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


# --- shared prepare helpers -------------------------------------------------------------


def calculate_input_radius(input_integer_bits: int, input_left_shift: int,
                           total_signed_bits: int = 31) -> int:
    """TFLM CalculateInputRadius (double arithmetic, floored)."""
    if input_left_shift < 0 or input_left_shift > 62:
        raise UnsupportedOpError(f"input scale out of range (left shift {input_left_shift})")
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1)
                          * float(1 << (total_signed_bits - input_integer_bits))
                          / float(1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


def _clamp_s8(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -128, 127).astype(np.int8)


# --- SOFTMAX ------------------------------------------------------------------------------

SOFTMAX_SCALED_DIFF_INTEGER_BITS = 5
SOFTMAX_ACCUMULATION_INTEGER_BITS = 12


@dataclass(frozen=True)
class SoftmaxParams:
    """te_softmax_params."""

    input_multiplier: int
    input_left_shift: int
    diff_min: int


def prepare_softmax(beta: float, input_scale: float, output_scale: float = 1 / 256,
                    output_zero_point: int = -128) -> SoftmaxParams:
    """TFLM CalculateSoftmaxParams for int8 in / int8 out (PreprocessSoftmaxScaling + radius)."""
    if output_zero_point != -128 or np.float32(output_scale) != np.float32(1 / 256):
        raise UnsupportedOpError("int8 SOFTMAX needs output zero_point -128 and scale 1/256")
    # PreprocessSoftmaxScaling(double beta, double input_scale, 5, ...), double-rounding build.
    real = min(f32(beta) * f32(input_scale) * float(1 << (31 - SOFTMAX_SCALED_DIFF_INTEGER_BITS)),
               float((1 << 31) - 1))
    if not real > 1.0:
        raise UnsupportedOpError(f"SOFTMAX beta*input_scale too small ({real} <= 1 in Q5.26)")
    multiplier, left_shift = quantize_multiplier(real)
    diff_min = -calculate_input_radius(SOFTMAX_SCALED_DIFF_INTEGER_BITS, left_shift)
    return SoftmaxParams(multiplier, left_shift, diff_min)


def softmax(x: np.ndarray, p: SoftmaxParams) -> np.ndarray:
    """int8 softmax over the last axis (any leading axes, batch first)."""
    x = np.asarray(x, dtype=np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    valid = diff >= p.diff_min
    # MultiplyByQuantizedMultiplierGreaterThanOne: x * 2^left_shift, then high mul.
    rescaled = multiply_by_quantized_multiplier(np.where(valid, diff, 0), p.input_multiplier,
                                                p.input_left_shift)
    exps = exp_on_negative_values(rescaled, SOFTMAX_SCALED_DIFF_INTEGER_BITS)
    accum = rounding_divide_by_pot(exps, SOFTMAX_ACCUMULATION_INTEGER_BITS)
    sum_of_exps = np.where(valid, accum, 0).sum(axis=-1, keepdims=True)
    shifted_scale, num_bits_over_unit = get_reciprocal(sum_of_exps,
                                                       SOFTMAX_ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - 8
    if (exponent > 31).any():  # sum of exps >= 2^28: only for depth > 512; TFLM aborts
        raise UnsupportedOpError("SOFTMAX row too long: sum of exps overflows TFLM's range")
    out = rounding_divide_by_pot(srdhm(shifted_scale, exps), exponent) - 128
    return np.where(valid, _clamp_s8(out), np.int8(-128)).astype(np.int8)


# --- LOGISTIC / TANH ------------------------------------------------------------------------


@dataclass(frozen=True)
class LogisticParams:
    """te_logistic_params (also used for TANH)."""

    input_zero_point: int
    input_range_radius: int
    input_multiplier: int
    input_left_shift: int


TanhParams = LogisticParams


def _prepare_q4_input(input_scale: float, input_zero_point: int) -> LogisticParams:
    # input_real_multiplier = double(scale) * double(1 << 27); frexp; round(q * 2^31).
    real = f32(input_scale) * float(1 << (31 - 4))
    q, left_shift = math.frexp(real)
    multiplier = int(round_half_away(q * float(1 << 31)))
    radius = calculate_input_radius(4, left_shift, 31)
    return LogisticParams(int(input_zero_point), radius, multiplier, left_shift)


def prepare_logistic(input_scale: float, input_zero_point: int, output_scale: float = 1 / 256,
                     output_zero_point: int = -128) -> LogisticParams:
    """TFLM CalculateArithmeticOpDataLogistic, int8 path (output must be zp -128, 1/256)."""
    if output_zero_point != -128:
        raise UnsupportedOpError("int8 LOGISTIC needs output zero_point -128 (scale 1/256)")
    return _prepare_q4_input(input_scale, input_zero_point)


def prepare_tanh(input_scale: float, input_zero_point: int, output_scale: float = 1 / 128,
                 output_zero_point: int = 0) -> TanhParams:
    """TFLM TANH CalculateArithmeticOpData, int8 path (output assumed zp 0, scale 1/128)."""
    return _prepare_q4_input(input_scale, input_zero_point)


def _q4_unary(x: np.ndarray, p: LogisticParams, fn, out_shift: int, out_offset: int):
    inp = np.asarray(x, dtype=np.int64) - p.input_zero_point
    low = inp <= -p.input_range_radius
    high = inp >= p.input_range_radius
    mid = ~(low | high)
    q4 = multiply_by_quantized_multiplier(np.where(mid, inp, 0), p.input_multiplier,
                                          p.input_left_shift)
    out = rounding_divide_by_pot(fn(q4, 4), out_shift) + out_offset
    return np.where(low, -128, np.where(high, 127, np.clip(out, -128, 127))).astype(np.int8)


def logistic(x: np.ndarray, p: LogisticParams) -> np.ndarray:
    """int8 logistic (output zp -128, scale 1/256), elementwise."""
    return _q4_unary(x, p, fixed_logistic, 31 - 8, -128)


def tanh(x: np.ndarray, p: TanhParams) -> np.ndarray:
    """int8 tanh (output zp 0, scale 1/128), elementwise."""
    return _q4_unary(x, p, fixed_tanh, 31 - 7, 0)


# --- RELU / RELU6 ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReluParams:
    """te_relu_params: requantize to the output's params, then clamp."""

    input_offset: int  # input zero point (subtracted)
    output_offset: int  # output zero point (added)
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


def prepare_relu(input_scale: float, input_zero_point: int, output_scale: float,
                 output_zero_point: int) -> ReluParams:
    """TFLM CalculateReluOpData<int8_t>."""
    multiplier, shift = quantize_multiplier(f32(input_scale) / f32(output_scale))
    zero = int(round_half_away(float(np.float32(0.0) / np.float32(output_scale))))
    act_min = max(-128, int(output_zero_point) + zero)
    return ReluParams(int(input_zero_point), int(output_zero_point), multiplier, shift, act_min, 127)


def relu(x: np.ndarray, p: ReluParams) -> np.ndarray:
    v = multiply_by_quantized_multiplier(np.asarray(x, dtype=np.int64) - p.input_offset,
                                         p.output_multiplier, p.output_shift) + p.output_offset
    return np.clip(v, p.act_min, p.act_max).astype(np.int8)


@dataclass(frozen=True)
class Relu6Params:
    """te_relu6_params: TFLM clamps in the input's quantized domain (no requantization)."""

    lower: int  # input zero point
    upper: int  # 6.0 quantized with the input's params


def prepare_relu6(input_scale: float, input_zero_point: int) -> Relu6Params:
    """TFLM Relu6Prepare int8: zero = input zp, six = FloatToQuantizedType(6.0f, scale, zp).

    TFLM ignores the output tensor's quantization here; so do we (an exporter should
    check that input and output params agree, as the converter guarantees).
    """
    six = int(round_half_away(float(np.float32(6.0) / np.float32(input_scale)))) + int(input_zero_point)
    return Relu6Params(int(input_zero_point), max(-128, min(127, six)))


def relu6(x: np.ndarray, p: Relu6Params) -> np.ndarray:
    x = np.asarray(x, dtype=np.int8)
    return np.where(x > p.upper, np.int8(p.upper), np.where(x < p.lower, np.int8(p.lower), x)).astype(np.int8)
