# SPDX-License-Identifier: Apache-2.0
"""Every file the CLI reads or writes, gone wrong: bad data, outputs that cannot be written, a full
disk, damaged projects, missing tools. Each is one line on stderr, exit 2, and the user's files are
unchanged (an export is the old project, whole, or the new one, whole)."""
import os
import pickle
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hardening import (BOARD, ENV, MODEL, NO_PORT, TEST_SET, assert_one_line, cli, limited, run, snapshot,
                       whole_export)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """An int8 protocol export of the digits model (not built: nothing here runs it)."""
    p = tmp_path_factory.mktemp("project") / "p"
    assert cli("export", MODEL, "-b", BOARD, "-o", p, "--method", "int8")[0] == 0
    return p


@pytest.fixture(scope="module")
def int8_inputs(tmp_path_factory) -> Path:
    """Three digits as the int8 model takes them, for emulate -i."""
    from ternembed.data import load_inputs
    from ternembed.pipeline import build_plan
    plan, _ = build_plan(MODEL)
    x = tmp_path_factory.mktemp("inputs") / "x8.npy"
    np.save(x, load_inputs(TEST_SET, plan)[0][0][:3])
    return x


# ---- data files: every loader, every flag ----------------------------------------------------------

def _bad_files(d: Path) -> dict[str, Path]:
    d.mkdir()
    files = {"empty file": d / "empty.npz"}
    files["empty file"].write_bytes(b"")
    np.savez(d / "good.npz", x=np.zeros((4, 64), np.float32))
    files["truncated"] = d / "truncated.npz"
    files["truncated"].write_bytes((d / "good.npz").read_bytes()[:100])
    files["header only"] = d / "header.npy"
    files["header only"].write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, "
                                     b"'shape': (4, 64), }" + b" " * 50 + b"\n")
    files["pickled"] = d / "pickled.npy"
    np.save(files["pickled"], np.array([{"a": 1}], dtype=object), allow_pickle=True)
    files["a raw pickle"] = d / "raw.npz"
    files["a raw pickle"].write_bytes(pickle.dumps({"x": [1, 2]}))
    files["a text file"] = d / "notes.npy"
    files["a text file"].write_text("x = 1, 2, 3\n")
    files["strings"] = d / "strings.npy"
    np.save(files["strings"], np.array([["a"] * 64] * 2))
    nan = np.zeros((3, 64), np.float32)
    nan[1, 5] = np.nan
    files["NaN"] = d / "nan.npy"
    np.save(files["NaN"], nan)
    files["no samples"] = d / "nosamples.npy"
    np.save(files["no samples"], np.zeros((0, 64), np.float32))
    files["labels of the wrong length"] = d / "labels.npz"
    np.savez(files["labels of the wrong length"], x=np.zeros((4, 64), np.float32), y=np.arange(3))
    files["a non-image in an image folder"] = d / "images"
    (d / "images").mkdir()
    (d / "images" / "a.png").write_text("not an image")
    return files


def test_bad_data_files_give_one_line_and_exit_2_everywhere(tmp_path, project):
    files = _bad_files(tmp_path / "bad")
    before = snapshot(tmp_path, project)
    out = tmp_path / "x"
    for what, path in files.items():
        commands = [["export", MODEL, "-b", "nucleo", "-o", out, "--eval", path],
                    ["export", MODEL, "-b", "nucleo", "-o", out, "--finetune", TEST_SET, "--finetune-epochs", 1,
                     "--eval", path]]  # refused before the fine-tuning, not after it
        if what != "labels of the wrong length":  # only --eval, --labels and validate read labels
            commands.append(["export", MODEL, "-b", "nucleo", "-o", out, "--calib", path])
        if path.is_file():  # emulate and validate read no image folders
            commands += [["validate", project, "--data", path, "--port", NO_PORT], ["bench", project, "--data", path],
                         ["validate", project, "--data", TEST_SET, "--labels", path, "--port", NO_PORT]]
            if what != "labels of the wrong length":
                commands.append(["emulate", MODEL, "-i", path])
        for cmd in commands:
            assert_one_line(cli(*cmd))
    for cmd in (["emulate", MODEL, "-i", "/dev/zero"], ["validate", project, "--data", "/dev/zero"],
                ["validate", project, "--data", TEST_SET, "--labels", "/dev/zero"],
                ["export", MODEL, "-b", BOARD, "-o", out, "--calib", "/dev/zero"],
                ["export", MODEL, "-b", BOARD, "-o", out, "--eval", "/dev/zero"],
                ["export", MODEL, "-b", BOARD, "-o", out, "--config", "/dev/zero"]):  # never read without end
        assert_one_line(cli(*cmd), "/dev/zero")
    assert snapshot(tmp_path, project) == before  # nothing written, not even a validate.json


@pytest.mark.parametrize("config,words", [
    ("group = 1000", "group must be 4..64"), ("budget_bits = nan", "budget_bits"), ("budget_bits = inf", "budget_bits"),
    ("max_flash = -5", "bad size"), ("max_flash = nan", "bad size"), ("min_agreement = nan", "min_agreement"),
    ("planes = 0", "planes"), ("bogus = 1", "unknown config key"), ("[layers]\n0 = 5", "method spec"),
    ("\xff\xfe garbage", "not valid TOML"), ("group = ", "not valid TOML")])
def test_a_bad_config_file_is_one_line(tmp_path, config, words):
    toml = tmp_path / "q.toml"
    toml.write_bytes(config.encode("latin-1"))
    assert_one_line(cli("export", MODEL, "-b", BOARD, "-o", tmp_path / "x", "--config", toml, "--calib", TEST_SET),
                    words)
    assert [p.name for p in tmp_path.iterdir()] == ["q.toml"]


# ---- outputs that cannot be written ------------------------------------------------------------------

FILE_OUTPUTS = {  # a file output may replace a file (that is what -o means), never a folder or a device
    "emulate -o": lambda p, x: ["emulate", MODEL, "-i", x],
    "validate -o": lambda p, x: ["validate", p, "--data", TEST_SET, "--port", NO_PORT],
}
DIR_OUTPUTS = {
    "export -o": lambda p, x: ["export", MODEL, "-b", BOARD],
    "export -o --force": lambda p, x: ["export", MODEL, "-b", BOARD, "--force"],
    "bench -o": lambda p, x: ["bench", p, "--port", NO_PORT],
    "demo -o": lambda p, x: ["demo"],
    "finetune -o": lambda p, x: ["finetune", MODEL, "--data", TEST_SET, "-b", BOARD],
}


def _targets(tmp: Path) -> dict[str, tuple[Path, str]]:
    (tmp / "notes.txt").write_text("the user's notes")
    (tmp / "folder").mkdir()
    (tmp / "folder" / "keep.txt").write_text("keep")
    return {"a file": (tmp / "notes.txt", "not a folder"), "a folder": (tmp / "folder", "is a folder"),
            "under a file": (tmp / "notes.txt" / "sub" / "out", "which is a file"),
            "under /proc": (Path("/proc/ternembed-out"), "cannot write in /proc"),
            "a device": (Path("/dev/full"), "/dev/full")}


@pytest.mark.parametrize("writer", [*FILE_OUTPUTS, *DIR_OUTPUTS])
def test_an_output_that_cannot_be_written_is_one_line_before_the_work(tmp_path, project, int8_inputs, writer):
    targets = _targets(tmp_path)
    before = snapshot(tmp_path, project)
    is_file = writer in FILE_OUTPUTS
    args = (FILE_OUTPUTS if is_file else DIR_OUTPUTS)[writer](project, int8_inputs)
    for kind, (target, words) in targets.items():
        if kind == ("a file" if is_file else "a folder"):
            continue  # a file output replaces a file; a folder output is refused (not empty) elsewhere
        assert_one_line(cli(*args, "-o", target), words if kind != "a file" or not is_file else "")
    assert snapshot(tmp_path, project) == before
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # as root, a rename over it would have replaced it


def test_a_file_output_replaces_a_file_whole(tmp_path, int8_inputs):
    out = tmp_path / "notes.txt"
    out.write_text("old")
    assert cli("emulate", MODEL, "-i", int8_inputs, "-o", out)[0] == 0
    assert np.load(out).shape == (3, 10) and [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


# ---- a full disk ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def old_and_new(tmp_path_factory):
    """An int8 export (the old project) and the model hash of the ternary one that replaces it."""
    d = tmp_path_factory.mktemp("disk")
    assert cli("export", MODEL, "-b", BOARD, "-o", d / "new", "--optimize", "size")[0] == 0
    assert cli("export", MODEL, "-b", BOARD, "-o", d / "old", "--method", "int8")[0] == 0
    return d / "old", whole_export(d / "old"), whole_export(d / "new")


@pytest.mark.parametrize("limit", [200, 3000, 9000, 30000])
def test_a_full_disk_leaves_the_old_project_whole(tmp_path, old_and_new, limit):
    old, old_hash, _ = old_and_new
    project = tmp_path / "p"
    shutil.copytree(old, project)
    before = snapshot(project)
    assert_one_line(limited(limit, "export", MODEL, "-b", BOARD, "-o", project, "--force", "--optimize", "size"),
                    "File too large")
    assert snapshot(project) == before and whole_export(project) == old_hash
    assert [p.name for p in tmp_path.iterdir()] == ["p"]  # no staging folder, no temporary file


def test_a_full_disk_for_single_files(tmp_path, project, int8_inputs):
    before = snapshot(tmp_path, project)
    assert_one_line(limited(100, "emulate", MODEL, "-i", int8_inputs, "-o", tmp_path / "y.npy"), "File too large")
    assert_one_line(limited(100, "validate", project, "--data", TEST_SET, "--port", NO_PORT, "-o",
                             tmp_path / "v.json"), "File too large")
    assert snapshot(tmp_path, project) == before


def test_a_full_disk_during_a_build_is_one_line(tmp_path, project):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not found: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi")
    q = tmp_path / "q"
    shutil.copytree(project, q)
    assert_one_line(limited(3000, "build", q, "--platformio", "no"), "cannot write in", "File size limit exceeded")


def _unshare_works() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-rm", "true"], capture_output=True).returncode == 0


TMPFS = r"""
set -e
mount -t tmpfs -o size=64m tmpfs "$1"
cp -a "$2" "$1/p"
used=$(df -k --output=used "$1" | tail -1)
mount -o remount,size=$((used + used * $3 / 100))k tmpfs "$1"
shift 3
set +e
"$@" 2>"$ERR"
echo $? > "$RC"
cp -a "$DISK/." "$OUT"
"""


@pytest.mark.skipif(not _unshare_works(), reason="no user namespaces (unshare -rm) to mount a small tmpfs")
@pytest.mark.parametrize("free_percent", [3, 30, 70, 95])
def test_a_really_full_disk_leaves_the_old_or_the_new_project_whole(tmp_path, old_and_new, free_percent):
    """A tmpfs with free_percent of the old project's size free: ENOSPC somewhere in the export."""
    old, old_hash, new_hash = old_and_new
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    out.mkdir()
    env = {**ENV, "ERR": str(tmp_path / "err"), "RC": str(tmp_path / "rc"), "DISK": str(disk), "OUT": str(out)}
    subprocess.run(["unshare", "-rm", "sh", "-c", TMPFS, "sh", str(disk), str(old), str(free_percent),
                    sys.executable, "-m", "ternembed", "export", str(MODEL), "-b", BOARD, "-o", str(disk / "p"),
                    "--force", "--optimize", "size"], env=env, check=True, timeout=300)
    code, err = int((tmp_path / "rc").read_text()), (tmp_path / "err").read_text()
    assert [p.name for p in out.iterdir()] == ["p"]  # no staging folder left on the full disk
    if code == 0:
        assert whole_export(out / "p") == new_hash
    else:
        assert_one_line((code, err), "No space left on device")
        assert snapshot(out / "p") == {k.replace(str(old), str(out / "p")): v for k, v in snapshot(old).items()}


# ---- damaged projects -------------------------------------------------------------------------------

def _json(q: Path) -> Path:
    return q / "ternembed_plan.json"


def _npz(q: Path) -> Path:
    return q / "ternembed_plan.npz"


DAMAGE = {
    "plan JSON truncated": lambda q: _json(q).write_bytes(_json(q).read_bytes()[:300]),
    "plan JSON garbage": lambda q: _json(q).write_bytes(bytes(range(256)) * 2),
    "plan JSON a list": lambda q: _json(q).write_text("[1, 2]"),
    "plan JSON empty": lambda q: _json(q).write_text("{}"),
    "plan JSON board a number": lambda q: _json(q).write_text(_json(q).read_text().replace(f'"board": "{BOARD}"',
                                                                                          '"board": 5')),
    "plan JSON missing": lambda q: _json(q).unlink(),
    "plan NPZ truncated": lambda q: _npz(q).write_bytes(_npz(q).read_bytes()[:2000]),
    "plan NPZ garbage": lambda q: _npz(q).write_bytes(bytes(range(256)) * 12),
    "plan NPZ pickled": lambda q: np.save(open(_npz(q), "wb"), np.array([{"a": 1}], dtype=object), allow_pickle=True),
    "plan NPZ bad JSON": lambda q: np.savez(_npz(q), __plan__=np.frombuffer(b"{not json", np.uint8)),
    "plan NPZ empty JSON": lambda q: np.savez(_npz(q), __plan__=np.frombuffer(b"{}", np.uint8)),
    "plan NPZ missing": lambda q: _npz(q).unlink(),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_project_is_one_line_for_every_command(tmp_path, project, damage):
    q = tmp_path / "q"
    shutil.copytree(project, q)
    DAMAGE[damage](q)
    before = snapshot(tmp_path)
    commands = [["validate", q, "--data", TEST_SET, "--port", NO_PORT], ["bench", q, "--port", NO_PORT]]
    if damage.startswith("plan JSON"):  # build, run and flash read only the plan summary
        commands += [["build", q, "--platformio", "no"], ["run", q, "--detach", "--no-build"], ["flash", q]]
    for cmd in commands:
        assert_one_line(cli(*cmd), "ternembed_plan")
    assert snapshot(tmp_path) == before


def test_a_project_without_its_marker_still_works(tmp_path, project):
    """The marker only allows --force; a project of an earlier version (no marker) is still read."""
    q = tmp_path / "q"
    shutil.copytree(project, q)
    (q / ".ternembed-project").unlink()
    assert_one_line(cli("validate", q, "--data", TEST_SET, "--port", NO_PORT, "-o", tmp_path / "v.json"),
                    "cannot open serial port")  # it got as far as the port
    assert cli("export", MODEL, "-b", BOARD, "-o", q, "--force", "--method", "int8")[0] == 0  # it has the plan


def test_stop_on_a_file_is_nothing_running(tmp_path):
    (tmp_path / "model.tflite").write_bytes(MODEL.read_bytes())
    assert cli("run", tmp_path / "model.tflite", "--stop")[0] == 0  # was NotADirectoryError


def test_force_replaces_a_damaged_earlier_export(tmp_path, project):
    q = tmp_path / "q"
    shutil.copytree(project, q)
    DAMAGE["plan JSON garbage"](q)
    assert cli("export", MODEL, "-b", BOARD, "-o", q, "--force", "--method", "int8")[0] == 0
    assert whole_export(q) and [p.name for p in tmp_path.iterdir()] == ["q"]


# ---- missing tools: one line naming what to install ---------------------------------------------------

def _path_without(tmp: Path, *missing: str) -> dict:
    """An environment whose PATH has the usual tools but not ``missing``."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "make", "setpriv", "arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm",
                 "qemu-system-arm", "pio"):
        found = shutil.which(tool) or (shutil.which(tool, path=str(Path(sys.executable).parent)))
        if tool not in missing and found:
            (bin_dir / tool).symlink_to(found)
    return {**ENV, "PATH": str(bin_dir)}


def test_a_missing_qemu_names_its_package(tmp_path, project):
    q = tmp_path / "q"
    shutil.copytree(project, q)
    (q / "build" / BOARD).mkdir(parents=True)
    (q / "build" / BOARD / "firmware.elf").write_bytes(b"\x7fELF")  # never run: QEMU is missing
    env = _path_without(tmp_path, "qemu-system-arm")
    for cmd in (["run", q, "--detach", "--no-build"], ["validate", q, "--qemu", "--no-build", "--data", TEST_SET],
                ["bench", q, "--qemu", "--no-build"]):
        assert_one_line(run(*cmd, env=env), "qemu-system-arm not found", "apt-get install qemu-system-arm")


def test_a_missing_platformio_names_its_package(tmp_path):
    q = tmp_path / "nucleo"
    assert cli("export", MODEL, "-b", "nucleo", "-o", q, "--method", "int8")[0] == 0
    env = _path_without(tmp_path, "pio")
    assert_one_line(run("flash", q, env=env), "PlatformIO is not installed", "pip install platformio")
    assert_one_line(run("build", q, "--platformio", "yes", env=env), "PlatformIO is not installed",
                    "pip install platformio")


def test_a_missing_make_is_not_needed(tmp_path, project):
    """Without make the build calls arm-none-eabi-gcc itself (the compiler's absence is named: test_cli)."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not found: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi")
    q = tmp_path / "q"
    shutil.copytree(project, q)
    proc = subprocess.run([sys.executable, "-m", "ternembed", "build", str(q), "--platformio", "no"],
                          capture_output=True, text=True, env=_path_without(tmp_path, "make"), timeout=300)
    assert proc.returncode == 0 and "with gcc" in proc.stdout, proc.stdout + proc.stderr

