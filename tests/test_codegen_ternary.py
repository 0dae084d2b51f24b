# SPDX-License-Identifier: Apache-2.0
"""Generated C for ternary plans == emulator, byte for byte; ternary firmware runs to PASS on QEMU.

* host C: the shared int8 models, ternarized (``ternarize_plan`` with calibration inputs) in two
  configurations -- FGQ N=16 one plane, and TRN N=64 two switchable planes with the first/last
  and depthwise layers ternary too -- plus pow2 (p2) and offset (to) on three models; model.c
  and the firmware kernels built with the host gcc, portable path and DSP path
  (-DTE_EMULATE_DSP), give exactly the emulator's bytes. Every ternary kernel name the plan
  pass produces is covered.
* the variant choice: a step's ``variant`` param (the FC LUT kernel), else
  ``ternembed.costmodel.choose_variant``, else the default function; active_planes < planes
  passes the matching bias row; inconsistent steps are refused.
* memory.py's scratch sizes == the C ``*_get_buffer_size`` functions (ctypes), the arena is
  sound, and the ``tec_`` arrays are exactly the plan's constants.
* QEMU: the self-test firmware of AD, SWW and IC in two ternary configurations runs to PASS on
  mps2-an386 (Cortex-M4) and mps2-an500 (Cortex-M7); flash int8 vs ternary is printed.
"""
from __future__ import annotations

import ctypes
import sys
import types

import numpy as np
import pytest

from shared_data import int8_cases
from ternembed.codegen import EMITTERS, generate, render_model_sources, supported_kernels
from ternembed.variants import DEFAULT_CORE, assign_variants
from ternembed.emulate import run
from ternembed.errors import UnsupportedOpError
from ternembed.hostcheck import compile_host_model
from ternembed.lower import lower
from ternembed.memory import plan_memory, step_scratch_bytes
from ternembed.kernelspec import TERNARY_C_FILES, TERNARY_CORE
from ternembed.plan import Plan, Step
from ternembed.quantize.plan_pass import TERNARY_KERNELS, set_active_planes, ternarize_plan
from ternembed.quantize.policy import TernaryConfig
from ternembed.tflite import read

CASES = {c.name: c for c in int8_cases()}
MODELS = ["ad01_int8", "ic_int8", "sww_int8", "micro_speech", "kws_int8", "hello_world_int8", "vww_int8"]
CALIB = 16  # calibration samples for the pass
MAX_SAMPLES = 4  # per model, configuration and C path

ALL_TERNARY = dict(first_last="ternary", depthwise="ternary")
CONFIGS = {
    # FGQ N=16, one plane; first/last and depthwise layers stay int8 (a mixed plan), except
    # micro_speech, whose only MAC layers are its first and last
    "fgq16": dict(method="fgq", group=16),
    # TRN N=64, two residual planes with one bias row per plane count; every MAC layer ternary
    "trn64x2": dict(method="trn", group=64, planes=2, switchable=True, **ALL_TERNARY),
    "pow2": dict(method="pow2", levels=3, group=32, **ALL_TERNARY),
    "offset": dict(method="offset", group=32, **ALL_TERNARY),
}
HOST_CASES = ([(m, "fgq16") for m in MODELS] + [(m, "trn64x2") for m in MODELS]
              + [(m, c) for c in ("pow2", "offset") for m in ("ic_int8", "sww_int8", "kws_int8")])


def _config(name: str, config: str) -> TernaryConfig:
    kw = dict(CONFIGS[config])
    if name == "micro_speech":
        kw.update(ALL_TERNARY)
    return TernaryConfig(**kw)


@pytest.fixture(scope="module")
def tplans():
    """(model, config) -> (int8 plan, ternary plan), each built once for the module."""
    int8: dict = {}
    cache: dict = {}

    def get(name: str, config: str):
        if (name, config) not in cache:
            if name not in int8:
                int8[name] = lower(read(CASES[name].model))
            plan = int8[name]
            calib = [a[:CALIB] for a in CASES[name].inputs]
            tplan, _ = ternarize_plan(plan, _config(name, config), calib)
            tplan = assign_variants(tplan, DEFAULT_CORE)  # the variant pass, as every export runs it
            assert any(s.kernel in TERNARY_KERNELS for s in tplan.steps), (name, config)
            missing = sorted({s.kernel for s in tplan.steps} - set(EMITTERS))
            assert not missing, f"kernels without a C emitter: {missing}"
            cache[(name, config)] = (plan, tplan)
        return cache[(name, config)]
    return get


def _with_params(plan: Plan, pred, **extra) -> Plan:
    steps = [Step(s.op_index, s.op_type, s.kernel, s.inputs, s.outputs, dict(s.params, **extra), s.macs)
             if pred(s) else s for s in plan.steps]
    return Plan(plan.name, plan.buffers, steps, plan.inputs, plan.outputs, plan.source_kind)


def _assert_host_equals_emulator(plan: Plan, x, label: str) -> None:
    plan = assign_variants(plan, DEFAULT_CORE)
    want = run(plan, x)
    mem = plan_memory(plan)
    for dsp in (False, True):
        got = compile_host_model(plan, emulate_dsp=dsp, mem=mem).run(x)
        for k, (g, w) in enumerate(zip(got, want)):
            assert g.shape == w.shape and g.dtype == w.dtype, (label, dsp, k)
            assert np.array_equal(g, w), (f"{label} output {k} differs ({'DSP' if dsp else 'portable'} "
                                          f"path): {int((g != w).sum())} of {g.size} values")


def _samples(name: str, n: int = MAX_SAMPLES):
    return [a[:n] for a in CASES[name].inputs]


# ---- host-compiled C == emulator --------------------------------------------------------------

@pytest.mark.parametrize("name,config", HOST_CASES, ids=[f"{m}-{c}" for m, c in HOST_CASES])
def test_host_c_equals_emulator(tplans, name, config):
    _, tplan = tplans(name, config)
    _assert_host_equals_emulator(tplan, _samples(name), f"{name}/{config}")


def test_every_ternary_kernel_is_covered(tplans):
    covered = set()
    for name, config in HOST_CASES:
        covered |= {s.kernel for s in tplans(name, config)[1].steps}
    assert set(TERNARY_KERNELS) <= covered, sorted(set(TERNARY_KERNELS) - covered)
    assert set(TERNARY_KERNELS) <= set(supported_kernels())
    # the configurations exercise what they claim: two planes with bias rows, 1 plane, p2, to
    steps = [s for s in tplans("sww_int8", "trn64x2")[1].steps if s.kernel in TERNARY_KERNELS]
    assert all(s.params["planes"] == 2 and np.asarray(s.params["bias"]).ndim == 2 for s in steps
               if s.kernel.endswith("_t2_s8") and s.params["method"] != "lossless")
    assert {s.kernel for s in steps} >= {"fc_t2_s8", "conv_t2_s8", "dwconv_t2_s8"}


def test_fewer_active_planes_use_their_bias_row(tplans):
    """A two-plane switchable plan run with one plane: model.c passes bias row 0 (the pointer
    to the [P, O] array, not offset) vs row 1 for two planes; C == emulator either way."""
    for name in ("ad01_int8", "sww_int8"):
        _, tplan = tplans(name, "trn64x2")
        one = set_active_planes(tplan, 1)
        x = _samples(name, 3)
        _assert_host_equals_emulator(one, x, f"{name}/trn64x2 one plane")
        two_plane = [k for k, s in enumerate(tplan.steps)
                     if s.kernel.endswith("_t2_s8") and np.asarray(s.params["bias"]).ndim == 2]
        assert two_plane
        out0 = tplan.steps[two_plane[0]].outputs[0]  # the first switched layer computes something else
        assert not np.array_equal(run(one, x, keep_all=True)[out0], run(tplan, x, keep_all=True)[out0])
        src1 = render_model_sources(generate(one))["model.c"]
        src2 = render_model_sources(generate(tplan))["model.c"]
        assert ".active_planes = 1," in src1 and ".active_planes = 2," in src2
        for k in two_plane:
            O = int(tplan.steps[k].params["out_channels"])
            assert f"tec_{k}_bias + {O}," in src2 and f"tec_{k}_bias + " not in src1


def test_fewer_planes_without_bias_rows_are_refused(tplans):
    """active_planes < planes with one bias row (planes exported without switchable bias rows)."""
    _, tplan = tplans("ad01_int8", "trn64x2")
    two = lambda s: s.kernel == "fc_t2_s8" and np.asarray(s.params["bias"]).ndim == 2  # noqa: E731
    one_row = _with_params(tplan, two, active_planes=1)
    one_row = Plan(one_row.name, one_row.buffers,
                   [Step(s.op_index, s.op_type, s.kernel, s.inputs, s.outputs,
                         dict(s.params, bias=np.asarray(s.params["bias"])[-1]), s.macs) if two(t) else s
                    for s, t in zip(one_row.steps, tplan.steps)],
                   one_row.inputs, one_row.outputs, one_row.source_kind)
    with pytest.raises(UnsupportedOpError, match="switchable"):
        generate(one_row)


# ---- variants ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name,config", [("ad01_int8", "fgq16"), ("ad01_int8", "trn64x2"),
                                         ("hello_world_int8", "trn64x2"), ("kws_int8", "trn64x2")])
def test_lut_variant_from_step_params(tplans, name, config):
    _, tplan = tplans(name, config)
    lut = _with_params(tplan, lambda s: s.kernel == "fc_t2_s8", variant="lut")
    n_fc = sum(s.kernel == "fc_t2_s8" for s in lut.steps)
    assert n_fc
    src = render_model_sources(generate(lut))["model.c"]
    assert src.count("te_fc_t2_lut_s8(") == n_fc
    for s in lut.steps:
        if s.kernel == "fc_t2_s8":
            assert step_scratch_bytes(lut, s) >= 8 * 512 + 8 * int(s.params["planes"]) * int(s.params["out_channels"])
    _assert_host_equals_emulator(lut, _samples(name, 3), f"{name}/{config} LUT")


@pytest.fixture
def fake_costmodel(monkeypatch):
    """Installs choose_variant(step, core) -> answer in ternembed.costmodel (real module or a
    stand-in)."""
    import ternembed
    mod = sys.modules.get("ternembed.costmodel")
    if mod is None:
        try:
            import ternembed.costmodel as mod  # noqa: F811
        except ImportError:
            mod = types.ModuleType("ternembed.costmodel")
            monkeypatch.setitem(sys.modules, "ternembed.costmodel", mod)
            monkeypatch.setattr(ternembed, "costmodel", mod, raising=False)
    answer = {"v": "default", "seen": []}

    def choose_variant(step, core, optimize="speed"):
        answer["seen"].append((step.kernel, core))
        return answer["v"]
    monkeypatch.setattr(mod, "choose_variant", choose_variant, raising=False)
    return answer


def test_variant_pass_asks_the_cost_model_and_codegen_requires_its_answer(tplans, fake_costmodel):
    """The variant is chosen once, by the pass, from the cost model; memory planning and the
    emitters read that choice and refuse a step without one."""
    _, tplan = tplans("ad01_int8", "fgq16")
    bare = Plan(tplan.name, tplan.buffers, [Step(s.op_index, s.op_type, s.kernel, s.inputs, s.outputs,
                {k: v for k, v in s.params.items() if k != "variant"}, s.macs) for s in tplan.steps],
                tplan.inputs, tplan.outputs, tplan.source_kind)
    with pytest.raises(UnsupportedOpError, match="assign_variants"):
        generate(bare)
    fake_costmodel["v"] = "lut"
    pinned = assign_variants(bare, DEFAULT_CORE)
    src = render_model_sources(generate(pinned))["model.c"]
    assert "te_fc_t2_lut_s8(" in src and "te_fc_t2_s8(" not in src
    assert ("fc_t2_s8", DEFAULT_CORE) in fake_costmodel["seen"]
    fc = next(s for s in pinned.steps if s.kernel == "fc_t2_s8")
    assert step_scratch_bytes(pinned, fc) == 8 * 512 + 8 * int(fc.params["out_channels"])
    # a step's own variant wins over the cost model
    own = _with_params(bare, lambda s: s.kernel == "fc_t2_s8", variant="default")
    src = render_model_sources(generate(assign_variants(own, DEFAULT_CORE)))["model.c"]
    assert "te_fc_t2_lut_s8(" not in src and "te_fc_t2_s8(" in src
    fake_costmodel["v"] = "no_such_variant"
    with pytest.raises(UnsupportedOpError, match="no_such_variant"):
        assign_variants(bare, DEFAULT_CORE)


def test_assign_variants_pins_the_cost_model_choice_per_core(tplans):
    """assign_variants(plan, core): the exporter's per-board choice, then model.c follows it."""
    from ternembed.costmodel import choose_variant
    _, tplan = tplans("ad01_int8", "trn64x2")
    for core in ("cortex-m4", "cortex-m0plus"):
        pinned = assign_variants(tplan, core)
        for s, t in zip(pinned.steps, tplan.steps):
            if t.kernel == "fc_t2_s8":
                assert s.params["variant"] == choose_variant(t, core)
            else:
                assert s is t
        src = render_model_sources(generate(pinned))["model.c"]
        n_lut = sum(s.params.get("variant") == "lut" for s in pinned.steps)
        assert src.count("te_fc_t2_lut_s8(") == n_lut
        if core == "cortex-m0plus":  # no DSP: the table lookup wins on the wide layers
            assert n_lut > 0
            _assert_host_equals_emulator(pinned, _samples("ad01_int8", 2), "ad01_int8/trn64x2 M0+ variants")


def test_unknown_step_variant_is_refused(tplans):
    _, tplan = tplans("sww_int8", "fgq16")
    bad = _with_params(tplan, lambda s: s.kernel == "conv_t2_s8", variant="bitserial")
    with pytest.raises(UnsupportedOpError, match="bitserial"):
        generate(bad)


# ---- memory: scratch mirrors, arena, weights ---------------------------------------------------

class _Dims(ctypes.Structure):
    _fields_ = [(k, ctypes.c_int32) for k in "nhwc"]


@pytest.fixture(scope="module")
def tern_lib():
    from ternembed.hostc import load_shared
    from ternembed.resources import resource_dir
    fw = resource_dir("firmware")
    k = fw / "kernels"
    srcs = [k / f for f in TERNARY_C_FILES]
    lib = load_shared(srcs, [fw / "include", k])
    for fam in ("fc", "conv", "dwconv"):
        for kind in ("t2", "to", "p2"):
            getattr(lib, f"te_{fam}_{kind}_s8_get_buffer_size").restype = ctypes.c_int32
    lib.te_fc_t2_lut_s8_get_buffer_size.restype = ctypes.c_int32
    return lib


def _c_scratch(lib, plan: Plan, step: Step, variant: str) -> int:
    p = step.params
    fam = step.kernel.split("_")[0]
    O, K = int(p["out_channels"]), int(p["depth"])
    if fam == "fc":
        rows = int(p.get("rows", 1))
        x, f = _Dims(rows, 1, 1, K), _Dims(O, 1, 1, K)
    else:
        x = _Dims(*plan.buffers[step.inputs[0]].shape)
        kh, kw = p["kernel_hw"]
        f = _Dims(1, kh, kw, O) if fam == "dwconv" else _Dims(O, kh, kw, x.c)
    if variant == "lut":
        fn = getattr(lib, f"te_{fam}_t2_lut_s8_get_buffer_size")
        fn.restype = ctypes.c_int32
        return fn(ctypes.byref(x), ctypes.byref(f), ctypes.c_int32(int(p.get("planes", 1))))
    return getattr(lib, f"te_{step.kernel}_get_buffer_size")(ctypes.byref(x), ctypes.byref(f))


def _random_plans():
    """Single-step plans of random contract-valid steps: shapes the shared models lack (odd K,
    p2 nibble words, uint16 scales, depth multipliers, strides, several planes)."""
    from ternembed.kernels.ternary_cases import random_step
    from ternembed.plan import Buffer
    rng = np.random.default_rng(11)
    specs = [("fc_t2_s8", dict(out_channels=5, depth=37, planes=3, group=8)),
             ("fc_t2_s8", dict(out_channels=33, depth=64, group=16, rows=2)),
             ("fc_t2_s8", dict(out_channels=6, depth=48, planes=2, group=16, rows=3)),
             ("fc_p2_s8", dict(out_channels=9, depth=24, group=8, rows=4)),
             ("fc_p2_s8", dict(out_channels=7, depth=13, group=5, levels=3)),
             ("fc_to_s8", dict(out_channels=3, depth=100, scale_bits=12)),
             ("conv_t2_s8", dict(out_channels=6, in_channels=3, kernel_hw=(3, 2), stride=(2, 1))),
             ("conv_p2_s8", dict(out_channels=4, in_channels=5, kernel_hw=(1, 1), pad=(0, 0))),
             ("conv_to_s8", dict(out_channels=9, in_channels=7, kernel_hw=(5, 5), pad=(2, 2), group=16)),
             ("dwconv_t2_s8", dict(out_channels=0, in_channels=6, depth_multiplier=2, planes=2, kernel_hw=(3, 3))),
             ("dwconv_p2_s8", dict(out_channels=0, in_channels=3, kernel_hw=(2, 5), levels=4)),
             ("dwconv_to_s8", dict(out_channels=0, in_channels=10, kernel_hw=(3, 3), stride=(2, 2)))]
    out = []
    for kernel, kw in specs:
        rows = kw.pop("rows", 1)
        step = random_step(rng, kernel, **kw)
        p = step.params
        fam = kernel.split("_")[0]
        if fam == "fc":
            p["rows"] = rows
            xs, ys = (1, rows, int(p["depth"])), (1, rows, int(p["out_channels"]))
        else:
            h, w = p["_in_hw"]
            xs, ys = (1, h, w, int(p["in_channels"])), (1, *p["out_hw"], int(p["out_channels"]))
        bufs = {0: Buffer(0, "x", xs, "int8", 0.1, 0), 1: Buffer(1, "y", ys, "int8", 0.1, 0)}
        out.append(Plan(kernel, bufs, [step], [0], [1]))
    return out


def test_random_steps_host_c_equals_emulator():
    """Single-step plans of odd shapes (batched FC rows, uint16 scales, 3 planes, p2 levels 3/4,
    depth multipliers, strides, groups that are not a multiple of the DSP word): C == emulator
    on both paths, with every variant."""
    rng = np.random.default_rng(3)
    for plan in _random_plans():
        x = plan.buffers[plan.inputs[0]]
        xs = [rng.integers(-128, 128, (3,) + tuple(x.shape[1:]), dtype=np.int16).astype(np.int8)]
        _assert_host_equals_emulator(plan, xs, plan.name)
        if plan.steps[0].kernel in ("fc_t2_s8", "conv_t2_s8"):
            lut = _with_params(plan, lambda s: True, variant="lut")
            _assert_host_equals_emulator(lut, xs, plan.name + " LUT")


def test_ternary_scratch_sizes_match_c(tplans, tern_lib):
    """memory.py's @scratch_size functions for every ternary kernel (and the LUT variant) return
    what te_*_get_buffer_size() returns, for every ternary step of the test plans and for
    random shapes."""
    from ternembed.variants import step_variant
    plans = [tplans(m, c)[1] for m, c in HOST_CASES] + _random_plans()
    seen: dict[str, int] = {}
    for plan in plans:
        for step in plan.steps:
            if step.kernel not in TERNARY_KERNELS:
                continue
            variants = ["default"] + (["lut"] if step.kernel in ("fc_t2_s8", "conv_t2_s8") else [])
            for v in variants:
                s = Step(step.op_index, step.op_type, step.kernel, step.inputs, step.outputs,
                         dict(step.params, variant=v), step.macs)
                assert step_variant(s) == v
                want = _c_scratch(tern_lib, plan, s, v)
                assert step_scratch_bytes(plan, s) == want, (plan.name, step.kernel, v)
                key = step.kernel + ("/lut" if v == "lut" else "")
                seen[key] = seen.get(key, 0) + 1
    assert set(seen) == set(TERNARY_KERNELS) | {"fc_t2_s8/lut", "conv_t2_s8/lut"}, seen


@pytest.mark.parametrize("name,config", [("ad01_int8", "trn64x2"), ("sww_int8", "pow2"),
                                         ("kws_int8", "offset"), ("ic_int8", "fgq16")])
def test_arena_and_weights(tplans, name, config):
    from test_codegen import assert_arena_sound, run_in_arena
    _, tplan = tplans(name, config)
    mem = plan_memory(tplan)
    assert_arena_sound(tplan, mem)
    assert any(t in mem.scratch for t, s in enumerate(tplan.steps) if s.kernel in TERNARY_KERNELS)
    x = _samples(name, 2)
    for got, want in zip(run_in_arena(tplan, mem, x), run(tplan, x)):
        assert np.array_equal(got.reshape(want.shape), want)
    gen = generate(tplan, mem)
    assert gen.weight_bytes == tplan.weight_bytes  # every constant of the plan, nothing else
    assert "te_kernels_ternary.h" in gen.headers and set(TERNARY_CORE) <= set(gen.sources)


# ---- QEMU self-test firmware -----------------------------------------------------------------

QEMU_BOARDS = ["qemu_mps2_an386", "qemu_mps2_an500"]
QEMU_MODELS = ["ad01_int8", "sww_int8", "ic_int8"]
QEMU_CONFIGS = ["fgq16", "trn64x2"]
QEMU_SAMPLES = 3
FLASH: dict[tuple[str, str, str], int] = {}


def _need_tools():
    import shutil
    for tool, pkg in (("arm-none-eabi-gcc", "gcc-arm-none-eabi libnewlib-arm-none-eabi"),
                      ("qemu-system-arm", "qemu-system-arm")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found: apt-get install {pkg}")


@pytest.fixture(scope="module")
def tprojects(tplans, tmp_path_factory):
    """(model, config) -> (plan, exported project); config "int8" = the untouched int8 plan."""
    from ternembed.render import export_project
    root = tmp_path_factory.mktemp("tfw")
    cache: dict = {}

    def get(name: str, config: str):
        if (name, config) not in cache:
            if config == "int8":
                plan = lower(read(CASES[name].model))
            else:
                plan = tplans(name, config)[1]
            x = _samples(name, QEMU_SAMPLES)
            cache[(name, config)] = (plan, export_project(plan, QEMU_BOARDS[0], root / f"{name}_{config}",
                                                          test_inputs=x))
        return cache[(name, config)]
    return get


def _build_and_run(tprojects, name, config, board):
    from test_firmware_qemu import _run
    from ternembed.build import build_project
    plan, exp = tprojects(name, config)
    built = build_project(exp.out_dir, board, use_platformio=False)
    assert built.checks_ok, built.summary()
    assert built.fits
    assert built.symbols["weight_bytes"] == plan.weight_bytes
    assert built.symbols["arena_bytes"] == exp.arena_bytes
    code, text = _run(built.elf, board)
    assert f"TE-SELFTEST PASS {exp.test_samples}/{exp.test_samples}" in text, text[-2000:]
    assert code == 0, text[-2000:]
    assert f"hash={exp.model_hash}" in text
    FLASH[(name, config, board)] = built.flash_bytes
    return built


QEMU_CASES = [(m, c, b) for m in QEMU_MODELS for c in QEMU_CONFIGS for b in QEMU_BOARDS]
# every other shared model in one ternary configuration too
QEMU_CASES += [(m, "fgq16", b) for m in MODELS if m not in QEMU_MODELS for b in QEMU_BOARDS]


@pytest.mark.qemu
@pytest.mark.parametrize("name,config,board", QEMU_CASES, ids=["-".join(c) for c in QEMU_CASES])
def test_ternary_selftest_passes_on_qemu(tprojects, name, config, board):
    _need_tools()
    _build_and_run(tprojects, name, config, board)


@pytest.mark.qemu
def test_ternary_flash_is_smaller_than_int8(tprojects):
    """FGQ N=16 firmware is smaller than the int8 firmware of the same model (M4 build); prints
    the flash of every configuration built in this run (pytest -s)."""
    _need_tools()
    board = QEMU_BOARDS[0]
    lines = [f"{'model':<12} {'config':<8} {'weights':>8} {'flash M4':>9} {'vs int8':>8} {'flash M7':>9}"]
    for name in QEMU_MODELS:
        base = _build_and_run(tprojects, name, "int8", board).flash_bytes
        for config in ["int8"] + QEMU_CONFIGS:
            flash = FLASH.get((name, config, board))
            if flash is None:
                flash = _build_and_run(tprojects, name, config, board).flash_bytes
            plan, _ = tprojects(name, config)
            m7 = FLASH.get((name, config, QEMU_BOARDS[1]), "-")
            lines.append(f"{name:<12} {config:<8} {plan.weight_bytes:>8} {flash:>9} {flash / base:>8.1%} {m7:>9}")
        assert FLASH[(name, "fgq16", board)] < base, (name, FLASH[(name, "fgq16", board)], base)
    print("\n" + "\n".join(lines))
