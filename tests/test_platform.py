# SPDX-License-Identifier: Apache-2.0
"""The bare-metal platform layer: board files, te_board.h, linker scripts, cross builds for every
board, and runs of tests/fixtures/hello_fw.c on every emulated board (semihosted exit, UART output,
cycle counter, pyserial echo through QemuSession, fault handler, timeouts)."""
from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from ternembed.boards import get_board, linker_script, linker_script_path, list_boards
from ternembed.errors import TernembedError, UnknownBoardError
from ternembed.toolchain import ToolchainError, cross_compile, elf_sizes, platform_dir

HELLO = Path(__file__).resolve().parent / "fixtures" / "hello_fw.c"
GCC_PKG = "gcc-arm-none-eabi libnewlib-arm-none-eabi"
HAVE_GCC = shutil.which("arm-none-eabi-gcc") is not None
HAVE_QEMU = shutil.which("qemu-system-arm") is not None
if not (HAVE_GCC and HAVE_QEMU):  # loud: shows in the warnings summary as well as in skips
    warnings.warn(f"platform tests skipped: install {GCC_PKG} qemu-system-arm (apt-get install)")

needs_gcc = pytest.mark.skipif(not HAVE_GCC,
                               reason=f"arm-none-eabi-gcc not found: apt-get install {GCC_PKG}")
needs_qemu = pytest.mark.skipif(
    not (HAVE_GCC and HAVE_QEMU),
    reason=f"arm-none-eabi-gcc/qemu-system-arm not found: apt-get install {GCC_PKG} qemu-system-arm")

BOARDS = list_boards()
EMULATED = [b.name for b in BOARDS if b.emulated]
REAL = [b.name for b in BOARDS if not b.emulated]


# ------------------------------------------------------------------------------ board files

def test_expected_boards_present():
    assert set(REAL) == {"nucleo_f446re", "nucleo_l476rg", "nucleo_l4r5zi", "nucleo_h743zi",
                         "nucleo_g474re", "nucleo_u575zi"}
    assert set(EMULATED) == {"qemu_mps2_an386", "qemu_mps2_an500", "qemu_mps2_an505",
                             "qemu_netduinoplus2"}


def test_aliases_resolve():
    assert get_board("nucleo").name == "nucleo_f446re"
    assert get_board("NUCLEO-F446RE").name == "nucleo_f446re"
    for board in BOARDS:
        for alias in board.aliases:
            assert get_board(alias) is board


def test_unknown_board_lists_known_boards():
    with pytest.raises(UnknownBoardError) as info:
        get_board("arduino_uno")
    assert isinstance(info.value, TernembedError)
    message = str(info.value)
    assert "arduino_uno" in message
    for board in BOARDS:
        assert board.name in message


@pytest.mark.parametrize("name", [b.name for b in BOARDS])
def test_board_file_sane(name):
    b = get_board(name)
    assert f"-mcpu={b.core}" in b.cpu_flags and "-mthumb" in b.cpu_flags
    assert b.flash.size > 0 and b.ram.size >= 0x2_0000
    assert b.uart.baud == 115200
    if b.emulated:
        assert b.timer.kind != "dwt"  # DWT_CYCCNT reads 0 in QEMU
        assert b.ticks_per_instruction > 1.0
    else:
        assert b.timer.kind == "dwt"
        assert b.platformio is not None and b.platformio.platform == "ststm32"
        assert re.fullmatch(r"P[A-K]\d{1,2}", b.uart.tx_pin) and b.uart.af is not None


@pytest.mark.parametrize("name", [b.name for b in BOARDS])
def test_checked_in_linker_script_is_current(name):
    board = get_board(name)
    assert linker_script_path(board).read_text() == linker_script(board), (
        "regenerate with: python -m ternembed.boards --write-ld")


@needs_gcc
@pytest.mark.parametrize("name", [b.name for b in BOARDS])
def test_te_board_h_agrees_with_board_file(name):
    board = get_board(name)
    out = subprocess.run(
        ["arm-none-eabi-gcc", "-E", "-dM", f"-D{board.define}", "-x", "c",
         str(platform_dir() / "te_board.h")], capture_output=True, text=True, check=True).stdout
    macros = dict(m.groups() for m in re.finditer(r"#define (TE_\w+) (.*)", out))

    def num(key):
        value = macros[key]
        while value in macros:  # e.g. TE_CYCLES_HZ -> TE_CPU_HZ
            value = macros[value]
        return int(value.rstrip("uU"), 0)

    assert macros["TE_BOARD_NAME"] == f'"{board.name}"'
    assert num("TE_CPU_HZ") == board.clock_hz
    assert num("TE_UART_BASE") == board.uart.base
    assert num("TE_UART_BAUD") == board.uart.baud
    assert num("TE_UART_CLOCK_HZ") == board.uart.clock_hz
    assert num("TE_CYCLES_HZ") == board.timer.clock_hz
    assert macros["TE_CYCLES_UNIT"] == f'"{board.timer.unit}"'
    assert num("TE_EMULATED") == int(board.emulated)
    kind = {"cmsdk": "TE_UART_CMSDK", "stm32_usart_v1": "TE_UART_STM32_V1",
            "stm32_usart_v2": "TE_UART_STM32_V2", "stm32_lpuart": "TE_UART_STM32_LPUART"}
    assert kind[board.uart.family] in macros
    if board.timer.base is not None:
        assert num("TE_CYCLES_TIMER_BASE") == board.timer.base
    if board.uart.tx_pin:
        port = ord(board.uart.tx_pin[1]) - ord("A")
        assert num("TE_UART_GPIO_PORT") == port == ord(board.uart.rx_pin[1]) - ord("A")
        assert num("TE_UART_TX_PIN") == int(board.uart.tx_pin[2:])
        assert num("TE_UART_RX_PIN") == int(board.uart.rx_pin[2:])
        assert num("TE_UART_AF") == board.uart.af


# ------------------------------------------------------------------------------ builds

def _build(tmp_path_factory, name: str, *defines: str) -> Path:
    out = tmp_path_factory.mktemp(f"{name}_{len(defines)}")
    return cross_compile([HELLO], get_board(name), out, defines=defines)


def _symbols(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    return {parts[2]: int(parts[0], 16) for parts in (line.split() for line in out.splitlines())
            if len(parts) == 3}


@needs_gcc
@pytest.mark.parametrize("name", [b.name for b in BOARDS])
def test_platform_cross_compiles_with_werror(tmp_path_factory, name):
    board = get_board(name)
    elf = _build(tmp_path_factory, name)
    assert elf.with_suffix(".map").is_file()
    sizes = elf_sizes(elf)
    assert 0 < sizes["text"] < 8192 and sizes["data"] >= 4 and sizes["arena"] == 4096
    assert sizes["flash"] == sizes["text"] + sizes["data"]
    syms = _symbols(elf)
    assert syms["te_vector_table"] == board.flash.origin  # what the core fetches at reset
    assert syms["__stack_top"] == board.ram.end
    arena_mem = board.arena_ram or board.ram
    assert arena_mem.origin <= syms["__te_arena_start"] < arena_mem.end


@needs_gcc
def test_compile_error_carries_compiler_output(tmp_path):
    bad = tmp_path / "bad.c"
    bad.write_text("int main(void) { return undeclared_thing; }\n")
    with pytest.raises(ToolchainError) as info:
        cross_compile([bad], get_board("qemu_mps2_an386"), tmp_path / "out")
    assert "undeclared_thing" in str(info.value) and "qemu_mps2_an386" in str(info.value)


def test_missing_compiler_names_apt_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError) as info:
        cross_compile([HELLO], get_board("nucleo"), tmp_path / "out")
    assert "gcc-arm-none-eabi" in str(info.value)


# ------------------------------------------------------------------------------ emulation

@needs_qemu
@pytest.mark.qemu
@pytest.mark.parametrize("name", EMULATED)
def test_hello_runs_semihosted(tmp_path_factory, name):
    from ternembed.device.qemu import run_semihosted

    board = get_board(name)
    counts = []
    for loops in (1000, 2000):
        elf = _build(tmp_path_factory, name, "HELLO_EXIT_CODE=42", f"HELLO_LOOPS={loops}")
        code, out = run_semihosted(elf, board, timeout=30)
        text = out.decode()
        assert code == 42, text
        assert f"hello from {name}\r\n" in text
        assert "checks 9 1 7\r\n" in text  # FPU on, .data copied, .bss zeroed, arena writable
        m = re.search(r"loop (\d+) took (\d+) (\w+)\r\n", text)
        assert m and int(m.group(1)) == loops and m.group(3) == board.timer.unit, text
        counts.append(int(m.group(2)))
        # -icount makes the count reproducible run to run
        assert run_semihosted(elf, board, timeout=30) == (code, out)
    # 1000 more iterations of the same loop cost a whole number of instructions each, at the
    # board's documented ticks per instruction
    per_iteration = (counts[1] - counts[0]) / (1000 * board.ticks_per_instruction)
    assert 3 <= per_iteration <= 12 and abs(per_iteration - round(per_iteration)) < 0.01


@needs_qemu
@pytest.mark.qemu
@pytest.mark.parametrize("name", EMULATED)
def test_uart_echo_over_pyserial(tmp_path_factory, name):
    from ternembed.device.qemu import QemuSession

    elf = _build(tmp_path_factory, name, "HELLO_ECHO", "HELLO_EXIT_CODE=7")
    with QemuSession(elf, get_board(name), max_seconds=60) as qemu:
        assert qemu.url.startswith("socket://127.0.0.1:")
        port = qemu.serial(timeout=10)
        try:
            assert port.read_until(b"echo>\r\n").endswith(b"echo>\r\n")
            payload = bytes(range(32, 127)) + b"\r\n"
            port.write(payload)
            assert port.read(len(payload)) == payload
            port.write(b"\x04")
            assert port.read_until(b"bye\r\n").endswith(b"bye\r\n")
            assert qemu.wait(timeout=10) == 7
        finally:
            port.close()


@needs_qemu
@pytest.mark.qemu
@pytest.mark.parametrize("name", EMULATED)
def test_fault_handler_reports_and_exits(tmp_path_factory, name):
    from ternembed.device.qemu import run_semihosted

    elf = _build(tmp_path_factory, name, "HELLO_FAULT")
    code, out = run_semihosted(elf, get_board(name), timeout=30)
    assert code == 126 and b"[te] fault" in out  # TE_EXIT_FAULT


@needs_qemu
@pytest.mark.qemu
def test_run_is_bounded_by_timeout(tmp_path_factory):
    from ternembed.device.qemu import QemuTimeoutError, run_semihosted

    elf = _build(tmp_path_factory, "qemu_mps2_an386", "HELLO_ECHO")  # waits for input forever
    with pytest.raises(QemuTimeoutError) as info:
        run_semihosted(elf, get_board("an386"), timeout=2)
    assert b"echo>" in info.value.output


@needs_qemu
def test_real_board_is_not_emulated(tmp_path):
    from ternembed.device.qemu import QemuError, run_semihosted

    with pytest.raises(QemuError, match="real board"):
        run_semihosted(tmp_path / "x.elf", get_board("nucleo_h743zi"))


@needs_qemu
@pytest.mark.qemu
def test_systick_counter_extends_past_24_bits(tmp_path_factory):
    """netduinoplus2 counts with the 24-bit SysTick; wraps are counted in its handler."""
    from ternembed.device.qemu import run_semihosted

    board = get_board("qemu_netduinoplus2")
    loops = 3_000_000  # 6 instructions each: ~24 M ticks, more than 2^24
    elf = _build(tmp_path_factory, board.name, f"HELLO_LOOPS={loops}")
    code, out = run_semihosted(elf, board, timeout=60)
    ticks = int(re.search(rb"took (\d+)", out).group(1))
    assert code == 0 and ticks > 1 << 24
    assert abs(ticks - loops * 6 * board.ticks_per_instruction) < 0.001 * ticks
