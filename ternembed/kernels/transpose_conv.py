# SPDX-License-Identifier: Apache-2.0
"""int8 TRANSPOSE_CONV, bit-exact with TFLite Micro's reference kernel.

Every input pixel scatters (x + input_offset) * w into the output window it maps to
(origin = input position * stride - pad); the int32 sums are then biased, requantized per
output channel and clamped. The C twin (firmware/kernels/te_transpose_conv_s8.c) gathers
instead (per output pixel, the taps whose input position is whole): the same int32 sums.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import multiply_by_quantized_multiplier
from .misc import Range


@dataclass(frozen=True)
class TransposeConvParams:
    """te_transpose_conv_params."""

    input_offset: int
    output_offset: int
    stride_h: int
    stride_w: int
    pad_h: int
    pad_w: int
    act: Range


def transpose_conv_s8(x: np.ndarray, weights: np.ndarray, bias: np.ndarray, multiplier: np.ndarray,
                      shift: np.ndarray, p: TransposeConvParams, out_hw: tuple[int, int]) -> np.ndarray:
    """x: [N, H, W, I] int8, weights: [O, KH, KW, I] -> [N, OH, OW, O] int8."""
    x = np.asarray(x, np.int64) + p.input_offset
    n, h, w, _ = x.shape
    o, kh, kw, _ = weights.shape
    oh, ow = out_hw
    full_h = max((h - 1) * p.stride_h + kh, p.pad_h + oh)
    full_w = max((w - 1) * p.stride_w + kw, p.pad_w + ow)
    acc = np.zeros((n, full_h, full_w, o), np.int64)
    for ky in range(kh):
        for kx in range(kw):
            contrib = x @ weights[:, ky, kx, :].astype(np.int64).T
            acc[:, ky:ky + (h - 1) * p.stride_h + 1:p.stride_h, kx:kx + (w - 1) * p.stride_w + 1:p.stride_w] += contrib
    acc = acc[:, p.pad_h:p.pad_h + oh, p.pad_w:p.pad_w + ow] + np.asarray(bias, np.int64)
    out = multiply_by_quantized_multiplier(acc, np.asarray(multiplier, np.int64),
                                           np.asarray(shift, np.int64)) + p.output_offset
    return np.clip(out, p.act.min, p.act.max).astype(np.int8)
