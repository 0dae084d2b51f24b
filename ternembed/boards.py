# SPDX-License-Identifier: Apache-2.0
"""Board descriptions: one TOML file per board in boards/ (keys documented in boards/README.md).

``get_board("nucleo")`` resolves names and aliases to a frozen :class:`Board`; ``list_boards()``
lists them; ``linker_script(board)`` renders the board's GNU ld script (the checked-in copies in
firmware/platform/ld/ are its output: ``python -m ternembed.boards --write-ld`` regenerates them).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .errors import TernembedError, UnknownBoardError
from .resources import resource_dir

UART_FAMILIES = ("cmsdk", "stm32_usart_v1", "stm32_usart_v2", "stm32_lpuart")
TIMER_KINDS = ("dwt", "cmsdk_timer", "systick")
TIMER_UNITS = {"dwt": "cycles", "cmsdk_timer": "cmsdk_timer_ticks", "systick": "systick_ticks"}


@dataclass(frozen=True)
class MemRegion:
    origin: int
    size: int

    @property
    def end(self) -> int:
        return self.origin + self.size


@dataclass(frozen=True)
class Uart:
    family: str          # one of UART_FAMILIES
    instance: str        # "USART2", "LPUART1", "UART0" ...
    base: int
    baud: int
    clock_hz: int        # kernel clock feeding the baud-rate generator
    tx_pin: str | None   # "PA2" (STM32 only)
    rx_pin: str | None
    af: int | None       # GPIO alternate function number (STM32 only)


@dataclass(frozen=True)
class Timer:
    kind: str            # one of TIMER_KINDS
    clock_hz: int
    base: int | None     # CMSDK timer base address

    @property
    def unit(self) -> str:
        """What te_cycles_now() counts (the C macro TE_CYCLES_UNIT)."""
        return TIMER_UNITS[self.kind]


@dataclass(frozen=True)
class PlatformIO:
    platform: str        # "ststm32"
    board: str           # PlatformIO board id
    framework: str       # "" = none (bare metal)


@dataclass(frozen=True)
class Qemu:
    machine: str         # qemu-system-arm -M <machine>
    icount_shift: int    # -icount shift=N: 2^N ns of virtual time per instruction


@dataclass(frozen=True)
class Board:
    name: str
    aliases: tuple[str, ...]
    description: str
    core: str
    cpu_flags: tuple[str, ...]
    has_fpu: bool
    has_dsp: bool
    clock_hz: int
    flash: MemRegion
    ram: MemRegion
    arena_ram: MemRegion | None
    uart: Uart
    timer: Timer
    platformio: PlatformIO | None
    qemu: Qemu | None
    path: Path

    @property
    def emulated(self) -> bool:
        return self.qemu is not None

    @property
    def define(self) -> str:
        """The C define that selects this board in firmware/platform/te_board.h."""
        return "TE_BOARD_" + self.name.upper()

    @property
    def ticks_per_instruction(self) -> float | None:
        """Timer ticks per instruction under QEMU -icount (None on real boards)."""
        if self.qemu is None:
            return None
        return self.timer.clock_hz * (2 ** self.qemu.icount_shift) * 1e-9


class BoardFileError(TernembedError):
    """A board TOML file is missing a key or has a value of the wrong kind."""


def _region(data: dict, key: str, path: Path) -> MemRegion:
    try:
        return MemRegion(int(data[key]["origin"]), int(data[key]["size"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise BoardFileError(f"{path}: [{key}] needs integer origin and size") from exc


def _load(path: Path) -> Board:
    with path.open("rb") as fh:
        try:
            d = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise BoardFileError(f"{path}: not valid TOML: {exc}") from exc
    try:
        u, t = d["uart"], d["timer"]
        pio, qemu = d.get("platformio"), d.get("qemu")
        board = Board(
            name=d["name"],
            aliases=tuple(d.get("aliases", ())),
            description=d["description"],
            core=d["core"],
            cpu_flags=tuple(d["cpu_flags"]),
            has_fpu=bool(d["has_fpu"]),
            has_dsp=bool(d["has_dsp"]),
            clock_hz=int(d["clock_hz"]),
            flash=_region(d, "flash", path),
            ram=_region(d, "ram", path),
            arena_ram=_region(d, "arena_ram", path) if "arena_ram" in d else None,
            uart=Uart(u["family"], u["instance"], int(u["base"]), int(u["baud"]),
                      int(u["clock_hz"]), u.get("tx_pin"), u.get("rx_pin"), u.get("af")),
            timer=Timer(t["kind"], int(t["clock_hz"]), t.get("base")),
            platformio=(PlatformIO(pio["platform"], pio["board"], pio.get("framework", ""))
                        if pio else None),
            qemu=Qemu(qemu["machine"], int(qemu["icount_shift"])) if qemu else None,
            path=path,
        )
    except KeyError as exc:
        raise BoardFileError(f"{path}: missing key {exc.args[0]!r} (see boards/README.md)") from exc
    if board.name != path.stem:
        raise BoardFileError(f"{path}: name {board.name!r} must match the file name")
    if board.uart.family not in UART_FAMILIES:
        raise BoardFileError(f"{path}: uart.family {board.uart.family!r} not in {UART_FAMILIES}")
    if board.timer.kind not in TIMER_KINDS:
        raise BoardFileError(f"{path}: timer.kind {board.timer.kind!r} not in {TIMER_KINDS}")
    return board


@lru_cache(maxsize=None)
def _catalog(directory: Path) -> tuple[dict[str, Board], dict[str, str]]:
    boards: dict[str, Board] = {}
    names: dict[str, str] = {}
    for path in sorted(directory.glob("*.toml")):
        board = _load(path)
        boards[board.name] = board
        for key in (board.name, *board.aliases):
            key = key.lower()
            if key in names and names[key] != board.name:
                raise BoardFileError(f"{path}: name or alias {key!r} is already used by "
                                     f"{names[key]}")
            names[key] = board.name
    return boards, names


def _boards_dir() -> Path:
    return resource_dir("boards")


def list_boards() -> list[Board]:
    """Every known board, sorted by name."""
    boards, _ = _catalog(_boards_dir())
    return [boards[n] for n in sorted(boards)]


def get_board(name: str) -> Board:
    """The board called ``name`` (or one of its aliases; case-insensitive, '-' equals '_')."""
    boards, names = _catalog(_boards_dir())
    key = name.strip().lower().replace("-", "_")
    if key not in names:
        listing = ", ".join(
            b.name + (f" ({', '.join(b.aliases)})" if b.aliases else "")
            for b in (boards[n] for n in sorted(boards)))
        raise UnknownBoardError(f"unknown board {name!r}; known boards (aliases): {listing}")
    return boards[names[key]]


# --------------------------------------------------------------------------- linker scripts

_LD_SECTIONS = """\
/* Stack: the top of RAM, growing down. The linker reserves __te_stack_size bytes for it (override
 * with -Wl,--defsym=__te_stack_size=N), so an image whose data would eat the stack fails to link. */
__te_stack_size = DEFINED(__te_stack_size) ? __te_stack_size : 0x2000;
__stack_top = ORIGIN(RAM) + LENGTH(RAM);

SECTIONS
{
  .isr_vector :
  {
    . = ALIGN(4);
    KEEP(*(.isr_vector))
    . = ALIGN(4);
  } > FLASH

  .text :
  {
    *(.text .text.*)
    *(.rodata .rodata.*)
    KEEP(*(.init))
    KEEP(*(.fini))
    . = ALIGN(4);
  } > FLASH

  .ARM.extab : { *(.ARM.extab* .gnu.linkonce.armextab.*) } > FLASH
  .ARM.exidx :
  {
    __exidx_start = .;
    *(.ARM.exidx* .gnu.linkonce.armexidx.*)
    __exidx_end = .;
  } > FLASH

  /* Initialised data: stored in flash after the code, copied to RAM by Reset_Handler. */
  .data :
  {
    . = ALIGN(4);
    _sdata = .;
    *(.data .data.*)
    . = ALIGN(4);
    _edata = .;
  } > RAM AT > FLASH
  _sidata = LOADADDR(.data);

  /* Zeroed by Reset_Handler. "AT > RAM" keeps the ELF loader from writing zeros into flash. */
  .bss :
  {
    . = ALIGN(4);
    _sbss = .;
    *(.bss .bss.*)
    *(COMMON)
    . = ALIGN(4);
    _ebss = .;
  } > RAM AT > RAM

  /* Large static buffers (TE_ARENA_ATTR): neither loaded nor zeroed. */
  .te_arena (NOLOAD) :
  {
    . = ALIGN(16);
    __te_arena_start = .;
    KEEP(*(.te_arena .te_arena.*))
    . = ALIGN(16);
    __te_arena_end = .;
  } > %(arena_region)s

  .te_stack (NOLOAD) :
  {
    . = ALIGN(8);
    __te_stack_limit = .;
    . = . + __te_stack_size;
  } > RAM

  .ARM.attributes 0 : { *(.ARM.attributes) }
}

ASSERT(__te_stack_limit + __te_stack_size <= __stack_top, "RAM too small for the stack reserve")
"""


def linker_script(board: Board) -> str:
    """The GNU ld script for ``board``: MEMORY from the board file, common SECTIONS."""
    def region(label: str, attrs: str, mem: MemRegion, note: str) -> str:
        return (f"  {label:<5} {'(' + attrs + ')':<5} : ORIGIN = 0x{mem.origin:08X}, "
                f"LENGTH = 0x{mem.size:08X}  /* {mem.size // 1024} KiB, {note} */\n")

    memory = region("FLASH", "rx", board.flash, "code and constants")
    memory += region("RAM", "rwx", board.ram, ".data, .bss, stack")
    if board.arena_ram is not None:
        memory += region("ARENA", "rw", board.arena_ram, ".te_arena")
    head = (
        f"/* {board.name}.ld - linker script for {board.description}.\n"
        f" * Generated by ternembed.boards.linker_script() from boards/{board.name}.toml;\n"
        f" * regenerate with `python -m ternembed.boards --write-ld` instead of editing. */\n"
        "ENTRY(Reset_Handler)\n\n"
        f"MEMORY\n{{\n{memory}}}\n\n"
    )
    arena_region = "ARENA" if board.arena_ram is not None else "RAM"
    return head + _LD_SECTIONS % {"arena_region": arena_region}


def linker_script_path(board: Board) -> Path:
    """The checked-in linker script of ``board`` (firmware/platform/ld/<name>.ld)."""
    return resource_dir("firmware") / "platform" / "ld" / f"{board.name}.ld"


def _main(argv: list[str]) -> int:
    if argv == ["--write-ld"]:
        for board in list_boards():
            path = linker_script_path(board)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(linker_script(board))
            print(path)
        return 0
    for board in list_boards():
        aliases = f" (aliases: {', '.join(board.aliases)})" if board.aliases else ""
        print(f"{board.name:<22} {board.description}{aliases}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
