# SPDX-License-Identifier: Apache-2.0
"""int8 AVERAGE_POOL_2D, MAX_POOL_2D and MEAN, bit-exact with TFLite Micro.

Pooling averages over the valid (non-padded) taps only, rounding sum/count to
nearest with halves away from zero; the fused activation is a clamp. TFLM requires
input and output to share quantization for pooling (it does not rescale).
MEAN follows TFLM's integer reduce path (see prepare_mean).
C twins: firmware/kernels/te_{avgpool,maxpool,mean}_s8.c.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import UnsupportedOpError
from ..fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from .misc import Range, activation_range, f32

# --- padding (TFLM kernels/padding.h) -------------------------------------------------------


def compute_out_size(padding: str, in_size: int, filter_size: int, stride: int,
                     dilation: int = 1) -> int:
    """TFLM ComputeOutSize for 'SAME' / 'VALID'."""
    effective = (filter_size - 1) * dilation + 1
    if stride == 0:
        return 0
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    if padding == "VALID":
        return (in_size + stride - effective) // stride
    raise UnsupportedOpError(f"padding {padding!r} is not supported")


def compute_padding(stride: int, dilation: int, in_size: int, filter_size: int,
                    out_size: int) -> tuple[int, int]:
    """TFLM ComputePaddingWithOffset: (padding before, offset); after = before + offset."""
    effective = (filter_size - 1) * dilation + 1
    total = max(0, (out_size - 1) * stride + effective - in_size)
    return total // 2, total % 2


# --- AVERAGE_POOL_2D / MAX_POOL_2D --------------------------------------------------------------


@dataclass(frozen=True)
class PoolParams:
    """te_pool_params. Output size is part of the params (the C kernel takes it as dims)."""

    stride_h: int
    stride_w: int
    filter_h: int
    filter_w: int
    pad_top: int
    pad_left: int
    out_h: int
    out_w: int
    act: Range


def prepare_pool2d(in_h: int, in_w: int, filter_h: int, filter_w: int, stride_h: int,
                   stride_w: int, padding: str, activation: str | int | None,
                   input_scale: float, input_zero_point: int, output_scale: float,
                   output_zero_point: int) -> PoolParams:
    """TFLM PoolingPrepare (int8): padding from SAME/VALID, activation range, equal quant."""
    if abs(f32(input_scale) - f32(output_scale)) > 1.0e-6 or input_zero_point != output_zero_point:
        raise UnsupportedOpError("int8 pooling needs equal input and output quantization")
    if min(filter_h, filter_w, stride_h, stride_w) < 1:
        raise UnsupportedOpError("pooling filter and stride must be >= 1")
    out_h = compute_out_size(padding, in_h, filter_h, stride_h)
    out_w = compute_out_size(padding, in_w, filter_w, stride_w)
    pad_top, _ = compute_padding(stride_h, 1, in_h, filter_h, out_h)
    pad_left, _ = compute_padding(stride_w, 1, in_w, filter_w, out_w)
    lo, hi = activation_range(activation, output_scale, output_zero_point)
    p = PoolParams(stride_h, stride_w, filter_h, filter_w, pad_top, pad_left, out_h, out_w,
                   Range(lo, hi))
    _window_counts(p, in_h, in_w)  # rejects windows with no valid tap, as TFLM fails on them
    return p


def _window_bounds(p: PoolParams, in_h: int, in_w: int):
    """Per output row/col: first and one-past-last valid input index."""
    oy = np.arange(p.out_h) * p.stride_h - p.pad_top
    ox = np.arange(p.out_w) * p.stride_w - p.pad_left
    y0 = np.maximum(oy, 0)
    y1 = np.minimum(oy + p.filter_h, in_h)
    x0 = np.maximum(ox, 0)
    x1 = np.minimum(ox + p.filter_w, in_w)
    return y0, y1, x0, x1


def _window_counts(p: PoolParams, in_h: int, in_w: int) -> np.ndarray:
    y0, y1, x0, x1 = _window_bounds(p, in_h, in_w)
    counts = np.maximum(y1 - y0, 0)[:, None] * np.maximum(x1 - x0, 0)[None, :]
    if (counts == 0).any():
        raise UnsupportedOpError("pooling window with no valid input tap (padding >= filter)")
    return counts


def _taps(x: np.ndarray, p: PoolParams, fill: int):
    """Yield, for each filter tap, the [N, OH, OW, C] input values (fill where padded)."""
    n, h, w, c = x.shape
    pad_bottom = max(0, (p.out_h - 1) * p.stride_h + p.filter_h - p.pad_top - h)
    pad_right = max(0, (p.out_w - 1) * p.stride_w + p.filter_w - p.pad_left - w)
    xp = np.pad(x, ((0, 0), (p.pad_top, pad_bottom), (p.pad_left, pad_right), (0, 0)),
                constant_values=fill)
    for ky in range(p.filter_h):
        for kx in range(p.filter_w):
            yield xp[:, ky:ky + (p.out_h - 1) * p.stride_h + 1:p.stride_h,
                     kx:kx + (p.out_w - 1) * p.stride_w + 1:p.stride_w, :]


def avg_pool2d(x: np.ndarray, p: PoolParams) -> np.ndarray:
    """x: int8 [N, H, W, C] -> int8 [N, out_h, out_w, C]."""
    x = np.asarray(x, dtype=np.int8)
    acc = np.zeros((x.shape[0], p.out_h, p.out_w, x.shape[3]), dtype=np.int64)
    for tap in _taps(x.astype(np.int64), p, 0):
        acc += tap
    count = _window_counts(p, x.shape[1], x.shape[2])[None, :, :, None]
    half = count // 2
    # C: acc > 0 ? (acc + count/2) / count : (acc - count/2) / count, division truncating.
    avg = np.where(acc > 0, (acc + half) // count, -((half - acc) // count))
    return np.clip(avg, p.act.min, p.act.max).astype(np.int8)


def max_pool2d(x: np.ndarray, p: PoolParams) -> np.ndarray:
    """x: int8 [N, H, W, C] -> int8 [N, out_h, out_w, C]."""
    x = np.asarray(x, dtype=np.int8)
    _window_counts(p, x.shape[1], x.shape[2])
    out = np.full((x.shape[0], p.out_h, p.out_w, x.shape[3]), -128, dtype=np.int8)
    for tap in _taps(x, p, -128):
        np.maximum(out, tap, out=out)
    return np.clip(out, p.act.min, p.act.max).astype(np.int8)


# --- MEAN ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeanParams:
    """te_mean_params: mean over `count` contiguous elements (e.g. H*W of NHWC).

    mode 0: out = clamp(MBQM(sum - zp_in*count, multiplier, shift) + zp_out), where
            multiplier/shift already fold in 1/count (TFLM QuantizedMeanOrSum).
    mode 1: out = (sum of raw int8) / count, truncating (older TFLM's reference_ops::Mean
            for equal input/output quantization; not what current TFLM does).
    """

    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int
    count: int
    mode: int


MEAN_MODE_REQUANT = 0
MEAN_MODE_DIVIDE = 1


def _clz64(v: int) -> int:
    return 64 - int(v).bit_length()


def prepare_mean(input_shape: Sequence[int], axes: Sequence[int], input_scale: float,
                 input_zero_point: int, output_scale: float, output_zero_point: int,
                 legacy_equal_quant_divide: bool = False) -> MeanParams:
    """TFLM PrepareMeanOrSumHelper + the integer MEAN eval path.

    input_shape includes the batch axis; the reduced axes must be adjacent (H,W of NHWC
    is the common case). The TFLM of 2025/26 (checked against the tflite-micro wheel)
    evaluates every int8 MEAN, equal or unequal input/output quantization, keep_dims or
    not, with QuantizedMeanOrSum: sum raw int8, subtract zp_in * count, and requantize
    with 1/count folded into the multiplier:
        s = min(floor(log2 count), 32, 31 + shift); m' = (m << s) / count; shift' = shift - s.
    Older TFLM releases instead divided raw sums (truncating) when the quantization was
    equal; legacy_equal_quant_divide=True selects that (mode 1).
    """
    rank = len(input_shape)
    resolved = sorted({a + rank if a < 0 else a for a in axes})
    if not resolved or any(not 0 <= a < rank for a in resolved):
        raise UnsupportedOpError(f"MEAN axes {list(axes)} invalid for rank {rank}")
    if resolved != list(range(resolved[0], resolved[-1] + 1)):
        raise UnsupportedOpError(f"MEAN over non-adjacent axes {resolved} is not supported")
    count = int(np.prod([input_shape[a] for a in resolved]))
    if count <= 0:
        raise UnsupportedOpError("MEAN over an empty axis")
    multiplier, shift = quantize_multiplier(f32(input_scale) / f32(output_scale))
    if legacy_equal_quant_divide and (f32(input_scale) == f32(output_scale)
                                      and int(input_zero_point) == int(output_zero_point)):
        return MeanParams(int(input_zero_point), int(output_zero_point), multiplier, shift, count,
                          MEAN_MODE_DIVIDE)
    s = 63 - _clz64(count)
    s = min(s, 32)
    s = min(s, 31 + shift)
    multiplier = (multiplier << s) // count
    shift = shift - s
    return MeanParams(int(input_zero_point), int(output_zero_point), multiplier, shift, count,
                      MEAN_MODE_REQUANT)


def mean(x: np.ndarray, axes: Sequence[int], p: MeanParams, keep_dims: bool) -> np.ndarray:
    """int8 mean of x over `axes` (x includes the batch axis)."""
    x = np.asarray(x, dtype=np.int8)
    rank = x.ndim
    axes_t = tuple(sorted({a + rank if a < 0 else a for a in axes}))
    total = x.astype(np.int64).sum(axis=axes_t, keepdims=keep_dims)
    if p.mode == MEAN_MODE_DIVIDE:
        q = np.where(total >= 0, total // p.count, -((-total) // p.count))
        return q.astype(np.int8)  # TFLM static_cast<int8_t>: in range for int8 inputs
    shifted = total - p.input_zero_point * p.count
    out = multiply_by_quantized_multiplier(shifted, p.multiplier, p.shift) + p.output_zero_point
    return np.clip(out, -128, 127).astype(np.int8)
