# SPDX-License-Identifier: Apache-2.0
"""Files written whole or not at all: a temporary file beside the target, synced, then renamed over it.

A crash, a full disk or Ctrl-C leaves either the old file or the new one under the user's name,
never half of one, and no temporary file behind. Where an output cannot go (a folder named as a
file, a path under a file, a device, /proc, a full disk) is one OutputError line, checked before
the work by check_output_file / check_output_dir, and again by the write itself.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from .errors import TernembedError


class OutputError(TernembedError):
    """An output cannot be written where asked."""


def cannot_write(path: Path | str, exc: OSError) -> OutputError:
    """The one line for a failed write (full disk, no permission, read-only or virtual filesystem)."""
    return OutputError(f"cannot write {path}: {exc.strerror or exc}")


def _check_creatable(folder: Path, what: Path) -> None:
    """``folder`` (or the missing folders up to it) can be made and written in."""
    base = folder
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise OutputError(f"{what} lies under {base}, which is a file, not a folder")
    try:
        tempfile.TemporaryFile(dir=base).close()  # the only sure test: /proc, read-only mounts, ACLs
    except OSError as exc:
        raise OutputError(f"{what}: cannot write in {base} ({exc.strerror or exc})") from None


def check_output_file(path: Path | str) -> Path:
    """Before the work: ``path`` can take a file (it may replace one, never a folder or a device)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a folder; name a file to write")
    if path.exists() and not path.is_file():
        raise OutputError(f"{path} is not a regular file (a device, pipe or socket); name a file to write")
    _check_creatable(path.parent, path)
    return path


def check_output_dir(path: Path | str) -> Path:
    """Before the work: ``path`` is a folder, or one can be made there."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path} exists and is not a folder; name a folder to write into")
    _check_creatable(path if path.exists() else path.parent, path)
    return path


def write_atomic(path: Path | str, write: Callable[[Any], None], binary: bool = True) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it to ``path``."""
    path = Path(path)
    if path.exists() and not path.is_file():  # never replace a folder, a device (/dev/full) or a pipe
        check_output_file(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise cannot_write(path, exc) from None
    try:
        with os.fdopen(fd, "wb" if binary else "w") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    write_atomic(path, lambda fh: fh.write(data))


def write_json_atomic(path: Path | str, obj: Any, default: Callable[[Any], Any] | None = None) -> None:
    """JSON with one-space indents and a final newline (numpy values through ``default``)."""
    def write(fh):
        json.dump(obj, fh, indent=1, default=default)
        fh.write("\n")
    write_atomic(path, write, binary=False)
