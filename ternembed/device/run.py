# SPDX-License-Identifier: Apache-2.0
"""Run a built project's firmware on its emulated board and hand back the serial port.

    with start_emulator("out/kws") as qemu:       # builds if needed; QemuSession
        validate("out/kws", qemu.url, [x])

    info = start_detached("out/kws")              # QEMU keeps running after this process exits
    print(info["url"])                            # socket://127.0.0.1:PORT
    stop_detached("out/kws")

QEMU serves the UART on 127.0.0.1 (wait=on: the firmware starts when the first client
connects; nodelay=on). The TCP server accepts a new client after one disconnects, so several
commands (validate, then bench) can use the same running emulator one after the other.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from ..atomic import OutputError, cannot_write, write_json_atomic
from ..boards import Board, get_board, list_boards
from ..errors import TernembedError
from .qemu import QemuError, QemuSession, qemu_command

RUN_FILE = ".ternembed_run.json"


class RunError(TernembedError):
    """The firmware cannot be started on an emulated board."""


def project_board(project: Path | str, board: Board | str | None = None) -> Board:
    from ..build import read_project

    if board is None:
        board = read_project(project)["board"]
    return get_board(board) if isinstance(board, str) else board


def firmware_elf(project: Path | str, board: Board | str | None = None, build: bool = True) -> Path:
    """The project's ELF for ``board``: built now (``build``), else the existing one."""
    project = Path(project)
    b = project_board(project, board)
    if build:
        from ..build import build_project
        return build_project(project, b, use_platformio=False).elf
    for elf in (project / "build" / b.name / "firmware.elf",
                project / ".pio" / "build" / b.name / "firmware.elf"):
        if elf.is_file():
            return elf
    raise RunError(f"{project} has no firmware built for {b.name}; run `ternembed build "
                   f"{project}` (or leave out --no-build)")


def _emulated(b: Board, project: Path) -> None:
    if not b.emulated:
        emulated = ", ".join(x.name for x in list_boards() if x.emulated)
        raise RunError(f"{project} is for {b.name}, a real board: flash it with `ternembed flash "
                       f"{project}` and use its serial port; emulated boards: {emulated}")


def start_emulator(project: Path | str, board: Board | str | None = None, build: bool = True,
                   max_seconds: float = 3600.0) -> QemuSession:
    """A started QemuSession running the project's firmware (close it, or use ``with``)."""
    project = Path(project)
    b = project_board(project, board)
    _emulated(b, project)
    elf = firmware_elf(project, b, build)
    return QemuSession(elf, b, max_seconds=max_seconds).start()


# ---- a QEMU that outlives this process (ternembed run --detach) ---------------------------------

def _free_port() -> int:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a zombie (our own exited child) is not running
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def _identity(pid: int) -> tuple[list[str], str] | None:
    """(command line, start time in clock ticks since boot) of a live process, from /proc."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        start = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[19]
    except (OSError, IndexError):
        return None
    return [c.decode(errors="replace") for c in cmdline], start


def running(project: Path | str) -> dict | None:
    """The detached emulator of ``project`` (pid, url, ...), if the very process we started still runs.

    A PID alone is not enough: after QEMU exits, the number can be reused by any process. The record
    holds QEMU's command line and start time; a record that no longer matches is stale and removed."""
    path = Path(project) / RUN_FILE
    try:
        info = json.loads(path.read_text())
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    who = _identity(pid) if pid > 1 and _alive(pid) else None
    if who is None or who[0] != info.get("command") or who[1] != info.get("proc_start"):
        path.unlink(missing_ok=True)
        return None
    return info


def start_detached(project: Path | str, board: Board | str | None = None, build: bool = True,
                   start_timeout: float = 10.0) -> dict:
    """Start QEMU in its own session (it keeps running); write and return its pid and URL."""
    project = Path(project).absolute()
    b = project_board(project, board)
    _emulated(b, project)
    old = running(project)
    if old is not None:
        raise RunError(f"an emulator for {project} is already running (pid {old['pid']}, "
                       f"{old['url']}); stop it with `ternembed run {project} --stop`")
    elf = firmware_elf(project, b, build)
    log = elf.parent / "qemu.log"
    for _ in range(3):
        port = _free_port()
        cmd = qemu_command(elf, b, f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on")
        try:
            with open(log, "wb") as fh:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=fh,
                                        start_new_session=True)
        except OSError as exc:
            raise cannot_write(log, exc) from None
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if "waiting for connection" in log.read_text(errors="replace"):
                break
            time.sleep(0.02)
        who = _identity(proc.pid) if proc.poll() is None else None
        if who is not None:
            info = {"pid": proc.pid, "port": port, "url": f"socket://127.0.0.1:{port}",
                    "board": b.name, "elf": str(elf), "log": str(log), "command": who[0],
                    "proc_start": who[1], "started": time.time()}
            try:
                write_json_atomic(project / RUN_FILE, info)
            except OutputError:  # no record, no way to stop it later: stop it now
                proc.kill()
                proc.wait()
                raise
            return info
    raise QemuError(f"QEMU did not start for {project}:\n{log.read_text(errors='replace').strip()}")


def stop_detached(project: Path | str) -> bool:
    """Stop the detached emulator of ``project``; False if none was running."""
    project = Path(project)
    info = running(project)
    if project.is_dir():  # `run FILE --stop`: nothing was running there
        (project / RUN_FILE).unlink(missing_ok=True)
    if info is None:
        return False
    try:
        os.kill(int(info["pid"]), signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True
