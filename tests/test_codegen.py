# SPDX-License-Identifier: Apache-2.0
"""Generated C == emulator, byte for byte; the arena plan is sound and small; export is safe.

* every shared int8 model whose kernels all have C emitters: model.c + firmware kernels built
  with the host gcc (portable path and, with -DTE_EMULATE_DSP, the DSP path) and run through
  ctypes give exactly the emulator's bytes;
* a small "zoo" model exercises every other int8 kernel (pad, concat, mean, mul/add with
  broadcast, relu, relu6, tanh, requantize, maxpool, dilated conv, depth multiplier);
* the arena plan: no two buffers live at the same time share a byte (checked structurally,
  and by running the plan inside one byte array), and it is never larger than TFLM's arena;
* model strings cannot break the C: tensor names with quotes, */, newlines, backslashes and
  trigraphs export, cross-compile and host-compile; c_string/c_comment round-trip through gcc;
* export refuses a non-empty folder without force and leaves nothing behind on failure.
"""
from __future__ import annotations

import copy
import re
import shutil
import subprocess

import numpy as np
import pytest

from shared_data import int8_cases
from ternembed.codegen import EMITTERS, c_comment, c_identifier, c_string, generate, plan_hash
from ternembed.codegen.names import C_KEYWORDS, Namer
from ternembed.emulate import ADAPTERS, run
from ternembed.errors import TernembedError, UnsupportedOpError
from ternembed.hostcheck import compile_host_model, load_project
from ternembed.lower import lower
from ternembed.memory import ALIAS_KERNELS, INPLACE_KERNELS, plan_memory, step_scratch_bytes
from ternembed.render import export_project
from ternembed.tflite import parse, read

CASES = {c.name: c for c in int8_cases()}
MAX_SAMPLES = 6  # per model and C path: enough to exercise every code path of the kernels


def _lowered(name: str):
    try:
        return lower(read(CASES[name].model))
    except UnsupportedOpError as exc:
        pytest.skip(f"{name}: not lowered yet ({exc})")


def _emittable(plan, name: str):
    missing = sorted({s.kernel for s in plan.steps} - set(EMITTERS))
    if missing:
        pytest.skip(f"{name}: kernels without a C emitter yet: {', '.join(missing)}")
    return plan


@pytest.fixture(scope="module")
def plans():
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            cache[name] = _emittable(_lowered(name), name)
        return cache[name]
    return get


# ---- host-compiled C == emulator --------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CASES))
def test_host_c_equals_emulator(plans, name):
    plan = plans(name)
    x = [a[:MAX_SAMPLES] for a in CASES[name].inputs]
    want = run(plan, x)
    mem = plan_memory(plan)
    for dsp in (False, True):
        got = compile_host_model(plan, emulate_dsp=dsp, mem=mem).run(x)
        for k, (g, w) in enumerate(zip(got, want)):
            assert g.shape == w.shape and g.dtype == w.dtype, (name, dsp, k)
            assert np.array_equal(g, w), f"{name} output {k} differs ({'DSP' if dsp else 'portable'} path): " \
                                         f"{int((g != w).sum())} of {g.size} values"


def zoo_model() -> bytes:
    """One graph with every int8 kernel the shared models do not all cover."""
    from tflite_builder import ModelBuilder, Tensor

    rng = np.random.default_rng(0)
    mb = ModelBuilder()
    add = mb.add_tensor

    def act(shape, s, zp, name):
        return add(Tensor(shape, "int8", s, zp, name=name))

    def const(shape, dtype, data, name, **q):
        return add(Tensor(shape, dtype, data=np.asarray(data), name=name, **q))

    x = act((1, 6, 6, 4), 0.05, 3, "x")
    y = act((1, 1, 1, 8), 0.04, -5, "y")
    p = act((1, 8, 10, 4), 0.05, 3, "padded")
    mb.add_op("PAD", [x, const((4, 2), "int32", [[0, 0], [1, 1], [2, 2], [0, 0]], "pads")], [p])
    w = const((8, 3, 3, 4), "int8", rng.integers(-127, 128, (8, 3, 3, 4)), "w",
              scale=list(rng.uniform(0.01, 0.03, 8)), zero_point=[0] * 8, quantized_dimension=0)
    b = const((8,), "int32", rng.integers(-500, 500, 8), "b", scale=[1e-3] * 8, zero_point=[0] * 8)
    c = act((1, 3, 3, 8), 0.1, -10, "conv")
    mb.add_op("CONV_2D", [p, w, b], [c], {"padding": "VALID", "stride_h": 2, "stride_w": 2,
                                          "dilation_w_factor": 2, "fused_activation_function": "RELU6"})
    dw = const((1, 3, 3, 8), "int8", rng.integers(-127, 128, (1, 3, 3, 8)), "dw",
               scale=[0.03] * 8, zero_point=[0] * 8, quantized_dimension=3)
    db = const((8,), "int32", rng.integers(-300, 300, 8), "db", scale=[1.5e-3] * 8, zero_point=[0] * 8)
    d = act((1, 6, 6, 8), 0.08, 2, "dw_out")
    mb.add_op("DEPTHWISE_CONV_2D", [x, dw, db], [d], {"padding": "SAME", "depth_multiplier": 2})
    mp = act((1, 3, 3, 8), 0.08, 2, "maxpool")
    mb.add_op("MAX_POOL_2D", [d], [mp], {"padding": "VALID", "stride_h": 2, "stride_w": 2,
                                         "filter_height": 2, "filter_width": 2})
    ap = act((1, 3, 3, 8), 0.08, 2, "avgpool")
    mb.add_op("AVERAGE_POOL_2D", [d], [ap], {"padding": "SAME", "stride_h": 2, "stride_w": 2,
                                             "filter_height": 3, "filter_width": 3})
    a = act((1, 3, 3, 8), 0.12, 1, "add")
    mb.add_op("ADD", [c, mp], [a])
    m = act((1, 3, 3, 8), 0.2, -3, "mul_bcast")
    mb.add_op("MUL", [a, y], [m])
    a2 = act((1, 3, 3, 8), 0.15, 0, "add_bcast")
    mb.add_op("ADD", [ap, y], [a2], {"fused_activation_function": "RELU"})
    m2 = act((1, 3, 3, 8), 0.2, -3, "requantized")
    mb.add_op("QUANTIZE", [a2], [m2])
    cc = act((1, 3, 3, 16), 0.2, -3, "concat")
    mb.add_op("CONCATENATION", [m, m2], [cc], {"axis": 3})
    mn = act((1, 16), 0.1, 4, "mean")
    mb.add_op("MEAN", [cc, const((2,), "int32", [1, 2], "axes")], [mn], {"keep_dims": False})
    r = act((1, 16), 0.07, -20, "relu")
    mb.add_op("RELU", [mn], [r])
    r6 = act((1, 16), 0.07, -20, "relu6")
    mb.add_op("RELU6", [r], [r6])
    th = act((1, 16), 1 / 128, 0, "tanh")
    mb.add_op("TANH", [r6], [th])
    lg = act((1, 16), 1 / 256, -128, "logistic")
    mb.add_op("LOGISTIC", [r6], [lg])
    rs = act((1, 4, 4), 1 / 256, -128, "reshape")
    mb.add_op("RESHAPE", [lg, const((3,), "int32", [1, 4, 4], "shape")], [rs])
    sm = act((1, 4, 4), 1 / 256, -128, "softmax")
    mb.add_op("SOFTMAX", [rs], [sm], {"beta": 1.0})
    mb.inputs = [x, y]
    mb.outputs = [th, sm]
    return mb.build()


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    path = tmp_path_factory.mktemp("zoo") / "zoo.tflite"
    path.write_bytes(zoo_model())
    return path, _emittable(lower(read(path)), "zoo")


def test_every_emitter_is_exercised(zoo):
    """Each kernel with a C emitter runs in the zoo or in a shared model (so the tests here see it)."""
    _, plan = zoo
    from test_ops_data import zoo_model as new_ops_zoo  # the data-movement and newer elementwise ops
    from test_streaming import streaming_model  # resource variables
    covered = {s.kernel for s in plan.steps}
    for model in (new_ops_zoo(), streaming_model()):
        covered |= {s.kernel for s in lower(parse(model)).steps}
    for name in CASES:
        try:
            covered |= {s.kernel for s in lower(read(CASES[name].model)).steps}
        except TernembedError:
            pass
    from ternembed.quantize.plan_pass import TERNARY_KERNELS  # covered by test_codegen_ternary.py
    assert set(EMITTERS) - set(TERNARY_KERNELS) <= covered, sorted(set(EMITTERS) - set(TERNARY_KERNELS) - covered)


@pytest.mark.parametrize("dsp", [False, True], ids=["portable", "dsp"])
def test_zoo_host_c_equals_emulator(zoo, dsp):
    _, plan = zoo
    rng = np.random.default_rng(1)
    x = [rng.integers(-128, 128, (40, 6, 6, 4)).astype(np.int8),
         rng.integers(-128, 128, (40, 1, 1, 8)).astype(np.int8)]
    want = run(plan, x)
    got = compile_host_model(plan, emulate_dsp=dsp).run(x)
    for g, w in zip(got, want):
        assert np.array_equal(g, w)
    assert all(len(np.unique(w)) > 3 for w in want), "degenerate test: outputs nearly constant"


# ---- the arena plan ------------------------------------------------------------------------------

def _lifetimes(plan):
    first, last = {}, {}
    for i in plan.inputs:
        first[i], last[i] = 0, 0
    for t, s in enumerate(plan.steps):
        for i in s.inputs:
            last[i] = max(last[i], t)
        for i in s.outputs:
            first.setdefault(i, t)
            last[i] = max(last.get(i, t), t)
    for i in plan.outputs:
        last[i] = len(plan.steps) - 1
    return first, last


def _shared_bytes_allowed(plan):
    """Pairs that may legitimately share bytes: input/output of an aliasing or in-place step."""
    pairs = set()
    for s in plan.steps:
        if s.kernel in ALIAS_KERNELS | INPLACE_KERNELS and s.inputs and s.outputs:
            pairs.add(frozenset((s.inputs[0], s.outputs[0])))
    # closure: chains of copies / in-place steps share one block
    changed = True
    while changed:
        changed = False
        for a in list(pairs):
            for b in list(pairs):
                if a != b and a & b and len(a | b) == 3:
                    for u in a ^ b:
                        for v in a ^ b:
                            if u != v and frozenset((u, v)) not in pairs:
                                pairs.add(frozenset((u, v)))
                                changed = True
    return pairs


def assert_arena_sound(plan, mem):
    first, last = _lifetimes(plan)
    allowed = _shared_bytes_allowed(plan)
    idx = sorted(mem.offsets)
    assert set(idx) == set(plan.buffers)
    for k, a in enumerate(idx):
        ba = plan.buffers[a]
        assert mem.offsets[a] % mem.alignment == 0
        assert mem.offsets[a] + ba.nbytes <= mem.arena_bytes
        for b in idx[k + 1:]:
            bb = plan.buffers[b]
            live = first[a] <= last[b] and first[b] <= last[a]
            overlap = mem.offsets[a] < mem.offsets[b] + bb.nbytes and mem.offsets[b] < mem.offsets[a] + ba.nbytes
            if live and overlap:
                assert frozenset((a, b)) in allowed and mem.offsets[a] == mem.offsets[b], \
                    f"buffers #{a} and #{b} are live together and overlap"
    for t, (off, n) in mem.scratch.items():
        assert n == step_scratch_bytes(plan, plan.steps[t]) and off + n <= mem.arena_bytes
        for i in idx:
            if first[i] <= t <= last[i]:
                assert off + n <= mem.offsets[i] or mem.offsets[i] + plan.buffers[i].nbytes <= off, \
                    f"scratch of step {t} overlaps buffer #{i}"


def run_in_arena(plan, mem, inputs):
    """Run the plan one sample at a time with every buffer stored in ONE byte array at its
    planned offset (and scratch regions scribbled over): a clobbered live buffer shows up."""
    outs = [[] for _ in plan.outputs]
    for s in range(len(inputs[0])):
        arena = np.zeros(mem.arena_bytes, np.uint8)

        def put(i, v):
            b = np.ascontiguousarray(np.asarray(v, plan.buffers[i].dtype)).view(np.uint8).ravel()
            arena[mem.offsets[i]:mem.offsets[i] + b.size] = b

        def get(i):
            b = plan.buffers[i]
            return arena[mem.offsets[i]:mem.offsets[i] + b.nbytes].copy().view(b.dtype).reshape((1,) + tuple(b.shape[1:]))

        for i, x in zip(plan.inputs, inputs):
            put(i, x[s:s + 1])
        for t, step in enumerate(plan.steps):
            args = [get(i) for i in step.inputs]
            if t in mem.scratch:
                off, n = mem.scratch[t]
                arena[off:off + n] = 0xA5
            put(step.outputs[0], ADAPTERS[step.kernel](step, args))
        for k, i in enumerate(plan.outputs):
            outs[k].append(get(i)[0])
    return [np.stack(o) for o in outs]


@pytest.mark.parametrize("name", sorted(CASES))
def test_arena_plan_is_sound_and_not_larger_than_tflm(plans, name):
    plan = plans(name)
    mem = plan_memory(plan)
    assert_arena_sound(plan, mem)
    assert mem.arena_bytes >= mem.lower_bound
    x = [a[:2] for a in CASES[name].inputs]
    for got, want in zip(run_in_arena(plan, mem, x), run(plan, x)):
        assert np.array_equal(got.reshape(want.shape), want)
    pytest.importorskip("tflite_micro", reason="tflite-micro is not installed: pip install tflite-micro")
    from ternembed.reference import tflm_arena_bytes
    tflm = tflm_arena_bytes(CASES[name].model)
    assert mem.arena_bytes <= tflm, f"{name}: our arena {mem.arena_bytes} B > TFLM's {tflm} B"


def test_zoo_arena_plan_is_sound(zoo):
    path, plan = zoo
    mem = plan_memory(plan)
    assert_arena_sound(plan, mem)
    rng = np.random.default_rng(2)
    x = [rng.integers(-128, 128, (3, 6, 6, 4)).astype(np.int8),
         rng.integers(-128, 128, (3, 1, 1, 8)).astype(np.int8)]
    for got, want in zip(run_in_arena(plan, mem, x), run(plan, x)):
        assert np.array_equal(got.reshape(want.shape), want)
    assert "scratch" in mem.table(plan)


def test_memory_table_and_alignment(plans):
    plan = plans("ic_int8")
    for align in (4, 8, 16):
        mem = plan_memory(plan, alignment=align)
        assert_arena_sound(plan, mem)
        assert mem.arena_bytes % align == 0
    table = plan_memory(plan).table(plan)
    assert "arena:" in table and "scratch of step" in table


# ---- names, hash -----------------------------------------------------------------------------

HOSTILE = ['a"b*/ c\nd\\', '??/\n#include <stdio.h>\n*/ int x; /*', 'é\t\r\0 "\\" \\\n',
           "x" * 300 + "*/", "/*", "*", "/", "??=??(??)??!", "%s%n", "\\", ""]


def test_c_identifier():
    namer = Namer()
    seen = set()
    for s in HOSTILE + ["int", "main", "_Bool", "9lives", "__x", "_X", "ok_name"]:
        ident = namer(s, "")
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", ident), ident
        assert ident not in C_KEYWORDS and not ident.startswith("__")
        assert not re.match(r"_[A-Z]", ident)
        assert ident not in seen
        seen.add(ident)
    assert c_identifier("conv/Relu6;bias", "te_") == "te_conv_Relu6_bias"


def test_c_strings_and_comments_survive_gcc(tmp_path):
    """A C program holding every hostile string as a literal and in comments prints them back."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found: apt-get install gcc")
    rng = np.random.default_rng(3)
    texts = HOSTILE + [bytes(rng.integers(1, 256, 64, dtype=np.uint8)).decode("latin-1") for _ in range(20)]
    lines = ['#include <stdio.h>', '#include <string.h>', "int main(void) {"]
    for t in texts:
        lines.append(f"    /* {c_comment(t)} */ fwrite({c_string(t)}, 1, sizeof({c_string(t)}) - 1, stdout);"
                     f" // {c_comment(t)}")
        lines.append('    putchar(0xFF);')
    lines.append("    return 0;\n}\n")
    src = tmp_path / "strings.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "strings"
    proc = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-trigraphs", str(src), "-o", str(exe)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = subprocess.run([str(exe)], capture_output=True).stdout
    assert out.split(b"\xff")[:-1] == [t.encode("utf-8") for t in texts]


def test_model_hash(plans):
    plan = plans("hello_world_int8")
    h = plan_hash(plan)
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    renamed = copy.deepcopy(plan)
    renamed.name = "other"
    for b in renamed.buffers.values():
        b.name = b.name + "!"
    assert plan_hash(renamed) == h  # names do not change what the firmware computes
    changed = copy.deepcopy(plan)
    changed.steps[0].params["weights"] = changed.steps[0].params["weights"].copy()
    changed.steps[0].params["weights"].flat[0] ^= 1
    assert plan_hash(changed) != h
    shifted = copy.deepcopy(plan)
    shifted.steps[1].params["output_offset"] += 1
    assert plan_hash(shifted) != h
    assert generate(plan).model_hash == h


def test_weights_are_exactly_the_plans_constants(plans):
    for name in ("ad01_int8", "hello_world_int8", "ic_int8"):
        plan = plans(name)
        gen = generate(plan)
        assert gen.weight_bytes == plan.weight_bytes
        assert all(a.name.startswith("tec_") for a in gen.arrays if a.weight)


# ---- export ----------------------------------------------------------------------------------

def hostile_plan(plan):
    q = copy.deepcopy(plan)
    for k, i in enumerate(sorted(q.buffers)):
        q.buffers[i].name = HOSTILE[k % len(HOSTILE)] + str(k)
    q.name = 'model "*/ \\ \n??/ */'
    for s in q.steps:
        s.op_type = s.op_type + '"*/\n'
    return q


def test_hostile_names_export_build_and_run(plans, tmp_path):
    plan = plans("hello_world_int8")
    evil = hostile_plan(plan)
    res = export_project(evil, "qemu_mps2_an386", tmp_path / "p")
    model_c = (res.out_dir / "src" / "model.c").read_text()
    code = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', model_c)  # outside string literals:
    assert code.count("/*") == code.count("*/")  # the injected text never ends a comment early
    code = re.sub(r"/\*.*?\*/", " ", code, flags=re.S)  # and without the comments:
    assert "int x;" not in code and "<stdio.h>" not in code and "??" not in code
    x = [CASES["hello_world_int8"].inputs[0][:50]]
    for dsp in (False, True):
        got = load_project(res.out_dir, evil, emulate_dsp=dsp).run(x)
        assert np.array_equal(got[0], run(plan, x)[0])
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not found: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi")
    from ternembed.build import build_project
    built = build_project(res.out_dir, use_platformio=False)
    assert built.checks_ok, built.summary()


def test_export_refuses_non_empty_dir_without_force(plans, tmp_path):
    plan = plans("hello_world_int8")
    out = tmp_path / "proj"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    with pytest.raises(TernembedError, match="--force"):
        export_project(plan, "qemu_mps2_an386", out)
    assert (out / "keep.txt").read_text() == "user data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]
    with pytest.raises(TernembedError, match="not written by ternembed export"):
        export_project(plan, "qemu_mps2_an386", out, force=True)  # --force replaces only exports
    assert (out / "keep.txt").read_text() == "user data"
    (out / "keep.txt").unlink()
    export_project(plan, "qemu_mps2_an386", out)
    res = export_project(plan, "qemu_mps2_an386", out, force=True)  # an earlier export: replaced
    assert (out / "src" / "model.c").is_file()
    assert "src/main.c" in res.files and "ternembed_plan.json" in res.files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]
    empty = tmp_path / "empty"
    empty.mkdir()
    export_project(plan, "nucleo_f446re", empty)  # an empty folder is fine
    assert (empty / "platformio.ini").is_file()
    (tmp_path / "file").write_text("x")
    with pytest.raises(TernembedError):
        export_project(plan, "qemu_mps2_an386", tmp_path / "file")


def test_failed_export_leaves_nothing(plans, tmp_path):
    plan = copy.deepcopy(plans("hello_world_int8"))
    plan.steps[1].kernel = "no_such_kernel"
    target = tmp_path / "a" / "b" / "proj"
    with pytest.raises(UnsupportedOpError, match="no_such_kernel"):
        export_project(plan, "qemu_mps2_an386", target)
    assert list(tmp_path.iterdir()) == []
    # with force over an existing project: the old project survives a failed export
    good = plans("hello_world_int8")
    old = tmp_path / "old"
    export_project(good, "qemu_mps2_an386", old)
    before = (old / "src" / "model.c").read_text()
    with pytest.raises(UnsupportedOpError):
        export_project(plan, "qemu_mps2_an386", old, force=True)
    assert (old / "src" / "model.c").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]


def test_export_project_contents(plans, tmp_path):
    import json
    plan = plans("micro_speech")
    x = [CASES["micro_speech"].inputs[0]]
    res = export_project(plan, "nucleo_f446re", tmp_path / "ms", test_inputs=x)
    d = res.out_dir
    info = json.loads((d / "ternembed_plan.json").read_text())
    assert info["model_hash"] == plan_hash(plan) == res.model_hash
    assert info["planned"]["weight_bytes"] == plan.weight_bytes
    assert info["planned"]["arena_bytes"] == res.arena_bytes == plan_memory(plan).arena_bytes
    assert info["test_vectors"]["samples"] == res.test_samples == 4
    ini = (d / "platformio.ini").read_text()
    assert "default_envs = nucleo_f446re" in ini and "platform = ststm32" in ini
    assert "board_build.ldscript = firmware/platform/ld/nucleo_f446re.ld" in ini
    assert "-O3" in ini and "-Werror" in ini
    make = (d / "Makefile").read_text()
    assert "\t$(CC) $(CFLAGS)" in make and "-Wall -Wextra -Werror" in make
    kernels = sorted(p.name for p in (d / "firmware" / "kernels").glob("*.c"))
    assert kernels == ["te_dw_span_s8.c", "te_dwconv_s8.c", "te_fc_s8.c", "te_nn_mat_mult_s8.c", "te_reshape_s8.c",
                       "te_softmax_s8.c"]  # only what the model calls
    for f in ("src/model.h", "firmware/include/te_kernels_mac.h", "firmware/kernels/te_dwconv_s8.c",
              "firmware/platform/te_startup.c", "firmware/platform/ld/qemu_mps2_an500.ld",
              "tools/ternembed_pio.py", "README.md"):
        assert (d / f).is_file(), f
    header = (d / "src" / "model.h").read_text()
    for api in ("int te_model_invoke(void);", "TE_MODEL_ARENA_BYTES", "te_model_layer_names",
                "TE_LAYER_BEGIN", "te_model_input(uint32_t i)"):
        assert api in header
    model_c = (d / "src" / "model.c").read_text()
    assert model_c.count("TE_LAYER_BEGIN(") == len(plan.steps) + 1  # + the default definition
    assert plan_hash(plan) in model_c


def test_conv_scratch_size_matches_c(plans):
    """memory.py's mirror of te_conv_s8_get_buffer_size() returns what the C function does
    (0 only on the im2col-free path, where the kernel takes NULL)."""
    import ctypes

    from ternembed.hostc import load_shared
    from ternembed.memory import conv_direct
    from ternembed.resources import resource_dir

    fw = resource_dir("firmware")
    lib = load_shared([fw / "kernels" / "te_conv_s8.c", fw / "kernels" / "te_nn_mat_mult_s8.c"],
                      [fw / "include"])

    class Dims(ctypes.Structure):
        _fields_ = [(k, ctypes.c_int32) for k in "nhwc"]

    lib.te_conv_s8_get_buffer_size.restype = ctypes.c_int32
    seen = 0
    for name in ("ic_int8", "kws_int8", "vww_int8", "sww_int8"):
        plan = plans(name)
        for step in plan.steps:
            if step.kernel != "conv_s8":
                continue
            x = plan.buffers[step.inputs[0]].shape
            w = step.params["weights"].shape
            c_size = lib.te_conv_s8_get_buffer_size(ctypes.byref(Dims(*x)), ctypes.byref(Dims(*w)))
            want = 0 if conv_direct(plan, step) else c_size
            assert step_scratch_bytes(plan, step) == want
            seen += 1
    assert seen > 10
