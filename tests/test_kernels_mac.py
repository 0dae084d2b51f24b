# SPDX-License-Identifier: Apache-2.0
"""int8 MAC kernels: numpy (ternembed.kernels.mac) vs host-built C (portable and
emulated-DSP paths) vs a naive TFLM-style reference; arm cross-compiles; and,
where available, the real DSP instructions under QEMU and TFLite Micro itself."""
from __future__ import annotations

import ctypes
import shutil
import subprocess
from ctypes import POINTER, c_int32, c_int8, c_void_p
from pathlib import Path

import numpy as np
import pytest

from ternembed.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from ternembed.hostc import load_shared
from ternembed.kernels.mac import conv_out_size, conv_s8, dwconv_s8, fc_s8

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "firmware" / "include"
KERNEL_DIR = ROOT / "firmware" / "kernels"
SOURCES = [KERNEL_DIR / name for name in
           ("te_nn_mat_mult_s8.c", "te_fc_s8.c", "te_conv_s8.c", "te_dwconv_s8.c", "te_dw_span_s8.c")]
ARM_GCC = "arm-none-eabi-gcc"


# ----------------------------------------------------------------------------- C bindings

class Dims(ctypes.Structure):
    _fields_ = [("n", c_int32), ("h", c_int32), ("w", c_int32), ("c", c_int32)]


class Range(ctypes.Structure):
    _fields_ = [("min", c_int32), ("max", c_int32)]


class PcQuant(ctypes.Structure):
    _fields_ = [("multiplier", POINTER(c_int32)), ("shift", POINTER(c_int32))]


class FcParams(ctypes.Structure):
    _fields_ = [("output_offset", c_int32), ("activation", Range)]


_GEOMETRY = [("stride_h", c_int32), ("stride_w", c_int32), ("dilation_h", c_int32),
             ("dilation_w", c_int32), ("pad_top", c_int32), ("pad_left", c_int32),
             ("activation", Range)]


class ConvParams(ctypes.Structure):
    _fields_ = [("input_offset", c_int32), ("output_offset", c_int32)] + _GEOMETRY


class DwParams(ctypes.Structure):
    _fields_ = [("input_offset", c_int32), ("output_offset", c_int32),
                ("depth_multiplier", c_int32)] + _GEOMETRY


GUARD = 16
SENTINEL = 0x5A


class CKernels:
    """One build of the kernels (portable or DSP-emulated) behind numpy-shaped calls."""

    def __init__(self, defines: list[str]):
        self.lib = load_shared(SOURCES, [INCLUDE], defines)
        ptr = POINTER
        common = [c_void_p, ptr(PcQuant), ptr(Dims), ptr(c_int8), ptr(Dims), ptr(c_int8),
                  ptr(c_int32), ptr(Dims), ptr(c_int8)]
        self.lib.te_fc_s8.argtypes = common
        self.lib.te_dwconv_s8.argtypes = common
        self.lib.te_conv_s8.argtypes = common + [c_void_p]
        self.lib.te_conv_s8_get_buffer_size.argtypes = [ptr(Dims), ptr(Dims)]
        for f in (self.lib.te_fc_s8, self.lib.te_conv_s8, self.lib.te_dwconv_s8,
                  self.lib.te_conv_s8_get_buffer_size):
            f.restype = c_int32

    @staticmethod
    def _p(a: np.ndarray, ctype):
        return a.ctypes.data_as(POINTER(ctype))

    @staticmethod
    def _guarded(size: int) -> np.ndarray:
        return np.full(size + GUARD, SENTINEL, dtype=np.uint8).view(np.int8)

    def _call(self, fn, params, x, w, bias, mult, shift, out_shape, extra=()):
        x = np.ascontiguousarray(x, dtype=np.int8)
        w = np.ascontiguousarray(w, dtype=np.int8)
        bias = np.ascontiguousarray(bias, dtype=np.int32)
        mult = np.ascontiguousarray(mult, dtype=np.int32)
        shift = np.ascontiguousarray(shift, dtype=np.int32)
        quant = PcQuant(self._p(mult, c_int32), self._p(shift, c_int32))
        out = self._guarded(int(np.prod(out_shape)))
        status = fn(ctypes.byref(params), ctypes.byref(quant), ctypes.byref(Dims(*_nhwc(x.shape))),
                    self._p(x, c_int8), ctypes.byref(Dims(*_nhwc(w.shape))), self._p(w, c_int8),
                    self._p(bias, c_int32), ctypes.byref(Dims(*_nhwc(out_shape))),
                    self._p(out, c_int8), *extra)
        assert status == 0
        assert (out[-GUARD:].view(np.uint8) == SENTINEL).all(), "output overrun"
        return out[:-GUARD].reshape(out_shape)

    def fc(self, x, w, bias, mult, shift, out_offset, act):
        params = FcParams(out_offset, Range(*act))
        return self._call(self.lib.te_fc_s8, params, x, w, bias, mult, shift, (x.shape[0], w.shape[0]))

    def conv_buffer_size(self, x_shape, w_shape) -> int:
        return self.lib.te_conv_s8_get_buffer_size(ctypes.byref(Dims(*x_shape)), ctypes.byref(Dims(*w_shape)))

    def conv(self, x, w, bias, mult, shift, input_offset, out_offset, stride, dilation, pad, out_hw,
             act, no_scratch=False):
        params = ConvParams(input_offset, out_offset, *stride, *dilation, *pad, Range(*act))
        size = self.conv_buffer_size(x.shape, w.shape)
        assert size == 2 * w.shape[1] * w.shape[2] * x.shape[3]
        scratch = self._guarded(size)
        out = self._call(self.lib.te_conv_s8, params, x, w, bias, mult, shift,
                         (x.shape[0], *out_hw, w.shape[0]),
                         extra=(None if no_scratch else scratch.ctypes.data,))
        assert (scratch[-GUARD:].view(np.uint8) == SENTINEL).all(), "scratch overrun"
        return out

    def dwconv(self, x, w, bias, mult, shift, input_offset, out_offset, m, stride, dilation, pad,
               out_hw, act):
        params = DwParams(input_offset, out_offset, m, *stride, *dilation, *pad, Range(*act))
        return self._call(self.lib.te_dwconv_s8, params, x, w, bias, mult, shift,
                          (x.shape[0], *out_hw, w.shape[3]))


def _nhwc(shape) -> tuple[int, int, int, int]:
    if len(shape) == 2:
        return (shape[0], 1, 1, shape[1])
    return tuple(shape)


PATHS = {"portable": [], "dsp": ["TE_EMULATE_DSP"]}


@pytest.fixture(scope="module", params=list(PATHS))
def ck(request) -> CKernels:
    return CKernels(PATHS[request.param])


# ----------------------------------------------------------------------------- random cases

def rand_requant(rng, channels: int, per_tensor: bool = False, acc_scale: float | None = None):
    """Multipliers from quantize_multiplier of log-uniform reals in [1e-4, 0.9]; given the
    typical accumulator size, mostly ones that map it into the int8 range (so outputs are
    not all saturated) and sometimes any in the range."""
    n = 1 if per_tensor else channels
    lo, hi = np.log10(1e-4), np.log10(0.9)
    if acc_scale is not None and rng.random() < 0.8:
        lo = float(np.clip(np.log10(8 / acc_scale), lo, hi))
        hi = float(np.clip(np.log10(300 / acc_scale), lo, hi))
    reals = 10 ** rng.uniform(lo, hi, n)
    qs = [quantize_multiplier(float(r)) for r in reals]
    mult = np.array([q[0] for q in qs] * (channels if per_tensor else 1), dtype=np.int32)
    shift = np.array([q[1] for q in qs] * (channels if per_tensor else 1), dtype=np.int32)
    return mult, shift


def rand_act(rng, out_offset: int) -> tuple[int, int]:
    kind = rng.integers(3)
    if kind == 0:
        return -128, 127
    if kind == 1:                       # RELU
        return max(out_offset, -128), 127
    lo = int(rng.integers(-128, out_offset + 1))    # RELU6-like range around the zero point
    return lo, int(rng.integers(max(lo, out_offset), 128))


def rand_s8(rng, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


def fold_bias(bias: np.ndarray, w_per_out: np.ndarray, input_offset: int) -> np.ndarray:
    """bias_f[o] = bias[o] + input_offset * sum_k w[o, k]; w_per_out is [O, K]."""
    return (bias.astype(np.int64) + input_offset * w_per_out.astype(np.int64).sum(axis=1)).astype(np.int32)


def acc_size(w_per_out: np.ndarray, input_offset: int) -> int:
    """Rough spread of sum_k (x + input_offset) * w[o, k] for uniform random int8 x."""
    k = w_per_out.shape[1]
    return int(np.sqrt(k) * (np.abs(w_per_out).mean() + 0.1) * (74 + abs(input_offset) / 2)) + 1


def rand_geometry(rng, h, w, kh, kw):
    """stride, dilation, pad, out_hw: TFLite SAME, VALID or an arbitrary explicit padding."""
    stride = tuple(int(s) for s in rng.integers(1, 4, 2))
    dilation = tuple(int(d) for d in rng.integers(1, 3, 2))
    mode = rng.choice(["SAME", "VALID", "explicit"])
    out, pad = [], []
    for size, k, s, d in ((h, kh, stride[0], dilation[0]), (w, kw, stride[1], dilation[1])):
        eff = (k - 1) * d + 1
        if mode == "VALID" and size >= eff:
            o, p = conv_out_size(size, k, s, d, "VALID")
        elif mode == "explicit":
            p = int(rng.integers(0, eff))
            o_max = (size + p + (eff - 1) - eff) // s + 1   # bottom pad up to eff-1
            o = int(rng.integers(1, max(o_max, 1) + 1))
        else:
            o, p = conv_out_size(size, k, s, d, "SAME")
        out.append(o)
        pad.append(p)
    return stride, dilation, tuple(pad), tuple(out)


def conv_case(rng, depthwise: bool, m: int = 1):
    n = int(rng.integers(1, 4))
    h, w = (int(v) for v in rng.integers(1, 10, 2))
    c = int(rng.integers(1, 8))
    kh, kw = (int(v) for v in rng.integers(1, 5, 2))
    o = c * m if depthwise else int(rng.integers(1, 10))
    stride, dilation, pad, out_hw = rand_geometry(rng, h, w, kh, kw)
    x = rand_s8(rng, (n, h, w, c))
    wt = rand_s8(rng, (1, kh, kw, o) if depthwise else (o, kh, kw, c))
    if rng.random() < 0.3:                       # ternary weights, the project's main case
        wt = rng.integers(-1, 2, size=wt.shape).astype(np.int8)
    input_offset = -int(rng.integers(-128, 128))
    out_offset = int(rng.integers(-128, 128))
    w_per_out = wt.reshape(-1, o).T if depthwise else wt.reshape(o, -1)
    acc_scale = acc_size(w_per_out, input_offset)
    bias = rng.integers(-acc_scale, acc_scale + 1, size=o).astype(np.int32)
    mult, shift = rand_requant(rng, o, per_tensor=rng.random() < 0.25, acc_scale=acc_scale)
    return dict(x=x, w=wt, bias=bias, bias_f=fold_bias(bias, w_per_out, input_offset), mult=mult,
                shift=shift, input_offset=input_offset, out_offset=out_offset, stride=stride,
                dilation=dilation, pad=pad, out_hw=out_hw, act=rand_act(rng, out_offset))


def np_conv(cs):
    return conv_s8(cs["x"], cs["w"], cs["bias_f"], cs["mult"], cs["shift"], cs["input_offset"],
                   cs["out_offset"], stride=cs["stride"], dilation=cs["dilation"], pad=cs["pad"],
                   out_hw=cs["out_hw"], act_min=cs["act"][0], act_max=cs["act"][1])


def np_dwconv(cs, m):
    return dwconv_s8(cs["x"], cs["w"], cs["bias_f"], cs["mult"], cs["shift"], cs["input_offset"],
                     cs["out_offset"], depth_multiplier=m, stride=cs["stride"],
                     dilation=cs["dilation"], pad=cs["pad"], out_hw=cs["out_hw"],
                     act_min=cs["act"][0], act_max=cs["act"][1])


# ----------------------------------------------------------------------------- naive TFLM reference

def _requant_scalar(acc, mult, shift, out_offset, act):
    v = int(multiply_by_quantized_multiplier(acc, mult, shift)) + out_offset
    return min(max(v, act[0]), act[1])


def naive_conv(x, w, bias, mult, shift, input_offset, out_offset, stride, dilation, pad, out_hw, act,
               depth_multiplier=None):
    """TFLM's reference formulation: UNFOLDED bias, in-image taps only, (x + input_offset) * w."""
    n, h, wd, c = x.shape
    oh, ow = out_hw
    if depth_multiplier is None:
        o, kh, kw, _ = w.shape
    else:
        _, kh, kw, o = w.shape
    out = np.zeros((n, oh, ow, o), dtype=np.int8)
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for oc in range(o):
                    acc = int(bias[oc])
                    for ky in range(kh):
                        for kx in range(kw):
                            iy = oy * stride[0] - pad[0] + ky * dilation[0]
                            ix = ox * stride[1] - pad[1] + kx * dilation[1]
                            if not (0 <= iy < h and 0 <= ix < wd):
                                continue
                            if depth_multiplier is None:
                                for ic in range(c):
                                    acc += (int(x[b, iy, ix, ic]) + input_offset) * int(w[oc, ky, kx, ic])
                            else:
                                ic = oc // depth_multiplier
                                acc += (int(x[b, iy, ix, ic]) + input_offset) * int(w[0, ky, kx, oc])
                    out[b, oy, ox, oc] = _requant_scalar(acc, mult[oc], shift[oc], out_offset, act)
    return out


# ----------------------------------------------------------------------------- tests: numpy vs naive

@pytest.mark.parametrize("seed", range(40))
def test_numpy_conv_matches_naive_tflm(seed):
    rng = np.random.default_rng(1000 + seed)
    cs = conv_case(rng, depthwise=False)
    cs["x"] = cs["x"][:1]
    ref = naive_conv(cs["x"], cs["w"], cs["bias"], cs["mult"], cs["shift"], cs["input_offset"],
                     cs["out_offset"], cs["stride"], cs["dilation"], cs["pad"], cs["out_hw"], cs["act"])
    np.testing.assert_array_equal(np_conv(cs), ref)


@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("seed", range(20))
def test_numpy_dwconv_matches_naive_tflm(seed, m):
    rng = np.random.default_rng(2000 + seed)
    cs = conv_case(rng, depthwise=True, m=m)
    cs["x"] = cs["x"][:1]
    ref = naive_conv(cs["x"], cs["w"], cs["bias"], cs["mult"], cs["shift"], cs["input_offset"],
                     cs["out_offset"], cs["stride"], cs["dilation"], cs["pad"], cs["out_hw"], cs["act"],
                     depth_multiplier=m)
    np.testing.assert_array_equal(np_dwconv(cs, m), ref)


@pytest.mark.parametrize("seed", range(10))
def test_numpy_fc_matches_naive_tflm(seed):
    rng = np.random.default_rng(3000 + seed)
    n, k, o = (int(v) for v in rng.integers(1, 40, 3))
    x, w = rand_s8(rng, (n, k)), rand_s8(rng, (o, k))
    input_offset, out_offset = -int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    scale = acc_size(w, input_offset)
    bias = rng.integers(-scale, scale + 1, size=o).astype(np.int32)
    mult, shift = rand_requant(rng, o, acc_scale=scale)
    act = rand_act(rng, out_offset)
    ref = np.array([[_requant_scalar(int(bias[j]) + sum((int(x[i, q]) + input_offset) * int(w[j, q])
                                                         for q in range(k)),
                                     mult[j], shift[j], out_offset, act) for j in range(o)]
                    for i in range(n)], dtype=np.int8)
    got = fc_s8(x, w, fold_bias(bias, w, input_offset), mult, shift, out_offset, *act)
    np.testing.assert_array_equal(got, ref)


def test_numpy_fc_large_k_uses_exact_sums():
    """K large enough that float32 sums would not be exact: must still match int64."""
    rng = np.random.default_rng(7)
    x = np.full((3, 5000), -128, dtype=np.int8)
    x[1] = rand_s8(rng, 5000)
    w = np.full((4, 5000), -128, dtype=np.int8)
    w[2] = rand_s8(rng, 5000)
    w[3, ::2] = 127
    mult, shift = rand_requant(rng, 4)
    acc = x.astype(np.int64) @ w.astype(np.int64).T + 1
    ref = np.clip(multiply_by_quantized_multiplier(acc, mult, shift) + 3, -128, 127)
    np.testing.assert_array_equal(fc_s8(x, w, np.ones(4, np.int32), mult, shift, 3), ref)


def test_numpy_chunking_is_invisible(monkeypatch):
    import ternembed.kernels.mac as mac
    rng = np.random.default_rng(11)
    cs = conv_case(rng, depthwise=False)
    cs["x"] = rand_s8(rng, (7,) + cs["x"].shape[1:])
    full = np_conv(cs)
    monkeypatch.setattr(mac, "_CHUNK_ELEMS", 1)
    np.testing.assert_array_equal(np_conv(cs), full)


# ----------------------------------------------------------------------------- tests: numpy vs C

@pytest.mark.parametrize("seed", range(60))
def test_c_conv_matches_numpy(ck, seed):
    rng = np.random.default_rng(seed)
    cs = conv_case(rng, depthwise=False)
    expect = np_conv(cs)
    for b in range(cs["x"].shape[0]):
        got = ck.conv(cs["x"][b:b + 1], cs["w"], cs["bias_f"], cs["mult"], cs["shift"],
                      cs["input_offset"], cs["out_offset"], cs["stride"], cs["dilation"], cs["pad"],
                      cs["out_hw"], cs["act"])
        np.testing.assert_array_equal(got, expect[b:b + 1])


@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("seed", range(40))
def test_c_dwconv_matches_numpy(ck, seed, m):
    rng = np.random.default_rng(500 + seed)
    cs = conv_case(rng, depthwise=True, m=m)
    expect = np_dwconv(cs, m)
    for b in range(cs["x"].shape[0]):
        got = ck.dwconv(cs["x"][b:b + 1], cs["w"], cs["bias_f"], cs["mult"], cs["shift"],
                        cs["input_offset"], cs["out_offset"], m, cs["stride"], cs["dilation"],
                        cs["pad"], cs["out_hw"], cs["act"])
        np.testing.assert_array_equal(got, expect[b:b + 1])


@pytest.mark.parametrize("seed", range(30))
def test_c_fc_matches_numpy(ck, seed):
    rng = np.random.default_rng(900 + seed)
    n = int(rng.integers(1, 4))
    k = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 31, 64, 67, 250]))
    o = int(rng.integers(1, 12))
    x, w = rand_s8(rng, (n, k)), rand_s8(rng, (o, k))
    input_offset, out_offset = -int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    scale = acc_size(w, input_offset)
    bias = fold_bias(rng.integers(-scale, scale + 1, size=o).astype(np.int32), w, input_offset)
    mult, shift = rand_requant(rng, o, per_tensor=seed % 4 == 0, acc_scale=scale)
    act = rand_act(rng, out_offset)
    expect = fc_s8(x, w, bias, mult, shift, out_offset, *act)
    for b in range(n):
        np.testing.assert_array_equal(ck.fc(x[b:b + 1], w, bias, mult, shift, out_offset, act),
                                      expect[b:b + 1])
    # The C kernel's own batch loop (2 rows at a time) agrees too.
    np.testing.assert_array_equal(ck.fc(x, w, bias, mult, shift, out_offset, act), expect)


def test_c_batched_calls_match_numpy(ck):
    rng = np.random.default_rng(77)
    for depthwise in (False, True):
        cs = conv_case(rng, depthwise=depthwise)
        cs["x"] = rand_s8(rng, (3,) + cs["x"].shape[1:])
        args = (cs["x"], cs["w"], cs["bias_f"], cs["mult"], cs["shift"], cs["input_offset"],
                cs["out_offset"])
        geo = (cs["stride"], cs["dilation"], cs["pad"], cs["out_hw"], cs["act"])
        if depthwise:
            np.testing.assert_array_equal(ck.dwconv(*args, 1, *geo), np_dwconv(cs, 1))
        else:
            np.testing.assert_array_equal(ck.conv(*args, *geo), np_conv(cs))


@pytest.mark.parametrize("out_h", [5, 3])
def test_c_pointwise_direct_path(ck, out_h):
    """1x1, stride 1, no padding: a plain matrix product, needs no scratch."""
    rng = np.random.default_rng(out_h)
    x, w = rand_s8(rng, (1, 5, 3, 13)), rand_s8(rng, (11, 1, 1, 13))
    bias = rng.integers(-5000, 5000, 11).astype(np.int32)
    mult, shift = rand_requant(rng, 11)
    expect = conv_s8(x, w, bias, mult, shift, 9, -4, out_hw=(out_h, 3))
    got = ck.conv(x, w, bias, mult, shift, 9, -4, (1, 1), (1, 1), (0, 0), (out_h, 3), (-128, 127),
                  no_scratch=True)
    np.testing.assert_array_equal(got, expect)


def test_c_rejects_bad_arguments(ck):
    x, w = np.zeros((1, 4, 4, 3), np.int8), np.zeros((2, 3, 3, 3), np.int8)
    mult, shift = np.full(2, 1 << 30, np.int32), np.zeros(2, np.int32)
    bad_stride = ConvParams(0, 0, 0, 1, 1, 1, 0, 0, Range(-128, 127))
    with pytest.raises(AssertionError):     # status != TE_OK
        ck._call(ck.lib.te_conv_s8, bad_stride, x, w, np.zeros(2, np.int32), mult, shift,
                 (1, 2, 2, 2), extra=(ck._guarded(64).ctypes.data,))
    no_scratch = ConvParams(0, 0, 1, 1, 1, 1, 0, 0, Range(-128, 127))
    with pytest.raises(AssertionError):
        ck._call(ck.lib.te_conv_s8, no_scratch, x, w, np.zeros(2, np.int32), mult, shift,
                 (1, 2, 2, 2), extra=(None,))


def test_extreme_values_agree(ck):
    """All -128 inputs and weights with huge K-free sums: saturating corners of the arithmetic."""
    x = np.full((1, 6, 6, 9), -128, np.int8)
    w = np.full((5, 3, 3, 9), -128, np.int8)
    bias = np.array([2**31 - 2**22, -2**31 + 2**22, 0, 1, -1], np.int32) // 2
    mult = np.array([2**31 - 1, 2**30, 1 << 30, 1518500250, 2**31 - 1], np.int32)
    shift = np.array([-31, -20, -10, 0, 1], np.int32)
    expect = conv_s8(x, w, bias, mult, shift, 128, 127, pad=(1, 1), out_hw=(6, 6))
    got = ck.conv(x, w, bias, mult, shift, 128, 127, (1, 1), (1, 1), (1, 1), (6, 6), (-128, 127))
    np.testing.assert_array_equal(got, expect)
    wd = np.full((1, 3, 3, 9), -128, np.int8)
    expect = dwconv_s8(x, wd, bias[0].repeat(9), mult[0].repeat(9), shift[0].repeat(9), 128, 127,
                       pad=(1, 1), out_hw=(6, 6))
    got = ck.dwconv(x, wd, bias[0].repeat(9), mult[0].repeat(9), shift[0].repeat(9), 128, 127, 1,
                    (1, 1), (1, 1), (1, 1), (6, 6), (-128, 127))
    np.testing.assert_array_equal(got, expect)


# ----------------------------------------------------------------------------- arm cross-compiles

ARM_TARGETS = {
    "cortex-m0plus": (["-mcpu=cortex-m0plus", "-mthumb"], False),
    "cortex-m4": (["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"], True),
    "cortex-m7": (["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"], True),
    "cortex-m33": (["-mcpu=cortex-m33", "-mthumb"], True),
}


def _need_arm_gcc():
    if shutil.which(ARM_GCC) is None:
        pytest.skip(f"{ARM_GCC} not found: install the Arm GNU toolchain "
                    "(apt-get install gcc-arm-none-eabi) to check the firmware builds")


@pytest.mark.parametrize("opt", ["-O3", "-Os"])
@pytest.mark.parametrize("target", list(ARM_TARGETS))
def test_arm_cross_compile_warning_free(tmp_path, target, opt):
    _need_arm_gcc()
    flags, has_dsp = ARM_TARGETS[target]
    probe = tmp_path / "probe.c"
    probe.write_text('#include "te_dsp.h"\n#include "te_kernels_mac.h"\n'
                     f"#if TE_USE_DSP != {int(has_dsp)}\n#error wrong TE_USE_DSP\n#endif\n"
                     "int te_probe;\n")
    objdump = shutil.which("arm-none-eabi-objdump")
    for src in SOURCES + [probe]:
        obj = tmp_path / (src.stem + ".o")
        cmd = [ARM_GCC, *flags, "-std=c99", opt, "-Wall", "-Wextra", "-Werror", "-Wshadow",
               f"-I{INCLUDE}", "-c", str(src), "-o", str(obj)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0 and not proc.stderr, f"{' '.join(cmd)}\n{proc.stderr}"
        if objdump and src.name in ("te_nn_mat_mult_s8.c", "te_dw_span_s8.c"):
            asm = subprocess.run([objdump, "-d", str(obj)], capture_output=True, text=True).stdout
            wanted = "smlad" if src.name == "te_nn_mat_mult_s8.c" else "smlabb"
            assert (wanted in asm) == has_dsp, f"{src.name} for {target}: DSP path selection"


# ----------------------------------------------------------------------------- TFLite Micro itself

def _short_scale(rng, lo_exp: int, hi_exp: int) -> float:
    """A scale with a 6-bit mantissa, so float32 products of two scales are exact and TFLM's
    float/double multiplier arithmetic cannot differ from ours by a rounding."""
    return float(np.float32(int(rng.integers(32, 64)) * 2.0 ** int(rng.integers(lo_exp, hi_exp))))


def _tflm_act(kind: str, scale: float, zp: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 (quantize(f) = zp + round(f / scale), in float)."""
    lo, hi = -128, 127
    if kind in ("RELU", "RELU6"):
        lo = max(lo, zp)
    if kind == "RELU6":
        q = float(np.float32(6.0) / np.float32(scale))
        hi = min(hi, zp + int(np.copysign(np.floor(abs(q) + 0.5), q)))
    return lo, hi


def _tflm_requant(s_in: float, s_w: np.ndarray, s_out: float):
    qs = [quantize_multiplier(s_in * float(s) / s_out) for s in s_w]
    return (np.array([q[0] for q in qs], np.int32), np.array([q[1] for q in qs], np.int32))


@pytest.fixture(scope="module")
def tflm():
    pytest.importorskip("tflite_micro", reason="tflite-micro (TFLite Micro's Python interpreter) "
                        "is not installed: pip install tflite-micro")
    return pytest.importorskip("tflite_builder", reason="tests/tflite_builder.py is missing")


@pytest.mark.parametrize("depthwise", [False, True])
@pytest.mark.parametrize("seed", range(12))
def test_numpy_conv_matches_tflite_micro(tflm, seed, depthwise):
    rng = np.random.default_rng(4000 + seed + 100 * depthwise)
    h, w = (int(v) for v in rng.integers(3, 10, 2))
    c = int(rng.integers(1, 7))
    m = int(rng.integers(1, 3)) if depthwise else 1
    kh, kw = (int(v) for v in rng.integers(1, 4, 2))
    o = c * m if depthwise else int(rng.integers(1, 9))
    sh, sw = (int(v) for v in rng.integers(1, 3, 2))
    dh, dw = (int(v) for v in rng.integers(1, 3, 2))
    padding = str(rng.choice(["SAME", "VALID"]))
    if padding == "VALID" and (h < (kh - 1) * dh + 1 or w < (kw - 1) * dw + 1):
        padding = "SAME"
    (oh, pt), (ow, pl) = (conv_out_size(h, kh, sh, dh, padding), conv_out_size(w, kw, sw, dw, padding))
    act_kind = str(rng.choice(["NONE", "RELU", "RELU6"]))
    s_in, s_out = _short_scale(rng, -9, -5), _short_scale(rng, -8, -3)
    zp_in, zp_out = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    s_w = np.array([_short_scale(rng, -12, -8) for _ in range(o)], np.float32)
    x = rand_s8(rng, (1, h, w, c))
    wt = rand_s8(rng, (1, kh, kw, o) if depthwise else (o, kh, kw, c))
    w_per_out = wt.reshape(-1, o).T if depthwise else wt.reshape(o, -1)
    scale = acc_size(w_per_out, -zp_in)
    bias = rng.integers(-scale, scale + 1, size=o).astype(np.int32)

    T = tflm.Tensor
    options = {"padding": padding, "stride_h": sh, "stride_w": sw, "dilation_h_factor": dh,
               "dilation_w_factor": dw, "fused_activation_function": act_kind}
    if depthwise:
        options["depth_multiplier"] = m
    model = tflm.single_op_model(
        "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D",
        inputs=[T((1, h, w, c), "int8", s_in, zp_in),
                T(wt.shape, "int8", s_w, 0, data=wt, quantized_dimension=3 if depthwise else 0),
                T((o,), "int32", (s_in * s_w.astype(np.float64)).astype(np.float32), 0, data=bias)],
        outputs=[T((1, oh, ow, o), "int8", s_out, zp_out)], options=options)
    ref = tflm.run_tflm(model, [x])[0]

    mult, shift = _tflm_requant(s_in, s_w, s_out)
    lo, hi = _tflm_act(act_kind, s_out, zp_out)
    bias_f = fold_bias(bias, w_per_out, -zp_in)
    geo = dict(stride=(sh, sw), dilation=(dh, dw), pad=(pt, pl), out_hw=(oh, ow), act_min=lo, act_max=hi)
    if depthwise:
        got = dwconv_s8(x, wt, bias_f, mult, shift, -zp_in, zp_out, depth_multiplier=m, **geo)
    else:
        got = conv_s8(x, wt, bias_f, mult, shift, -zp_in, zp_out, **geo)
    assert len(np.unique(ref)) > 1 or ref.size == 1
    np.testing.assert_array_equal(got, ref.reshape(got.shape))


@pytest.mark.parametrize("seed", range(8))
def test_numpy_fc_matches_tflite_micro(tflm, seed):
    rng = np.random.default_rng(5000 + seed)
    n, k, o = int(rng.integers(1, 4)), int(rng.integers(1, 70)), int(rng.integers(1, 20))
    act_kind = str(rng.choice(["NONE", "RELU", "RELU6"]))
    s_in, s_w, s_out = _short_scale(rng, -9, -5), _short_scale(rng, -12, -8), _short_scale(rng, -8, -3)
    zp_in, zp_out = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    x, w = rand_s8(rng, (n, k)), rand_s8(rng, (o, k))
    scale = acc_size(w, -zp_in)
    bias = rng.integers(-scale, scale + 1, size=o).astype(np.int32)
    T = tflm.Tensor
    model = tflm.single_op_model(
        "FULLY_CONNECTED",
        inputs=[T((n, k), "int8", s_in, zp_in), T((o, k), "int8", s_w, 0, data=w),
                T((o,), "int32", float(np.float32(s_in * s_w)), 0, data=bias)],
        outputs=[T((n, o), "int8", s_out, zp_out)],
        options={"fused_activation_function": act_kind})
    ref = tflm.run_tflm(model, [x])[0]
    mult, shift = _tflm_requant(s_in, np.array([s_w]), s_out)
    lo, hi = _tflm_act(act_kind, s_out, zp_out)
    got = fc_s8(x, w, fold_bias(bias, w, -zp_in), mult, shift, zp_out, lo, hi)
    np.testing.assert_array_equal(got, ref.reshape(got.shape))


# ----------------------------------------------------------------------------- real cores under QEMU

_STARTUP = r"""
#include <stdint.h>
extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
int main(void);
static void te_semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
}
void te_puts(const char *s) { te_semihost(0x04, s); }                 /* SYS_WRITE0 */
static void te_exit(void) { te_semihost(0x18, (const void *)0x20026); for (;;) { } }
void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) { *dst++ = *src++; }
    for (dst = &_sbss; dst < &_ebss;) { *dst++ = 0; }
#ifdef __ARM_FP
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;                  /* CPACR: FPU on */
    __asm__ volatile("dsb\n isb");
#endif
    (void)main();
    te_exit();
}
void Default_Handler(void) { te_puts("FAULT\n"); te_exit(); }
__attribute__((section(".isr_vector"), used)) const void *const te_vectors[16] = {
    &_estack, (const void *)Reset_Handler, (const void *)Default_Handler,
    (const void *)Default_Handler, (const void *)Default_Handler, (const void *)Default_Handler,
    (const void *)Default_Handler};
"""

_LINKER = """
MEMORY {{ FLASH (rx) : ORIGIN = {flash:#x}, LENGTH = {flash_len}
         RAM (rwx)  : ORIGIN = {ram:#x}, LENGTH = {ram_len} }}
_estack = ORIGIN(RAM) + LENGTH(RAM);
SECTIONS {{
  .text : {{ KEEP(*(.isr_vector)) *(.text*) *(.rodata*) . = ALIGN(4); }} > FLASH
  .ARM.exidx : {{ *(.ARM.exidx*) }} > FLASH
  _sidata = LOADADDR(.data);
  .data : {{ _sdata = .; *(.data*) . = ALIGN(4); _edata = .; }} > RAM AT > FLASH
  .bss (NOLOAD) : {{ _sbss = .; *(.bss*) *(COMMON) . = ALIGN(4); _ebss = .; }} > RAM
}}
"""

# core -> (QEMU machine, compiler flags, memory map, whether TE_USE_DSP is on)
QEMU_CORES = {
    "cortex-m4": ("mps2-an386", ARM_TARGETS["cortex-m4"][0],
                  dict(flash=0x0, flash_len="4M", ram=0x20000000, ram_len="1M"), True),
    "cortex-m7": ("mps2-an500", ARM_TARGETS["cortex-m7"][0],
                  dict(flash=0x0, flash_len="4M", ram=0x20000000, ram_len="1M"), True),
    "cortex-m33": ("mps2-an505", ARM_TARGETS["cortex-m33"][0],
                   dict(flash=0x10000000, flash_len="4M", ram=0x38000000, ram_len="1M"), True),
    # BBC micro:bit is a Cortex-M0; the M0+ build is the same ARMv6-M code (portable path).
    "cortex-m0plus": ("microbit", ARM_TARGETS["cortex-m0plus"][0],
                      dict(flash=0x0, flash_len="256K", ram=0x20000000, ram_len="16K"), False),
}


def _c_array(ctype: str, name: str, values: np.ndarray, lead: int = 0) -> str:
    """A static const array; `lead` dummy elements first so callers can pass a misaligned pointer."""
    vals = [0] * lead + [int(v) for v in np.asarray(values).reshape(-1)]
    body = ",".join(str(v) if v != -2**31 else "(-2147483647-1)" for v in vals)
    return f"static const {ctype} {name}[{len(vals)}] = {{{body}}};\n"


def _firmware_cases():
    """(C source of the case table + calls, expected outputs) for a spread of shapes."""
    decls, calls, expected = [], [], []

    def add_common(i, x, w, bias, mult, shift):
        decls.append(_c_array("int8_t", f"x{i}", x, lead=1) + _c_array("int8_t", f"w{i}", w)
                     + _c_array("int32_t", f"b{i}", bias) + _c_array("int32_t", f"m{i}", mult)
                     + _c_array("int32_t", f"s{i}", shift))

    def dims(shape):
        return "{%d, %d, %d, %d}" % _nhwc(shape)

    def geo(cs):
        return "%d, %d, %d, %d, %d, %d, {%d, %d}" % (*cs["stride"], *cs["dilation"], *cs["pad"], *cs["act"])

    i = 0
    for seed in range(14):
        cs = conv_case(np.random.default_rng(seed), depthwise=False)
        y = np_conv(cs)
        add_common(i, cs["x"], cs["w"], cs["bias_f"], cs["mult"], cs["shift"])
        calls.append(f"{{ te_conv_params p = {{{cs['input_offset']}, {cs['out_offset']}, {geo(cs)}}};\n"
                     f"  te_pc_quant q = {{m{i}, s{i}}}; te_dims id = {dims(cs['x'].shape)}, "
                     f"fd = {dims(cs['w'].shape)}, od = {dims(y.shape)};\n"
                     f"  report({i}, te_conv_s8(&p, &q, &id, x{i} + 1, &fd, w{i}, b{i}, &od, out, scratch), "
                     f"{y.size}); }}\n")
        expected.append(y)
        i += 1
    for seed in range(12):
        m = 1 if seed < 8 else 2
        cs = conv_case(np.random.default_rng(500 + seed), depthwise=True, m=m)
        y = np_dwconv(cs, m)
        add_common(i, cs["x"], cs["w"], cs["bias_f"], cs["mult"], cs["shift"])
        calls.append(f"{{ te_dwconv_params p = {{{cs['input_offset']}, {cs['out_offset']}, {m}, {geo(cs)}}};\n"
                     f"  te_pc_quant q = {{m{i}, s{i}}}; te_dims id = {dims(cs['x'].shape)}, "
                     f"fd = {dims(cs['w'].shape)}, od = {dims(y.shape)};\n"
                     f"  report({i}, te_dwconv_s8(&p, &q, &id, x{i} + 1, &fd, w{i}, b{i}, &od, out), "
                     f"{y.size}); }}\n")
        expected.append(y)
        i += 1
    rng = np.random.default_rng(99)
    for k in (1, 3, 4, 7, 16, 67, 250):
        n, o = int(rng.integers(1, 4)), int(rng.integers(1, 12))
        x, w = rand_s8(rng, (n, k)), rand_s8(rng, (o, k))
        input_offset, out_offset = -int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
        scale = acc_size(w, input_offset)
        bias = fold_bias(rng.integers(-scale, scale + 1, size=o).astype(np.int32), w, input_offset)
        mult, shift = rand_requant(rng, o, acc_scale=scale)
        act = rand_act(rng, out_offset)
        y = fc_s8(x, w, bias, mult, shift, out_offset, *act)
        add_common(i, x, w, bias, mult, shift)
        calls.append(f"{{ te_fc_params p = {{{out_offset}, {{{act[0]}, {act[1]}}}}};\n"
                     f"  te_pc_quant q = {{m{i}, s{i}}}; te_dims id = {dims(x.shape)}, "
                     f"fd = {dims(w.shape)}, od = {dims(y.shape)};\n"
                     f"  report({i}, te_fc_s8(&p, &q, &id, x{i} + 1, &fd, w{i}, b{i}, &od, out), "
                     f"{y.size}); }}\n")
        expected.append(y)
        i += 1
    out_max = max(y.size for y in expected)
    src = ['#include "te_kernels_mac.h"\n', "void te_puts(const char *s);\n",
           f"static int8_t out[{out_max}];\nstatic int8_t scratch[4096];\n",
           f"static char line[{2 * out_max + 32}];\n",
           "static void report(int id, te_status st, int n)\n{\n"
           "    static const char hex[] = \"0123456789abcdef\";\n"
           "    char *p = line;\n    *p++ = 'R'; *p++ = ' ';\n"
           "    *p++ = (char)('0' + id / 10); *p++ = (char)('0' + id % 10); *p++ = ' ';\n"
           "    *p++ = (char)('0' + (int)st); *p++ = ' ';\n"
           "    for (int i = 0; i < n; ++i) {\n"
           "        const uint8_t v = (uint8_t)out[i];\n"
           "        *p++ = hex[v >> 4]; *p++ = hex[v & 15];\n    }\n"
           "    *p++ = '\\n'; *p = 0;\n    te_puts(line);\n}\n"]
    src += decls
    src += ["int main(void)\n{\n"] + ["    " + c for c in calls] + ['    te_puts("DONE\\n");\n    return 0;\n}\n']
    return "".join(src), expected


@pytest.mark.parametrize("core", list(QEMU_CORES))
def test_kernels_on_cores_under_qemu(tmp_path, core):
    """The real instructions (ACLE SXTB16/SMLAD/SMLABB... on M4/M7/M33, plain ARMv6-M on M0)
    give the numpy results, misaligned input pointers included."""
    _need_arm_gcc()
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm not found (apt-get install qemu-system-arm): "
                    "cannot run the kernels on emulated Cortex-M cores")
    machine, flags, memory, has_dsp = QEMU_CORES[core]
    src, expected = _firmware_cases()
    (tmp_path / "cases.c").write_text(src)
    (tmp_path / "startup.c").write_text(_STARTUP)
    (tmp_path / "link.ld").write_text(_LINKER.format(**memory))
    elf = tmp_path / "test.elf"
    cmd = [ARM_GCC, *flags, "-std=c99", "-O3", "-Wall", "-Wextra", "-Werror", f"-I{INCLUDE}",
           "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-T", str(tmp_path / "link.ld"),
           *map(str, SOURCES), str(tmp_path / "cases.c"), str(tmp_path / "startup.c"), "-o", str(elf)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
    objdump = shutil.which("arm-none-eabi-objdump")
    if objdump:
        asm = subprocess.run([objdump, "-d", str(elf)], capture_output=True, text=True).stdout
        assert ("smlad" in asm) == has_dsp
    run = subprocess.run(["qemu-system-arm", "-M", machine, "-nographic", "-monitor", "none",
                          "-serial", "none", "-semihosting-config", "enable=on,target=native",
                          "-kernel", str(elf)],
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    lines = run.stdout.splitlines() + run.stderr.splitlines()
    assert "DONE" in lines, f"firmware did not finish on {machine}:\n{run.stdout[-2000:]}{run.stderr[-2000:]}"
    got = {}
    for line in lines:
        if line.startswith("R "):
            _, idx, status, data = (line.split(" ") + [""])[:4]
            assert status == "0", f"case {idx} returned status {status}"
            got[int(idx)] = np.frombuffer(bytes.fromhex(data), dtype=np.int8)
    assert sorted(got) == list(range(len(expected)))
    for idx, y in enumerate(expected):
        np.testing.assert_array_equal(got[idx], y.reshape(-1), err_msg=f"case {idx} on {core}")
