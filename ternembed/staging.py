# SPDX-License-Identifier: Apache-2.0
"""Writing a project folder without ever losing the user's files.

A project is written whole into a hidden staging folder beside the target, then swapped in by one
rename. ``--force`` replaces only a folder an earlier export wrote (it holds MARKER), never the
filesystem root, the home folder or the current folder. Where Linux can exchange two folders
atomically (renameat2 RENAME_EXCHANGE) it does, so that a kill at any moment leaves the old
project or the new one, whole; staging folders a killed run left behind are removed by the next.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import tempfile
from pathlib import Path

from .atomic import OutputError, cannot_write, check_output_dir

MARKER = ".ternembed-project"  # written into every project; --force replaces only such folders
_PLAN_JSON = "ternembed_plan.json"  # projects of earlier versions have it but no marker


class ExportError(OutputError):
    """The project cannot be written where asked."""


def _staging_prefix(out: Path) -> str:
    return f".{out.name}.staging-"


def check_target(out: Path, force: bool) -> None:
    """Refuse, in one line, any target that is not empty unless --force and an earlier export's."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder; choose another output folder")
    check_output_dir(out)  # under a file, /proc, a read-only mount: refused before any work
    check_not_special(out)
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not force:
        raise ExportError(f"{out} exists and is not empty; use --force to replace an earlier export "
                          "there, or choose another folder")
    if not (out / MARKER).is_file() and not (out / _PLAN_JSON).is_file():
        raise ExportError(f"{out} was not written by ternembed export (no {MARKER}): --force replaces "
                          "only earlier exports; choose another folder")


def check_not_special(out: Path) -> None:
    """Never the filesystem root, the home folder or the current folder (or a folder holding it)."""
    real = out.resolve()
    cwd = Path.cwd().resolve()
    if real in (Path("/").resolve(), Path.home().resolve(), cwd) or real in cwd.parents:
        raise ExportError(f"{out} is the root, home or current folder (or holds it): a project is "
                          "never written over it; name a project folder, e.g. -o ./my-model")


def clean_leftovers(out: Path) -> None:
    """Staging folders of this target that a killed export left behind."""
    if out.parent.is_dir():
        for p in out.parent.glob(_staging_prefix(out) + "*"):
            shutil.rmtree(p, ignore_errors=True)


def new_staging(out: Path) -> Path:
    tmp = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=_staging_prefix(out), dir=out.parent))
        os.chmod(tmp, 0o755)
        (tmp / MARKER).write_text("written by ternembed export; `ternembed export --force` may replace "
                                  "this folder\n")
    except OSError as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise cannot_write(out, exc) from None
    return tmp


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def publish(tmp: Path, out: Path) -> None:
    """Put the staged project at ``out`` in one step; the old project, if any, is removed after."""
    if not out.exists():
        os.replace(tmp, out)
        return
    if _exchange(tmp, out):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old project
        return
    old = Path(tempfile.mkdtemp(prefix=_staging_prefix(out), dir=out.parent))
    os.replace(out, old / "project")  # no atomic exchange here: a short window without `out`
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old / "project", out)
        raise
    shutil.rmtree(old, ignore_errors=True)
