# SPDX-License-Identifier: Apache-2.0
"""Run firmware on an emulated board with qemu-system-arm.

``run_semihosted(elf, board)`` runs to completion: the firmware prints over its UART and stops with
``te_exit(code)`` (semihosting SYS_EXIT_EXTENDED), QEMU exits with that code. Always bounded by a
timeout; QEMU is killed when it expires.

``QemuSession(elf, board)`` keeps QEMU running with the UART on a TCP socket, for a host program
to talk to it through pyserial exactly as it would to a real board::

    with QemuSession(elf, board) as qemu:
        port = serial.serial_for_url(qemu.url, timeout=5)   # "socket://127.0.0.1:PORT"
        ...
        code = qemu.wait(timeout=10)

Under ``-icount shift=N`` (the default, N from the board file) timing is deterministic: each
instruction advances virtual time by 2^N ns, so te_cycles_* count instructions, reproducibly.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from ..boards import Board
from ..errors import TernembedError

QEMU = "qemu-system-arm"
APT_PACKAGE = "qemu-system-arm"


class QemuError(TernembedError):
    """QEMU is missing, refused to start, or the board is not an emulated one."""


class QemuTimeoutError(QemuError):
    """The firmware did not exit in time; QEMU was killed. ``output`` holds the UART bytes."""

    def __init__(self, message: str, output: bytes = b""):
        super().__init__(message)
        self.output = output



def die_with_parent(cmd: list[str]) -> list[str]:
    """``cmd`` run so that the kernel kills it when the process that started it dies, even by
    SIGKILL: no emulator is left behind. setpriv (util-linux) sets PR_SET_PDEATHSIG and execs the
    command, so no Python runs between fork and exec (a preexec_fn would, and can deadlock a
    multithreaded parent such as one that imported JAX). Without setpriv: the command as is."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", *cmd] if setpriv else list(cmd)


def _qemu_binary() -> str:
    path = shutil.which(QEMU)
    if path is None:
        raise QemuError(f"{QEMU} not found on PATH: install it with `apt-get install {APT_PACKAGE}`")
    return path


def qemu_command(elf: Path | str, board: Board, serial: str, icount: bool = True,
                 extra_args: tuple[str, ...] = ()) -> list[str]:
    """The qemu-system-arm command line that runs ``elf`` on ``board`` with UART0 on ``serial``."""
    if board.qemu is None:
        raise QemuError(f"board {board.name} is a real board, not an emulated one; emulated boards: "
                        "qemu_mps2_an386, qemu_mps2_an500, qemu_mps2_an505, qemu_netduinoplus2")
    elf = Path(elf)
    if not elf.is_file():
        raise QemuError(f"firmware {elf} not found")
    cmd = [_qemu_binary(), "-M", board.qemu.machine, "-display", "none", "-monitor", "none",
           "-semihosting", "-kernel", str(elf), "-serial", serial]
    if icount:
        cmd += ["-icount", f"shift={board.qemu.icount_shift}"]
    return cmd + list(extra_args)


def _startup_failure(returncode: int, stderr: str) -> bool:
    """QEMU itself failed (bad option, unloadable ELF), rather than the firmware exiting."""
    if returncode != 1:  # QEMU's own failures exit with 1
        return False
    return any(line.startswith(f"{QEMU}:") and " warning: " not in line and " info: " not in line
               for line in stderr.splitlines())


def run_semihosted(elf: Path | str, board: Board, timeout: float = 30.0, *, stdin: bytes = b"",
                   icount: bool = True, extra_args: tuple[str, ...] = ()) -> tuple[int, bytes]:
    """Run ``elf`` on ``board`` until it exits; returns (exit code, bytes printed on the UART).

    ``stdin`` is fed to the UART receiver. Raises QemuTimeoutError (with the output so far) if the
    firmware does not exit within ``timeout`` seconds of wall time.
    """
    cmd = qemu_command(elf, board, "stdio", icount, extra_args)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(die_with_parent(cmd), stdin=subprocess.PIPE, stdout=out, stderr=err)
        try:
            proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            out.seek(0)
            raise QemuTimeoutError(
                f"{board.name}: firmware {elf} did not exit within {timeout:g} s; QEMU was killed "
                "(does it end with te_exit()?)", out.read()) from None
        out.seek(0)
        err.seek(0)
        output, stderr = out.read(), err.read().decode(errors="replace")
    if _startup_failure(proc.returncode, stderr):
        raise QemuError(f"{QEMU} failed to run {elf} on {board.name}:\n{stderr.strip()}")
    return proc.returncode, output


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QemuSession:
    """QEMU running ``elf`` with the UART as a TCP server on 127.0.0.1 (see module docstring).

    QEMU waits (``wait=on``) for the first client before the firmware runs, so nothing it prints
    is lost; ``nodelay=on`` disables Nagle, which otherwise adds ~40 ms per small reply. The
    session is killed on exit from the ``with`` block, or after ``max_seconds`` of wall time.
    """

    def __init__(self, elf: Path | str, board: Board, *, icount: bool = True,
                 max_seconds: float = 600.0, start_timeout: float = 10.0,
                 extra_args: tuple[str, ...] = ()):
        self.elf, self.board = Path(elf), board
        self.icount, self.max_seconds, self.start_timeout = icount, max_seconds, start_timeout
        self.extra_args = extra_args
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self._err = None
        self._watchdog: threading.Timer | None = None
        self.killed_by_watchdog = False

    @property
    def url(self) -> str:
        """pyserial URL of the UART: ``serial.serial_for_url(session.url)``."""
        if self.port is None:
            raise QemuError("QemuSession is not started (use it in a with block)")
        return f"socket://127.0.0.1:{self.port}"

    def start(self) -> "QemuSession":
        last_error = ""
        for _ in range(3):  # the free port can be taken between probing and QEMU's bind
            self.port = _free_port()
            serial = f"tcp:127.0.0.1:{self.port},server=on,wait=on,nodelay=on"
            cmd = qemu_command(self.elf, self.board, serial, self.icount, self.extra_args)
            self._err = tempfile.TemporaryFile()
            self.proc = subprocess.Popen(die_with_parent(cmd), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=self._err)
            if self._wait_listening():
                self._watchdog = threading.Timer(self.max_seconds, self._expire)
                self._watchdog.daemon = True
                self._watchdog.start()
                return self
            last_error = self._stderr()
            self._kill()
        raise QemuError(f"{QEMU} did not start on {self.board.name}:\n{last_error.strip()}")

    def _stderr(self) -> str:
        if self._err is None:
            return ""
        self._err.seek(0)
        return self._err.read().decode(errors="replace")

    def _wait_listening(self) -> bool:
        """True once QEMU listens on the port; False if it exited or timed out."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if "waiting for connection" in self._stderr() or _listening(self.port):
                return True
            time.sleep(0.01)
        return False

    def _expire(self) -> None:
        self.killed_by_watchdog = True
        self._kill()

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def serial(self, timeout: float | None = 5.0):
        """A connected pyserial object for the UART (imports pyserial lazily)."""
        import serial  # noqa: PLC0415 - optional at import time of this module

        return serial.serial_for_url(self.url, timeout=timeout)

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the firmware to exit (te_exit); returns its exit code."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise QemuTimeoutError(f"{self.board.name}: firmware did not exit within {timeout:g} s;"
                                   " QEMU was killed") from None
        if self.killed_by_watchdog:
            raise QemuTimeoutError(f"{self.board.name}: session exceeded {self.max_seconds:g} s;"
                                   " QEMU was killed")
        return code

    @property
    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._kill()
        if self._err is not None:
            self._err.close()
            self._err = None

    def __enter__(self) -> "QemuSession":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def _listening(port: int | None) -> bool:
    """Linux: is a socket listening on 127.0.0.1:port (from /proc/net/tcp)?"""
    if port is None or not os.path.exists("/proc/net/tcp"):
        return False
    want = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/tcp") as fh:
            return any(line.split()[1] == want and line.split()[3] == "0A"
                       for line in fh.readlines()[1:])
    except OSError:
        return False
