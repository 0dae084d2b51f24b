# SPDX-License-Identifier: Apache-2.0
"""int8 multiply-accumulate kernels (FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D) in numpy.

The bit-exact reference of firmware/kernels/te_fc_s8.c, te_conv_s8.c and
te_dwconv_s8.c, and of TFLite Micro's reference int8 kernels.

Layouts (all arrays carry a leading batch axis N):
  * FC:        x [N, K] int8, w [O, K] int8 -> [N, O] int8.
  * CONV_2D:   x [N, H, W, C], w [O, KH, KW, C] -> [N, OH, OW, O].
  * DEPTHWISE: x [N, H, W, C], w [1, KH, KW, C*M] (TFLite) -> [N, OH, OW, C*M];
               output channel oc = ic*M + m reads input channel ic.

Arithmetic: ``bias`` is the exporter's FOLDED bias,
``bias_f[o] = bias[o] + input_offset * sum_k w[o, k]`` (int32), so the kernels
compute ``acc[o] = bias_f[o] + sum over taps of x * w`` where a padded tap
(outside the image) reads ``x = input_zp = -input_offset`` and thus nets to
zero, exactly like TFLM skipping it. Then
``out = clamp(multiply_by_quantized_multiplier(acc, mult[o], shift[o]) + out_offset,
act_min, act_max)`` with per-output-channel ``mult``/``shift`` (a scalar is
broadcast, for per-tensor models).

Input row of output row ``oy`` and kernel row ``ky``:
``iy = oy*stride_h - pad_top + ky*dilation_h`` (columns alike).

Speed: the sums of products are formed with float matrix products, which are
exact here because every partial sum is an integer far below the float
mantissa limit (checked per call: float32 when the worst case stays below
2**24, float64 otherwise); convolutions gather im2col patches with stride
tricks, in batch chunks to bound memory.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..fixedpoint import multiply_by_quantized_multiplier

__all__ = ["fc_s8", "conv_s8", "dwconv_s8", "conv_out_size"]

IntPair = int | Sequence[int]
ArrayLike = np.ndarray | Sequence | int

_X_ABS_MAX = 128                 # |int8| <= 128
_F32_EXACT = 1 << 24             # every integer of magnitude <= 2**24 is a float32
_CHUNK_ELEMS = 1 << 23           # im2col elements per chunk (~32 MiB as float32)


def _pair(v: IntPair, name: str) -> tuple[int, int]:
    if np.ndim(v) == 0:
        v = (int(v), int(v))
    v = tuple(int(a) for a in v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair, got {v!r}")
    return v


def _as_int8(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.int8:
        if not np.issubdtype(x.dtype, np.integer) or x.size and (x.min() < -128 or x.max() > 127):
            raise ValueError(f"{name} must hold int8 values, got dtype {x.dtype}")
        x = x.astype(np.int8)
    return x


def _channel_params(bias, mult, shift, channels: int):
    """bias/mult/shift as int64 arrays of length `channels` (scalars broadcast, None bias = 0)."""
    out = []
    for name, v in (("bias", 0 if bias is None else bias), ("mult", mult), ("shift", shift)):
        a = np.asarray(v, dtype=np.int64).reshape(-1)
        if a.size == 1:
            a = np.full(channels, a[0], dtype=np.int64)
        if a.size != channels:
            raise ValueError(f"{name} has {a.size} values for {channels} output channels")
        out.append(a)
    return out


def _output_stage(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, out_offset: int,
                  act_min: int, act_max: int) -> np.ndarray:
    """acc [..., O] int64 (bias included) -> int8 after requantize + offset + clamp."""
    q = multiply_by_quantized_multiplier(acc, mult, shift) + int(out_offset)
    return np.clip(q, int(act_min), int(act_max)).astype(np.int8)


def _float_dtype(w2d: np.ndarray) -> type:
    """float32 if every partial sum of x*w (|x| <= 128) over a row of w2d [O, K] is exact in it."""
    if w2d.size == 0:
        return np.float32
    worst = int(np.abs(w2d.astype(np.int64)).sum(axis=1).max()) * _X_ABS_MAX
    return np.float32 if worst <= _F32_EXACT else np.float64


def _matmul_exact(a: np.ndarray, w2d: np.ndarray, dtype: type) -> np.ndarray:
    """a [M, K] int8 @ w2d[O, K].T as exact int64."""
    wf = w2d.astype(dtype)
    return (a.astype(dtype) @ wf.T).astype(np.int64)  # exact integers already


def conv_out_size(in_size: int, kernel: int, stride: int, dilation: int, padding: str) -> tuple[int, int]:
    """TFLite SAME/VALID -> (output size, pad before). A helper for callers; the kernels take explicit pads."""
    eff = (kernel - 1) * dilation + 1
    if padding.upper() == "VALID":
        return (in_size - eff + stride) // stride, 0
    if padding.upper() == "SAME":
        out = (in_size + stride - 1) // stride
        total = max((out - 1) * stride + eff - in_size, 0)
        return out, total // 2
    raise ValueError(f"padding must be SAME or VALID, got {padding!r}")


def _resolve_geometry(h: int, w: int, kh: int, kw: int, stride, dilation, pad, out_hw):
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    pt, pl = _pair(pad, "pad")
    if min(sh, sw, dh, dw) < 1:
        raise ValueError(f"stride and dilation must be >= 1, got {stride!r}, {dilation!r}")
    if out_hw is None:  # symmetric padding
        oh = (h + 2 * pt - (kh - 1) * dh - 1) // sh + 1
        ow = (w + 2 * pl - (kw - 1) * dw - 1) // sw + 1
    else:
        oh, ow = _pair(out_hw, "out_hw")
    if oh < 1 or ow < 1:
        raise ValueError(f"output size must be positive, got {(oh, ow)}")
    return sh, sw, dh, dw, pt, pl, oh, ow


def _padded(x: np.ndarray, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, pad_value: int):
    """Pad (or crop) x [N,H,W,C] so that tap (oy,ox,ky,kx) of the output is at
    row oy*sh + ky*dh, column ox*sw + kx*dw of the result."""
    n, h, w, c = x.shape
    first_r, last_r = -pt, (oh - 1) * sh - pt + (kh - 1) * dh
    first_c, last_c = -pl, (ow - 1) * sw - pl + (kw - 1) * dw
    top, bottom = max(0, -first_r), max(0, last_r - (h - 1))
    left, right = max(0, -first_c), max(0, last_c - (w - 1))
    if top or bottom or left or right:
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=pad_value)
    # Crop rows/columns before the first tap (negative pads) and after the last one.
    r0, c0 = first_r + top, first_c + left
    return np.ascontiguousarray(x[:, r0:last_r + top + 1, c0:last_c + left + 1, :])


def _pad_value(input_offset: int) -> int:
    zp = -int(input_offset)
    if not -128 <= zp <= 127:
        raise ValueError(f"input_offset must be in [-127, 128] (minus an int8 zero point), got {input_offset}")
    return zp


def fc_s8(x: np.ndarray, w: np.ndarray, bias: ArrayLike | None, mult: ArrayLike, shift: ArrayLike,
          out_offset: int, act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """FULLY_CONNECTED: x [N, K] int8, w [O, K] int8, folded bias [O] int32 -> [N, O] int8.

    x may have any shape [N, ...]; it is flattened to [N, K] as TFLite does.
    """
    x = _as_int8(x, "x")
    w = _as_int8(w, "w")
    if w.ndim != 2:
        raise ValueError(f"FC weights must be [O, K], got shape {w.shape}")
    x2 = x.reshape(x.shape[0], -1)
    if x2.shape[1] != w.shape[1]:
        raise ValueError(f"FC input has {x2.shape[1]} features, weights expect {w.shape[1]}")
    bias, mult, shift = _channel_params(bias, mult, shift, w.shape[0])
    acc = _matmul_exact(x2, w, _float_dtype(w)) + bias
    return _output_stage(acc, mult, shift, out_offset, act_min, act_max)


def conv_s8(x: np.ndarray, w: np.ndarray, bias: ArrayLike | None, mult: ArrayLike, shift: ArrayLike,
            input_offset: int, out_offset: int, stride: IntPair = 1, dilation: IntPair = 1,
            pad: IntPair = 0, out_hw: IntPair | None = None, act_min: int = -128,
            act_max: int = 127) -> np.ndarray:
    """CONV_2D: x [N, H, W, C] int8, w [O, KH, KW, C] int8, folded bias [O] -> [N, OH, OW, O] int8.

    stride, dilation = (h, w); pad = (pad_top, pad_left); out_hw = (OH, OW), or
    None for symmetric padding. Padded taps read x = -input_offset.
    """
    x = _as_int8(x, "x")
    w = _as_int8(w, "w")
    if x.ndim != 4 or w.ndim != 4 or w.shape[3] != x.shape[3]:
        raise ValueError(f"conv expects x [N,H,W,C] and w [O,KH,KW,C], got {x.shape} and {w.shape}")
    n, h, wd, c = x.shape
    o, kh, kw, _ = w.shape
    sh, sw, dh, dw, pt, pl, oh, ow = _resolve_geometry(h, wd, kh, kw, stride, dilation, pad, out_hw)
    bias, mult, shift = _channel_params(bias, mult, shift, o)
    w2d = w.reshape(o, kh * kw * c)
    dtype = _float_dtype(w2d)
    wf_t = w2d.astype(dtype).T
    out = np.empty((n, oh, ow, o), dtype=np.int8)

    per_sample = oh * ow * kh * kw * c
    step = max(1, _CHUNK_ELEMS // max(per_sample, 1))
    for b0 in range(0, n, step):
        xp = _padded(x[b0:b0 + step], kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, _pad_value(input_offset))
        nb = xp.shape[0]
        if kh == kw == 1 and sh == sw == 1:
            cols = xp.reshape(nb * oh * ow, c)
        else:
            s_n, s_h, s_w, s_c = xp.strides
            patches = as_strided(xp, shape=(nb, oh, ow, kh, kw, c),
                                 strides=(s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c),
                                 writeable=False)
            cols = patches.reshape(nb * oh * ow, kh * kw * c)
        acc = (cols.astype(dtype) @ wf_t).astype(np.int64) + bias
        out[b0:b0 + nb] = _output_stage(acc, mult, shift, out_offset, act_min, act_max).reshape(nb, oh, ow, o)
    return out


def dwconv_s8(x: np.ndarray, w: np.ndarray, bias: ArrayLike | None, mult: ArrayLike, shift: ArrayLike,
              input_offset: int, out_offset: int, depth_multiplier: int | None = None,
              stride: IntPair = 1, dilation: IntPair = 1, pad: IntPair = 0,
              out_hw: IntPair | None = None, act_min: int = -128, act_max: int = 127) -> np.ndarray:
    """DEPTHWISE_CONV_2D: x [N, H, W, C] int8, w [1, KH, KW, C*M] int8 (TFLite layout),
    folded bias [C*M] -> [N, OH, OW, C*M] int8; output channel ic*M + m reads input channel ic.

    depth_multiplier M defaults to w.shape[3] // C. stride, dilation = (h, w);
    pad = (pad_top, pad_left); out_hw = (OH, OW), or None for symmetric padding.
    Padded taps read x = -input_offset.
    """
    x = _as_int8(x, "x")
    w = _as_int8(w, "w")
    if x.ndim != 4 or w.ndim != 4 or w.shape[0] != 1:
        raise ValueError(f"depthwise conv expects x [N,H,W,C] and w [1,KH,KW,C*M], got {x.shape} and {w.shape}")
    n, h, wd, c = x.shape
    _, kh, kw, oc = w.shape
    m = oc // c if depth_multiplier is None else int(depth_multiplier)
    if m < 1 or c * m != oc:
        raise ValueError(f"depthwise weights have {oc} channels, input {c} x depth multiplier {m}")
    sh, sw, dh, dw, pt, pl, oh, ow = _resolve_geometry(h, wd, kh, kw, stride, dilation, pad, out_hw)
    bias, mult, shift = _channel_params(bias, mult, shift, oc)
    # int32 accumulation is exact: |sum| <= KH*KW*128*128 < 2**31 for any real kernel.
    if kh * kw * _X_ABS_MAX * _X_ABS_MAX >= 2**31:
        raise ValueError(f"depthwise kernel {kh}x{kw} too large")
    wt = w.reshape(kh, kw, c, m).astype(np.int32)
    out = np.empty((n, oh, ow, oc), dtype=np.int8)

    per_sample = (h + kh * dh) * (wd + kw * dw) * c + 2 * oh * ow * oc
    step = max(1, _CHUNK_ELEMS // max(per_sample, 1))
    for b0 in range(0, n, step):
        xp = _padded(x[b0:b0 + step], kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, _pad_value(input_offset))
        xp = xp.astype(np.int32)
        nb = xp.shape[0]
        acc = np.zeros((nb, oh, ow, c, m), dtype=np.int32)
        prod = np.empty_like(acc)
        for ky in range(kh):
            for kx in range(kw):
                r0, c0 = ky * dh, kx * dw
                tap = xp[:, r0:r0 + (oh - 1) * sh + 1:sh, c0:c0 + (ow - 1) * sw + 1:sw, :, None]
                np.multiply(tap, wt[ky, kx], out=prod)
                acc += prod
        acc = acc.reshape(nb, oh, ow, oc).astype(np.int64) + bias
        out[b0:b0 + nb] = _output_stage(acc, mult, shift, out_offset, act_min, act_max)
    return out
