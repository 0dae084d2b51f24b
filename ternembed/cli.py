# SPDX-License-Identifier: Apache-2.0
"""The `ternembed` command line. Every command has --help; --json gives machine-readable output.

Exit codes: 0 success, 2 a problem with the input (printed as one line), 1 a bug
in ternembed (the traceback is shown with --debug).
"""
from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

import numpy as np

from . import __version__
from .cliargs import fraction, group_size, in_range, positive_int
from .errors import TernembedError
from .report import table, to_json


PERCENTILE = in_range(float, 0, 49)


def cmd_inspect(args) -> int:
    from .inspect import analyze
    from .tflite import read
    graph = read(args.model)
    infos = analyze(graph)
    totals = dict(ops=len(infos), macs=sum(i.macs for i in infos),
                  weight_bytes=sum(i.weight_bytes for i in infos),
                  unsupported=[f"{i.index} {i.type}" for i in infos if not i.supported])
    if args.json:
        print(to_json(dict(model=str(args.model), kind=graph.kind, subgraphs=graph.subgraphs,
                           inputs=[_tensor_json(graph, i) for i in graph.inputs],
                           outputs=[_tensor_json(graph, i) for i in graph.outputs],
                           ops=[vars(i) for i in infos], totals=totals)))
        return 0
    print(f"{graph.name}: {graph.kind} model, {len(infos)} ops"
          + (f" (subgraph 0 of {graph.subgraphs}; only it is run)" if graph.subgraphs > 1 else ""))
    rows = [[i.index, i.type, ", ".join(i.inputs), ", ".join(i.outputs), i.macs, i.weight_bytes,
             "yes" if i.supported else f"no: {i.why}"] for i in infos]
    print(table(["#", "op", "input", "output", "MACs", "weight B", "supported"], rows, "rlllrrl"))
    print(f"total: {totals['macs']:,} MACs, {totals['weight_bytes']:,} weight bytes"
          + (f", {len(totals['unsupported'])} unsupported op(s)" if totals["unsupported"] else ""))
    return 0


def _tensor_json(graph, i: int) -> dict:
    t = graph.tensors[i]
    q = t.quant
    return dict(name=t.name, shape=list(t.shape), dtype=t.dtype,
                scale=None if q is None else float(q.s), zero_point=None if q is None else q.zp)


def cmd_emulate(args) -> int:
    from . import emulate
    from .atomic import check_output_file
    from .pipeline import build_plan
    if args.output:
        check_output_file(args.output)  # before the work
    plan, _ = build_plan(args.model, args.calib, args.percentile)
    from .data import load_array, to_plan_inputs
    x = to_plan_inputs(plan, [load_array(args.input)])[0]  # float data: quantized, as validate does
    outputs = emulate.run(plan, [x])
    if args.output:
        _save_outputs(Path(args.output), outputs, plan)
    if args.json:
        print(to_json(dict(model=str(args.model), samples=len(x),
                           outputs=[dict(shape=list(o.shape), dtype=str(o.dtype)) for o in outputs],
                           written=args.output)))
    else:
        print(f"{plan.name}: {len(x)} sample(s) emulated"
              + (f", outputs written to {args.output}" if args.output else ""))
        if not args.output:
            for k, o in enumerate(outputs):
                print(f"output {k} {list(o.shape)} {o.dtype}:")
                print(np.array2string(o[:8], threshold=200))
    return 0


def _save_outputs(path: Path, outputs: list[np.ndarray], plan) -> None:
    """One output: a .npy (whatever the name); several, or a .npz name: one array per output. Written
    atomically: never a half-written file under the user's name."""
    from .atomic import write_atomic
    if len(outputs) == 1 and path.suffix != ".npz":
        write_atomic(path, lambda fh: np.save(fh, outputs[0]))
    else:
        write_atomic(path, lambda fh: np.savez(fh, **{f"output_{k}": o for k, o in enumerate(outputs)}))


def cmd_export(args) -> int:
    from .pipeline import export_model
    opts = dict(method=args.method, group=args.group, planes=args.planes, budget_bits=args.budget_bits,
                max_flash=args.max_flash, min_agreement=args.min_agreement, config=args.config,
                layers=args.layer)
    if args.first_last:
        opts["first_last"] = args.first_last
    if args.depthwise:
        opts["depthwise"] = args.depthwise
    if args.switchable:
        opts["switchable"] = True
    result = export_model(args.model, args.board, args.output,
                          calib=args.calib, percentile=args.percentile,
                          ternary=args.method != "int8", eval_data=args.eval, force=args.force,
                          firmware="selftest" if args.selftest else "protocol", optimize=args.optimize,
                          act_bits=args.act_bits, max_ram=args.max_ram,
                          finetune=args.finetune, finetune_options=dict(epochs=args.finetune_epochs),
                          **{k: v for k, v in opts.items() if k != "method" or v != "int8"})
    print(to_json(result.to_dict()) if args.json else result.summary())
    return 0 if result.fits else 4


def cmd_build(args) -> int:
    from .build import build_project
    use_pio = {"auto": "auto", "yes": True, "no": False}[args.platformio]
    result = build_project(args.dir, board=args.board, use_platformio=use_pio, jobs=args.jobs, strict=False)
    if args.json:
        print(to_json(dict(project=str(result.project), board=result.board.name, method=result.method,
                           elf=str(result.elf), flash_bytes=result.flash_bytes, ram_bytes=result.ram_bytes,
                           flash_free=result.flash_free, ram_free=result.ram_free, fits=result.fits,
                           sizes=result.sizes, planned=result.planned, checks_ok=result.checks_ok,
                           checks=[dict(name=c.name, planned=c.planned, measured=c.measured, ok=c.ok,
                                        note=c.note) for c in result.checks])))
    else:
        print(result.summary())
    from .build import raise_if_bad
    raise_if_bad(result)
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo
    return run_demo(args)


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are one line on stderr, like every other input problem (exit 2)."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="ternembed",
        description="Ternary-weight neural networks on Arm Cortex-M: read a .tflite model, quantize, "
                    "emulate bit-exactly, export firmware, validate on a board.",
        epilog="Run 'ternembed COMMAND --help' for a command's options.")
    p.add_argument("--version", action="version", version=f"ternembed {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("inspect", help="list a model's ops, shapes, MACs and weight bytes",
                       description="Show every op of a .tflite model with its shapes, MACs, weight "
                                   "bytes, and whether ternembed supports it.")
    s.add_argument("model", help="path to a .tflite model")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("emulate", help="run a model in the bit-exact host emulator",
                       description="Run a model in the host emulator (exactly the integer arithmetic "
                                   "of the generated C code) on a batch of inputs. A streaming model "
                                   "(resource variables) runs them as successive invokes, its state "
                                   "carried from one to the next.")
    s.add_argument("model", help="path to a .tflite model")
    s.add_argument("--input", "-i", required=True, metavar="X.npy",
                   help="inputs with a leading sample axis (.npy, or .npz with array 'x'); float data for "
                   "an int8 input is quantized with its scale and zero point")
    s.add_argument("--output", "-o", metavar="Y.npy",
                   help="where to write outputs (.npy; .npz with one array per output if several)")
    s.add_argument("--calib", metavar="FILE", help="calibration inputs for float/hybrid models "
                   "(.npy/.npz with a leading sample axis, or a folder of images)")
    s.add_argument("--percentile", type=PERCENTILE, metavar="P",
                   help="clip activation ranges to the P..100-P percentiles (default: min/max)")
    s.add_argument("--json", action="store_true", help="print a JSON summary")
    s.set_defaults(func=cmd_emulate)

    s = sub.add_parser(
        "export", help="quantize a model to ternary and write a firmware project",
        description="Read MODEL, calibrate it if it is float or hybrid, quantize the chosen layers to "
                    "ternary weights, and write a complete firmware project for BOARD (PlatformIO + "
                    "Makefile). The project's firmware speaks the serial protocol used by validate and "
                    "bench (--selftest: a firmware that checks embedded test vectors instead). A report "
                    "of the quantization is printed and written to DIR/report.json.",
        epilog="Examples:\n  ternembed export model.tflite --board nucleo                     # writes ./model-nucleo_f446re\n"
               "  ternembed export model.tflite --board nucleo -o out/model --calib calib.npz\n"
               "  ternembed export model.tflite --board qemu_mps2_an386 -o out/m --budget-bits 2.5 --calib c.npz\n"
               "  ternembed export model.tflite --board nucleo -o out/m --method int8   # no ternary layers",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("model", help="path to a .tflite model (float32, hybrid or int8)")
    s.add_argument("--board", "-b", required=True, help="target board (see 'ternembed boards'), e.g. nucleo")
    s.add_argument("--output", "-o", metavar="DIR", help="project folder to write (default "
                   "./MODEL-BOARD, e.g. ./kws_ref_model-nucleo_f446re)")
    s.add_argument("--force", action="store_true", help="replace DIR if it is not empty")
    s.add_argument("--calib", metavar="FILE", help="calibration inputs (.npy/.npz with a leading sample axis, "
                   "or a folder of images): activation ranges of float models and sensitivity placement")
    s.add_argument("--percentile", type=PERCENTILE, metavar="P", help="clip float activation ranges to P..100-P")
    s.add_argument("--eval", metavar="FILE", help="labeled data (.npz with x and y) to report accuracy and "
                   "agreement with the int8 model")
    q = s.add_argument_group("quantization")
    q.add_argument("--method", choices=["int8", "fgq", "twn", "exact", "trn", "hefan", "tga", "pow2", "offset"],
                   help="weight method for ternary layers (default fgq; int8: keep every layer int8)")
    q.add_argument("--group", type=group_size, metavar="N", help="group size along the reduction axis: 4..64, or 'channel'")
    q.add_argument("--planes", type=in_range(int, 1, 8), metavar="R", help="residual ternary planes per layer (trn)")
    q.add_argument("--budget-bits", type=in_range(float, 0, 16, low_open=True), metavar="B",
                   help="place layers by sensitivity until the "
                   "average bits per weight (scales included) is at most B; needs --calib")
    q.add_argument("--max-flash", metavar="SIZE", help="weight bytes budget, e.g. 64k; needs --calib")
    q.add_argument("--min-agreement", type=fraction, metavar="A", help="keep at least this agreement with the "
                   "int8 model on the calibration data (0..1); needs --calib")
    q.add_argument("--first-last", choices=["auto", "int8", "ternary"], help="first and last MAC layer "
                   "(default auto: int8)")
    q.add_argument("--depthwise", choices=["int8", "ternary", "place"], help="depthwise layers (default int8)")
    q.add_argument("--switchable", action="store_true", help="residual planes can be switched off at run time")
    q.add_argument("--layer", action="append", metavar="NAME=SPEC", help="per-layer override by op index or "
                   "output tensor name, e.g. 3=int8 or conv1=fgq:16 (repeatable)")
    q.add_argument("--config", metavar="TOML", help="a quantization config file (command-line options win)")
    q.add_argument("--act-bits", type=int, choices=[8, 4], default=8,
                   help="4: activations between two MAC layers on a signed 4-bit grid (needs --calib)")
    q.add_argument("--optimize", choices=["ram", "speed", "size", "balanced"], default="ram",
                   help="how each ternary layer's kernel variant is picked for the board's core (measured in "
                        "benchmarks/kernels.py); default ram: fastest within the int8 export's arena")
    q.add_argument("--max-ram", metavar="BYTES", help="arena budget, e.g. 48k: --optimize ram stays within it "
                   "and the int8 arena; --optimize speed within it (default: the board's RAM)")
    q.add_argument("--finetune", metavar="FILE", help="fine-tune the ternary layers on these inputs (.npz, labels "
                   "optional) by distillation from the int8 model; needs pip install 'ternembed[train]'")
    q.add_argument("--finetune-epochs", type=in_range(int, 1, 1000), default=10, metavar="N", help="epochs (default 10)")
    s.add_argument("--selftest", action="store_true", help="self-test firmware instead of the serial protocol")
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("build", help="build an exported project and check flash/RAM against the plan",
                       description="Build an exported project (PlatformIO when it can work offline, else "
                                   "its Makefile with arm-none-eabi-gcc) and compare the ELF's flash and RAM "
                                   "with the export's plan. Exit code 4 when the firmware does not fit.")
    s.add_argument("dir", metavar="DIR", help="a project written by 'ternembed export'")
    s.add_argument("--board", help="build for another board than the one exported for")
    s.add_argument("--platformio", choices=["auto", "yes", "no"], default="auto",
                   help="use PlatformIO (default auto: only when it can build offline)")
    s.add_argument("--jobs", "-j", type=positive_int, help="parallel compile jobs")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_build)

    from .device.commands import add_device_commands
    add_device_commands(sub)
    from .finetune.cli import add_parser as add_finetune
    add_finetune(sub)

    s = sub.add_parser("demo", help="the whole loop on a bundled model, on an emulated Cortex-M4",
                       description="Export the bundled digits model (int8 and ternary), build both for "
                                   "qemu_mps2_an386, run them in QEMU, validate every test sample over the "
                                   "serial link bit for bit, benchmark per layer, and print a summary.")
    s.add_argument("--output", "-o", metavar="DIR", default="ternembed-demo",
                   help="where the projects go (default ./ternembed-demo; replaced if it holds a demo)")
    s.add_argument("--board", default="qemu_mps2_an386", help="an emulated board (default qemu_mps2_an386)")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    s.set_defaults(func=cmd_demo)
    return p


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: emulators are stopped and reports marked incomplete."""


def _terminate(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import signal
    import threading
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except TernembedError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # The reader went away (`ternembed bench ... | head`): stop quietly, as Unix tools do.
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except KeyboardInterrupt as exc:
        print("terminated" if isinstance(exc, Terminated) else "interrupted", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except Exception:
        if args.debug:
            traceback.print_exc()
        else:
            print(f"internal error in ternembed ({sys.exc_info()[0].__name__}: {sys.exc_info()[1]}); "
                  "rerun with --debug for the traceback, and please report it", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
