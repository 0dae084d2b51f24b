# SPDX-License-Identifier: Apache-2.0
"""Compile C sources with the host compiler into a shared library and load it with ctypes.

Used to check that generated C computes exactly what the numpy emulator computes.
Libraries are cached by a hash of their sources and flags, so repeated tests are cheap.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import TernembedError


class HostCompileError(TernembedError):
    """The host C compiler is missing or rejected the sources."""


def _cache_dir() -> Path:
    base = os.environ.get("TERNEMBED_CACHE") or Path.home() / ".cache" / "ternembed"
    path = Path(base) / "hostc"
    path.mkdir(parents=True, exist_ok=True)
    return path


def compile_shared(sources: list[Path], include_dirs: list[Path] = (), defines: list[str] = (),
                   opt: str = "-O2", cc: str | None = None) -> Path:
    """Build a shared library from C sources; returns its path (cached by content)."""
    cc = cc or os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        raise HostCompileError(f"host C compiler '{cc}' not found: install gcc (apt-get install gcc)")
    flags = ["-std=c99", opt, "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror"]
    flags += [f"-I{d}" for d in include_dirs] + [f"-D{d}" for d in defines]
    digest = hashlib.sha256(" ".join([cc] + flags).encode())
    for src in sources:
        digest.update(Path(src).read_bytes())
    # headers of the include folders and private ones beside the sources (#include "x.h")
    header_dirs = dict.fromkeys([Path(d) for d in include_dirs] + [Path(s).parent for s in sources])
    for d in header_dirs:
        for header in sorted(d.glob("*.h")):
            digest.update(header.name.encode() + header.read_bytes())
    out = _cache_dir() / f"lib{digest.hexdigest()[:20]}.so"
    if out.exists():
        return out
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        tmp_out = Path(tmp) / out.name
        cmd = [cc, *flags, *map(str, sources), "-o", str(tmp_out), "-lm"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise HostCompileError(f"host build failed: {' '.join(cmd)}\n{proc.stderr.strip()}")
        os.replace(tmp_out, out)  # atomic: a parallel test never sees half a library
    return out


def load_shared(sources: list[Path], include_dirs: list[Path] = (), defines: list[str] = (),
                opt: str = "-O2") -> ctypes.CDLL:
    """compile_shared + ctypes.CDLL."""
    return ctypes.CDLL(str(compile_shared(sources, include_dirs, defines, opt)))
