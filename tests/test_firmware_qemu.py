# SPDX-License-Identifier: Apache-2.0
"""The self-test firmware of every shared model runs to PASS under QEMU, with the planned sizes.

* mps2-an386 (Cortex-M4F, DSP path) and mps2-an500 (Cortex-M7, DSP path): each shared int8
  model whose kernels all have C emitters is exported once, built with its Makefile
  (-Wall -Wextra -Werror), checked against the plan (weights, arena, vectors exactly; code
  and static RAM within the stated allowances) and run; the firmware compares every output
  byte with the emulator's and must print TE-SELFTEST PASS and exit 0.
* warnings-as-errors cross builds for Cortex-M0+ (portable path, run on the M4 machine: an
  ARMv6-M image runs there unchanged), M4F, M7 and M33 (also run on mps2-an505).
* a model too big for a board is reported with the overflow in bytes.
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from shared_data import int8_cases
from ternembed.boards import get_board
from ternembed.build import DoesNotFitError, build_project
from ternembed.codegen import EMITTERS
from ternembed.errors import UnsupportedOpError
from ternembed.lower import lower
from ternembed.render import export_project
from ternembed.tflite import read

pytestmark = pytest.mark.qemu

CASES = {c.name: c for c in int8_cases()}
BOARDS = ["qemu_mps2_an386", "qemu_mps2_an500"]
SAMPLES = 3  # self-test vectors per model (fewer when they would exceed the vector budget)
RESULTS: dict[tuple[str, str], dict] = {}


def _need_tools():
    for tool, pkg in (("arm-none-eabi-gcc", "gcc-arm-none-eabi libnewlib-arm-none-eabi"),
                      ("qemu-system-arm", "qemu-system-arm")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found: apt-get install {pkg}")


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """name -> exported project folder (exported once per model for the whole module)."""
    root = tmp_path_factory.mktemp("fw")
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            try:
                plan = lower(read(CASES[name].model))
            except UnsupportedOpError as exc:
                pytest.skip(f"{name}: not lowered yet ({exc})")
            missing = sorted({s.kernel for s in plan.steps} - set(EMITTERS))
            if missing:
                pytest.skip(f"{name}: kernels without a C emitter yet: {', '.join(missing)}")
            x = [a[:SAMPLES] for a in CASES[name].inputs]
            cache[name] = (plan, export_project(plan, BOARDS[0], root / name, test_inputs=x))
        return cache[name]
    return get


def _run(elf, board_name, timeout=120.0):
    from ternembed.device.qemu import run_semihosted
    code, out = run_semihosted(elf, get_board(board_name), timeout=timeout, icount=False)
    return code, out.decode(errors="replace")


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_selftest_passes_on_qemu(projects, name, board):
    _need_tools()
    plan, exp = projects(name)
    built = build_project(exp.out_dir, board, use_platformio=False)
    assert built.checks_ok, built.summary()
    assert built.fits
    assert built.symbols["weight_bytes"] == plan.weight_bytes
    assert built.symbols["arena_bytes"] == exp.arena_bytes
    code, text = _run(built.elf, board)
    assert f"TE-SELFTEST PASS {exp.test_samples}/{exp.test_samples}" in text, text[-2000:]
    assert code == 0, text[-2000:]
    assert f"hash={exp.model_hash}" in text
    RESULTS[(name, board)] = dict(flash=built.flash_bytes, arena=exp.arena_bytes,
                                  weights=plan.weight_bytes, samples=exp.test_samples)


# ---- cross builds ----------------------------------------------------------------------------

CORES = {
    # core: (board to link for, CPU flag override or None, board to run on or None, DSP path?)
    "cortex-m0plus": ("qemu_mps2_an386", "-mcpu=cortex-m0plus -mthumb", "qemu_mps2_an386", False),
    "cortex-m4f": ("nucleo_f446re", None, None, True),
    "cortex-m7": ("nucleo_h743zi", None, None, True),
    "cortex-m33": ("qemu_mps2_an505", None, "qemu_mps2_an505", True),
}


@pytest.fixture(scope="module")
def cross_project(tmp_path_factory):
    """The zoo model (every int8 kernel) plus a float-in/float-out model's kernels: the zoo, and
    the magic wand (QUANTIZE from float, DEQUANTIZE to float)."""
    from test_codegen import zoo_model
    root = tmp_path_factory.mktemp("cross")
    path = root / "zoo.tflite"
    path.write_bytes(zoo_model())
    plan = lower(read(path))
    rng = np.random.default_rng(5)
    x = [rng.integers(-128, 128, (4, 6, 6, 4)).astype(np.int8),
         rng.integers(-128, 128, (4, 1, 1, 8)).astype(np.int8)]
    return export_project(plan, "qemu_mps2_an386", root / "zoo_project", test_inputs=x)


@pytest.mark.parametrize("core", list(CORES))
def test_cross_build_warning_free(cross_project, core):
    _need_tools()
    board, flags, run_on, dsp = CORES[core]
    d = cross_project.out_dir
    build_dir = f"build/{core}"
    cmd = ["make", "-C", str(d), f"BOARD={board}", f"BUILD={build_dir}", "-j2"]
    if flags:
        cmd.append(f"CPU_FLAGS_{board}={flags}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "warning" not in proc.stderr.lower(), proc.stderr
    elf = d / build_dir / "firmware.elf"
    objdump = shutil.which("arm-none-eabi-objdump")
    if objdump:
        asm = subprocess.run([objdump, "-d", str(d / build_dir / "firmware/kernels/te_nn_mat_mult_s8.o")],
                             capture_output=True, text=True).stdout
        assert ("smlad" in asm) == dsp, f"{core}: the {'DSP' if dsp else 'portable'} path was expected"
    from ternembed.build import check_elf
    import json
    planned = {k: int(v) for k, v in json.loads((d / "ternembed_plan.json").read_text())["planned"].items()}
    result = check_elf(elf, get_board(board), planned, "make")
    assert result.checks_ok, result.summary()
    if run_on:
        code, text = _run(elf, run_on)
        assert code == 0 and "TE-SELFTEST PASS" in text, text[-2000:]


def test_float_edges_on_qemu(projects):
    """A model with float32 input and output (QUANTIZE / DEQUANTIZE at the edges) on the M7."""
    _need_tools()
    name = "mltk_autoencoder_example"
    _, exp = projects(name)
    built = build_project(exp.out_dir, "qemu_mps2_an500", use_platformio=False)
    code, text = _run(built.elf, "qemu_mps2_an500")
    assert code == 0 and "TE-SELFTEST PASS" in text, text[-2000:]


def test_build_without_make_calls_gcc_directly(projects, monkeypatch):
    """No `make` on the PATH: the same sources and flags, arm-none-eabi-gcc called directly."""
    _need_tools()
    import ternembed.build as build_mod
    _, exp = projects("micro_speech")
    real_which = shutil.which
    monkeypatch.setattr(build_mod.shutil, "which",
                        lambda name, *a, **k: None if name == "make" else real_which(name, *a, **k))
    built = build_project(exp.out_dir, "qemu_mps2_an386", use_platformio=False)
    assert built.method == "gcc" and built.checks_ok, built.summary()
    code, text = _run(built.elf, "qemu_mps2_an386")
    assert code == 0 and "TE-SELFTEST PASS" in text, text[-2000:]


def test_too_big_for_the_board_says_by_how_much(projects):
    _need_tools()
    name = "ic_large_int8"
    plan, exp = projects(name)
    board = get_board("nucleo_f446re")  # 128 KiB RAM: the arena + stack do not fit
    assert exp.arena_bytes + 8192 > board.ram.size
    with pytest.raises(DoesNotFitError) as info:
        build_project(exp.out_dir, board, use_platformio=False)
    assert info.value.overflow and all(v > 0 for v in info.value.overflow.values())
    assert info.value.exit_code == 4
    message = str(info.value)
    assert "RAM overflowed by" in message and "fits with a board with room: " in message, message
    assert "nucleo_l4r5zi" in message  # 640 KB of RAM: a board it fits


def test_too_big_exits_4_from_every_build_path(projects, monkeypatch, capsys):
    """make, arm-none-eabi-gcc directly and the CLI all report an overflow as exit code 4."""
    _need_tools()
    from ternembed import build as build_mod
    from ternembed.cli import main
    plan, exp = projects("ic_large_int8")
    assert main(["build", str(exp.out_dir), "--board", "nucleo_f446re", "--platformio", "no"]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "RAM overflowed by" in err[0] and "fits with" in err[0], err
    real_which = build_mod.shutil.which
    monkeypatch.setattr(build_mod.shutil, "which",
                        lambda name, *a, **k: None if name == "make" else real_which(name, *a, **k))
    with pytest.raises(DoesNotFitError) as info:
        build_project(exp.out_dir, "nucleo_f446re", use_platformio=False)
    assert "arm-none-eabi-gcc" in str(info.value) and "RAM overflowed by" in str(info.value)


def test_export_warns_of_an_overflow_before_any_build(tmp_path, capsys):
    """The plan alone shows the board is too small: export says so, with the fix, and exits 4."""
    from tflite_builder import Tensor, single_op_model
    from ternembed.cli import main
    # one 1x1 conv from 80 KB to 80 KB: nothing to stream (ic_large_int8 fits streamed)
    model = tmp_path / "big.tflite"
    model.write_bytes(single_op_model("CONV_2D", [
        Tensor((1, 100, 100, 8), "int8", 0.05, 0, name="x"),
        Tensor((8, 1, 1, 8), "int8", [0.01] * 8, [0] * 8, data=np.eye(8, dtype=np.int8).reshape(8, 1, 1, 8)),
        Tensor((8,), "int32", [5e-4] * 8, [0] * 8, data=np.zeros(8, np.int32))],
        [Tensor((1, 100, 100, 8), "int8", 0.05, 0, name="y")], {"padding": "VALID", "stride_h": 1, "stride_w": 1}))
    out = tmp_path / "p"
    code = main(["export", str(model), "--board", "nucleo", "-o", str(out), "--method", "int8"])
    text = capsys.readouterr().out
    assert code == 4 and (out / "ternembed_plan.json").is_file()
    assert "does not fit nucleo_f446re even before code is added: RAM overflowed by" in text, text
    assert "next: ternembed build" not in text


def test_print_table(request):
    """Not a check: prints model x (flash, arena, TFLM arena, QEMU PASS) for the run (pytest -s)."""
    if not RESULTS:
        pytest.skip("no firmware ran")
    try:
        from ternembed.reference import tflm_arena_bytes
    except ImportError:  # pragma: no cover
        tflm_arena_bytes = None
    lines = [f"{'model':<32} {'board':<16} {'flash':>8} {'arena':>7} {'TFLM':>7}  QEMU"]
    for (name, board), r in sorted(RESULTS.items()):
        try:
            tflm = tflm_arena_bytes(CASES[name].model) if tflm_arena_bytes else "-"
        except Exception:  # noqa: BLE001 - informative only
            tflm = "-"
        lines.append(f"{name:<32} {board:<16} {r['flash']:>8} {r['arena']:>7} {tflm:>7}  PASS")
    print("\n" + "\n".join(lines))
