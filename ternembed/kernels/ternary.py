# SPDX-License-Identifier: Apache-2.0
"""Ternary-weight multiply-accumulate kernels in numpy: the bit-exact model of the C kernels.

Kernel names (a Step's ``kernel``) and what their params mean are specified in the docstring of
:mod:`ternembed.quantize.plan_pass` (the integer contract); this module implements exactly that:

* ``fc_t2_s8``, ``conv_t2_s8``, ``dwconv_t2_s8`` -- 2-bit ternary codes, integer group scales,
  residual planes (each with a per-output left shift), the first ``active_planes`` planes used;
* ``fc_p2_s8``, ``conv_p2_s8``, ``dwconv_p2_s8`` -- signed power-of-two codes (int4 nibbles
  sign*(k+1)), each non-zero tap adds ``sign * (x << (levels - |v|))``;
* ``fc_to_s8``, ``conv_to_s8``, ``dwconv_to_s8`` -- ternary codes with group scales plus a
  per-output integer offset times the patch input sum S (computed once per patch).

Layouts as the int8 kernels (:mod:`ternembed.kernels.mac`), all with a leading batch axis N:
FC x [N, K]; conv x [N, H, W, C] with the reduction index i = (ky*KW + kx)*C + c; depthwise
x [N, H, W, C] with i = ky*KW + kx for output channel oc reading input channel oc // M.
Padded taps read x = input zero point = -input_offset.

Arithmetic: exact integers. The codes are unpacked with :mod:`ternembed.pack`; the per-plane
terms are combined into one integer weight per tap, ``W[o, i] = sum_p (a[p,o,g(i)] * t[p,o,i])
<< e[p,o]`` (integer distributivity: the same integer the C kernel accumulates plane by plane),
and the sums of products are formed with float matrix products, which are exact because every
partial sum is bounded by 128 * sum_i |W[o, i]| (+ 128 * K * |offset_o|) and that bound is
checked per call against the float mantissa (float32 up to 2**24, float64 up to 2**53; the pass
already guarantees < 2**31, the int32 accumulator of the C kernels). The offset term
``offset_o * S`` is computed separately with S the patch input sum, as the contract says.
The output stage is TFLite's: ``clamp(MultiplyByQuantizedMultiplier(acc, mult, shift) +
output_offset, act_min, act_max)``. Deterministic: no randomness, no order-dependent float sums.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import pack
from ..kernelspec import TERNARY_KERNELS, spec
from ..fixedpoint import multiply_by_quantized_multiplier
from ..plan import Step

__all__ = [
    "TERNARY_KERNELS",
    "decode_weights",
    "fc_mac",
    "conv_mac",
    "dwconv_mac",
    "accumulator_bound",
    "mean_patch",
]


_X_ABS_MAX = 128
_F32_EXACT = 1 << 24
_F64_EXACT = 1 << 53
_CHUNK_ELEMS = 1 << 23


# ------------------------------------------------------------------------------------ decoding
def _group_index(K: int, group: int) -> np.ndarray:
    return np.arange(K) // int(group)


def decode_weights(params: dict, family: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer weights W int64 [O, K] (planes combined) and the offset int64 [O] (``to`` only).

    ``family`` is "t2", "p2" or "to". Reads only the flash params (packed codes, scales,
    plane shifts, offset) and the scalars ``out_channels``, ``depth``, ``group``, ``planes``,
    ``active_planes``, ``levels``.
    """
    O, K, N = int(params["out_channels"]), int(params["depth"]), int(params["group"])
    gid = _group_index(K, N)
    scales = np.asarray(params["scales"]).astype(np.int64)
    if family == "p2":
        if params.get("format") != "int4":
            raise ValueError(f"p2 codes must be in the int4 format, got {params.get('format')!r}")
        L = int(params["levels"])
        v = pack.unpack_int4(params["codes"], O, K).astype(np.int64)
        mag = np.abs(v)
        if np.any(mag > L):
            raise ValueError(f"pow2 code magnitude exceeds levels={L}")
        sh = np.where(mag > 0, L - mag, 0)
        eff = np.sign(v) << sh  # sign * 2^(L-1-k)
        W = eff * scales.reshape(O, -1)[:, gid]
        return W, None
    if params.get("format") != "2bit":
        raise ValueError(f"{family} codes must be in the 2bit format, got {params.get('format')!r}")
    P = int(params.get("planes", 1))
    active = int(params.get("active_planes", P))
    if not 1 <= active <= P:
        raise ValueError(f"active_planes must be in 1..{P}, got {active}")
    codes = pack.unpack_2bit(params["codes"], P * O, K).reshape(P, O, K).astype(np.int64)
    scales = scales.reshape(P, O, -1)
    pshift = params.get("plane_shift")
    e = np.zeros((P, O), np.int64) if pshift is None else np.asarray(pshift, np.int64).reshape(P, O)
    W = np.zeros((O, K), np.int64)
    for p in range(active):
        W += (codes[p] * scales[p][:, gid]) << e[p][:, None]
    off = None
    if family == "to":
        off = np.asarray(params["offset"], np.int64).reshape(O)
    return W, off


def accumulator_bound(W: np.ndarray, bias: np.ndarray, offset: np.ndarray | None = None) -> int:
    """max_o |bias_o| + 128 * (sum_i |W[o,i]| + K * |offset_o|): bounds every partial sum."""
    K = W.shape[1]
    b = 128 * np.abs(W).sum(axis=1)
    if offset is not None:
        b = b + 128 * K * np.abs(offset)
    return int((np.abs(np.asarray(bias, np.int64)) + b).max()) if W.shape[0] else 0


def _bias_for(params: dict) -> np.ndarray:
    bias = np.asarray(params["bias"], np.int64)
    if bias.ndim == 2:  # cumulative per active-plane count
        return bias[int(params.get("active_planes", bias.shape[0])) - 1]
    if "active_planes" in params and int(params["active_planes"]) != int(params.get("planes", 1)):
        raise ValueError("this step was exported without switchable planes (bias is 1-D); "
                         "re-export with switchable planes to run fewer planes")
    return bias


def _dtype_for(W: np.ndarray, offset: np.ndarray | None) -> type:
    worst = accumulator_bound(W, np.zeros(W.shape[0], np.int64), offset)
    if worst <= _F32_EXACT:
        return np.float32
    if worst <= _F64_EXACT:
        return np.float64
    raise OverflowError(f"accumulator bound {worst} is beyond exact float arithmetic")


def _output_stage(acc: np.ndarray, mult, shift, out_offset: int, act_min: int, act_max: int) -> np.ndarray:
    q = multiply_by_quantized_multiplier(acc, np.asarray(mult, np.int64), np.asarray(shift, np.int64))
    return np.clip(q + int(out_offset), int(act_min), int(act_max)).astype(np.int8)


def _dot(cols: np.ndarray, W: np.ndarray, dtype: type) -> np.ndarray:
    """cols [M, K] int @ W [O, K].T as exact int64."""
    return np.rint(cols.astype(dtype) @ W.astype(dtype).T).astype(np.int64)


# ------------------------------------------------------------------------------------ geometry
def _patches(x: np.ndarray, kh: int, kw: int, stride, dilation, pad, out_hw, zp: int) -> np.ndarray:
    """View [N, OH, OW, KH, KW, C] of the padded input: tap (oy, ox, ky, kx) reads row
    oy*sh - pad_top + ky*dh and column ox*sw - pad_left + kx*dw (padding value zp)."""
    n, h, w, c = x.shape
    sh, sw = (int(v) for v in stride)
    dh, dw = (int(v) for v in dilation)
    pt, pl = (int(v) for v in pad)
    oh, ow = (int(v) for v in out_hw)
    need_h = (oh - 1) * sh + (kh - 1) * dh + 1
    need_w = (ow - 1) * sw + (kw - 1) * dw + 1
    top, left = max(pt, 0), max(pl, 0)
    r0, c0 = max(-pt, 0), max(-pl, 0)
    bottom = max(0, r0 + need_h - (h + top))
    right = max(0, c0 + need_w - (w + left))
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=zp)
    xp = np.ascontiguousarray(xp[:, r0:r0 + need_h, c0:c0 + need_w, :])
    s_n, s_h, s_w, s_c = xp.strides
    return as_strided(xp, shape=(n, oh, ow, kh, kw, c),
                      strides=(s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c), writeable=False)


def _as_int8(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise ValueError(f"ternary kernels take int8 activations, got {x.dtype}")
    return x


def mean_patch(x: np.ndarray, family: str, K: int, input_offset: int, kernel_hw=None, stride=None,
               dilation=None, pad=None, out_hw=None, depth_multiplier: int = 1) -> np.ndarray:
    """Mean over samples and output positions of (x_i - zp) at every tap i of the reduction.

    FC -> [K]; conv -> [K] (padded taps count as zp, i.e. 0 here); depthwise -> [C*M, K] (row oc
    holds the taps of input channel oc // M). Float64; used for the bias correction of the pass.
    """
    zp = -int(input_offset)
    x = np.asarray(x)
    if family == "fc":
        return x.reshape(-1, K).astype(np.float64).mean(axis=0) - zp
    n = x.shape[0]
    kh, kw = (int(v) for v in kernel_hw)
    c = x.shape[3]
    total = np.zeros((kh, kw, c), np.float64)
    count = 0
    step = max(1, _CHUNK_ELEMS // max(int(np.prod(out_hw)) * kh * kw * c, 1))
    for b0 in range(0, n, step):
        cols = _patches(x[b0:b0 + step], kh, kw, stride, dilation, pad, out_hw, zp)
        total += cols.sum(axis=(0, 1, 2), dtype=np.float64)
        count += cols.shape[0] * cols.shape[1] * cols.shape[2]
    m = total / max(count, 1) - zp
    if family == "conv":
        return m.reshape(-1)
    return np.repeat(m.reshape(kh * kw, c).T, int(depth_multiplier), axis=0)


# ------------------------------------------------------------------------------------- kernels
def fc_mac(x: np.ndarray, W: np.ndarray, offset: np.ndarray | None, bias: np.ndarray, mult, shift,
           out_offset: int, act_min: int, act_max: int) -> np.ndarray:
    """x [N, K] int8 -> [N, O] int8: acc = bias + x @ W.T (+ offset * sum(x))."""
    x = _as_int8(x)
    x2 = x.reshape(x.shape[0], -1)
    if x2.shape[1] != W.shape[1]:
        raise ValueError(f"FC input has {x2.shape[1]} features, weights expect {W.shape[1]}")
    acc = _dot(x2, W, _dtype_for(W, offset)) + np.asarray(bias, np.int64)
    if offset is not None:
        S = x2.astype(np.int64).sum(axis=1, keepdims=True)  # once per input row, all outputs
        acc = acc + S * offset[None, :]
    return _output_stage(acc, mult, shift, out_offset, act_min, act_max)


def conv_mac(x: np.ndarray, W: np.ndarray, offset: np.ndarray | None, bias: np.ndarray, mult, shift,
             input_offset: int, out_offset: int, kernel_hw, stride, dilation, pad, out_hw,
             act_min: int, act_max: int) -> np.ndarray:
    """x [N, H, W, C] int8, W [O, KH*KW*C] -> [N, OH, OW, O] int8."""
    x = _as_int8(x)
    n, h, wd, c = x.shape
    kh, kw = (int(v) for v in kernel_hw)
    oh, ow = (int(v) for v in out_hw)
    O = W.shape[0]
    if W.shape[1] != kh * kw * c:
        raise ValueError(f"conv weights have depth {W.shape[1]}, expected {kh}*{kw}*{c}")
    dtype = _dtype_for(W, offset)
    Wt = W.astype(dtype).T
    bias = np.asarray(bias, np.int64)
    out = np.empty((n, oh, ow, O), np.int8)
    step = max(1, _CHUNK_ELEMS // max(oh * ow * kh * kw * c, 1))
    for b0 in range(0, n, step):
        xb = x[b0:b0 + step]
        nb = xb.shape[0]
        cols = _patches(xb, kh, kw, stride, dilation, pad, out_hw, -int(input_offset))
        cols = cols.reshape(nb * oh * ow, kh * kw * c)
        acc = np.rint(cols.astype(dtype) @ Wt).astype(np.int64) + bias
        if offset is not None:
            S = cols.astype(np.int64).sum(axis=1, keepdims=True)  # once per patch, all outputs
            acc = acc + S * offset[None, :]
        out[b0:b0 + nb] = _output_stage(acc, mult, shift, out_offset, act_min, act_max).reshape(nb, oh, ow, O)
    return out


def dwconv_mac(x: np.ndarray, W: np.ndarray, offset: np.ndarray | None, bias: np.ndarray, mult, shift,
               input_offset: int, out_offset: int, depth_multiplier: int, kernel_hw, stride, dilation,
               pad, out_hw, act_min: int, act_max: int) -> np.ndarray:
    """x [N, H, W, C] int8, W [C*M, KH*KW] (row oc reads input channel oc // M) -> [N, OH, OW, C*M]."""
    x = _as_int8(x)
    n, h, wd, c = x.shape
    kh, kw = (int(v) for v in kernel_hw)
    oh, ow = (int(v) for v in out_hw)
    m = int(depth_multiplier)
    oc = W.shape[0]
    if oc != c * m or W.shape[1] != kh * kw:
        raise ValueError(f"depthwise weights {W.shape} do not match {c} channels x {m}, {kh}x{kw} taps")
    dtype = _dtype_for(W, offset)
    Wr = W.reshape(c, m, kh * kw).astype(dtype)
    bias = np.asarray(bias, np.int64)
    out = np.empty((n, oh, ow, oc), np.int8)
    step = max(1, _CHUNK_ELEMS // max(oh * ow * kh * kw * c, 1))
    for b0 in range(0, n, step):
        xb = x[b0:b0 + step]
        nb = xb.shape[0]
        cols = _patches(xb, kh, kw, stride, dilation, pad, out_hw, -int(input_offset))
        cols = cols.reshape(nb, oh, ow, kh * kw, c)
        acc = np.rint(np.einsum("nhwtc,cmt->nhwcm", cols.astype(dtype), Wr, optimize=True)).astype(np.int64)
        acc = acc.reshape(nb, oh, ow, oc) + bias
        if offset is not None:
            S = cols.astype(np.int64).sum(axis=3)  # [nb, oh, ow, c]: once per input channel
            acc = acc + (S[..., :, None] * offset.reshape(c, m)).reshape(nb, oh, ow, oc)
        out[b0:b0 + nb] = _output_stage(acc, mult, shift, out_offset, act_min, act_max)
    return out


# ------------------------------------------------------------------------------------ adapters
def run_ternary_step(step: Step, args: list[np.ndarray]) -> np.ndarray:
    """Emulator adapter for every ternary kernel name."""
    p = step.params
    W, off = decode_weights(p, spec(step.kernel).weights)
    bias = _bias_for(p)
    if step.kernel.startswith("fc_"):
        return fc_mac(args[0].reshape(-1, int(p["depth"])), W, off, bias, p["multiplier"], p["shift"],
                      p["output_offset"], p["act_min"], p["act_max"])
    if step.kernel.startswith("conv_"):
        return conv_mac(args[0], W, off, bias, p["multiplier"], p["shift"], p["input_offset"],
                        p["output_offset"], p["kernel_hw"], p["stride"], p["dilation"], p["pad"],
                        p["out_hw"], p["act_min"], p["act_max"])
    return dwconv_mac(args[0], W, off, bias, p["multiplier"], p["shift"], p["input_offset"],
                      p["output_offset"], p["depth_multiplier"], p["kernel_hw"], p["stride"],
                      p["dilation"], p["pad"], p["out_hw"], p["act_min"], p["act_max"])
