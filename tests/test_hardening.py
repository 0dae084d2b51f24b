# SPDX-License-Identifier: Apache-2.0
"""Nothing is left behind and nothing that is not ours is touched: stale run records, killed runs."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ternembed.device.run import RUN_FILE, running, stop_detached

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "examples" / "digits"


def test_a_stale_run_record_never_signals_an_unrelated_process(tmp_path):
    """A record whose PID now belongs to another process (or is PID 1) is dropped, not signalled."""
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        for pid in (sleeper.pid, 1):
            (tmp_path / RUN_FILE).write_text(json.dumps({"pid": pid, "url": "socket://127.0.0.1:1",
                                                         "command": ["qemu-system-arm"], "proc_start": "1"}))
            assert running(tmp_path) is None
            assert not (tmp_path / RUN_FILE).exists()  # the stale record is gone
            (tmp_path / RUN_FILE).write_text(json.dumps({"pid": pid, "command": ["sleep", "30"]}))
            assert stop_detached(tmp_path) is False
        time.sleep(0.2)
        assert sleeper.poll() is None, "an unrelated process was signalled"
    finally:
        sleeper.kill()
        sleeper.wait()


def _children(pid: int, name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(") ", 1)[1].split()[1]) == pid and name.encode() in cmd:
            found.append(int(entry.name))
    return found


def _gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][:1] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def built_project(tmp_path_factory):
    for tool, pkg in (("arm-none-eabi-gcc", "gcc-arm-none-eabi"), ("qemu-system-arm", "qemu-system-arm")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found: apt-get install {pkg}")
    from ternembed.build import build_project
    from ternembed.pipeline import export_model
    project = tmp_path_factory.mktemp("kill") / "p"
    export_model(DIGITS / "digits_int8.tflite", "qemu_mps2_an386", project, ternary=False)
    build_project(project, use_platformio=False)
    return project


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killing_validate_leaves_no_emulator(built_project, sig):
    report = built_project / f"validate-{sig.name}.json"
    proc = subprocess.Popen([sys.executable, "-m", "ternembed", "validate", str(built_project), "--qemu",
                             "--no-build", "--data", str(DIGITS / "digits_test.npz"), "-o", str(report), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    try:
        deadline = time.monotonic() + 60
        qemu = []
        while time.monotonic() < deadline and not qemu and proc.poll() is None:
            qemu = _children(proc.pid, "qemu-system-arm")
            time.sleep(0.05)
        assert qemu, "validate did not start QEMU"
        while time.monotonic() < deadline and not report.exists():
            time.sleep(0.05)
        proc.send_signal(sig)
        code = proc.wait(30)
        assert _gone(qemu[0]), f"QEMU {qemu[0]} outlived validate ({sig.name})"
        if sig == signal.SIGTERM:
            assert code == 143
            assert json.loads(report.read_text())["status"] == "incomplete"
    finally:
        proc.kill()
        proc.wait()


# ---- export: --force replaces only earlier exports, and a kill never leaves half a project ----------

def _export(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "ternembed", "export", str(DIGITS / "digits_int8.tflite"),
                           "-b", "qemu_mps2_an386", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    return proc.returncode, proc.stderr


def test_force_replaces_only_an_earlier_export(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    code, err = _export("-o", mine, "--force")
    assert code == 2 and "not written by ternembed export" in err and len(err.strip().splitlines()) == 1
    assert (mine / "thesis.tex").read_text() == "years of work" and len(list(mine.iterdir())) == 1
    for target in ("/", str(Path.home()), "."):
        code, err = _export("-o", target, "--force", cwd=mine)
        assert code == 2 and "never written over it" in err, (target, err)
    assert (mine / "thesis.tex").read_text() == "years of work" and len(list(mine.iterdir())) == 1
    project = tmp_path / "p"
    assert _export("-o", project, "--optimize", "speed")[0] == 0
    assert _export("-o", project, "--force", "--method", "int8")[0] == 0
    assert json.loads((project / "report.json").read_text())["quantization"] is None  # the new one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "p"]  # no staging folder left


def _whole(project: Path) -> bool:
    """Every part of one export: its report names the model hash its plan summary has."""
    try:
        report = json.loads((project / "report.json").read_text())
        plan = json.loads((project / "ternembed_plan.json").read_text())
    except (OSError, ValueError):
        return False
    return (report["model_hash"] == plan["model_hash"] and (project / ".ternembed-project").is_file()
            and (project / "src" / "model.c").is_file() and (project / "ternembed_plan.npz").is_file())


def test_a_killed_forced_export_leaves_the_old_project_or_the_new_one(tmp_path):
    project = tmp_path / "p"
    assert _export("-o", project, "--method", "int8")[0] == 0
    old_hash = json.loads((project / "report.json").read_text())["model_hash"]
    t0 = time.monotonic()
    assert _export("-o", project, "--force", "--optimize", "speed")[0] == 0  # ternary layers
    took = time.monotonic() - t0
    new_hash = json.loads((project / "report.json").read_text())["model_hash"]
    assert old_hash != new_hash
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for k in range(12):  # kills spread over the whole export, the final renames included
        method = ["--method", "int8"] if k % 2 else ["--optimize", "speed"]
        proc = subprocess.Popen([sys.executable, "-m", "ternembed", "export", str(DIGITS / "digits_int8.tflite"),
                                 "-b", "qemu_mps2_an386", "-o", str(project), "--force", *method],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(took * (0.55 + 0.45 * k / 11))
        proc.kill()
        proc.wait()
        assert _whole(project), f"kill {k}: {sorted(p.name for p in project.iterdir())}"
        assert json.loads((project / "report.json").read_text())["model_hash"] in (old_hash, new_hash)
    assert _export("-o", project, "--force")[0] == 0  # the next export removes what killed ones left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]
