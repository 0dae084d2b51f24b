# SPDX-License-Identifier: Apache-2.0
"""Cross-compile firmware for a board with arm-none-eabi-gcc, and measure the result.

``cross_compile`` builds an ELF from the caller's C sources plus the platform layer
(firmware/platform/*.c: startup, clock, UART, cycle counter), with the board's CPU flags, its
``-DTE_BOARD_<NAME>`` define and its linker script; a .map file is written beside the ELF.
``elf_sizes`` reads section sizes back with arm-none-eabi-size.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from .boards import Board, linker_script
from .errors import TernembedError
from .resources import resource_dir

APT_PACKAGES = "gcc-arm-none-eabi libnewlib-arm-none-eabi"
CC = "arm-none-eabi-gcc"
SIZE = "arm-none-eabi-size"

WARN_FLAGS = ("-Wall", "-Wextra", "-Werror")
BASE_CFLAGS = ("-std=c99", "-ffunction-sections", "-fdata-sections", "-g")
LINK_FLAGS = ("-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections")


class ToolchainError(TernembedError):
    """The ARM cross toolchain is missing, or it rejected the sources."""


def find_tool(name: str = CC) -> str:
    """Path of an arm-none-eabi tool, or a ToolchainError naming the apt packages."""
    path = shutil.which(name)
    if path is None:
        raise ToolchainError(f"{name} not found on PATH: install the ARM cross toolchain with "
                             f"`apt-get install {APT_PACKAGES}`")
    return path


def platform_dir() -> Path:
    """firmware/platform: te_platform.h, te_board.h and the platform sources."""
    return resource_dir("firmware") / "platform"


def platform_sources() -> list[Path]:
    """The platform's C files; each compiles to nothing for boards it does not serve."""
    return sorted(platform_dir().glob("*.c"))


def cross_compile(sources: Sequence[Path | str], board: Board, out_dir: Path | str,
                  include_dirs: Iterable[Path | str] = (), defines: Iterable[str] = (),
                  opt: str = "-O2", extra_cflags: Iterable[str] = (), *, name: str = "firmware",
                  with_platform: bool = True) -> Path:
    """Compile and link ``sources`` for ``board``; returns ``out_dir/<name>.elf``.

    ``defines`` are "NAME" or "NAME=VALUE" (no -D). With ``with_platform`` (the default) the
    platform sources and include directory are added; the board's linker script is written to
    ``out_dir/<board>.ld`` and the link map to ``out_dir/<name>.map``.
    """
    cc = find_tool(CC)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    srcs = [Path(s) for s in sources]
    incs = [Path(d) for d in include_dirs]
    if with_platform:
        srcs += [s for s in platform_sources() if s not in srcs]
        incs.append(platform_dir())
    missing = [str(s) for s in srcs if not s.is_file()]
    if missing:
        raise ToolchainError(f"source files not found: {', '.join(missing)}")

    ld = out / f"{board.name}.ld"
    ld.write_text(linker_script(board))
    elf = out / f"{name}.elf"
    cmd = [cc, *board.cpu_flags, opt, *BASE_CFLAGS, *WARN_FLAGS, f"-D{board.define}",
           *(f"-D{d}" for d in defines), *(f"-I{d}" for d in incs), *extra_cflags,
           *map(str, srcs), f"-T{ld}", *LINK_FLAGS, f"-Wl,-Map={out / (name + '.map')}",
           "-o", str(elf)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"cross compilation for {board.name} failed (exit {proc.returncode})"
                             f"\n$ {' '.join(cmd)}\n{(proc.stderr or proc.stdout).strip()}")
    return elf


_SECTION_LINE = re.compile(r"^(\S+)\s+(\d+)\s+(\d+)\s*$")


def elf_sizes(elf: Path | str) -> dict[str, int]:
    """Sizes in bytes of a linked image.

    text: code + constants + vector table (flash); data: initialised RAM data (also stored in
    flash); bss: zeroed RAM; arena: .te_arena; stack: the stack reserve; flash = text + data;
    ram = data + bss + arena + stack (arena may be in a separate RAM, e.g. H7 AXI SRAM).
    """
    tool = find_tool(SIZE)
    proc = subprocess.run([tool, "-A", "-d", str(elf)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"{SIZE} failed on {elf}: {proc.stderr.strip()}")
    sizes = {"text": 0, "data": 0, "bss": 0, "arena": 0, "stack": 0}
    for line in proc.stdout.splitlines():
        m = _SECTION_LINE.match(line.strip())
        if not m:
            continue
        section, size = m.group(1), int(m.group(2))
        if section in (".isr_vector", ".text", ".ARM.extab", ".ARM.exidx", ".rodata"):
            sizes["text"] += size
        elif section == ".data":
            sizes["data"] += size
        elif section == ".bss":
            sizes["bss"] += size
        elif section == ".te_arena":
            sizes["arena"] += size
        elif section == ".te_stack":
            sizes["stack"] += size
    sizes["flash"] = sizes["text"] + sizes["data"]
    sizes["ram"] = sizes["data"] + sizes["bss"] + sizes["arena"] + sizes["stack"]
    return sizes
