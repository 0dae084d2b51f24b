# SPDX-License-Identifier: Apache-2.0
"""Ternary C kernels (firmware/kernels/te_*_{t2,to,p2}_s8.c) == the numpy kernels of
ternembed.kernels.ternary, byte for byte: host builds of the portable path and of the DSP path
(-DTE_EMULATE_DSP) on random shapes, strides, paddings, zero points, groups and planes, and the
real instructions on Cortex-M4 and Cortex-M7 under QEMU."""
from __future__ import annotations

import ctypes
import shutil
from ctypes import POINTER, c_int32, c_int8, c_uint8, c_void_p
from pathlib import Path

import numpy as np
import pytest

from ternembed.hostc import load_shared
from ternembed.kernels import ternary_cases as TC
from ternembed.kernelspec import TERNARY_C_FILES, spec
from ternembed.kernels.ternary import run_ternary_step

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "firmware" / "include"
KDIR = ROOT / "firmware" / "kernels"
SOURCES = [KDIR / f for f in TERNARY_C_FILES]


class Dims(ctypes.Structure):
    _fields_ = [("n", c_int32), ("h", c_int32), ("w", c_int32), ("c", c_int32)]


class Range(ctypes.Structure):
    _fields_ = [("min", c_int32), ("max", c_int32)]


class PcQuant(ctypes.Structure):
    _fields_ = [("multiplier", POINTER(c_int32)), ("shift", POINTER(c_int32))]


class FcParams(ctypes.Structure):
    _fields_ = [("output_offset", c_int32), ("activation", Range)]


_GEO = [("stride_h", c_int32), ("stride_w", c_int32), ("dilation_h", c_int32), ("dilation_w", c_int32),
        ("pad_top", c_int32), ("pad_left", c_int32), ("activation", Range)]


class ConvParams(ctypes.Structure):
    _fields_ = [("input_offset", c_int32), ("output_offset", c_int32)] + _GEO


class DwParams(ctypes.Structure):
    _fields_ = [("input_offset", c_int32), ("output_offset", c_int32), ("depth_multiplier", c_int32)] + _GEO


class TernWeights(ctypes.Structure):
    _fields_ = [("codes", POINTER(c_uint8)), ("scales", c_void_p), ("scale_bytes", c_int32),
                ("plane_shift", POINTER(c_uint8)), ("offset", POINTER(c_int32)), ("planes", c_int32),
                ("active_planes", c_int32), ("group", c_int32), ("levels", c_int32)]


GUARD = 32
SENTINEL = 0x5A


def _ptr(a: np.ndarray, ctype):
    return a.ctypes.data_as(POINTER(ctype))


class CTern:
    """One host build of the ternary kernels behind Step-shaped calls."""

    def __init__(self, defines: list[str]):
        self.lib = load_shared(SOURCES, [INCLUDE], defines)

    def run(self, step, x: np.ndarray, variant: str = "default", misalign: bool = True) -> np.ndarray:
        p = step.params
        fam = spec(step.kernel).family
        O, K = int(p["out_channels"]), int(p["depth"])
        keep = []

        def arr(a, dtype, shift=0):
            a = np.ascontiguousarray(np.asarray(a).reshape(-1).astype(dtype))
            if shift:  # copy to an odd address: the kernels promise no alignment needs
                buf = np.zeros(a.nbytes + shift, np.uint8)
                buf[shift:] = a.view(np.uint8)
                keep.append(buf)
                return buf[shift:].view(dtype)
            keep.append(a)
            return a

        off = 1 if misalign else 0
        codes = arr(p["codes"], np.uint8, off)
        scales = arr(p["scales"], np.asarray(p["scales"]).dtype, off)
        w = TernWeights()
        w.codes = _ptr(codes, c_uint8)
        w.scales = scales.ctypes.data_as(c_void_p)
        w.scale_bytes = scales.dtype.itemsize
        if "plane_shift" in p:
            w.plane_shift = _ptr(arr(p["plane_shift"], np.uint8), c_uint8)
        if "offset" in p:
            w.offset = _ptr(arr(p["offset"], np.int32), c_int32)
        w.planes = int(p.get("planes", 1))
        w.active_planes = int(p.get("active_planes", w.planes))
        w.group = int(p["group"])
        w.levels = int(p.get("levels", 0))
        bias = np.asarray(p["bias"])
        if bias.ndim == 2:
            bias = bias[w.active_planes - 1]
        bias = arr(bias, np.int32)
        mult, shift = arr(p["multiplier"], np.int32), arr(p["shift"], np.int32)
        q = PcQuant(_ptr(mult, c_int32), _ptr(shift, c_int32))
        act = Range(int(p["act_min"]), int(p["act_max"]))
        xin = arr(x, np.int8, off)
        n = x.shape[0]
        if fam == "fc":
            out_shape = (n, O)
            params = FcParams(int(p["output_offset"]), act)
            in_d, f_d = Dims(n, 1, 1, K), Dims(O, 1, 1, K)
        else:
            oh, ow = p["out_hw"]
            out_shape = (n, oh, ow, O)
            kh, kw = p["kernel_hw"]
            geo = (*p["stride"], *p["dilation"], *p["pad"], act)
            in_d = Dims(*x.shape)
            if fam == "conv":
                params = ConvParams(int(p["input_offset"]), int(p["output_offset"]), *geo)
                f_d = Dims(O, kh, kw, x.shape[3])
            else:
                params = DwParams(int(p["input_offset"]), int(p["output_offset"]), int(p["depth_multiplier"]), *geo)
                f_d = Dims(1, kh, kw, O)
        o_d = Dims(*((out_shape[0], 1, 1, out_shape[1]) if fam == "fc" else out_shape))
        size = int(np.prod(out_shape))
        out = np.full(size + 2 * GUARD, SENTINEL, np.int8)
        nscr = TC.scratch_bytes(step.kernel, p, x.shape, variant)
        fn = getattr(self.lib, spec(step.kernel).c_function(variant))
        size_fn = getattr(self.lib, spec(step.kernel).c_function(variant) + "_get_buffer_size")
        size_fn.restype = c_int32
        if variant == "lut":
            got = size_fn(ctypes.byref(in_d), ctypes.byref(f_d), c_int32(w.planes))
        else:
            got = size_fn(ctypes.byref(in_d), ctypes.byref(f_d))
        assert got == nscr, f"{fn.__name__} buffer size {got} != python {nscr}"
        scratch = np.full(nscr + 64, 0x77, np.uint8)
        fn.restype = c_int32
        st = fn(ctypes.byref(params), ctypes.byref(q), ctypes.byref(in_d), _ptr(xin, c_int8), ctypes.byref(f_d),
                ctypes.byref(w), _ptr(bias, c_int32), ctypes.byref(o_d),
                out[GUARD:].ctypes.data_as(POINTER(c_int8)), scratch.ctypes.data_as(c_void_p))
        assert st == 0, f"{fn.__name__} returned {st}"
        assert np.all(out[:GUARD] == SENTINEL) and np.all(out[GUARD + size:] == SENTINEL), "wrote outside output"
        assert np.all(scratch[nscr:] == 0x77), "wrote beyond the scratch size it asked for"
        return out[GUARD:GUARD + size].reshape(out_shape)


@pytest.fixture(scope="module", params=["portable", "dsp"])
def ct(request) -> CTern:
    return CTern([] if request.param == "portable" else ["TE_EMULATE_DSP"])


def expected(step, x):
    return run_ternary_step(step, [x])


def _conv_geometry(rng, fam):
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    dh, dw = (1, 1) if rng.random() < 0.7 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    pt, pl = int(rng.integers(0, kh)), int(rng.integers(0, kw))
    H = int(rng.integers((kh - 1) * dh + 1, 9))
    W = int(rng.integers((kw - 1) * dw + 1, 9))
    return dict(kernel_hw=(kh, kw), stride=(sh, sw), dilation=(dh, dw), pad=(pt, pl), in_hw=(H, W))


def _group(rng, K):
    r = rng.random()
    if r < 0.25:
        return None
    if r < 0.6:
        return int(rng.choice([16, 32, 48, 64]))
    if r < 0.8:
        return int(rng.choice([4, 8, 12]))
    return int(rng.integers(1, K + 2))


def _random_case(rng, kernel):
    fam, kind = spec(kernel).family, spec(kernel).weights
    kw = dict(planes=int(rng.integers(1, 4)) if kind == "t2" else 1, scale_bits=int(rng.choice([8, 8, 12])),
              levels=int(rng.integers(1, 8)), zero_frac=float(rng.uniform(0.0, 0.9)))
    if rng.random() < 0.4:  # the full int8 range: the DSP paths' fast output stage
        kw["act"] = (-128, 127)
    if kind == "t2" and kw["planes"] > 1 and rng.random() < 0.4:
        kw["active_planes"] = int(rng.integers(1, kw["planes"] + 1))
        kw["switchable"] = True
    if fam == "fc":
        K = int(rng.choice([int(rng.integers(1, 40)), int(rng.integers(40, 300))]))
        step = TC.random_step(rng, kernel, out_channels=int(rng.integers(1, 14)), depth=K, group=_group(rng, K), **kw)
        x = TC.random_input(rng, step, batches=int(rng.integers(1, 4)))
        return step, x
    geo = _conv_geometry(rng, fam)
    C = int(rng.integers(1, 20))
    K = geo["kernel_hw"][0] * geo["kernel_hw"][1] * (C if fam == "conv" else 1)
    m = int(rng.integers(1, 3)) if fam == "dwconv" and rng.random() < 0.3 else 1
    step = TC.random_step(rng, kernel, out_channels=int(rng.integers(1, 10)), in_channels=C,
                          depth_multiplier=m, group=_group(rng, K), **geo, **kw)
    x = TC.random_input(rng, step, batches=int(rng.integers(1, 3)))
    return step, x


ALL_KERNELS = [f"{f}_{k}_s8" for f in ("fc", "conv", "dwconv") for k in ("t2", "to", "p2")]


@pytest.mark.parametrize("kernel", ALL_KERNELS)
@pytest.mark.parametrize("seed", range(12))
def test_c_matches_numpy_random(ct, kernel, seed):
    rng = np.random.default_rng(1000 * seed + ALL_KERNELS.index(kernel))
    step, x = _random_case(rng, kernel)
    np.testing.assert_array_equal(ct.run(step, x, misalign=bool(seed % 2)), expected(step, x))


@pytest.mark.parametrize("kernel", ["fc_t2_s8", "conv_t2_s8"])
@pytest.mark.parametrize("seed", range(16))
def test_lut_variant_matches_numpy(ct, kernel, seed):
    rng = np.random.default_rng(7000 + seed)
    step, x = _random_case(rng, kernel)
    np.testing.assert_array_equal(ct.run(step, x, variant="lut"), expected(step, x))


@pytest.mark.parametrize("kernel", ["fc_t2_s8", "conv_t2_s8", "fc_to_s8", "conv_p2_s8", "fc_p2_s8"])
@pytest.mark.parametrize("K", [1, 15, 16, 17, 31, 33, 64, 100, 513, 1040])
def test_c_depths_and_word_tails(ct, kernel, K):
    """Every tail length of a code word, flushes of the 2^14-scaled sums (> 512 taps)."""
    rng = np.random.default_rng(K)
    fam = spec(kernel).family
    for group in (None, 16, 64):
        if fam == "fc":
            step = TC.random_step(rng, kernel, out_channels=7, depth=K, group=group, planes=2 if kernel == "fc_t2_s8" else 1)
            x = TC.random_input(rng, step, batches=3)
        else:
            step = TC.random_step(rng, kernel, out_channels=5, in_channels=K, kernel_hw=(1, 1), pad=(0, 0),
                                  in_hw=(2, 3), group=group)
            x = TC.random_input(rng, step, batches=1)
        np.testing.assert_array_equal(ct.run(step, x), expected(step, x))
        if kernel in ("fc_t2_s8", "conv_t2_s8"):
            np.testing.assert_array_equal(ct.run(step, x, variant="lut"), expected(step, x))


@pytest.mark.parametrize("kernel", ALL_KERNELS)
def test_c_extreme_values(ct, kernel):
    """Scales at their maximum, the bias at the accumulator bound, inputs at -128."""
    rng = np.random.default_rng(5)
    fam = spec(kernel).family
    for bits in (8, 16):
        if fam == "fc":
            step = TC.random_step(rng, kernel, out_channels=6, depth=40, scale_bits=bits, extreme=True,
                                  zero_frac=0.0, planes=2 if kernel == "fc_t2_s8" else 1)
            x = np.full((2, 40), -128, np.int8)
        else:
            step = TC.random_step(rng, kernel, out_channels=4, in_channels=4, scale_bits=bits, extreme=True,
                                  zero_frac=0.0, in_hw=(3, 3))
            x = np.full((1, 3, 3, 4), -128, np.int8)
        step.params["input_offset"] = -127  # padded taps read 127
        np.testing.assert_array_equal(ct.run(step, x), expected(step, x))


def test_c_rejects_bad_arguments(ct):
    rng = np.random.default_rng(3)
    step = TC.random_step(rng, "fc_t2_s8", out_channels=3, depth=20, planes=2)
    x = TC.random_input(rng, step)
    step.params["active_planes"] = 0
    with pytest.raises(AssertionError, match="returned 1"):
        ct.run(step, x)


# ----------------------------------------------------------------------- QEMU, real cores
QEMU_BOARDS = {"cortex-m4": "qemu_mps2_an386", "cortex-m7": "qemu_mps2_an500"}


def _firmware_cases():
    rng = np.random.default_rng(42)
    cases = []
    for kernel in ALL_KERNELS:
        for rep in range(3):
            step, x = _random_case(rng, kernel)
            cases.append((step, x, "default"))
    for rep in range(3):
        for kernel in ("fc_t2_s8", "conv_t2_s8"):
            step, x = _random_case(rng, kernel)
            cases.append((step, x, "lut"))
    # the table core's assembly passes (8 whole tables): one- and two-lane tables, groups,
    # planes, an odd pixel / input row out, lanes emptied every 56 lookups (K = 520)
    for kernel, kw, n in (("fc_t2_s8", dict(out_channels=9, depth=520, group=None), 1),
                          ("fc_t2_s8", dict(out_channels=6, depth=100, group=32, planes=2), 3),
                          ("conv_t2_s8", dict(out_channels=11, in_channels=64, kernel_hw=(1, 1), pad=(0, 0),
                                              in_hw=(3, 3), group=None), 1),
                          ("conv_t2_s8", dict(out_channels=5, in_channels=8, in_hw=(3, 4), group=None), 1),
                          ("conv_t2_s8", dict(out_channels=7, in_channels=24, kernel_hw=(1, 1), pad=(0, 0),
                                              in_hw=(2, 3), group=64, planes=2), 1)):
        step = TC.random_step(rng, kernel, act=(-128, 127), **kw)
        cases.append((step, TC.random_input(rng, step, batches=n), "lut"))
    # the benchmark shapes, small batch; full-range outputs (the output records, scale folding)
    for kernel, kw in (("fc_t2_s8", dict(out_channels=7, depth=100, group=None)),
                       ("fc_t2_s8", dict(out_channels=9, depth=600, group=None, planes=2, active_planes=1,
                                         switchable=True)),
                       ("conv_t2_s8", dict(out_channels=7, in_channels=20, kernel_hw=(1, 1), pad=(0, 0),
                                           in_hw=(3, 3), group=None)),
                       ("conv_t2_s8", dict(out_channels=5, in_channels=8, in_hw=(4, 3), group=16, planes=3)),
                       ("conv_to_s8", dict(out_channels=6, in_channels=16, in_hw=(3, 3), group=None))):
        step = TC.random_step(rng, kernel, act=(-128, 127), **kw)
        cases.append((step, TC.random_input(rng, step, batches=3), "default"))
    step = TC.random_step(rng, "fc_t2_s8", out_channels=10, depth=256, group=64)
    cases.append((step, TC.random_input(rng, step), "default"))
    cases.append((step, TC.random_input(rng, step), "lut"))
    step = TC.random_step(rng, "conv_t2_s8", out_channels=16, in_channels=16, kernel_hw=(3, 3), in_hw=(6, 5), group=64)
    cases.append((step, TC.random_input(rng, step), "default"))
    step = TC.random_step(rng, "dwconv_t2_s8", out_channels=0, in_channels=12, kernel_hw=(3, 3), in_hw=(4, 5))
    cases.append((step, TC.random_input(rng, step), "default"))
    return cases


def _firmware_source(cases):
    decls, calls = [], []
    out_max = scr_max = 1
    for i, (step, x, variant) in enumerate(cases):
        c = TC.render_call(step, x, f"k{i}", variant=variant, lead=i % 3)
        decls.append(c.decls)
        calls.append(f"    {c.call}\n    report({i}, status, {c.out_size});\n")
        out_max, scr_max = max(out_max, c.out_size), max(scr_max, c.scratch)
    head = ['#include "te_platform.h"\n#include "te_kernels_ternary.h"\n',
            f"static int8_t out[{out_max}];\nstatic uint32_t scratch_words[{(scr_max + 3) // 4}];\n",
            "#define scratch ((void *)scratch_words)\n",
            "static void report(int id, te_status st, int n)\n{\n"
            "    static const char hex[] = \"0123456789abcdef\";\n"
            "    te_uart_puts(\"R \"); te_uart_put_u32((uint32_t)id); te_uart_puts(\" \");\n"
            "    te_uart_put_u32((uint32_t)st); te_uart_puts(\" \");\n"
            "    for (int i = 0; i < n; ++i) { const uint8_t v = (uint8_t)out[i];\n"
            "        te_uart_putc((uint8_t)hex[v >> 4]); te_uart_putc((uint8_t)hex[v & 15]); }\n"
            "    te_uart_puts(\"\\n\");\n}\n"]
    body = ["int main(void)\n{\n    te_platform_init();\n    te_status status;\n"] + calls + \
        ['    te_uart_puts("DONE\\n");\n    return 0;\n}\n']
    return "".join(head + decls + body)


@pytest.mark.parametrize("core,opt", [("cortex-m4", "-O3"), ("cortex-m7", "-O3"), ("cortex-m4", "-Os"),
                                      ("cortex-m4", "-O0")])
def test_kernels_on_cores_under_qemu(tmp_path, core, opt):
    """-O3/-Os run the Thumb-2 assembly loops, -O0 their C twins (no 14 free registers there)."""
    from conftest import require_tool
    require_tool("arm-none-eabi-gcc", "gcc-arm-none-eabi libnewlib-arm-none-eabi")
    require_tool("qemu-system-arm", "qemu-system-arm")
    from ternembed.boards import get_board
    from ternembed.device.qemu import run_semihosted
    from ternembed.toolchain import cross_compile

    board = get_board(QEMU_BOARDS[core])
    cases = _firmware_cases()
    src = tmp_path / "main.c"
    src.write_text(_firmware_source(cases))
    elf = cross_compile([src, *SOURCES], board, tmp_path, include_dirs=[INCLUDE], opt=opt)
    objdump = shutil.which("arm-none-eabi-objdump")
    if objdump:
        import subprocess
        asm = subprocess.run([objdump, "-d", str(elf)], capture_output=True, text=True).stdout
        assert "smlad" in asm
    code, uart = run_semihosted(elf, board, timeout=120)
    text = uart.decode(errors="replace")
    assert code == 0 and "DONE" in text, f"firmware failed on {core} (exit {code}):\n{text[-2000:]}"
    got = {}
    for line in text.splitlines():
        if line.startswith("R "):
            _, idx, status, *data = line.split(" ")
            assert status == "0", f"case {idx} returned {status}"
            got[int(idx)] = np.frombuffer(bytes.fromhex(data[0] if data else ""), dtype=np.int8)
    assert sorted(got) == list(range(len(cases)))
    for i, (step, x, variant) in enumerate(cases):
        np.testing.assert_array_equal(got[i], expected(step, x).reshape(-1),
                                      err_msg=f"case {i} {step.kernel}/{variant} on {core}")


# ------------------------------------------------------------------ cost model (measured data)
def test_costmodel_estimates_and_choices():
    from ternembed import costmodel as CM
    rng = np.random.default_rng(11)
    steps = [TC.random_step(rng, "fc_t2_s8", out_channels=128, depth=640, group=64),
             TC.random_step(rng, "fc_t2_s8", out_channels=10, depth=256, group=None),
             TC.random_step(rng, "conv_t2_s8", out_channels=64, in_channels=64, kernel_hw=(1, 1), pad=(0, 0),
                            in_hw=(25, 5), group=64),
             TC.random_step(rng, "conv_to_s8", out_channels=16, in_channels=16, in_hw=(8, 8)),
             TC.random_step(rng, "dwconv_p2_s8", out_channels=0, in_channels=16, in_hw=(8, 8))]
    classes = [CM.shape_class(s) for s in steps]
    assert classes == ["fc_wide", "fc_narrow", "conv_1x1", "conv_kxk", "dwconv"]
    for s in steps:
        for core in ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m0plus"):
            for opt in CM.OPTIMIZE:
                v = CM.choose_variant(s, core, opt)
                assert v in CM.variants(s.kernel)
                est = CM.estimate(s, core, v)
                assert est.instructions > 0 and est.instructions_per_mac > 0.3
                assert est.scratch_bytes == TC.scratch_bytes(s.kernel, s.params, (1,), v) or s.kernel.startswith("fc")
    # the measured trade-off on Cortex-M4: table lookup for many rows (FC 640->128, pointwise
    # 64->64), the SMLAD kernel for few (256->10); "size" never picks the variant with more scratch
    assert CM.choose_variant(steps[0], "cortex-m4", "speed") == "lut"
    assert CM.choose_variant(steps[2], "cortex-m4", "speed") == "lut"
    assert CM.choose_variant(steps[1], "cortex-m4", "speed") == "default"
    assert CM.choose_variant(steps[0], "cortex-m4", "size") == "default"
    small = min(CM.variants("fc_t2_s8"), key=lambda v: CM.scratch_bytes(steps[0], v))
    assert CM.choose_variant(steps[0], "cortex-m0plus", "size") == small
    with pytest.raises(ValueError):
        CM.choose_variant(steps[0], "cortex-m4", "fastest")
