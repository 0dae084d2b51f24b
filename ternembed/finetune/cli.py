# SPDX-License-Identifier: Apache-2.0
"""`ternembed finetune`: export like `ternembed export`, with the ternary layers fine-tuned."""
from __future__ import annotations

import argparse

from ..cliargs import fraction, group_size, in_range, non_negative_int, positive_int


def add_parser(sub) -> None:
    s = sub.add_parser(
        "finetune", help="export with the ternary layers fine-tuned on your data (needs the train extra)",
        description="Quantize MODEL to ternary as 'ternembed export' does, then fine-tune the ternary "
                    "layers (straight-through ternary weights, learned scales and biases, int8 activations "
                    "as the firmware computes them) by distillation from the int8 model on --data (plus "
                    "cross-entropy when it holds labels 'y'), keep the epoch whose integer plan scores best "
                    "on a held-out part of --data, and write the firmware project. The project builds and "
                    "validates like any export. Needs pip install 'ternembed[train]' (JAX + optax).",
        epilog="Example:\n  ternembed finetune model.tflite --data train.npz --eval test.npz --board "
               "qemu_mps2_an386 -o out/tuned\n  ternembed build out/tuned && ternembed validate out/tuned "
               "--qemu --data test.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("model", help="path to a .tflite model (float32, hybrid or int8)")
    s.add_argument("--data", required=True, metavar="FILE",
                   help="training inputs (.npy/.npz with a leading sample axis; an .npz 'y' array gives labels); "
                        "also the calibration data unless --calib is given")
    s.add_argument("--calib", metavar="FILE", help="calibration inputs (default: --data)")
    s.add_argument("--eval", metavar="FILE", help="test data (.npz with x, y): accuracy and agreement with int8 "
                   "reported; never trained on nor used to pick the epoch")
    s.add_argument("--no-labels", action="store_true", help="ignore labels in --data: distillation only")
    s.add_argument("--board", "-b", required=True, help="target board (see 'ternembed boards')")
    s.add_argument("--output", "-o", metavar="DIR", help="project folder to write (default ./MODEL-BOARD)")
    s.add_argument("--force", action="store_true", help="replace DIR if it is not empty")
    q = s.add_argument_group("quantization (as export)")
    q.add_argument("--method", choices=["fgq", "twn", "exact", "hefan", "tga", "trn", "pow2", "offset"],
                   help="post-training start, and what is learned: fgq/twn/exact/hefan/tga group scales (FGQ), trn "
                        "every residual plane jointly (TRN), pow2 power-of-two levels (GTC), offset per-channel "
                        "scale + offset (RTN); default fgq")
    q.add_argument("--asymmetric", action="store_true",
                   help="learn separate scales for +1 and -1 (TTQ): stored as two ternary planes")
    q.add_argument("--group", type=group_size, metavar="N", help="group size: 4..64, or 'channel'")
    q.add_argument("--planes", type=in_range(int, 1, 8), metavar="R", help="residual planes (trn)")
    q.add_argument("--first-last", choices=["auto", "int8", "ternary"], help="first and last MAC layer (default int8)")
    q.add_argument("--depthwise", choices=["int8", "ternary", "place"], help="depthwise layers (default int8)")
    q.add_argument("--budget-bits", type=in_range(float, 0, 16, low_open=True), metavar="B",
                   help="place layers by sensitivity within B bits per weight")
    q.add_argument("--optimize", choices=["ram", "speed", "size", "balanced"], default="ram",
                   help="kernel variants as export (default ram)")
    q.add_argument("--layer", action="append", metavar="NAME=SPEC", help="per-layer override, e.g. 3=int8")
    t = s.add_argument_group("training")
    t.add_argument("--epochs", type=positive_int, default=10, help="at most this many epochs (default 10)")
    t.add_argument("--minutes", type=in_range(float, 0, None, low_open=True), help="stop after the epoch that passes this")
    t.add_argument("--lr", type=in_range(float, 0, 1, low_open=True), default=0.01,
                   help="learning rate, times each tensor's mean magnitude (default 0.01)")
    t.add_argument("--batch", type=positive_int, default=64, help="batch size (default 64)")
    t.add_argument("--holdout", type=fraction, default=0.2, help="part of --data held out to pick the epoch (default 0.2)")
    t.add_argument("--seed", type=non_negative_int, default=0, help="seed of the shuffles and the held-out split")
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.set_defaults(func=run)


def run(args) -> int:
    from .deps import require_jax
    from ..pipeline import export_model
    from ..report import to_json
    require_jax()  # before any work: one line naming the extra
    opts = {k: v for k, v in dict(method=args.method, group=args.group, planes=args.planes, layers=args.layer,
                                  first_last=args.first_last, depthwise=args.depthwise,
                                  budget_bits=args.budget_bits).items() if v is not None}
    ft = dict(labels=not args.no_labels, epochs=args.epochs, lr=args.lr, batch=args.batch, seed=args.seed,
              holdout=args.holdout, asymmetric=args.asymmetric,
              seconds=None if args.minutes is None else 60.0 * args.minutes)
    result = export_model(args.model, args.board, args.output, calib=args.calib or args.data, eval_data=args.eval,
                          force=args.force, optimize=args.optimize, finetune=args.data, finetune_options=ft, **opts)
    print(to_json(result.to_dict()) if args.json else result.summary())
    return 0 if result.fits else 4
