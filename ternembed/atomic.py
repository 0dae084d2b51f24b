# SPDX-License-Identifier: Apache-2.0
"""Files written whole or not at all: a temporary file beside the target, synced, then renamed over it.

A crash, a full disk or Ctrl-C leaves either the old file or the new one under the user's name,
never half of one, and no temporary file behind.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def write_atomic(path: Path | str, write: Callable[[Any], None], binary: bool = True) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
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
