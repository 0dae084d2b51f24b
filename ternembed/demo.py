# SPDX-License-Identifier: Apache-2.0
"""`ternembed demo`: the whole loop on the bundled MNIST CNN (examples/mnist_cnn), on an emulated board.

export (int8 and ternary) -> build -> run in QEMU -> validate every held-out test digit over the
serial link against the emulator -> benchmark per layer -> one summary table. With the train extra
(JAX) a third row: the ternary layers fine-tuned on the 1,000 calibration digits.
"""
from __future__ import annotations

import shutil

from .atomic import check_output_dir
from .staging import check_not_special
from .errors import TernembedError
from .report import table, to_json
from .resources import resource_dir

MARKER = ".ternembed-demo"
EXAMPLE = "mnist_cnn"
MODEL, TEST_SET, CALIB_SET = "mnist_cnn_int8.tflite", "mnist_cnn_test.npz", "mnist_cnn_calib.npz"
CONFIGS = [  # (name, export options)
    ("int8", dict(ternary=False)),
    # the default policy (first conv and last layer int8); one scale per output channel: the
    # fastest ternary kernels, and their scratch fits under the first conv's activations
    ("ternary", dict(method="fgq", group="channel")),
]
# the ternary row's layers fine-tuned 2 epochs on the calibration digits with their labels (the best
# epoch on a held-out fifth of them): needs the train extra
FINETUNED = ("ternary fine-tuned", dict(CONFIGS[1][1], finetune=CALIB_SET, finetune_options=dict(epochs=2, progress=False)))


def configs() -> list[tuple[str, dict]]:
    try:
        from .finetune import require_jax
        require_jax()
    except TernembedError:
        return CONFIGS
    return CONFIGS + [FINETUNED]


def _say(args, text: str) -> None:
    if not args.json:
        print(text, flush=True)


def run_demo(args) -> int:
    from .boards import get_board
    from .build import build_project
    from .device.bench import bench
    from .device.run import start_emulator
    from .data import load_data
    from .device.validate import validate
    from .pipeline import export_model

    board = get_board(args.board)
    if not board.emulated:
        raise TernembedError(f"the demo runs on an emulated board; {board.name} is a real board "
                             "(use 'ternembed export/build/flash/validate' for it)")
    example = resource_dir("examples") / EXAMPLE
    model, data, calib = example / MODEL, example / TEST_SET, example / CALIB_SET
    out = check_output_dir(args.output)
    check_not_special(out)  # the folder is removed and rewritten: never /, home or the current folder
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise TernembedError(f"{out} is not empty and holds no earlier demo; choose another folder with -o")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("written by ternembed demo; the whole folder is replaced by the next demo\n")
    inputs, labels = load_data(data)

    rows, records = [], []
    todo = configs()
    if len(todo) == len(CONFIGS):
        _say(args, "(the fine-tuned row needs the train extra: pip install 'ternembed[train]')")
    for name, opts in todo:
        project = out / name.replace(" ", "_")
        if "finetune" in opts:
            opts = dict(opts, finetune=example / opts["finetune"])
        _say(args, f"\n== {name}: export {model.name} for {board.name}")
        # calibrated on training digits, so the held-out test digits measure it fairly
        exported = export_model(model, board.name, project, calib=calib, eval_data=data, **opts)
        if exported.report is not None:
            _say(args, exported.report.table())
        _say(args, "== build")
        built = build_project(project)
        _say(args, built.summary())
        _say(args, "== run in QEMU, validate every test sample over the serial link")
        with start_emulator(project, build=False) as session:
            result = validate(project, session.url, inputs, labels, out_json=project / "validate.json",
                              progress=not args.json)
            _say(args, result.summary())
            _say(args, "== benchmark")
            timing = bench(project, session.url, runs=10, inputs=inputs, out_dir=project / "bench",
                           progress=False)
            _say(args, timing.summary())
        total = timing.total()
        rec = dict(config=name, weight_bytes=exported.weight_bytes, flash_bytes=built.flash_bytes,
                   ram_bytes=built.ram_bytes, arena_bytes=exported.arena_bytes, samples=result.done,
                   bit_exact=result.exact, accuracy=result.accuracy, ticks_median=total.get("median_cycles"),
                   tick_unit=timing.to_dict().get("unit"))
        records.append(rec)
        rows.append([name, rec["weight_bytes"], rec["flash_bytes"], rec["ram_bytes"],
                     f"{result.exact}/{result.done}", f"{result.accuracy:.4f}", rec["ticks_median"]])
    if args.json:
        print(to_json(dict(board=board.name, model=str(model), results=records)))
    else:
        print(f"\n== summary ({board.name}, {len(inputs[0])} held-out MNIST test digits; ticks are QEMU "
              "instruction counts, proportional to executed instructions)")
        print(table(["config", "weight B", "flash B", "RAM B", "bit-exact", "accuracy", "ticks/inference"],
                    rows, "lrrrrrr"))
        print(f"projects, reports and charts: {out}/")
    bad = [r for r in records if r["bit_exact"] != r["samples"]]
    return 3 if bad else 0
