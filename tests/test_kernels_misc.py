# SPDX-License-Identifier: Apache-2.0
"""Non-conv int8 kernels: numpy emulator vs host-compiled C, and numpy vs TFLite Micro.

The numpy kernels (ternembed/kernels/{pool,elementwise,activation,misc}.py) are the
reference of the C kernels (firmware/kernels/te_*_s8.c); both must equal TFLM's
reference int8 kernels byte for byte. The TFLM comparisons run when the
`tflite-micro` wheel is installed (tests/tflite_builder.py writes one-op models).
"""
from __future__ import annotations

import ctypes
import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ternembed.errors import UnsupportedOpError
from ternembed.hostc import load_shared
from ternembed.kernels import activation as act
from ternembed.kernels import elementwise as ew
from ternembed.kernels import misc
from ternembed.kernels import pool

sys.path.insert(0, str(Path(__file__).parent))
import tflite_builder as tb  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "firmware" / "include"
KERNELS = ROOT / "firmware" / "kernels"
SOURCES = [KERNELS / f"te_{name}_s8.c" for name in (
    "avgpool", "maxpool", "add", "mul", "softmax", "logistic", "tanh", "relu", "quantize",
    "dequantize", "pad", "concat", "mean", "reshape")]
ACTS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]


# --- ctypes plumbing ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def lib():
    return load_shared(SOURCES, [INCLUDE])


class TeDims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32),
                ("c", ctypes.c_int32)]


def dims(shape) -> TeDims:
    shape = tuple(shape)
    shape = (1,) * (4 - len(shape)) + shape
    return TeDims(*shape)


_STRUCTS: dict[type, type] = {}


def to_c(params):
    """The ctypes twin of a param dataclass, laid out in dataclass field order."""
    cls = type(params)
    if cls not in _STRUCTS:
        fields = []
        for f in dataclasses.fields(params):
            v = getattr(params, f.name)
            if dataclasses.is_dataclass(v):
                fields.append((f.name, type(to_c(v))))
            elif isinstance(v, tuple):
                fields.append((f.name, ctypes.c_int32 * len(v)))
            elif isinstance(v, float):
                fields.append((f.name, ctypes.c_float))
            else:
                fields.append((f.name, ctypes.c_int32))
        _STRUCTS[cls] = type("C" + cls.__name__, (ctypes.Structure,), {"_fields_": fields})
    values = []
    for f in dataclasses.fields(params):
        v = getattr(params, f.name)
        if dataclasses.is_dataclass(v):
            v = to_c(v)
        elif isinstance(v, tuple):
            v = (ctypes.c_int32 * len(v))(*v)
        values.append(v)
    return _STRUCTS[cls](*values)


def ptr(a: np.ndarray):
    return a.ctypes.data_as(ctypes.c_void_p)


def i8(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int8)


def rand_scale(rng) -> float:
    return float(np.float32(10 ** rng.uniform(-3, 0.3)))


def rand_zp(rng) -> int:
    return int(rng.integers(-128, 128))


def c_unary(lib, fn: str, x: np.ndarray, params, out_dtype=np.int8) -> np.ndarray:
    x = np.ascontiguousarray(x)
    out = np.empty(x.shape, dtype=out_dtype)
    p = to_c(params)
    getattr(lib, fn)(ptr(x), ptr(out), ctypes.c_int32(x.size), ctypes.byref(p))
    return out


# --- TFLM plumbing ---------------------------------------------------------------------------


def _have_tflm() -> bool:
    try:
        import tflite_micro  # noqa: F401
    except Exception:
        return False
    return True


needs_tflm = pytest.mark.skipif(not _have_tflm(), reason="tflite-micro wheel not installed")


def tflm(op, inputs, outputs, options, feeds):
    return tb.run_tflm(tb.single_op_model(op, inputs, outputs, options), feeds)[0]


# ================================ numpy vs C =====================================================


@pytest.mark.parametrize("seed", range(6))
def test_pool_numpy_vs_c(lib, seed):
    rng = np.random.default_rng(seed)
    for trial in range(12):
        h, w, c = (int(v) for v in rng.integers(1, 10, 3))
        fh, fw = (int(v) for v in rng.integers(1, 5, 2))
        sh, sw = (int(v) for v in rng.integers(1, 4, 2))
        padding = "SAME" if trial % 2 else "VALID"
        if padding == "VALID" and (fh > h or fw > w):
            padding = "SAME"
        s, z = rand_scale(rng), rand_zp(rng)
        p = pool.prepare_pool2d(h, w, fh, fw, sh, sw, padding, ACTS[trial % 4], s, z, s, z)
        x = i8(rng.integers(-128, 128, (2, h, w, c)))
        for fn_np, fn_c in ((pool.avg_pool2d, lib.te_avgpool_s8), (pool.max_pool2d, lib.te_maxpool_s8)):
            ref = fn_np(x, p)
            out = np.empty_like(ref)
            rc = fn_c(ctypes.byref(dims(x.shape)), ptr(x), ptr(out), ctypes.byref(to_c(p)))
            assert rc == 0
            np.testing.assert_array_equal(out, ref)


def test_pool_explicit_padding_count_rounding(lib):
    """Hand-made params: asymmetric explicit padding, counts 1..9, .5 ties both signs."""
    p = pool.PoolParams(stride_h=1, stride_w=1, filter_h=3, filter_w=3, pad_top=1, pad_left=2,
                        out_h=4, out_w=5, act=misc.Range(-128, 127))
    x = np.zeros((1, 3, 3, 2), np.int8)
    x[0, :, :, 0] = [[1, 2, 0], [0, 0, 0], [0, 0, 0]]
    x[0, :, :, 1] = [[-1, -2, 0], [0, 0, 0], [0, 0, 0]]
    ref = pool.avg_pool2d(x, p)
    # window at out (0, 2): input rows 0..1, cols 0..2 -> count 6, sum 3 -> 0.5 -> 1 / -1
    assert ref[0, 0, 2, 0] == 1 and ref[0, 0, 2, 1] == -1
    # window at out (0, 1): rows 0..1, cols 0..1 -> count 4, sum 3 -> 0.75 -> 1
    assert ref[0, 0, 1, 0] == 1
    out = np.empty_like(ref)
    assert lib.te_avgpool_s8(ctypes.byref(dims(x.shape)), ptr(x), ptr(out),
                             ctypes.byref(to_c(p))) == 0
    np.testing.assert_array_equal(out, ref)
    # pad >= filter leaves windows without taps: rejected in numpy and C
    bad = dataclasses.replace(p, pad_left=3, out_w=6)
    with pytest.raises(UnsupportedOpError):
        pool.avg_pool2d(x, bad)
    assert lib.te_avgpool_s8(ctypes.byref(dims(x.shape)), ptr(x), ptr(out),
                             ctypes.byref(to_c(bad))) != 0


@pytest.mark.parametrize("fill", [-128, 127])
def test_pool_saturated_inputs(lib, fill):
    s, z = 0.05, -3
    p = pool.prepare_pool2d(5, 5, 3, 3, 2, 2, "SAME", "RELU6", s, z, s, z)
    x = np.full((1, 5, 5, 4), fill, np.int8)
    for fn_np, fn_c in ((pool.avg_pool2d, lib.te_avgpool_s8), (pool.max_pool2d, lib.te_maxpool_s8)):
        ref = fn_np(x, p)
        assert (ref == np.clip(fill, p.act.min, p.act.max)).all()
        out = np.empty_like(ref)
        fn_c(ctypes.byref(dims(x.shape)), ptr(x), ptr(out), ctypes.byref(to_c(p)))
        np.testing.assert_array_equal(out, ref)


BCAST_SHAPES = [((2, 3, 4, 5), (2, 3, 4, 5)), ((2, 3, 4, 5), (1, 1, 1, 5)),
                ((2, 3, 4, 5), (1, 1, 1, 1)), ((2, 3, 4, 5), (2, 1, 4, 1)),
                ((1, 3, 1, 5), (2, 1, 4, 1)), ((2, 1, 1, 5), (2, 3, 4, 5))]


@pytest.mark.parametrize("seed", range(4))
def test_add_mul_numpy_vs_c(lib, seed):
    rng = np.random.default_rng(100 + seed)
    for trial, (sh1, sh2) in enumerate(BCAST_SHAPES * 2):
        s1, s2, so = rand_scale(rng), rand_scale(rng), rand_scale(rng)
        z1, z2, zo = rand_zp(rng), rand_zp(rng), rand_zp(rng)
        a = ACTS[trial % 4]
        x1 = i8(rng.integers(-128, 128, sh1))
        x2 = i8(rng.integers(-128, 128, sh2))
        out_shape = np.broadcast_shapes(sh1, sh2)
        for prep, fn_np, name in ((ew.prepare_add, ew.add, "add"), (ew.prepare_mul, ew.mul, "mul")):
            p = prep(s1, z1, s2, z2, so, zo, a)
            ref = fn_np(x1, x2, p)
            assert ref.shape == out_shape
            out = np.empty(out_shape, np.int8)
            cp = ctypes.byref(to_c(p))
            getattr(lib, f"te_{name}_bcast_s8")(ctypes.byref(dims(sh1)), ptr(x1),
                                                ctypes.byref(dims(sh2)), ptr(x2),
                                                ctypes.byref(dims(out_shape)), ptr(out), cp)
            np.testing.assert_array_equal(out, ref)
            if sh1 == sh2:
                out2 = np.empty(out_shape, np.int8)
                getattr(lib, f"te_{name}_s8")(ptr(x1), ptr(x2), ptr(out2),
                                              ctypes.c_int32(x1.size), cp)
                np.testing.assert_array_equal(out2, ref)


def test_add_mul_saturation(lib):
    """Extreme inputs and scales that push the raw result far outside int8."""
    x1 = i8(np.array([-128, 127, -128, 127, 0, -1]))
    x2 = i8(np.array([-128, 127, 127, -128, 0, 1]))
    for prep, fn_np, name in ((ew.prepare_add, ew.add, "add"), (ew.prepare_mul, ew.mul, "mul")):
        for s1, s2, so in ((1.0, 1.0, 0.01), (0.5, 0.001, 0.002), (2e-3, 2e-3, 1e-5)):
            for z1, z2, zo in ((0, 0, 0), (-128, 127, -128), (127, -128, 127)):
                try:
                    p = prep(s1, z1, s2, z2, so, zo, None)
                except UnsupportedOpError:
                    continue
                ref = fn_np(x1, x2, p)
                out = np.empty_like(ref)
                getattr(lib, f"te_{name}_s8")(ptr(x1), ptr(x2), ptr(out), ctypes.c_int32(6),
                                              ctypes.byref(to_c(p)))
                np.testing.assert_array_equal(out, ref)
    p = ew.prepare_add(1.0, 0, 1.0, 0, 0.01, 0)
    np.testing.assert_array_equal(ew.add(x1, x2, p), [-128, 127, -100, -100, 0, 0])


@pytest.mark.parametrize("seed", range(4))
def test_softmax_numpy_vs_c(lib, seed):
    rng = np.random.default_rng(200 + seed)
    for trial in range(10):
        beta = float(np.float32(10 ** rng.uniform(-0.5, 1.5)))
        s = rand_scale(rng)
        p = act.prepare_softmax(beta, s)
        depth = int(rng.integers(1, 70))
        x = i8(rng.integers(-128, 128, (3, 2, depth)))
        ref = act.softmax(x, p)
        out = np.empty_like(ref)
        assert lib.te_softmax_s8(ptr(x), ptr(out), ctypes.c_int32(6), ctypes.c_int32(depth),
                                 ctypes.byref(to_c(p))) == 0
        np.testing.assert_array_equal(out, ref)


def test_softmax_edge_cases(lib):
    def both(x, p):
        x = i8(x)
        ref = act.softmax(x, p)
        out = np.empty_like(ref)
        depth = x.shape[-1]
        lib.te_softmax_s8(ptr(x), ptr(out), ctypes.c_int32(x.size // depth), ctypes.c_int32(depth),
                          ctypes.byref(to_c(p)))
        np.testing.assert_array_equal(out, ref)
        return ref

    p = act.prepare_softmax(1.0, 0.1)
    # equal inputs: 1/depth each, the same for any constant row
    for v in (-128, 0, 127):
        r = both(np.full((1, 4), v), p)
        assert (r == r[0, 0]).all() and r[0, 0] == -128 + 64
    assert (both(np.full((1, 1), 5), p) == 127).all()  # a single class saturates at ~1.0
    # huge beta: the multiplier caps at 2^31 - 1, diff_min becomes 0: one-hot on the max
    big = act.prepare_softmax(1e9, 0.5)
    assert big.diff_min == 0 and big.input_multiplier == 2**31 - 1
    r = both(np.array([[3, 7, -128, 6]]), big)
    np.testing.assert_array_equal(r, [[-128, 127, -128, -128]])
    # ties at the max under a huge beta share the mass
    r = both(np.array([[7, 7, -128, 6]]), big)
    assert r[0, 0] == r[0, 1] == 0
    # tiny beta * scale: rejected like TFLM's QuantizeMultiplierGreaterThanOne check
    with pytest.raises(UnsupportedOpError):
        act.prepare_softmax(1e-9, 1e-3)
    with pytest.raises(UnsupportedOpError):
        act.prepare_softmax(1.0, 0.1, output_zero_point=0)
    # a long row of equal values overflows TFLM's reciprocal range: both refuse
    long_row = np.zeros((1, 600), np.int8)
    with pytest.raises(UnsupportedOpError):
        act.softmax(long_row, p)
    out = np.empty_like(long_row)
    assert lib.te_softmax_s8(ptr(long_row), ptr(out), ctypes.c_int32(1), ctypes.c_int32(600),
                             ctypes.byref(to_c(p))) != 0


@pytest.mark.parametrize("name", ["logistic", "tanh"])
def test_logistic_tanh_numpy_vs_c(lib, name):
    rng = np.random.default_rng(300)
    prep = getattr(act, f"prepare_{name}")
    fn = getattr(act, name)
    x = i8(np.arange(-128, 128))
    for _ in range(60):
        s = float(np.float32(10 ** rng.uniform(-3.5, 1)))
        p = prep(s, rand_zp(rng))
        np.testing.assert_array_equal(c_unary(lib, f"te_{name}_s8", x, p), fn(x, p))
    # monotone and covering the range for a typical scale
    p = prep(0.05, 0)
    y = fn(x, p).astype(int)
    assert (np.diff(y) >= 0).all()
    assert y[0] == -128 and y[-1] == 127


def test_relu_numpy_vs_c(lib):
    rng = np.random.default_rng(400)
    x = i8(np.arange(-128, 128))
    for _ in range(60):
        s1, s2, z1, z2 = rand_scale(rng), rand_scale(rng), rand_zp(rng), rand_zp(rng)
        p = act.prepare_relu(s1, z1, s2, z2)
        np.testing.assert_array_equal(c_unary(lib, "te_relu_s8", x, p), act.relu(x, p))
        p6 = act.prepare_relu6(s1, z1)
        np.testing.assert_array_equal(c_unary(lib, "te_relu6_s8", x, p6), act.relu6(x, p6))
    p6 = act.prepare_relu6(0.1, -10)
    assert (p6.lower, p6.upper) == (-10, 50)


def test_quantize_dequantize_numpy_vs_c(lib):
    rng = np.random.default_rng(500)
    for _ in range(40):
        s, z = rand_scale(rng), rand_zp(rng)
        xf = (rng.standard_normal(300) * s * 80).astype(np.float32)
        # exact ties, near-ties, huge values, NaN and infinities
        k = np.arange(-20, 20, dtype=np.float32)
        xf[:40] = (k + np.float32(0.5)) * np.float32(s)
        xf[40:80] = np.nextafter((k + np.float32(0.5)) * np.float32(s), np.float32(0))
        xf[80:84] = [1e30, -1e30, np.inf, -np.inf]
        xf[84] = np.nan
        p = misc.prepare_quantize(s, z)
        np.testing.assert_array_equal(c_unary(lib, "te_quantize_f32_s8", xf, p),
                                      misc.quantize(xf, p))
        xi = i8(np.arange(-128, 128))
        pd = misc.prepare_dequantize(s, z)
        ref = misc.dequantize(xi, pd)
        got = c_unary(lib, "te_dequantize_s8_f32", xi, pd, np.float32)
        np.testing.assert_array_equal(got.view(np.int32), ref.view(np.int32))
        pr = misc.prepare_requantize(s, z, rand_scale(rng), rand_zp(rng))
        np.testing.assert_array_equal(c_unary(lib, "te_requantize_s8", xi, pr),
                                      misc.requantize(xi, pr))
    p = misc.prepare_quantize(0.5, 3)
    q = misc.quantize(np.array([0.25, -0.25, 0.75, np.nan, 1e9, -1e9], np.float32), p)
    np.testing.assert_array_equal(q, [4, 2, 5, 3, 127, -128])


def test_pad_concat_reshape_numpy_vs_c(lib):
    rng = np.random.default_rng(600)
    for trial in range(20):
        shape = tuple(int(v) for v in rng.integers(1, 5, 4))
        pads = [(int(a), int(b)) for a, b in rng.integers(0, 3, (4, 2))]
        x = i8(rng.integers(-128, 128, shape))
        z = rand_zp(rng)
        p = misc.prepare_pad(pads, z, None if trial % 2 else rand_zp(rng))
        ref = misc.pad(x, p)
        out = np.empty_like(ref)
        lib.te_pad_s8(ctypes.byref(dims(shape)), ptr(x), ptr(out), ctypes.byref(to_c(p)))
        np.testing.assert_array_equal(out, ref)
        # concatenation along every axis
        axis = trial % 4
        parts = []
        for _ in range(int(rng.integers(1, 4))):
            sh = list(shape)
            sh[axis] = int(rng.integers(1, 4))
            parts.append(i8(rng.integers(-128, 128, sh)))
        cp = misc.prepare_concat(axis - 4 if trial % 2 else axis, 4, [(0.1, 1)] * len(parts),
                                 (0.1, 1))
        ref = misc.concat(parts, cp)
        out = np.empty_like(ref)
        arr = (ctypes.c_void_p * len(parts))(*[p_.ctypes.data for p_ in parts])
        sizes = (ctypes.c_int32 * len(parts))(*[p_.shape[axis] for p_ in parts])
        outer = int(np.prod(shape[:axis]))
        inner = int(np.prod(shape[axis + 1:]))
        lib.te_concat_s8(arr, sizes, ctypes.c_int32(len(parts)), ctypes.c_int32(outer),
                         ctypes.c_int32(inner), ptr(out))
        np.testing.assert_array_equal(out, ref)
    with pytest.raises(UnsupportedOpError):
        misc.prepare_concat(0, 4, [(0.1, 1), (0.2, 1)], (0.1, 1))
    with pytest.raises(UnsupportedOpError):
        misc.prepare_pad([(0, 0)], 0, 5, constant_zero_point=1, output_scale=0.1)
    x = i8(rng.integers(-128, 128, (2, 1, 1, 6)))
    out = np.zeros(12, np.int8)
    lib.te_copy_s8(ptr(x), ptr(out), ctypes.c_int32(12))
    np.testing.assert_array_equal(out, misc.reshape(x, (12,)))


@pytest.mark.parametrize("legacy", [False, True])
def test_mean_numpy_vs_c(lib, legacy):
    rng = np.random.default_rng(700)
    for trial in range(30):
        n, h, w, c = (int(v) for v in rng.integers(1, 9, 4))
        s, z = rand_scale(rng), rand_zp(rng)
        so, zo = (s, z) if trial % 3 == 0 else (rand_scale(rng), rand_zp(rng))
        axes = [[1, 2], [-3, -2], [2], [3], [1, 2, 3]][trial % 5]
        x = i8(rng.integers(-128, 128, (n, h, w, c)))
        if trial == 0:
            x[:] = -128
        if trial == 3:
            x[:] = 127
        p = pool.prepare_mean(x.shape, axes, s, z, so, zo, legacy_equal_quant_divide=legacy)
        for keep in (True, False):
            ref = pool.mean(x, axes, p, keep)
            resolved = sorted({a % 4 for a in axes})
            outer = int(np.prod(x.shape[:resolved[0]]))
            inner = int(np.prod(x.shape[resolved[-1] + 1:]))
            out = np.empty(ref.size, np.int8)
            lib.te_mean_s8(ptr(x), ptr(out), ctypes.c_int32(outer), ctypes.c_int32(inner),
                           ctypes.byref(to_c(p)))
            np.testing.assert_array_equal(out, ref.ravel())
    with pytest.raises(UnsupportedOpError):
        pool.prepare_mean((1, 4, 4, 3), [1, 3], 0.1, 0, 0.1, 0)


def test_c_initializers_compile(tmp_path):
    """misc.c_initializer output matches the C structs' field names and types."""
    params = {
        "te_pool_params": pool.prepare_pool2d(8, 8, 3, 3, 2, 2, "SAME", "RELU", 0.1, 2, 0.1, 2),
        "te_add_params": ew.prepare_add(0.1, 1, 0.2, -3, 0.3, 4, "RELU6"),
        "te_mul_params": ew.prepare_mul(0.1, 1, 0.2, -3, 0.3, 4),
        "te_softmax_params": act.prepare_softmax(1.0, 0.1),
        "te_logistic_params": act.prepare_logistic(0.1, 3),
        "te_tanh_params": act.prepare_tanh(0.1, 3),
        "te_relu_params": act.prepare_relu(0.1, 3, 0.05, -128),
        "te_relu6_params": act.prepare_relu6(0.1, 3),
        "te_quantize_params": misc.prepare_quantize(0.1, 3),
        "te_dequantize_params": misc.prepare_dequantize(0.1, 3),
        "te_requantize_params": misc.prepare_requantize(0.1, 3, 0.2, -1),
        "te_pad_params": misc.prepare_pad([(0, 0), (1, 1), (2, 0), (0, 0)], 7),
        "te_mean_params": pool.prepare_mean((1, 4, 4, 8), [1, 2], 0.1, 3, 0.05, -2),
    }
    src = ['#include <stdint.h>', '#include "te_kernels_misc.h"']
    for i, (ctype, p) in enumerate(params.items()):
        src.append(f"const {ctype} p{i} = {misc.c_initializer(p)};")
    path = tmp_path / "init.c"
    path.write_text("\n".join(src) + "\n")
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no host C compiler")
    proc = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror",
                           "-Wmissing-field-initializers", f"-I{INCLUDE}", "-c", str(path),
                           "-o", str(tmp_path / "init.o")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# ================================ numpy vs TFLite Micro =========================================


@needs_tflm
def test_tflm_softmax():
    rng = np.random.default_rng(1000)
    for trial in range(40):
        s, z = rand_scale(rng), rand_zp(rng)
        beta = float(np.float32(10 ** rng.uniform(-0.5, 1.5))) if trial % 8 else 1e6
        depth = int(rng.integers(1, 40))
        shape = (2, 3, depth)
        x = i8(rng.integers(-128, 128, shape))
        if trial % 5 == 0:
            x[0, 0] = x[0, 0, 0]  # an all-equal row
        p = act.prepare_softmax(beta, s)
        ref = tflm("SOFTMAX", [tb.Tensor(shape, "int8", s, z)],
                   [tb.Tensor(shape, "int8", 1 / 256, -128)], {"beta": beta}, [x])
        np.testing.assert_array_equal(act.softmax(x, p), ref)


@needs_tflm
@pytest.mark.parametrize("op", ["LOGISTIC", "TANH"])
def test_tflm_logistic_tanh(op):
    rng = np.random.default_rng(1100)
    fn, prep = (act.logistic, act.prepare_logistic) if op == "LOGISTIC" else (act.tanh, act.prepare_tanh)
    out_q = (1 / 256, -128) if op == "LOGISTIC" else (1 / 128, 0)
    x = i8(np.arange(-128, 128).reshape(2, 128))
    for _ in range(30):
        s, z = float(np.float32(10 ** rng.uniform(-3.5, 1))), rand_zp(rng)
        ref = tflm(op, [tb.Tensor(x.shape, "int8", s, z)], [tb.Tensor(x.shape, "int8", *out_q)],
                   None, [x])
        np.testing.assert_array_equal(fn(x, prep(s, z)), ref)


@needs_tflm
@pytest.mark.parametrize("op", ["ADD", "MUL"])
def test_tflm_add_mul(op):
    rng = np.random.default_rng(1200 if op == "ADD" else 1300)
    prep, fn = (ew.prepare_add, ew.add) if op == "ADD" else (ew.prepare_mul, ew.mul)
    for trial, (sh1, sh2) in enumerate(BCAST_SHAPES * 4 + [((3, 7), (7,)), ((5,), (1,))]):
        s1, s2, so = rand_scale(rng), rand_scale(rng), rand_scale(rng)
        z1, z2, zo = rand_zp(rng), rand_zp(rng), rand_zp(rng)
        a = ACTS[trial % 4]
        x1 = i8(rng.integers(-128, 128, sh1))
        x2 = i8(rng.integers(-128, 128, sh2))
        if trial % 7 == 0:
            x1[...] = -128
            x2[...] = 127
        out_shape = np.broadcast_shapes(sh1, sh2)
        ref = tflm(op, [tb.Tensor(sh1, "int8", s1, z1), tb.Tensor(sh2, "int8", s2, z2)],
                   [tb.Tensor(out_shape, "int8", so, zo)], {"fused_activation_function": a},
                   [x1, x2])
        np.testing.assert_array_equal(fn(x1, x2, prep(s1, z1, s2, z2, so, zo, a)), ref)


@needs_tflm
@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_tflm_pool(op):
    rng = np.random.default_rng(1400 if op == "MAX_POOL_2D" else 1500)
    fn = pool.avg_pool2d if op == "AVERAGE_POOL_2D" else pool.max_pool2d
    for trial in range(40):
        h, w = (int(v) for v in rng.integers(1, 10, 2))
        fh, fw = (int(v) for v in rng.integers(1, 6, 2))
        sh, sw = (int(v) for v in rng.integers(1, 4, 2))
        padding = "SAME" if trial % 2 else "VALID"
        if padding == "VALID" and (fh > h or fw > w):
            padding = "SAME"
        s, z = rand_scale(rng), rand_zp(rng)
        a = ACTS[trial % 4]
        try:
            p = pool.prepare_pool2d(h, w, fh, fw, sh, sw, padding, a, s, z, s, z)
        except UnsupportedOpError:
            continue
        x = i8(rng.integers(-128, 128, (2, h, w, 3)))
        if trial % 9 == 0:
            x[...] = -128 if trial % 2 else 127
        ref = tflm(op, [tb.Tensor(x.shape, "int8", s, z)],
                   [tb.Tensor((2, p.out_h, p.out_w, 3), "int8", s, z)],
                   {"padding": padding, "stride_w": sw, "stride_h": sh, "filter_width": fw,
                    "filter_height": fh, "fused_activation_function": a}, [x])
        np.testing.assert_array_equal(fn(x, p), ref)


@needs_tflm
def test_tflm_avg_pool_count_rounding_ties():
    """SAME padding gives windows of 1, 2, 3, 4, 6 and 9 valid taps; the sums are chosen to
    land on .5 (both signs), so the rounding of sum/count is checked where it matters."""
    h = w = 4
    for f, stride in ((2, 1), (3, 1), (3, 2), (2, 2)):
        p = pool.prepare_pool2d(h, w, f, f, stride, stride, "SAME", None, 0.5, 0, 0.5, 0)
        rng = np.random.default_rng(f * 10 + stride)
        for _ in range(6):
            x = i8(rng.choice([-3, -1, 0, 1, 3], (1, h, w, 2)))
            ref = tflm("AVERAGE_POOL_2D", [tb.Tensor(x.shape, "int8", 0.5, 0)],
                       [tb.Tensor((1, p.out_h, p.out_w, 2), "int8", 0.5, 0)],
                       {"padding": "SAME", "stride_w": stride, "stride_h": stride,
                        "filter_width": f, "filter_height": f}, [x])
            np.testing.assert_array_equal(pool.avg_pool2d(x, p), ref)


@needs_tflm
def test_tflm_quantize_exact_ties():
    """Power-of-two scales make x / scale land exactly on .5: roundf goes away from zero."""
    for s, z in ((0.125, 0), (0.5, -7), (2.0 ** -10, 100)):
        xf = ((np.arange(-140, 140, dtype=np.float32) + np.float32(0.5)) * np.float32(s))
        xf = xf.reshape(2, 140)
        ref = tflm("QUANTIZE", [tb.Tensor(xf.shape, "float32")], [tb.Tensor(xf.shape, "int8", s, z)],
                   None, [xf])
        np.testing.assert_array_equal(misc.quantize(xf, misc.prepare_quantize(s, z)), ref)


@needs_tflm
def test_tflm_quantize_dequantize_requantize():
    rng = np.random.default_rng(1600)
    for _ in range(25):
        s, z = rand_scale(rng), rand_zp(rng)
        xf = (rng.standard_normal((2, 120)) * s * 80).astype(np.float32)
        k = np.arange(-30, 30, dtype=np.float32)
        xf[0, :60] = (k + np.float32(0.5)) * np.float32(s)  # ties (after float32 rounding)
        ref = tflm("QUANTIZE", [tb.Tensor(xf.shape, "float32")],
                   [tb.Tensor(xf.shape, "int8", s, z)], None, [xf])
        np.testing.assert_array_equal(misc.quantize(xf, misc.prepare_quantize(s, z)), ref)

        xi = i8(np.arange(-128, 128).reshape(2, 128))
        ref = tflm("DEQUANTIZE", [tb.Tensor(xi.shape, "int8", s, z)],
                   [tb.Tensor(xi.shape, "float32")], None, [xi])
        got = misc.dequantize(xi, misc.prepare_dequantize(s, z))
        np.testing.assert_array_equal(got.view(np.int32), ref.view(np.int32))

        s2, z2 = rand_scale(rng), rand_zp(rng)
        ref = tflm("QUANTIZE", [tb.Tensor(xi.shape, "int8", s, z)],
                   [tb.Tensor(xi.shape, "int8", s2, z2)], None, [xi])
        np.testing.assert_array_equal(misc.requantize(xi, misc.prepare_requantize(s, z, s2, z2)),
                                      ref)


@needs_tflm
def test_tflm_relu_relu6():
    rng = np.random.default_rng(1700)
    xi = i8(np.arange(-128, 128).reshape(2, 128))
    for _ in range(25):
        s, z, s2, z2 = rand_scale(rng), rand_zp(rng), rand_scale(rng), rand_zp(rng)
        ref = tflm("RELU", [tb.Tensor(xi.shape, "int8", s, z)],
                   [tb.Tensor(xi.shape, "int8", s2, z2)], None, [xi])
        np.testing.assert_array_equal(act.relu(xi, act.prepare_relu(s, z, s2, z2)), ref)
        ref = tflm("RELU6", [tb.Tensor(xi.shape, "int8", s, z)],
                   [tb.Tensor(xi.shape, "int8", s, z)], None, [xi])
        np.testing.assert_array_equal(act.relu6(xi, act.prepare_relu6(s, z)), ref)


@needs_tflm
def test_tflm_mean():
    rng = np.random.default_rng(1800)
    for trial in range(60):
        n, h, w, c = (int(v) for v in rng.integers(1, 9, 4))
        s, z = rand_scale(rng), rand_zp(rng)
        so, zo = (s, z) if trial % 2 == 0 else (rand_scale(rng), rand_zp(rng))
        keep = trial % 4 < 2
        axes = [[1, 2], [2, 1], [-3, -2], [3], [2], [1]][trial % 6]
        x = i8(rng.integers(-128, 128, (n, h, w, c)))
        if trial % 7 == 0:
            x[...] = -128 if trial % 2 else 127
        resolved = {a % 4 for a in axes}
        out_shape = tuple(1 if i in resolved else d for i, d in enumerate(x.shape) if keep or i not in resolved)
        ref = tflm("MEAN", [tb.Tensor(x.shape, "int8", s, z),
                            tb.Tensor((len(axes),), "int32", data=np.array(axes, np.int32))],
                   [tb.Tensor(out_shape, "int8", so, zo)], {"keep_dims": keep}, [x])
        p = pool.prepare_mean(x.shape, axes, s, z, so, zo)
        np.testing.assert_array_equal(pool.mean(x, axes, p, keep), ref)


@needs_tflm
def test_tflm_pad_padv2():
    rng = np.random.default_rng(1900)
    for trial in range(20):
        shape = tuple(int(v) for v in rng.integers(1, 5, 4))
        pads = [(int(a), int(b)) for a, b in rng.integers(0, 3, (4, 2))]
        s, z = rand_scale(rng), rand_zp(rng)
        x = i8(rng.integers(-128, 128, shape))
        out_shape = tuple(d + a + b for d, (a, b) in zip(shape, pads))
        inputs = [tb.Tensor(shape, "int8", s, z),
                  tb.Tensor((4, 2), "int32", data=np.array(pads, np.int32))]
        if trial % 2:
            cv = rand_zp(rng)
            inputs.append(tb.Tensor((1,), "int8", s, z, data=np.array([cv], np.int8)))
            p = misc.prepare_pad(pads, z, cv, s, z, s)
            op = "PADV2"
        else:
            p = misc.prepare_pad(pads, z)
            op = "PAD"
        ref = tflm(op, inputs, [tb.Tensor(out_shape, "int8", s, z)], None, [x])
        np.testing.assert_array_equal(misc.pad(x, p), ref)


@needs_tflm
def test_tflm_concat_reshape():
    rng = np.random.default_rng(2000)
    for axis in range(4):
        shape = [2, 3, 4, 5]
        parts = []
        for k in range(3):
            sh = list(shape)
            sh[axis] = k + 1
            parts.append(i8(rng.integers(-128, 128, sh)))
        out_shape = list(shape)
        out_shape[axis] = 6
        ref = tflm("CONCATENATION", [tb.Tensor(p_.shape, "int8", 0.1, 2) for p_ in parts],
                   [tb.Tensor(out_shape, "int8", 0.1, 2)], {"axis": axis}, parts)
        cp = misc.prepare_concat(axis, 4, [(0.1, 2)] * 3, (0.1, 2))
        np.testing.assert_array_equal(misc.concat(parts, cp), ref)
    x = i8(rng.integers(-128, 128, (2, 3, 4)))
    ref = tflm("RESHAPE", [tb.Tensor(x.shape, "int8", 0.1, 2),
                           tb.Tensor((2,), "int32", data=np.array([2, 12], np.int32))],
               [tb.Tensor((2, 12), "int8", 0.1, 2)], {"new_shape": [2, 12]}, [x])
    np.testing.assert_array_equal(misc.reshape(x, (2, 12)), ref)


def test_builder_constants_match_schema():
    """tflite_builder's hand-copied schema numbers agree with the generated `tflite` package."""
    tflite = pytest.importorskip("tflite")
    for name, code in tb.BUILTIN_OPERATOR.items():
        assert getattr(tflite.BuiltinOperator, name) == code, name
    for name, code in tb.TENSOR_TYPE.items():
        assert getattr(tflite.TensorType, name.upper()) == code, name
    union = {"CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
             "AVERAGE_POOL_2D": "Pool2DOptions", "FULLY_CONNECTED": "FullyConnectedOptions",
             "SOFTMAX": "SoftmaxOptions", "CONCATENATION": "ConcatenationOptions",
             "ADD": "AddOptions", "RESHAPE": "ReshapeOptions", "MUL": "MulOptions",
             "PAD": "PadOptions", "MEAN": "ReducerOptions", "SUB": "SubOptions",
             "SQUEEZE": "SqueezeOptions", "PADV2": "PadV2Options"}
    for op, opt in union.items():
        assert tb.OPTION_TABLES[op][0] == getattr(tflite.BuiltinOptions, opt), op
    # round trip: the generated reader sees what the builder wrote
    model = tb.single_op_model(
        "AVERAGE_POOL_2D", [tb.Tensor((1, 4, 4, 2), "int8", 0.5, -3)],
        [tb.Tensor((1, 2, 2, 2), "int8", 0.5, -3)],
        {"padding": "VALID", "stride_w": 2, "stride_h": 2, "filter_width": 2,
         "filter_height": 2, "fused_activation_function": "RELU6"})
    m = tflite.Model.GetRootAsModel(model, 0)
    sg = m.Subgraphs(0)
    t = sg.Tensors(0)
    assert t.ShapeAsNumpy().tolist() == [1, 4, 4, 2] and t.Type() == tflite.TensorType.INT8
    assert t.Quantization().Scale(0) == 0.5 and t.Quantization().ZeroPoint(0) == -3
    op = sg.Operators(0)
    assert m.OperatorCodes(op.OpcodeIndex()).BuiltinCode() == tflite.BuiltinOperator.AVERAGE_POOL_2D
    opts = tflite.Pool2DOptions()
    opts.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
    assert (opts.Padding(), opts.StrideW(), opts.FilterHeight(), opts.FusedActivationFunction()) == (
        tflite.Padding.VALID, 2, 2, tflite.ActivationFunctionType.RELU6)


# ================================ real cores under QEMU ==========================================


def _c_list(values, fmt=str) -> str:
    return ", ".join(fmt(v) for v in np.asarray(values).reshape(-1))


def _c_float(v) -> str:
    v = float(np.float32(v))
    if np.isnan(v):
        return "__builtin_nanf(\"\")"
    if np.isinf(v):
        return "__builtin_inff()" if v > 0 else "(-__builtin_inff())"
    return f"{v.hex()}f"


def _firmware_cases():
    """C source calling every kernel on data made here, and the numpy outputs as bytes."""
    rng = np.random.default_rng(42)
    decls, calls, expected = [], [], []

    def case(ctype, params, call, ref, inputs):
        i = len(expected)
        for name, arr in inputs.items():
            if arr.dtype == np.float32:
                decls.append(f"static const float {name}{i}[{arr.size}] = {{{_c_list(arr, _c_float)}}};")
            else:
                decls.append(f"static const int8_t {name}{i}[{arr.size}] = {{{_c_list(arr)}}};")
        if params is not None:
            decls.append(f"static const {ctype} p{i} = {misc.c_initializer(params)};")
        calls.append("{ " + call.replace("{i}", str(i)) + f" report({i}, st, {ref.nbytes}); }}")
        expected.append(np.ascontiguousarray(ref).tobytes())

    def dims_c(shape):
        shape = (1,) * (4 - len(shape)) + tuple(shape)
        return "{%d, %d, %d, %d}" % shape

    for k in range(3):  # pooling, including explicit asymmetric padding
        h, w, c = 5 + k, 6, 3
        p = pool.prepare_pool2d(h, w, 3, 2 + k, 2, 1 + k, ["SAME", "VALID", "SAME"][k], ACTS[k],
                                0.1, -5, 0.1, -5)
        x = i8(rng.integers(-128, 128, (2, h, w, c)))
        for fn, cfn in ((pool.avg_pool2d, "te_avgpool_s8"), (pool.max_pool2d, "te_maxpool_s8")):
            case("te_pool_params", p,
                 f"te_dims d = {dims_c(x.shape)}; te_status st = {cfn}(&d, x{{i}}, ob.b, &p{{i}});",
                 fn(x, p), {"x": x})
    for sh1, sh2 in BCAST_SHAPES[:4]:
        x1, x2 = i8(rng.integers(-128, 128, sh1)), i8(rng.integers(-128, 128, sh2))
        out_shape = np.broadcast_shapes(sh1, sh2)
        for prep, fn, name in ((ew.prepare_add, ew.add, "add"), (ew.prepare_mul, ew.mul, "mul")):
            p = prep(0.02, 3, 0.05, -7, 0.04, 1, "RELU6")
            if sh1 == sh2:
                call = f"te_{name}_s8(x{{i}}, y{{i}}, ob.b, {x1.size}, &p{{i}}); te_status st = TE_OK;"
            else:
                call = (f"te_dims d1 = {dims_c(sh1)}, d2 = {dims_c(sh2)}, d3 = {dims_c(out_shape)}; "
                        f"te_{name}_bcast_s8(&d1, x{{i}}, &d2, y{{i}}, &d3, ob.b, &p{{i}}); "
                        "te_status st = TE_OK;")
            case(f"te_{name}_params", p, call, fn(x1, x2, p), {"x": x1, "y": x2})
    for beta, s, depth in ((1.0, 0.1, 10), (2.5, 0.03, 37), (1e6, 0.5, 5)):
        p = act.prepare_softmax(beta, s)
        x = i8(rng.integers(-128, 128, (3, depth)))
        x[0] = 17
        case("te_softmax_params", p,
             f"te_status st = te_softmax_s8(x{{i}}, ob.b, 3, {depth}, &p{{i}});",
             act.softmax(x, p), {"x": x})
    full = i8(np.arange(-128, 128))
    for s, z in ((0.05, 0), (0.003, -20), (0.4, 100)):
        for prep, fn, ctype in ((act.prepare_logistic, act.logistic, "te_logistic_params"),
                                (act.prepare_tanh, act.tanh, "te_tanh_params")):
            p = prep(s, z)
            cfn = "te_logistic_s8" if fn is act.logistic else "te_tanh_s8"
            case(ctype, p, f"{cfn}(x{{i}}, ob.b, 256, &p{{i}}); te_status st = TE_OK;",
                 fn(full, p), {"x": full})
        p = act.prepare_relu(s, z, s * 0.7, -128)
        case("te_relu_params", p, "te_relu_s8(x{i}, ob.b, 256, &p{i}); te_status st = TE_OK;",
             act.relu(full, p), {"x": full})
        p = act.prepare_relu6(s, z)
        case("te_relu6_params", p, "te_relu6_s8(x{i}, ob.b, 256, &p{i}); te_status st = TE_OK;",
             act.relu6(full, p), {"x": full})
        p = misc.prepare_dequantize(s, z)
        case("te_dequantize_params", p,
             "te_dequantize_s8_f32(x{i}, ob.f, 256, &p{i}); te_status st = TE_OK;",
             misc.dequantize(full, p), {"x": full})
        p = misc.prepare_requantize(s, z, 0.01, 5)
        case("te_requantize_params", p,
             "te_requantize_s8(x{i}, ob.b, 256, &p{i}); te_status st = TE_OK;",
             misc.requantize(full, p), {"x": full})
        xf = (rng.standard_normal(200) * s * 60).astype(np.float32)
        k = np.arange(-30, 30, dtype=np.float32)
        xf[:60] = (k + np.float32(0.5)) * np.float32(s)
        xf[60:120] = np.nextafter(xf[:60], np.float32(0))
        xf[120:124] = [1e30, -1e30, np.inf, -np.inf]
        xf[124] = np.nan
        p = misc.prepare_quantize(s, z)
        case("te_quantize_params", p,
             "te_quantize_f32_s8(x{i}, ob.b, 200, &p{i}); te_status st = TE_OK;",
             misc.quantize(xf, p), {"x": xf})
    x = i8(rng.integers(-128, 128, (2, 3, 4, 5)))
    p = misc.prepare_pad([(0, 1), (1, 2), (2, 0), (0, 3)], -9)
    case("te_pad_params", p,
         f"te_dims d = {dims_c(x.shape)}; te_pad_s8(&d, x{{i}}, ob.b, &p{{i}}); te_status st = TE_OK;",
         misc.pad(x, p), {"x": x})
    for legacy in (False, True):
        p = pool.prepare_mean(x.shape, [1, 2], 0.1, 3, 0.1 if legacy else 0.07, 3 if legacy else -4,
                              legacy_equal_quant_divide=legacy)
        case("te_mean_params", p, "te_mean_s8(x{i}, ob.b, 2, 5, &p{i}); te_status st = TE_OK;",
             pool.mean(x, [1, 2], p, False), {"x": x})
    y = i8(rng.integers(-128, 128, (2, 3, 2, 5)))
    case(None, None,
         "const int8_t *in[2] = {x{i}, y{i}}; const int32_t sz[2] = {4, 2}; "
         "te_concat_s8(in, sz, 2, 6, 5, ob.b); te_status st = TE_OK;",
         np.concatenate([x, y], axis=2), {"x": x, "y": y})

    out_max = max(len(e) for e in expected)
    src = ['#include <stdint.h>', '#include "te_kernels_misc.h"', "void te_puts(const char *s);",
           f"static union {{ int8_t b[{out_max}]; float f[{(out_max + 3) // 4}]; }} ob;",
           f"static char line[{2 * out_max + 32}];",
           "static void report(int id, te_status st, int n)\n{\n"
           "    static const char hex[] = \"0123456789abcdef\";\n"
           "    const uint8_t *o = (const uint8_t *)ob.b;\n"
           "    char *p = line;\n    int i;\n    *p++ = 'R'; *p++ = ' ';\n"
           "    *p++ = (char)('0' + id / 10); *p++ = (char)('0' + id % 10); *p++ = ' ';\n"
           "    *p++ = (char)('0' + (int)st); *p++ = ' ';\n"
           "    for (i = 0; i < n; ++i) { *p++ = hex[o[i] >> 4]; *p++ = hex[o[i] & 15]; }\n"
           "    *p++ = '\\n'; *p = 0;\n    te_puts(line);\n}"]
    src += decls
    src += ["int main(void)\n{"] + ["    " + c for c in calls] + ['    te_puts("DONE\\n");',
                                                                 "    return 0;\n}"]
    return "\n".join(src) + "\n", expected


def _qemu_harness():
    try:
        import test_kernels_mac as mac_tests  # startup code, linker script, core table
    except Exception as exc:  # pragma: no cover - the harness lives in the MAC kernel tests
        pytest.skip(f"QEMU harness unavailable: {exc}")
    return mac_tests


@pytest.mark.parametrize("core", ["cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33"])
def test_misc_kernels_on_cores_under_qemu(tmp_path, core):
    """The C kernels on emulated Cortex-M cores (soft float on M0+, FPv4/FPv5 on M4/M7)
    give the numpy bytes; params are emitted with misc.c_initializer as the exporter does."""
    h = _qemu_harness()
    if shutil.which(h.ARM_GCC) is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc and qemu-system-arm are needed "
                    "(apt-get install gcc-arm-none-eabi qemu-system-arm)")
    if core not in h.QEMU_CORES:
        pytest.skip(f"no QEMU machine for {core}")
    machine, flags, memory, _ = h.QEMU_CORES[core]
    src, expected = _firmware_cases()
    (tmp_path / "cases.c").write_text(src)
    (tmp_path / "startup.c").write_text(h._STARTUP)
    (tmp_path / "link.ld").write_text(h._LINKER.format(**memory))
    elf = tmp_path / "test.elf"
    cmd = [h.ARM_GCC, *flags, "-std=c99", "-O3", "-Wall", "-Wextra", "-Werror", f"-I{INCLUDE}",
           "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
           "-T", str(tmp_path / "link.ld"), *map(str, SOURCES), str(tmp_path / "cases.c"),
           str(tmp_path / "startup.c"), "-o", str(elf)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
    run = subprocess.run(["qemu-system-arm", "-M", machine, "-nographic", "-monitor", "none",
                          "-serial", "none", "-semihosting-config", "enable=on,target=native",
                          "-kernel", str(elf)],
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    lines = run.stdout.splitlines() + run.stderr.splitlines()
    assert "DONE" in lines, f"firmware did not finish on {machine}:\n{run.stdout[-2000:]}"
    got = {}
    for line in lines:
        if line.startswith("R "):
            _, idx, status, data = (line.split(" ") + [""])[:4]
            assert status == "0", f"case {idx} returned status {status}"
            got[int(idx)] = bytes.fromhex(data)
    assert sorted(got) == list(range(len(expected)))
    for idx, ref in enumerate(expected):
        assert got[idx] == ref, f"case {idx} on {core}"


@pytest.mark.parametrize("flags", [
    ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-O3"],
    ["-mcpu=cortex-m0plus", "-mthumb", "-O2"],
    ["-mcpu=cortex-m0plus", "-mthumb", "-Os"],
])
def test_arm_cross_compile_warning_free(tmp_path, flags):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not found (apt-get install gcc-arm-none-eabi)")
    for src in SOURCES:
        cmd = ["arm-none-eabi-gcc", *flags, "-std=c99", "-Wall", "-Wextra", "-Werror", "-Wshadow",
               f"-I{INCLUDE}", "-c", str(src), "-o", str(tmp_path / (src.stem + ".o"))]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0 and not proc.stderr, f"{' '.join(cmd)}\n{proc.stderr}"
