# SPDX-License-Identifier: Apache-2.0
"""Nothing is left behind and nothing that is not ours is touched: stale run records, killed runs."""
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hardening import BOARD, ENV, MODEL, TEST_SET, assert_one_line, limited, run, whole_export
from ternembed.device.run import RUN_FILE, running, stop_detached



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
    export_model(MODEL, BOARD, project, ternary=False)
    build_project(project, use_platformio=False)
    return project


KILLED = {  # a command that starts QEMU, and what it leaves behind
    "validate": lambda p, out: ["validate", p, "--qemu", "--no-build", "--data", TEST_SET, "-o", out, "-q"],
    "bench": lambda p, out: ["bench", p, "--qemu", "--no-build", "--runs", "1000000", "-o", out, "-q"],
    "run": lambda p, out: ["run", p, "--no-build"],
}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
@pytest.mark.parametrize("command", KILLED)
def test_killing_a_command_leaves_no_emulator(built_project, tmp_path, command, sig):
    """SIGTERM or SIGKILL while QEMU runs: QEMU goes too; validate's report says incomplete (SIGTERM)."""
    report = tmp_path / "report.json"
    proc = subprocess.Popen([sys.executable, "-m", "ternembed", *map(str, KILLED[command](built_project, report))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        deadline = time.monotonic() + 60
        qemu = []
        while time.monotonic() < deadline and not qemu and proc.poll() is None:
            qemu = _children(proc.pid, "qemu-system-arm")
            time.sleep(0.05)
        assert qemu, f"{command} did not start QEMU"
        while command == "validate" and time.monotonic() < deadline and not report.exists():
            time.sleep(0.05)
        time.sleep(0.3)  # bench and run: well into their loop
        proc.send_signal(sig)
        code = proc.wait(30)
        assert _gone(qemu[0]), f"QEMU {qemu[0]} outlived {command} ({sig.name})"
        if sig == signal.SIGTERM and command != "run":  # run stops QEMU on Ctrl-C or SIGTERM, its normal end
            assert code == 143
        if sig == signal.SIGTERM and command == "validate":
            assert json.loads(report.read_text())["status"] == "incomplete"
    finally:
        proc.kill()
        proc.wait()


def test_run_detach_that_cannot_write_its_record_leaves_no_emulator(built_project):
    """No record means no `run --stop` later: QEMU is stopped and the error is one line."""
    elf = str(built_project / "build" / BOARD / "firmware.elf")
    before = {p for p in _qemus() if elf in p[1]}
    assert_one_line(limited(300, "run", built_project, "--detach", "--no-build"), "File too large")
    assert {p for p in _qemus() if elf in p[1]} == before and not (built_project / RUN_FILE).exists()


def _qemus() -> set[tuple[int, str]]:
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if entry.name.isdigit() and "qemu-system-arm" in cmd and _alive(int(entry.name)):
            found.add((int(entry.name), cmd))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][:1] != "Z"
    except OSError:
        return False


# ---- export: --force replaces only earlier exports, and a kill never leaves half a project ----------

def _export(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "ternembed", "export", str(MODEL), "-b", BOARD, *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=ENV)
    return proc.returncode, proc.stderr


def test_force_replaces_only_an_earlier_export(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    code, err = _export("-o", mine, "--force")
    assert code == 2 and "not written by ternembed export" in err and len(err.strip().splitlines()) == 1
    assert (mine / "thesis.tex").read_text() == "years of work" and len(list(mine.iterdir())) == 1
    for target in ("/", str(Path.home()), ".", ".."):
        code, err = _export("-o", target, "--force", cwd=mine)
        assert code == 2 and "never written over it" in err, (target, err)
        code, err = run("demo", "-o", target, cwd=mine)  # the demo replaces its folder too
        assert code == 2 and "never written over it" in err, (target, err)
    assert (mine / "thesis.tex").read_text() == "years of work" and len(list(mine.iterdir())) == 1
    project = tmp_path / "p"
    assert _export("-o", project, "--optimize", "size")[0] == 0
    assert _export("-o", project, "--force", "--method", "int8")[0] == 0
    assert json.loads((project / "report.json").read_text())["quantization"] is None  # the new one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "p"]  # no staging folder left


# Kills the export at its Nth write: every file opened for writing, folder made, rename, chmod and
# removal counts (Python's audit events), so a test can stop it at each step, the final renames included.
KILL_AT_WRITE = """
import os, runpy, signal, sys
sys.dont_write_bytecode = True
n, seen = int(sys.argv.pop(1)), []
WRITES = {"os.rename": "r", "os.remove": "d", "os.rmdir": "d", "os.mkdir": "m", "shutil.rmtree": "t", "os.chmod": "c"}
def hook(event, args):
    if event == "open" and (args[1] is None and args[2] & (os.O_WRONLY | os.O_RDWR)
                            or isinstance(args[1], str) and set(args[1]) & set("wax+")) or event in WRITES:
        seen.append(WRITES.get(event, "w"))
        if len(seen) == n:
            os.kill(os.getpid(), signal.SIGKILL)
import ternembed.cli
sys.addaudithook(hook)
sys.argv[0] = "ternembed"
try:
    runpy.run_module("ternembed", run_name="__main__")
finally:
    print("writes:", "".join(seen), file=sys.stderr)  # one letter a write: r rename, t rmtree, w file...
"""


def test_a_forced_export_killed_at_any_write_leaves_the_old_project_or_the_new_one(tmp_path):
    pristine, base = tmp_path / "old", tmp_path / "w"
    project = base / "p"
    assert _export("-o", pristine, "--method", "int8")[0] == 0
    old = whole_export(pristine)
    new_args = ["export", MODEL, "-b", BOARD, "-o", project, "--force", "--optimize", "size"]  # ternary layers

    def export_killed_at(n: int) -> str:
        """The new export over a fresh copy of the old project (the same writes each time), killed at write n."""
        shutil.rmtree(base, ignore_errors=True)
        shutil.copytree(pristine, project)
        proc = subprocess.run([sys.executable, "-c", KILL_AT_WRITE, str(n), *map(str, new_args)], env=ENV,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == (-signal.SIGKILL if n else 0), proc.stderr
        return proc.stderr
    writes = export_killed_at(0).rsplit("writes: ", 1)[1].strip()  # a whole run: its writes, one letter each
    new = whole_export(project)
    assert new not in (None, old)
    # Every write next to a rename or a removal of a folder (the staged files put in place, the
    # exchange, the old project removed); of the others (files written into the staging folder,
    # where a kill always leaves the same) every 20th.
    near = {k + d for k, c in enumerate(writes, 1) if c in "rt" for d in (-1, 0, 1)}
    steps = sorted({n for n in near if 1 <= n <= len(writes)} | {*range(1, len(writes) + 1, 20), len(writes)})
    for n in steps:
        export_killed_at(n)
        assert whole_export(project) in (old, new), f"killed at write {n} of {len(writes)} ({writes[n - 1]}): " \
            f"{sorted(p.name for p in project.iterdir()) if project.is_dir() else 'no project'}"
    for n in (len(writes) // 2, len(writes)):  # killed while staging, or while removing the old project
        export_killed_at(n)
        assert len(list(base.iterdir())) == 2  # the project and a staging folder
        assert _export("-o", project, "--force")[0] == 0  # the next export removes what the killed one left
        assert [p.name for p in base.iterdir()] == ["p"]
