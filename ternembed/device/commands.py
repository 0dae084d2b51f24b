# SPDX-License-Identifier: Apache-2.0
"""The device commands of the CLI: boards, run, validate, bench, flash.

``add_device_commands(subparsers)`` registers them on the CLI's subparsers; each one calls
``cmd_<name>(args)`` which returns the exit code (0 ok; validate: 3 when some sample is not
bit-exact) and raises TernembedError subclasses for problems the user can fix.

PORT is what pyserial opens: a device path (/dev/ttyACM0, COM5) or a URL
(socket://127.0.0.1:N for an emulated board started by `ternembed run`).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from ..atomic import check_output_dir, check_output_file
from ..cliargs import non_negative_int, positive_int, positive_seconds
from ..errors import InputError, TernembedError

EXIT_MISMATCH = 3


class FlashError(TernembedError):
    """The firmware cannot be uploaded to the board."""


def _print_json(obj) -> None:
    from .validate import _json_default
    print(json.dumps(obj, indent=1, default=_json_default))


# ---- boards ------------------------------------------------------------------------------------

def cmd_boards(args) -> int:
    from ..boards import list_boards
    boards = list_boards()
    if getattr(args, "json", False):
        _print_json([{
            "name": b.name, "aliases": list(b.aliases), "description": b.description,
            "core": b.core, "fpu": b.has_fpu, "dsp": b.has_dsp, "clock_hz": b.clock_hz,
            "flash_bytes": b.flash.size, "ram_bytes": b.ram.size,
            "arena_ram_bytes": b.arena_ram.size if b.arena_ram else None,
            "uart": {"instance": b.uart.instance, "baud": b.uart.baud,
                     "tx": b.uart.tx_pin, "rx": b.uart.rx_pin},
            "counter": b.timer.unit, "emulated": b.emulated,
            "qemu_machine": b.qemu.machine if b.qemu else None,
            "platformio_board": b.platformio.board if b.platformio else None,
        } for b in boards])
        return 0
    from ..report import table
    rows = [[b.name, ", ".join(b.aliases), b.core, f"{b.clock_hz / 1e6:g} MHz",
             f"{b.flash.size // 1024} KiB", f"{(b.ram.size + (b.arena_ram.size if b.arena_ram else 0)) // 1024} KiB",
             b.uart.instance, "QEMU " + b.qemu.machine if b.qemu else "real"] for b in boards]
    print(table(["board", "aliases", "core", "clock", "flash", "RAM", "UART", "kind"], rows,
                "llllrrll"))
    return 0


# ---- run ---------------------------------------------------------------------------------------

def cmd_run(args) -> int:
    from .run import running, start_detached, start_emulator, stop_detached
    project = Path(args.dir)
    if args.stop:
        stopped = stop_detached(project)
        if args.json:
            _print_json({"stopped": stopped})
        else:
            print(f"stopped the emulator of {project}" if stopped else
                  f"no emulator of {project} was running")
        return 0
    if args.detach:
        info = start_detached(project, args.board, build=not args.no_build)
        if args.json:
            _print_json(info)
        else:
            print(f"{info['board']}: firmware {info['elf']} running in QEMU (pid {info['pid']})")
            print(f"serial port: {info['url']}")
            print(f"use it: ternembed validate {project} --port {info['url']} --data FILE; "
                  f"stop it: ternembed run {project} --stop")
        return 0
    if running(project):
        info = running(project)
        raise TernembedError(f"an emulator for {project} is already running (pid {info['pid']}, "
                             f"{info['url']}); stop it with `ternembed run {project} --stop`")
    session = start_emulator(project, args.board, build=not args.no_build,
                             max_seconds=args.max_seconds)
    try:
        info = {"url": session.url, "port": session.port, "pid": session.proc.pid,
                "board": session.board.name, "elf": str(session.elf)}
        if args.json:
            _print_json(info)
        else:
            print(f"{info['board']}: firmware {info['elf']} running in QEMU (pid {info['pid']})")
            print(f"serial port: {info['url']}")
            print("the firmware starts when the first client connects; Ctrl-C stops QEMU")
        sys.stdout.flush()
        while session.exit_code is None:
            time.sleep(0.2)
        code = session.exit_code
        if not args.json:
            print(f"QEMU exited with code {code}")
        return 0 if code == 0 else 2
    except KeyboardInterrupt:
        return 0
    finally:
        session.close()


# ---- validate / bench --------------------------------------------------------------------------

@contextmanager
def _port_for(args):
    """The port to use: --port, an emulator started for this command (--qemu), or the one
    `ternembed run DIR --detach` started."""
    from .run import running, start_emulator
    if args.port and args.qemu:
        raise TernembedError("give either --port or --qemu, not both")
    if args.port:
        yield args.port
        return
    if args.qemu:
        session = start_emulator(args.dir, build=not args.no_build)
        try:
            yield session.url
        finally:
            session.close()
        return
    info = running(args.dir)
    if info is not None:
        yield info["url"]
        return
    raise TernembedError(
        "no serial port: give --port PORT (a device path like /dev/ttyACM0, or a URL like "
        f"socket://127.0.0.1:N), --qemu to start an emulator for this run, or start one with "
        f"`ternembed run {args.dir} --detach`")


def cmd_validate(args) -> int:
    from ..data import load_data, load_labels
    from .validate import validate
    inputs, labels = load_data(args.data)
    if not inputs or len(inputs[0]) == 0:
        raise InputError(f"{args.data}: holds no samples; validate needs at least one")
    if args.labels:
        labels = load_labels(args.labels, len(inputs[0]))
    out = check_output_file(args.out if args.out else Path(args.dir) / "validate.json")
    with _port_for(args) as port:
        result = validate(args.dir, port, inputs, labels, out_json=out,
                          checksums=not args.no_checksums, progress=not args.json and not args.quiet,
                          timeout=args.timeout, max_samples=args.max_samples)
    if args.json:
        _print_json(result.to_dict())
    else:
        print(result.summary())
    return 0 if result.exact == result.done and not result.mismatches else EXIT_MISMATCH


def cmd_bench(args) -> int:
    from .bench import bench
    inputs = None
    if args.data:
        from ..data import load_data
        inputs, _ = load_data(args.data)
    out = check_output_dir(args.out if args.out else Path(args.dir) / "bench")
    with _port_for(args) as port:
        result = bench(args.dir, port, runs=args.runs, warmup=args.warmup, inputs=inputs,
                       out_dir=out, progress=not args.json and not args.quiet,
                       timeout=args.timeout, chart=not args.no_chart)
    if args.json:
        _print_json({**result.to_dict(), "files": result.files})
    else:
        print(result.summary())
    return 0


# ---- flash -------------------------------------------------------------------------------------

def upload_command(pio: str, project: Path, env: str, upload_port: str | None = None) -> list[str]:
    """`pio run -t upload` for the project, with an absolute -d (it also runs with cwd=project)."""
    cmd = [pio, "run", "-d", str(Path(project).absolute()), "-e", env, "-t", "upload"]
    return cmd + (["--upload-port", upload_port] if upload_port else [])


def cmd_flash(args) -> int:
    from ..build import read_project
    from .run import project_board
    project = Path(args.dir).absolute()  # PlatformIO runs in the project: a relative -d would not resolve
    info = read_project(project)
    board = project_board(project, args.board)
    if board.emulated:
        raise FlashError(f"{board.name} is an emulated board: nothing to flash; start it with "
                         f"`ternembed run {project}`")
    if board.platformio is None:
        raise FlashError(f"{board.name} has no PlatformIO environment; flash "
                         f"build/{board.name}/firmware.elf with your board's tools")
    pio = shutil.which("pio") or shutil.which("platformio")
    if pio is None:
        raise FlashError("PlatformIO is not installed: `pip install platformio` (or "
                         "`pip install 'ternembed[pio]'`), then run `ternembed flash` again")
    env = args.env or board.name
    cmd = upload_command(pio, project, env, args.upload_port)
    if not args.json:
        print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=project, capture_output=args.json, text=True)
    if proc.returncode != 0:
        tail = ""
        if args.json:
            tail = "\n" + "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        log = (proc.stdout or "") + (proc.stderr or "")
        raise FlashError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}): {_upload_cause(log)}{tail}")
    if args.json:
        _print_json({"flashed": True, "board": board.name, "env": env,
                     "model_hash": info.get("model_hash"),
                     "firmware": info.get("firmware", "selftest")})
    else:
        print(f"flashed {project} to {board.name} (model hash {info.get('model_hash', '?')[:16]})")
    return 0


def _upload_cause(log: str) -> str:
    """The likeliest cause in PlatformIO's words, instead of guessing board or network."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for key in ("Error:", "error:", "No such file", "not found", "Could not", "HTTPClientError", "Unknown"):
        hit = next((ln for ln in lines if key in ln), None)
        if hit:
            return hit
    return "see PlatformIO's output above (board connected? first run needs a network for the ST platform)"


# ---- registration ------------------------------------------------------------------------------

PORT_HELP = ("serial port of the board: a device path (/dev/ttyACM0, COM5) or a pyserial URL "
             "(socket://127.0.0.1:N, as printed by `ternembed run`)")


def _link_options(s: argparse.ArgumentParser) -> None:
    s.add_argument("dir", metavar="DIR", help="a project exported with the protocol firmware")
    s.add_argument("--port", "-p", metavar="PORT", help=PORT_HELP + "; default: the emulator "
                   "`ternembed run DIR --detach` started")
    s.add_argument("--qemu", action="store_true",
                   help="start the project's firmware in QEMU for this command (emulated boards)")
    s.add_argument("--no-build", action="store_true", help="with --qemu: use the existing ELF")
    s.add_argument("--timeout", type=positive_seconds, default=2.0, metavar="S",
                   help="seconds to wait for a reply before sending a request again (default 2; "
                        "an invocation gets longer, adapted to the model)")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    s.add_argument("--json", action="store_true", help="print the report as JSON")


def add_device_commands(subparsers) -> None:
    """Register boards, run, validate, bench and flash on the CLI's subparsers."""
    s = subparsers.add_parser(
        "boards", help="list the supported boards",
        description="List the boards ternembed can build for: real ST Nucleo boards and "
                    "emulated QEMU boards, with core, clock, memory and serial port.")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_boards)

    s = subparsers.add_parser(
        "run", help="run a project's firmware in QEMU and print its serial port",
        description="Build the project (unless --no-build) and run its firmware on the "
                    "project's emulated board in QEMU, with the UART on a local TCP port "
                    "(socket://127.0.0.1:N). Stays in the foreground until Ctrl-C, or with "
                    "--detach keeps QEMU running in the background (stop it with --stop).",
        epilog="Example: ternembed run out/kws --detach; ternembed validate out/kws --data x.npz")
    s.add_argument("dir", metavar="DIR", help="an exported project")
    s.add_argument("--board", help="run the firmware built for this board (default: the "
                   "project's)")
    s.add_argument("--no-build", action="store_true", help="use the existing ELF")
    s.add_argument("--detach", action="store_true", help="start QEMU in the background, print "
                   "the port and return")
    s.add_argument("--stop", action="store_true", help="stop the background QEMU of DIR")
    s.add_argument("--max-seconds", type=positive_seconds, default=24 * 3600.0, metavar="S",
                   help="stop QEMU after this many seconds (foreground; default one day)")
    s.add_argument("--json", action="store_true", help="print the port as JSON")
    s.set_defaults(func=cmd_run)

    s = subparsers.add_parser(
        "validate", help="run a data set on the board and compare with the emulator bit for bit",
        description="Stream every sample of FILE to the board over the serial protocol, invoke "
                    "the model, and compare outputs and per-layer checksums with the host "
                    "emulator bit for bit. On a difference, names the first diverging layer and "
                    "dumps it. Reports agreement, accuracy (with labels), and latency per "
                    "inference and per layer, in counter ticks and ms at the board clock. The "
                    "JSON report is written as the run goes, so a dead link leaves partial "
                    "results. Exit code 3 if any sample is not bit-exact.")
    _link_options(s)
    s.add_argument("--data", "-d", required=True, metavar="FILE",
                   help=".npz with x (or input_0, input_1, ...) and optional labels y, or .npy; "
                        "leading sample axis, in the model's input dtype")
    s.add_argument("--labels", metavar="FILE", help=".npy of class labels (instead of y)")
    s.add_argument("--out", "-o", metavar="JSON", help="report path (default DIR/validate.json)")
    s.add_argument("--max-samples", type=positive_int, metavar="N", help="validate only the first N samples")
    s.add_argument("--no-checksums", action="store_true",
                   help="compare outputs only (per-layer checksums only after a mismatch)")
    s.set_defaults(func=cmd_validate)

    s = subparsers.add_parser(
        "bench", help="time repeated invocations on the board, per layer and in total",
        description="Invoke the model repeatedly on the board and report median/min/max counter "
                    "ticks (and ms at the board clock) per layer and in total; writes "
                    "bench.json, bench.csv and a PNG bar chart of the per-layer cycles.")
    _link_options(s)
    s.add_argument("--runs", "-n", type=positive_int, default=20, help="timed invocations (default 20)")
    s.add_argument("--warmup", type=non_negative_int, default=1, help="untimed invocations first (default 1)")
    s.add_argument("--data", "-d", metavar="FILE", help="take the input from the first sample of "
                   "FILE (default: a deterministic random input)")
    s.add_argument("--out", "-o", metavar="DIR", help="output folder (default DIR/bench)")
    s.add_argument("--no-chart", action="store_true", help="do not draw bench.png")
    s.set_defaults(func=cmd_bench)

    s = subparsers.add_parser(
        "flash", help="upload a project's firmware to a real board (PlatformIO)",
        description="Build and upload the project's firmware with `pio run -t upload` (needs "
                    "PlatformIO: pip install platformio; the first run downloads the ST platform "
                    "and toolchain).")
    s.add_argument("dir", metavar="DIR", help="an exported project")
    s.add_argument("--board", help="the board (default: the project's)")
    s.add_argument("--env", help="the PlatformIO env (default: the board's name)")
    s.add_argument("--upload-port", metavar="PORT", help="passed to PlatformIO's --upload-port")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_flash)
