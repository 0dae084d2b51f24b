# SPDX-License-Identifier: Apache-2.0
"""int8 data-movement and (de)quantization kernels, bit-exact with TFLite Micro.

QUANTIZE (float32 -> int8, int8 -> int8), DEQUANTIZE (int8 -> float32), PAD/PADV2,
CONCATENATION, RESHAPE/SQUEEZE; plus helpers shared by the other kernel modules:
`activation_range` (TFLM CalculateActivationRangeQuantized) and `c_initializer`
(a param dataclass as a C designated initializer for the generated firmware).
C twins: firmware/kernels/te_{quantize,dequantize,pad,concat,reshape}_s8.c.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import UnsupportedOpError
from ..fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, round_half_away


def f32(x) -> float:
    """A value as the float32 that a .tflite file stores, widened to Python float (double)."""
    return float(np.float32(x))


# --- shared helpers ---------------------------------------------------------------------


def activation_range(activation: str | int | None, scale: float, zero_point: int,
                     qmin: int = -128, qmax: int = 127) -> tuple[int, int]:
    """TFLM CalculateActivationRangeQuantized: fused activation as an int8 clamp.

    quantize(f) = zero_point + (int)roundf(f / scale), computed in float32.
    activation: None/'NONE', 'RELU', 'RELU6', 'RELU_N1_TO_1' (or the schema enum 0..3).
    """
    names = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}
    act = names.get(activation, activation) if not isinstance(activation, str) else activation
    act = "NONE" if act is None else str(act).upper()

    def quantize(f: float) -> int:
        return int(zero_point) + int(round_half_away(float(np.float32(f) / np.float32(scale))))

    if act == "NONE":
        return qmin, qmax
    if act == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if act == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if act == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    raise UnsupportedOpError(f"fused activation {activation!r} is not supported on int8 outputs")


def c_initializer(params) -> str:
    """A param dataclass as a C99 designated initializer, e.g. '{.a = 1, .act = {.min = ...}}'.

    Dataclass field names are the C struct's (te_kernels_misc.h); nested dataclasses
    (Range -> te_range) nest, tuples become brace lists, floats are exact float32 hex
    literals. Usage: f"static const te_add_params p = {c_initializer(params)};".
    """
    parts = []
    for f in dataclasses.fields(params):
        parts.append(f".{f.name} = {_c_value(getattr(params, f.name))}")
    return "{" + ", ".join(parts) + "}"


def _c_value(v) -> str:
    if dataclasses.is_dataclass(v):
        return c_initializer(v)
    if isinstance(v, (tuple, list)):
        return "{" + ", ".join(_c_value(x) for x in v) + "}"
    if isinstance(v, (bool, np.bool_)):
        return "1" if v else "0"
    if isinstance(v, (int, np.integer)):
        v = int(v)
        return "INT32_MIN" if v == -(2**31) else str(v)
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            raise ValueError(f"non-finite float {v!r} in kernel params")
        return f"{float(np.float32(v)).hex()}f"
    raise TypeError(f"cannot express {v!r} in C")


@dataclass(frozen=True)
class Range:
    """te_range."""

    min: int
    max: int


# --- QUANTIZE float32 -> int8 ----------------------------------------------------------------


@dataclass(frozen=True)
class QuantizeParams:
    """te_quantize_params: out = clamp((int)roundf(x / scale) + zero_point)."""

    scale: float  # float32
    zero_point: int


def prepare_quantize(output_scale: float, output_zero_point: int) -> QuantizeParams:
    """TFLM PrepareQuantizeReference, float32 input: only the output's params are used."""
    return QuantizeParams(f32(output_scale), int(output_zero_point))


def quantize(x: np.ndarray, p: QuantizeParams) -> np.ndarray:
    """TFLM AffineQuantize: val / (float)scale in float32, roundf (halves away), + zp, clamp.

    Values whose rounded quotient leaves int32 are undefined in TFLM (C++ float->int
    conversion); here (and in C) they saturate. NaN gives the zero point.
    """
    q = (np.asarray(x, dtype=np.float32) / np.float32(p.scale)).astype(np.float64)
    # roundf(q): halves away from zero. q +- 0.5 is exact in float64 for a float32 q.
    r = np.trunc(q + np.copysign(0.5, q))
    r = np.where(np.isnan(r), 0.0, np.clip(r, -1000.0, 1000.0))
    return np.clip(r.astype(np.int64) + p.zero_point, -128, 127).astype(np.int8)


# --- QUANTIZE int8 -> int8 (requantize) -------------------------------------------------------


@dataclass(frozen=True)
class RequantizeParams:
    """te_requantize_params."""

    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int


def prepare_requantize(input_scale: float, input_zero_point: int, output_scale: float,
                       output_zero_point: int) -> RequantizeParams:
    """TFLM PrepareQuantizeReference, int8 -> int8: QuantizeMultiplier(double(s_in) / double(s_out))."""
    multiplier, shift = quantize_multiplier(f32(input_scale) / f32(output_scale))
    return RequantizeParams(int(input_zero_point), int(output_zero_point), multiplier, shift)


def requantize(x: np.ndarray, p: RequantizeParams) -> np.ndarray:
    v = multiply_by_quantized_multiplier(np.asarray(x, dtype=np.int64) - p.input_zero_point,
                                         p.multiplier, p.shift) + p.output_zero_point
    return np.clip(v, -128, 127).astype(np.int8)


# --- DEQUANTIZE int8 -> float32 --------------------------------------------------------------


@dataclass(frozen=True)
class DequantizeParams:
    """te_dequantize_params: out = (float)((double)scale * (x - zero_point))."""

    scale: float  # float32
    zero_point: int


def prepare_dequantize(input_scale: float, input_zero_point: int) -> DequantizeParams:
    return DequantizeParams(f32(input_scale), int(input_zero_point))


def dequantize(x: np.ndarray, p: DequantizeParams) -> np.ndarray:
    """TFLM Dequantize: the double product is exact, so one float32 rounding of it.

    (That is also what a single-precision FPU computes for scale * (float)(x - zp),
    which the C kernel uses.)
    """
    d = np.asarray(x, dtype=np.int64) - p.zero_point
    return (np.float64(p.scale) * d.astype(np.float64)).astype(np.float32)


# --- PAD / PADV2 -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PadParams:
    """te_pad_params: before/after counts for the 4 NHWC dims, and the int8 fill value."""

    before: tuple[int, int, int, int]
    after: tuple[int, int, int, int]
    value: int


def prepare_pad(paddings: Sequence[Sequence[int]], output_zero_point: int,
                constant_value: int | None = None, constant_scale: float | None = None,
                constant_zero_point: int | None = None, output_scale: float | None = None
                ) -> PadParams:
    """TFLM PadPrepare, int8. paddings: (before, after) per input dim (rank <= 4; padded to 4
    dims at the front). PAD fills with the output zero point; PADV2 with its constant,
    which must share the output's quantization."""
    pads = [tuple(int(v) for v in pr) for pr in paddings]
    if len(pads) > 4:
        raise UnsupportedOpError(f"PAD supports up to 4 dims, got {len(pads)}")
    if any(b < 0 or a < 0 for b, a in pads):
        raise UnsupportedOpError("PAD with negative paddings is not supported")
    pads = [(0, 0)] * (4 - len(pads)) + pads
    if constant_value is None:
        if not -128 <= int(output_zero_point) <= 127:
            raise UnsupportedOpError("PAD: output zero point outside int8")
        value = int(output_zero_point)
    else:
        if constant_zero_point is not None and int(constant_zero_point) != int(output_zero_point):
            raise UnsupportedOpError("PADV2: constant and output zero points differ")
        if (constant_scale is not None and output_scale is not None
                and f32(constant_scale) != f32(output_scale)):
            raise UnsupportedOpError("PADV2: constant and output scales differ")
        value = int(np.int8(constant_value))
    return PadParams(tuple(b for b, _ in pads), tuple(a for _, a in pads), value)


def pad(x: np.ndarray, p: PadParams) -> np.ndarray:
    """x has 4 dims (NHWC, N included in the padding spec) or fewer, matching prepare_pad."""
    x = np.asarray(x, dtype=np.int8)
    rank = x.ndim
    widths = list(zip(p.before, p.after))[4 - rank:]
    return np.pad(x, widths, mode="constant", constant_values=np.int8(p.value))


# --- CONCATENATION -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConcatParams:
    """Concatenation axis (non-negative, in the full tensor rank including the batch)."""

    axis: int


def prepare_concat(axis: int, rank: int, input_quant: Sequence[tuple[float, int]],
                   output_quant: tuple[float, int]) -> ConcatParams:
    """TFLM copies bytes: all inputs must share the output's scale and zero point."""
    for s, z in input_quant:
        if f32(s) != f32(output_quant[0]) or int(z) != int(output_quant[1]):
            raise UnsupportedOpError("int8 CONCATENATION with differing quantization is not supported")
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank or rank > 4:
        raise UnsupportedOpError(f"CONCATENATION axis {axis} / rank {rank} not supported")
    return ConcatParams(int(axis))


def concat(xs: Sequence[np.ndarray], p: ConcatParams) -> np.ndarray:
    return np.concatenate([np.asarray(x, dtype=np.int8) for x in xs], axis=p.axis)


# --- RESHAPE / SQUEEZE ------------------------------------------------------------------------------


def reshape(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Bytes are unchanged; shape includes the batch axis."""
    return np.asarray(x, dtype=np.int8).reshape(tuple(shape))
