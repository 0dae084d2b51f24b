# SPDX-License-Identifier: Apache-2.0
"""Does a firmware fit its board? The memory facts that export (early warning) and build share.

A project needs at least: flash for its constants (weights, requantization tables, test
vectors) plus code, and RAM for the arena, the stack reserve and the static data of the
platform and the protocol. Export checks these lower bounds before anything is built; the
build reads the exact figures from the ELF. Either way a firmware that does not fit is a
DoesNotFitError (exit code 4) naming the region, the overflow and what would make it fit.
"""
from __future__ import annotations

from dataclasses import dataclass

from .boards import Board, list_boards
from .errors import TernembedError
from .kernelspec import TERNARY_KERNELS

STACK_RESERVE = 0x2000  # bytes the linker scripts reserve for the stack (__te_stack_size)
STATIC_RAM_ALLOWANCE = 1024  # bytes of .data + .bss outside the arena (platform, main)
ARENA_SECTION_ALIGN = 16
# Flash for code when the compiled objects cannot be measured (the gcc-only build path, the export
# estimate): SWW with int8 and ternary depthwise, table lookup and the protocol links 52 KB at -O3.
CODE_ALLOWANCE = 64 * 1024
# Code the linker adds besides the project's objects: newlib's memcpy/memset and their alignment.
LIBC_ALLOWANCE = 2048


class DoesNotFitError(TernembedError):
    """The firmware needs more flash or RAM than the board has."""

    exit_code = 4

    def __init__(self, message: str, overflow: dict[str, int]):
        super().__init__(message)
        self.overflow = overflow


@dataclass(frozen=True)
class Need:
    """Bytes a project needs at least, by board memory region."""
    flash: int  # constants (code comes on top)
    ram: int  # arena + stack reserve + static data, or without the arena on boards with arena RAM
    arena: int

    @classmethod
    def of_project(cls, info: dict, board: Board) -> Need:
        """From a project's ternembed_plan.json."""
        p = info["planned"]
        arena = -(-int(p["arena_bytes"]) // ARENA_SECTION_ALIGN) * ARENA_SECTION_ALIGN
        static = int(info.get("protocol", {}).get("static_ram_bytes", 0)) + int(p.get("state_bytes", 0))
        ram = STACK_RESERVE + static + (0 if board.arena_ram is not None else arena)
        flash = int(p["weight_bytes"]) + int(p.get("table_bytes", 0)) + int(p.get("test_vector_bytes", 0))
        return cls(flash, ram, arena)

    def overflow(self, board: Board, code: int = 0) -> dict[str, int]:
        """Bytes over each region of `board` (empty when it fits), with `code` bytes of code."""
        over = {"FLASH": self.flash + code - board.flash.size, "RAM": self.ram - board.ram.size}
        if board.arena_ram is not None:
            over["ARENA"] = self.arena - board.arena_ram.size
        return {k: v for k, v in over.items() if v > 0}


def advice(board: Board, need: Need, overflow: dict[str, int], ternary: bool, lut_scratch: bool,
           code: int = CODE_ALLOWANCE) -> str:
    """What would make it fit: boards that have room, and export options that save the region."""
    tips = []
    # real boards before emulated ones, the smallest that fits first
    roomy = [b.name for b in sorted(list_boards(), key=lambda b: (b.emulated, b.ram.size, b.flash.size))
             if b.name != board.name and not need.overflow(b, code)]
    if roomy:
        tips.append("a board with room: " + ", ".join(roomy[:4]))
    if "FLASH" in overflow:
        tips.append("smaller weights: --budget-bits 2 or --max-flash SIZE" if ternary else
                    "ternary weights (export without --method int8, ~0.3x the int8 weight bytes)")
    if ("RAM" in overflow or "ARENA" in overflow) and lut_scratch:
        tips.append("--optimize size (no table-lookup scratch RAM)")
    return "; fits with " + " or ".join(tips) if tips else ""


def project_traits(info: dict) -> tuple[bool, bool]:
    """(has ternary layers, runs a table-lookup variant) of a project's ternembed_plan.json."""
    steps = info.get("steps", [])
    return (any(s["kernel"] in TERNARY_KERNELS for s in steps),
            any(s.get("variant") == "lut" for s in steps))


def describe(overflow: dict[str, int]) -> str:
    return ", ".join(f"{region} overflowed by {n:,} bytes" if n else f"{region} is too small"
                     for region, n in overflow.items())
