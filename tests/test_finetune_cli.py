# SPDX-License-Identifier: Apache-2.0
"""`ternembed export --finetune` and ternembed.finetune.finetune: the exported fine-tuned plan
validates bit-exactly on QEMU over the serial protocol; bad input is one line, exit 2, nothing
written (the twin and lowering themselves: test_finetune.py)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax", reason="fine-tuning needs the [train] extra: pip install -e '.[train]'")
pytest.importorskip("optax", reason="fine-tuning needs the [train] extra: pip install -e '.[train]'")

from ternembed.errors import InputError  # noqa: E402
from ternembed.pipeline import build_plan, ternary_config  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "examples" / "digits"
MODEL = DIGITS / "digits_int8.tflite"


@pytest.fixture(scope="module")
def digits():
    with np.load(DIGITS / "digits_test.npz") as d:
        return d["x_int8"], d["y"]


def test_bad_training_data_is_refused(digits):
    from ternembed.finetune import finetune
    int8_plan, _ = build_plan(MODEL)
    cfg = ternary_config()
    x, y = digits
    with pytest.raises(InputError, match="NaN"):
        finetune(int8_plan, cfg, np.full((4, 64), np.nan, np.float32), progress=False)
    with pytest.raises(InputError, match="labels"):
        finetune(int8_plan, cfg, x[:10], y[:9], epochs=1, progress=False)
    with pytest.raises(InputError):
        finetune(int8_plan, cfg, x[:0], epochs=1, progress=False)
    with pytest.raises(InputError):
        finetune(int8_plan, cfg, x[:10, :32], epochs=1, progress=False)


def test_missing_jax_is_one_line(monkeypatch):
    from ternembed.finetune import require_jax
    monkeypatch.setitem(sys.modules, "jax", None)
    with pytest.raises(InputError, match=r"ternembed\[train\]"):
        require_jax()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "ternembed", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


@pytest.mark.parametrize("command", ["export", "finetune"])
@pytest.mark.parametrize("bad", ["shape", "nan", "labels", "empty"])
def test_cli_bad_finetune_data_exit_2_nothing_written(tmp_path, digits, bad, command):
    x, y = digits
    data = {"shape": dict(x=x[:20, :10]), "nan": dict(x=np.full((20, 64), np.nan, np.float32)),
            "labels": dict(x=x[:20], y=y[:19]), "empty": dict(x=x[:0])}[bad]
    np.savez(tmp_path / "train.npz", **data)
    out = tmp_path / "proj"
    args = (["--finetune", tmp_path / "train.npz", "--finetune-epochs", 1] if command == "export"
            else ["--data", tmp_path / "train.npz", "--epochs", 1])
    proc = _cli(command, MODEL, "--board", "qemu_mps2_an386", "-o", out, *args)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not out.exists()

@pytest.mark.qemu
def test_cli_export_finetune_validates_bit_exact_on_qemu(tmp_path, digits):
    import shutil
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("needs arm-none-eabi-gcc and qemu-system-arm")
    from ternembed.boards import get_board
    from ternembed.build import build_project
    from ternembed.device.qemu import QemuSession
    from ternembed.device.validate import validate
    x, y = digits
    np.savez(tmp_path / "train.npz", x=x[:300], y=y[:300])
    out = tmp_path / "proj"
    proc = _cli("export", MODEL, "--board", "qemu_mps2_an386", "-o", out, "--first-last", "ternary",
                "--optimize", "speed", "--finetune", tmp_path / "train.npz", "--finetune-epochs", 2)
    assert proc.returncode == 0, proc.stderr
    assert "fine-tuned 2 epoch(s)" in proc.stdout
    res = build_project(out, use_platformio=False)
    with QemuSession(res.elf, get_board("qemu_mps2_an386")) as q:
        v = validate(out, q.url, [x[300:340]], y[300:340], progress=False, invoke_timeout=60)
    assert v.status == "complete" and v.exact == 40 and not v.mismatches


def test_finetune_with_int8_first_and_last_layers(digits):
    # the int8 MAC steps are frozen constants of the traced twin (regression: they were traced)
    from ternembed.finetune import finetune
    x, y = digits
    int8_plan, _ = build_plan(MODEL)
    plan, report = finetune(int8_plan, ternary_config(), x[:200], y[:200], epochs=1, progress=False)
    assert [s.kernel for s in plan.steps] == ["fc_s8", "fc_t2_s8", "fc_s8", "softmax_s8"]
    assert report.metric == "accuracy" and len(report.history) == 2


@pytest.mark.qemu
def test_finetune_command_rtn_validates_bit_exact_on_qemu(tmp_path, digits):
    # `ternembed finetune` with a learned method (RTN scale + offset: the `to` kernels) writes a
    # project that builds and validates like any export
    import shutil
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("needs arm-none-eabi-gcc and qemu-system-arm")
    x, y = digits
    np.savez(tmp_path / "train.npz", x=x[:300], y=y[:300])
    np.savez(tmp_path / "test.npz", x=x[300:340], y=y[300:340])
    out = tmp_path / "proj"
    proc = _cli("finetune", MODEL, "--data", tmp_path / "train.npz", "--eval", tmp_path / "test.npz", "--board",
                "qemu_mps2_an386", "-o", out, "--method", "offset", "--group", 16, "--first-last", "ternary",
                "--optimize", "speed", "--epochs", 2)
    assert proc.returncode == 0, proc.stderr
    assert "fine-tuned 2 epoch(s)" in proc.stdout
    proc = _cli("build", out)
    assert proc.returncode == 0, proc.stderr
    proc = _cli("validate", out, "--qemu", "--data", tmp_path / "test.npz", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import json
    rep = json.loads(proc.stdout)
    assert rep["agreement"]["outputs_bit_exact"] == 40 and not rep["mismatches"], rep
