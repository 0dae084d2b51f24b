# SPDX-License-Identifier: Apache-2.0
"""Build an exported project and check the planned sizes against the ELF.

    result = build_project("out/kws")              # PlatformIO if usable offline, else make/gcc
    print(result.summary())

Build methods: ``platformio`` (``pio run -e <board>``; used by "auto" only when PlatformIO,
the env's platform and its toolchain are installed locally, because an offline ``pio run``
cannot download them), ``make`` (the project's Makefile), ``gcc`` (the same sources and
flags, arm-none-eabi-gcc called directly, when ``make`` is missing).

Checks after the build (every figure measured from the ELF with arm-none-eabi-size / -nm):

* weights: the sum of the ``tec_*`` symbols == the plan's constant bytes, exactly;
* arena: the ``te_arena`` symbol == the planned arena bytes, exactly, and the ``.te_arena``
  section == the arena rounded up to 16 bytes;
* test vectors: the ``tev_*`` symbols == the embedded self-test bytes, exactly;
* flash == weights + vectors + tables + code, where code (kernels, platform, main, the small
  parameter structs, libc's memcpy/memset, vector table) must stay within CODE_ALLOWANCE;
* RAM == arena + stack reserve (``__te_stack_size`` of the linker script, 8 KiB) + static
  data (.data + .bss of the platform and main), which must stay within STATIC_RAM_ALLOWANCE.

The model fits when the linker placed everything (it fails otherwise: that failure is
reported as DoesNotFitError with the overflow in bytes); the margins say by how much.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import OutputError
from .boards import Board, get_board
from .errors import TernembedError
from .fit import (ARENA_SECTION_ALIGN, CODE_ALLOWANCE, LIBC_ALLOWANCE, STATIC_RAM_ALLOWANCE,
                  DoesNotFitError, Need, advice, describe, project_traits)
from .toolchain import ToolchainError, elf_sizes, find_tool

__all__ = ["BuildError", "DoesNotFitError", "PlanMismatchError", "build_project", "check_elf"]


class BuildError(TernembedError):
    """The project failed to build."""


class PlanMismatchError(TernembedError):
    """The ELF's figures differ from the plan: a bug in ternembed's planner, not in the user's input."""

    exit_code = 1

# What the linker and PlatformIO print when an image does not fit: region -> bytes over.
_OVERFLOW_PATTERNS = (
    (re.compile(r"region [`']?(\w+)'? overflowed by (\d+) bytes"), lambda m: (m.group(1), int(m.group(2)))),
    (re.compile(r"The (program|data) size \((\d+) bytes\) is greater than maximum allowed \((\d+) bytes\)"),
     lambda m: ("FLASH" if m.group(1) == "program" else "RAM", int(m.group(2)) - int(m.group(3)))),
    (re.compile(r"RAM too small for the stack reserve"), lambda m: ("RAM", 0)),
)


def linker_overflow(log: str) -> dict[str, int]:
    """Regions a failed link overflowed, from its log (0 bytes: over by an unknown amount)."""
    over: dict[str, int] = {}
    for pattern, parse in _OVERFLOW_PATTERNS:
        for m in pattern.finditer(log):
            region, n = parse(m)
            over[region] = max(over.get(region, 0), n)
    return over


@dataclass
class Check:
    name: str
    planned: int
    measured: int
    ok: bool
    note: str = ""
    bound: bool = False  # planned is an upper bound (an allowance), not an exact figure

    def line(self) -> str:
        mark = "ok" if self.ok else "MISMATCH"
        planned = f"{'<= ' if self.bound else ''}{self.planned}"
        return f"  {self.name:<12} planned {planned:>12}  ELF {self.measured:>9}  {mark}  {self.note}"


@dataclass
class BuildResult:
    project: Path
    board: Board
    method: str
    elf: Path
    map: Path | None
    sizes: dict[str, int]  # toolchain.elf_sizes()
    symbols: dict[str, int]  # weights / arena / vectors / tables measured from symbols
    planned: dict[str, int]
    checks: list[Check] = field(default_factory=list)
    flash_bytes: int = 0
    ram_bytes: int = 0
    flash_free: int = 0
    ram_free: int = 0
    arena_free: int | None = None  # separate arena RAM (e.g. H7 AXI SRAM)
    log: str = ""
    need: Need | None = None  # what the project needs at least, for the "does not fit" advice
    traits: tuple[bool, bool] = (False, False)  # (ternary layers, table-lookup variant), fit.project_traits
    streamed: list[tuple[int, int]] = field(default_factory=list)  # row-streamed step ranges (segments.py)

    @property
    def checks_ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def fits(self) -> bool:
        return self.flash_free >= 0 and self.ram_free >= 0 and (self.arena_free is None or self.arena_free >= 0)

    def summary(self) -> str:
        b = self.board
        lines = [f"built {self.elf} for {b.name} with {self.method}",
                 f"  flash {self.flash_bytes} B of {b.flash.size} B ({self.flash_free} B free)",
                 f"  RAM   {self.ram_bytes} B of {b.ram.size} B ({self.ram_free} B free; arena "
                 f"{self.planned['arena_bytes']} B, stack reserve {self.sizes.get('stack', 0)} B)"]
        if self.streamed:
            lines.append("  row-streamed steps: " + ", ".join(f"{a}..{b}" for a, b in self.streamed))
        if self.arena_free is not None and b.arena_ram is not None:
            lines.append(f"  arena RAM {self.sizes.get('arena', 0)} B of {b.arena_ram.size} B "
                         f"({self.arena_free} B free)")
        lines.append("  planned vs ELF:")
        lines += [c.line() for c in self.checks]
        lines.append(f"  fits {b.name}: {'yes' if self.fits else 'NO'}"
                     + ("" if self.checks_ok else "; planned figures DIFFER from the ELF"))
        return "\n".join(lines)


def read_project(project: Path | str) -> dict:
    """A project's ternembed_plan.json, checked: every command that opens a project reads it here."""
    path = Path(project) / "ternembed_plan.json"
    if not path.is_file():
        raise BuildError(f"{project} is not a ternembed project (no ternembed_plan.json); "
                         "create one with `ternembed export MODEL --board B -o DIR`")
    try:
        info = json.loads(path.read_bytes())
        problem = _project_problem(info)
    except (OSError, UnicodeError, ValueError) as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if problem:
        raise BuildError(f"{path} is damaged ({problem}); export the project again")
    return info


_PROJECT_FIELDS = {"board": str, "model_hash": str, "planned": dict, "build": dict}
_BUILD_FIELDS = {"sources": list, "opt": str, "common_cflags": list, "link_flags": list}


def _project_problem(info) -> str | None:
    """What makes a parsed ternembed_plan.json unusable, or None."""
    if not isinstance(info, dict):
        return "not a JSON object"
    for fields, where in ((_PROJECT_FIELDS, info), (_BUILD_FIELDS, info["build"] if isinstance(
            info.get("build"), dict) else {})):
        for key, kind in fields.items():
            if not isinstance(where.get(key), kind):
                return f"{key!r} is missing or not a {kind.__name__}"
    planned = info["planned"]
    if not all(isinstance(v, int) for v in planned.values()) or not {"weight_bytes", "arena_bytes"} <= set(planned):
        return "'planned' must hold the byte counts, weight_bytes and arena_bytes among them"
    protocol = info.get("protocol")
    if protocol and not (isinstance(protocol, dict) and isinstance(protocol.get("static_ram_bytes"), int)):
        return "'protocol' has no static_ram_bytes"
    return None


# ---- build methods ---------------------------------------------------------------------------

def _pio_exe() -> str | None:
    return shutil.which("pio") or shutil.which("platformio")


def _pio_core_dir() -> Path:
    return Path(os.environ.get("PLATFORMIO_CORE_DIR") or Path.home() / ".platformio")


def _ini_env_option(ini: str, env: str, key: str) -> str | None:
    section = None
    values: dict[str, dict[str, str]] = {}
    for raw in ini.splitlines():
        line = raw.split(";", 1)[0].rstrip()
        m = re.match(r"^\[(.+)\]$", line.strip())
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^([A-Za-z0-9_.]+)\s*=\s*(.*)$", line)
        if m and section:
            values.setdefault(section, {})[m.group(1)] = m.group(2).strip()
    seen = set()
    while env and env not in seen:
        seen.add(env)
        sec = values.get(f"env:{env}", {})
        if key in sec:
            return sec[key]
        env = sec.get("extends", "").replace("env:", "")
    return values.get("env", {}).get(key)


def platformio_usable(project: Path, env: str) -> tuple[bool, str]:
    """Can ``pio run -e env`` build here without a network? (and why not)."""
    if _pio_exe() is None:
        return False, "PlatformIO is not installed (pip install platformio)"
    ini = (project / "platformio.ini").read_text()
    if f"[env:{env}]" not in ini:
        return False, f"platformio.ini has no env {env!r} (emulated boards build with the Makefile)"
    platform = _ini_env_option(ini, env, "platform") or ""
    core = _pio_core_dir()
    if not platform.startswith(("file://", "symlink://")) and not (core / "platforms" / platform).is_dir():
        return False, f"the PlatformIO platform {platform!r} is not installed in {core} (needs a network)"
    packages = _ini_env_option(ini, env, "platform_packages") or ""
    if "toolchain-gccarmnoneeabi" not in packages and \
            not any((core / "packages").glob("toolchain-gccarmnoneeabi*")):
        return False, f"the PlatformIO ARM toolchain is not installed in {core} (needs a network)"
    if not any((core / "packages").glob("tool-scons*")):
        return False, f"PlatformIO's tool-scons is not installed in {core} (needs a network)"
    return True, ""


_DISK_FULL = ("No space left on device", "Disk quota exceeded", "File size limit exceeded", "File too large")


def _run(cmd: list[str], cwd: Path, what: str) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        overflow = linker_overflow(log)
        if overflow:
            raise DoesNotFitError(f"{what}: the firmware does not fit: {describe(overflow)}", overflow)
        full = next((w for w in _DISK_FULL if w in log), None)
        if full:  # the compiler's own words would bury it in 40 lines of log
            raise OutputError(f"{what} failed: cannot write in {cwd / 'build'} ({full})")
        tail = "\n".join(log.strip().splitlines()[-40:])
        raise BuildError(f"{what} failed (exit {proc.returncode})\n$ {' '.join(cmd)}\n{tail}")
    return log


def _build_make(project: Path, board: Board, jobs: int) -> tuple[Path, Path, str]:
    log = _run(["make", "-C", str(project), f"BOARD={board.name}", f"-j{jobs}"], project,
               f"make for {board.name}")
    out = project / "build" / board.name
    return out / "firmware.elf", out / "firmware.map", log


def _build_gcc(project: Path, board: Board, info: dict) -> tuple[Path, Path, str]:
    cc = find_tool("arm-none-eabi-gcc")
    b = info["build"]
    out = project / "build" / board.name
    out.mkdir(parents=True, exist_ok=True)
    srcs = sorted(str(p.relative_to(project)) for pat in b["sources"] for p in project.glob(pat))
    cmd = [cc, *board.cpu_flags, b["opt"], *b["common_cflags"], f"-D{board.define}", *srcs,
           *board.cpu_flags, f"-Tfirmware/platform/ld/{board.name}.ld", *b["link_flags"],
           f"-Wl,-Map=build/{board.name}/firmware.map", "-o", f"build/{board.name}/firmware.elf"]
    log = _run(cmd, project, f"arm-none-eabi-gcc for {board.name}")
    return out / "firmware.elf", out / "firmware.map", log


def _build_pio(project: Path, env: str) -> tuple[Path, Path, str]:
    log = _run([_pio_exe(), "run", "-d", str(project), "-e", env], project, f"pio run -e {env}")
    out = project / ".pio" / "build" / env
    return out / "firmware.elf", out / "firmware.map", log


# ---- measurement -----------------------------------------------------------------------------

def symbol_sizes(elf: Path) -> dict[str, int]:
    """Sizes of the defined data symbols of an ELF (arm-none-eabi-nm -S)."""
    nm = find_tool("arm-none-eabi-nm")
    proc = subprocess.run([nm, "-S", "--defined-only", str(elf)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"arm-none-eabi-nm failed on {elf}: {proc.stderr.strip()}")
    sizes: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4:
            sizes[parts[3]] = sizes.get(parts[3], 0) + int(parts[1], 16)
    return sizes


def _measure(elf: Path) -> tuple[dict[str, int], dict[str, int]]:
    sizes = elf_sizes(elf)
    syms = symbol_sizes(elf)

    def total(prefix: str) -> int:
        return sum(v for k, v in syms.items() if k.startswith(prefix))

    return sizes, {"weight_bytes": total("tec_"), "table_bytes": total("tep_"),
                   "arena_bytes": syms.get("te_arena", 0), "test_vector_bytes": total("tev_")}


def object_code_bytes(objects: list[Path], constants: int) -> int | None:
    """Upper bound of the code the linker can keep: the compiled objects' code and constants minus
    the plan's constants, plus libc and initialized data. Section garbage collection only removes."""
    if not objects:
        return None
    size = find_tool("arm-none-eabi-size")
    proc = subprocess.run([size, *map(str, objects)], capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    # text holds code and constants; data is the static RAM's initial values (its allowance covers it)
    # and, in model.o, the NOLOAD arena, which takes no flash.
    text = sum(int(p[0]) for p in (line.split() for line in proc.stdout.splitlines()[1:]) if p)
    return text - constants + STATIC_RAM_ALLOWANCE + LIBC_ALLOWANCE


def check_elf(elf: Path, board: Board, planned: dict[str, int], method: str = "",
              project: Path | None = None, map_path: Path | None = None, log: str = "",
              code_bound: int | None = None) -> BuildResult:
    """Measure the ELF and compare it with the plan. `code_bound`: the most code the objects can
    link to (object_code_bytes), else the fixed CODE_ALLOWANCE."""
    sizes, measured = _measure(elf)
    code_bound = CODE_ALLOWANCE if code_bound is None else code_bound
    arena = planned["arena_bytes"]
    arena_section = (arena + ARENA_SECTION_ALIGN - 1) // ARENA_SECTION_ALIGN * ARENA_SECTION_ALIGN
    code = sizes["flash"] - measured["weight_bytes"] - measured["test_vector_bytes"] - measured["table_bytes"]
    static = sizes["data"] + sizes["bss"]
    # The protocol firmware adds its frame buffers and input copy; its export states how many bytes.
    # A streaming model adds its persistent state (te_state[]).
    static_allowance = STATIC_RAM_ALLOWANCE + planned.get("protocol_static_ram", 0) + planned.get("state_bytes", 0)
    checks = [
        Check("weights", planned["weight_bytes"], measured["weight_bytes"],
              planned["weight_bytes"] == measured["weight_bytes"], "tec_* symbols"),
        Check("arena", arena, measured["arena_bytes"], arena == measured["arena_bytes"], "te_arena symbol"),
        Check("arena sect.", arena_section, sizes["arena"], arena_section == sizes["arena"],
              ".te_arena section (16-byte aligned)"),
        Check("vectors", planned.get("test_vector_bytes", 0), measured["test_vector_bytes"],
              planned.get("test_vector_bytes", 0) == measured["test_vector_bytes"], "tev_* symbols"),
        Check("code", code_bound, code, code <= code_bound,
              "flash - weights - vectors - tables", True),
        Check("static RAM", static_allowance, static, static <= static_allowance,
              ".data + .bss besides the arena", True),
    ]
    planned_flash = planned["weight_bytes"] + planned.get("test_vector_bytes", 0) + measured["table_bytes"]
    checks.append(Check("flash", planned_flash + code_bound, sizes["flash"],
                        planned_flash <= sizes["flash"] <= planned_flash + code_bound,
                        "planned constants + code bound", True))
    planned_ram = arena_section + sizes["stack"]
    checks.append(Check("RAM", planned_ram + static_allowance, sizes["ram"],
                        planned_ram <= sizes["ram"] <= planned_ram + static_allowance,
                        f"arena + stack reserve {sizes['stack']} B + static allowance", True))
    if board.arena_ram is not None:
        ram_used = sizes["ram"] - sizes["arena"]
        arena_free: int | None = board.arena_ram.size - sizes["arena"]
    else:
        ram_used = sizes["ram"]
        arena_free = None
    return BuildResult(project=project or elf.parent, board=board, method=method, elf=elf,
                       map=map_path if map_path and map_path.exists() else None, sizes=sizes,
                       symbols=measured, planned=dict(planned), checks=checks,
                       flash_bytes=sizes["flash"], ram_bytes=sizes["ram"],
                       flash_free=board.flash.size - sizes["flash"], ram_free=board.ram.size - ram_used,
                       arena_free=arena_free, log=log)


def build_project(project_dir: Path | str, board: Board | str | None = None,
                  use_platformio: bool | str = "auto", jobs: int | None = None,
                  pio_env: str | None = None, strict: bool = True) -> BuildResult:
    """Build an exported project; returns the measured sizes and the planned-vs-ELF checks.

    ``board``: default the board the project was exported for. ``use_platformio``: True,
    False or "auto" (PlatformIO only when it can build offline, see platformio_usable).
    ``pio_env``: the PlatformIO env (default: the board's name). Raises DoesNotFitError (exit 4)
    when the firmware does not fit, from whichever build path found it; with ``strict``, also
    PlanMismatchError when the ELF's figures differ from the plan.
    """
    project = Path(project_dir).absolute()
    info = read_project(project)
    if board is None:
        board = info["board"]
    board = get_board(board) if isinstance(board, str) else board
    jobs = jobs or max(1, os.cpu_count() or 1)
    env = pio_env or board.name
    planned = {k: int(v) for k, v in info["planned"].items()}
    if info.get("protocol"):
        planned["protocol_static_ram"] = int(info["protocol"]["static_ram_bytes"])

    method = "make"
    if use_platformio is True or use_platformio == "auto":
        ok, why = platformio_usable(project, env)
        if ok:
            method = "platformio"
        elif use_platformio is True:
            raise BuildError(f"cannot build {project} with PlatformIO: {why}")
    if method == "make" and shutil.which("make") is None:
        method = "gcc"
    if method != "platformio":
        find_tool("arm-none-eabi-gcc")  # make would only say "failed": name the apt packages instead
    need = Need.of_project(info, board)
    ternary, lut = project_traits(info)
    try:
        if method == "platformio":
            elf, map_path, log = _build_pio(project, env)
        elif method == "make":
            elf, map_path, log = _build_make(project, board, jobs)
        else:
            elf, map_path, log = _build_gcc(project, board, info)
    except DoesNotFitError as exc:
        raise DoesNotFitError(f"{exc}{advice(board, need, exc.overflow, ternary, lut)}", exc.overflow) from None
    if not elf.is_file():
        raise BuildError(f"the build finished but {elf} is missing")
    constants = need.flash
    code_bound = object_code_bytes(sorted(elf.parent.rglob("*.o")), constants) if method != "gcc" else None
    result = check_elf(elf, board, planned, method, project, map_path, log, code_bound)
    result.need, result.traits = need, (ternary, lut)
    result.streamed = [tuple(s["steps"]) for s in info.get("segments", [])]
    if strict:
        raise_if_bad(result)
    return result


def raise_if_bad(result: BuildResult) -> None:
    """DoesNotFitError when the ELF overflows its board, PlanMismatchError when it differs from the plan."""
    if not result.fits:
        over = {k: -v for k, v in (("FLASH", result.flash_free), ("RAM", result.ram_free),
                                   ("ARENA", result.arena_free)) if v is not None and v < 0}
        raise DoesNotFitError(f"{result.elf} does not fit {result.board.name}: {describe(over)}"
                              f"{advice(result.board, result.need, over, *result.traits) if result.need else ''}", over)
    if not result.checks_ok:
        bad = "; ".join(c.line().strip() for c in result.checks if not c.ok)
        raise PlanMismatchError(f"the ELF differs from the plan ({bad}): a bug in ternembed's planner, "
                                f"please report it with {result.project / 'ternembed_plan.json'}")
