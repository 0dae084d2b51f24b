# SPDX-License-Identifier: Apache-2.0
"""Helpers of the hardening tests (test_hardening*.py): run the CLI in this process, check that an
error is one line with its exit code, and that the user's files did not change."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "examples" / "digits"
MODEL = DIGITS / "digits_int8.tflite"
TEST_SET = DIGITS / "digits_test.npz"
BOARD = "qemu_mps2_an386"
NO_PORT = "socket://127.0.0.1:9"  # refused at once: the command fails without a device
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def cli(*args) -> tuple[int, str]:
    """`ternembed ARGS` in this process (10x faster than a subprocess): (exit code, all it wrote to
    stderr, through sys.stderr or fd 2)."""
    from ternembed.cli import main
    sys.stderr.flush()
    saved = os.dup(2)
    handler = signal.getsignal(signal.SIGTERM)
    text = io.StringIO()
    with tempfile.TemporaryFile("w+") as err, contextlib.redirect_stderr(text):
        os.dup2(err.fileno(), 2)
        try:
            try:
                code = main([str(a) for a in args])
            except SystemExit as exc:  # argparse
                code = exc.code
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            signal.signal(signal.SIGTERM, handler)  # main() installs its own
        err.seek(0)
        return code, text.getvalue() + err.read()


def run(*args, env=None, prefix=(), cwd=None) -> tuple[int, str]:
    """`ternembed ARGS` in a new process (for limits, kills and PATH): (exit code, stderr)."""
    proc = subprocess.run([*prefix, sys.executable, "-m", "ternembed", *map(str, args)], capture_output=True,
                          text=True, env=env or ENV, cwd=cwd, timeout=300)
    return proc.returncode, proc.stderr


FSIZE = ("import resource, runpy, sys; n = int(sys.argv.pop(1)); "
         "resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); sys.argv[0] = 'ternembed'; "
         "runpy.run_module('ternembed', run_name='__main__')")


def limited(limit: int, *args) -> tuple[int, str]:
    """ternembed with no file larger than ``limit`` bytes (writes beyond fail with EFBIG, as on a full disk)."""
    proc = subprocess.run([sys.executable, "-c", FSIZE, str(limit), *map(str, args)], capture_output=True,
                          text=True, env=ENV, timeout=300)
    return proc.returncode, proc.stderr


def assert_one_line(result: tuple[int, str], *words, code: int = 2) -> str:
    got, err = result
    lines = err.strip().splitlines()
    assert got == code and len(lines) == 1 and lines[0].startswith("error: "), (got, err)
    assert "internal error" not in err and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def snapshot(*roots: Path) -> dict[str, str]:
    """Every path under ``roots`` with the hash of its content (a folder: 'dir')."""
    out = {}
    for root in roots:
        for p in [root, *sorted(root.rglob("*"))] if root.is_dir() else [root]:
            if p.is_symlink() or not p.exists():
                out[str(p)] = "link" if p.is_symlink() else "missing"
            elif p.is_dir():
                out[str(p)] = "dir"
            elif p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[str(p)] = f"special {p.stat().st_mode:o}"
    return out


def whole_export(project: Path) -> str | None:
    """The model hash of a whole export at ``project`` (its report and plan agree, every part is
    there), else None."""
    try:
        report = json.loads((project / "report.json").read_text())
        plan = json.loads((project / "ternembed_plan.json").read_text())
    except (OSError, ValueError):
        return None
    parts = (".ternembed-project", "src/model.c", "ternembed_plan.npz", "Makefile", "platformio.ini")
    if report["model_hash"] != plan["model_hash"] or not all((project / p).is_file() for p in parts):
        return None
    return report["model_hash"]
