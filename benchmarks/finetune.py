"""Ternary fine-tuning vs post-training on real models -> benchmarks/results/finetune.md

    python benchmarks/finetune.py [--json] [--models mnist,ic,sww,ad] [--out benchmarks/results/finetune.md]
                                  [--merge earlier.json]

One record per (model, setting): model, setting, bits_per_weight, accuracy, accuracy_int8,
top1_agreement, seconds ("ptq" rows post-training, "finetune" rows fine-tuned; accuracy null
without labels). Every plan is emulated bit-exactly on inputs held out of fine-tuning and of the
held-out split that picks the kept epoch. bits_per_weight: over all MAC layers, scales included
(ternembed.plan.quant_bytes). seconds: wall clock of quantizing (+ fine-tuning) on this machine.

- mnist: examples/mnist_cnn (int8 .tflite trained here on the 4,500 training digits of the fixed
  split in mnist_split.py), fine-tuned on those digits with labels (KL from the int8 plan +
  cross-entropy; kept epoch picked on a seeded fifth of them), measured on the 500 test digits.
- ic: MLPerf Tiny ResNet-8, fine-tuned without labels on 32x32 crops of two photos
  (benchmarks/finetune_data.py), measured on 480 crops from a part of the photos no training
  crop touches plus the 20 CIFAR-10 PNGs (accuracy: on those 20).
- sww: MLPerf Tiny streaming wake word, every layer ternary (depthwise too), 3 folds over the 48
  shared inputs: each fold fine-tuned on augmented versions of the other 32 (no labels), measured
  on its 16; the record sums the folds. accuracy: labels of the 48 inputs.
- ad: MLPerf Tiny anomaly detection autoencoder, every layer ternary, 3 folds of contiguous frame
  blocks of the ToyCar clip (output-MSE distillation); accuracy/top1_agreement are null and
  score/score_int8 give the AD score (mean MSE of input and output) on the held-out windows.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "examples" / "mnist_cnn"))

from ternembed import emulate  # noqa: E402
from ternembed.data import to_plan_inputs  # noqa: E402
from ternembed.pipeline import build_plan, ternary_config  # noqa: E402
from ternembed.plan import quant_bytes  # noqa: E402
from ternembed.quantize.plan_pass import mac_layers, ternarize_plan  # noqa: E402
from ternembed.reference import run_litert  # noqa: E402

MNIST = ROOT / "examples" / "mnist_cnn"
# per model: settings (name -> TernaryConfig options) and fine-tuning options (measured choices:
# cosine-decayed Adam at lr x mean|tensor|, batch 64 for images, 32 for the small sets)
MNIST_SETTINGS = {"first/last int8": dict(), "all ternary": dict(first_last="ternary")}
IC_SETTINGS = {"FGQ N=64 first/last int8": dict(method="fgq", group=64),
               # candidates: pow2 L4 (4-bit codes; post-training 0.772 agreement vs 0.642 with the default
               # candidates, measured on the held-out set below)
               "4-bit budget": dict(method="fgq", group=64, budget_bits=4.0, max_planes=3, depthwise="place",
                                    candidates=["pow2:levels=4,group=64", "fgq:group=16", "trn:group=64,planes=2"])}
IC_TRAIN = dict(crops=12000, epochs=8, lr=0.02, batch=64, teacher_ce=0.5)
SWW_SETTINGS = {"every layer ternary FGQ N=16": dict(method="fgq", group=16, first_last="ternary", depthwise="ternary")}
SWW_TRAIN = dict(copies=30, epochs=6, lr=0.01, batch=32)
AD_SETTINGS = {"every layer ternary FGQ N=16": dict(method="fgq", group=16, first_last="ternary"),
               "every layer ternary TRN 2 planes N=64": dict(method="trn", group=64, planes=2, first_last="ternary")}
AD_TRAIN = dict(copies=10, epochs=60, lr=0.03, batch=32)
DECISIVE = 1.0  # IC: an input's int8 top-1 is "decisive" when it leads the second logit by at least this


def bits_per_weight(int8_plan, plan) -> float:
    layers = mac_layers(int8_plan)
    return 8 * sum(quant_bytes(plan.steps[L.pos]) for L in layers) / sum(L.n_weights for L in layers)


def top1(plan, x) -> np.ndarray:
    return emulate.run(plan, [x])[0].reshape(len(x), -1).argmax(1)


def quant_input(plan, xf) -> np.ndarray:
    return to_plan_inputs(plan, [np.asarray(xf, np.float32)])[0]


def record(model, setting, int8_plan, plan, sec, pred=None, pred8=None, y=None, decisive=None, **extra) -> dict:
    """``decisive``: a mask of the inputs where int8's top-1 is clear; their agreement is recorded too."""
    lab = None if y is None else y >= 0
    acc = None if y is None else float((pred[lab] == y[lab]).mean())
    acc8 = None if y is None else float((pred8[lab] == y[lab]).mean())
    agree = None if pred is None else float((pred == pred8).mean())
    if decisive is not None:
        extra["top1_agreement_decisive"] = float((pred == pred8)[decisive].mean())
    bits = 32.0 if plan is None else round(bits_per_weight(int8_plan, plan), 3)
    return dict(model=model, setting=setting, bits_per_weight=bits,
                accuracy=acc, accuracy_int8=acc8, top1_agreement=agree, seconds=round(sec, 1), **extra)


def int8_margin(plan, x) -> np.ndarray:
    """How far int8's top-1 logit leads the second (in logits, before the softmax)."""
    from ternembed.finetune.twin import Twin
    buf = Twin(plan).logit_buffer  # the one rule for where the logits are
    z = emulate.run(plan, [x], keep_all=True)[buf].reshape(len(x), -1).astype(np.float64)
    top2 = np.sort(z, axis=1)[:, -2:] * plan.buffers[buf].scale
    return top2[:, 1] - top2[:, 0]


def quantize_both(int8_plan, opts, calib, train, labels=None, log=print, **ft):
    """[(kind, plan, seconds)]: the post-training plan and the fine-tuned one."""
    from ternembed.finetune import finetune_plan
    cfg = ternary_config(**opts)
    t0 = time.perf_counter()
    ptq, _ = ternarize_plan(int8_plan, cfg, [calib])
    t1 = time.perf_counter()
    tuned, rep = finetune_plan(int8_plan, ptq, train, labels, seed=0, progress=False, **ft)
    log(rep.table())
    return [("ptq", ptq, t1 - t0), ("finetune", tuned, time.perf_counter() - t0)]


def run_mnist(log=print) -> list[dict]:
    from mnist_split import load_split
    int8_plan, _ = build_plan(MNIST / "mnist_cnn_int8.tflite")
    x_tr, y_tr, _, _ = load_split()
    x_tr = quant_input(int8_plan, x_tr)
    with np.load(MNIST / "mnist_cnn_test.npz") as z:
        x_te, y_te = z["x_int8"], z["y"]
    pred8 = top1(int8_plan, x_te)
    rows = []
    for name, opts in MNIST_SETTINGS.items():
        for kind, plan, sec in quantize_both(int8_plan, opts, x_tr[:1000], x_tr, y_tr, log, epochs=4):
            rows.append(record("mnist_cnn", f"{kind} {name}", int8_plan, plan, sec, top1(plan, x_te), pred8, y_te))
            log(json.dumps(rows[-1]))
    return rows


def run_ic(log=print) -> list[dict]:
    from finetune_data import ic_data
    from shared_data import MODELS
    int8_plan, _ = build_plan(MODELS / "mlperf_ic/pretrainedResnet_quant.tflite")
    tr = IC_TRAIN
    x_tr, xf_te, y_te = ic_data(tr["crops"])
    x_tr, x_te = quant_input(int8_plan, x_tr), quant_input(int8_plan, xf_te)
    pred8 = top1(int8_plan, x_te)
    decisive = int8_margin(int8_plan, x_te) >= DECISIVE
    # the yardstick: the float model int8 was quantized from, on the same inputs
    t0 = time.perf_counter()
    pf = run_litert(MODELS / "mlperf_ic/pretrainedResnet.tflite", [xf_te])[0].reshape(len(xf_te), -1).argmax(1)
    rows = [record("ic", "float model (reference)", int8_plan, None, time.perf_counter() - t0, pf, pred8, y_te,
                   decisive)]
    log(json.dumps(rows[-1]))
    ft = {k: v for k, v in tr.items() if k != "crops"}
    for name, opts in IC_SETTINGS.items():
        for kind, plan, sec in quantize_both(int8_plan, opts, x_tr[:500], x_tr, None, log, **ft):
            rows.append(record("ic", f"{kind} {name}", int8_plan, plan, sec, top1(plan, x_te), pred8, y_te,
                               decisive))
            log(json.dumps(rows[-1]))
    return rows


def run_sww(log=print) -> list[dict]:
    from finetune_data import augment_spectrograms, folds, sww_inputs
    from shared_data import MODELS
    int8_plan, _ = build_plan(MODELS / "mlperf_sww/str_ww_ref_model.tflite")
    xf, y, (xfix, yfix) = sww_inputs()
    x = np.concatenate([quant_input(int8_plan, xf), xfix])
    y = np.concatenate([y, yfix])
    scale = float(int8_plan.buffers[int8_plan.inputs[0]].scale)
    zp = int8_plan.buffers[int8_plan.inputs[0]].zero_point
    pred8 = top1(int8_plan, x)
    tr = SWW_TRAIN
    ft = {k: v for k, v in tr.items() if k != "copies"}
    rows = []
    for name, opts in SWW_SETTINGS.items():
        pred = {"ptq": np.zeros(len(x), int), "finetune": np.zeros(len(x), int)}
        secs = {"ptq": 0.0, "finetune": 0.0}
        for i, te in enumerate(folds(len(x))):
            trn = np.setdiff1d(np.arange(len(x)), te)
            xa = augment_spectrograms((x[trn].astype(np.float32) - zp) * scale, tr["copies"], i, scale)
            for kind, plan, sec in quantize_both(int8_plan, opts, x[trn], quant_input(int8_plan, xa), None, log, **ft):
                pred[kind][te] = top1(plan, x[te])
                secs[kind] += sec
        for kind in ("ptq", "finetune"):
            rows.append(record("sww", f"{kind} {name}", int8_plan, plan, secs[kind], pred[kind], pred8, y))
            log(json.dumps(rows[-1]))
    return rows


def run_ad(log=print) -> list[dict]:
    from finetune_data import ad_folds, ad_windows, augment_ad
    from shared_data import MODELS
    int8_plan, _ = build_plan(MODELS / "mlperf_ad/ad01_int8.tflite")
    out = int8_plan.buffers[int8_plan.outputs[0]]

    def sq_err(plan, xf):  # summed over windows of the mean squared error of input and output
        yq = emulate.run(plan, [quant_input(int8_plan, xf)])[0].reshape(len(xf), -1).astype(np.float64)
        return float((((yq - out.zero_point) * out.scale - xf) ** 2).mean(axis=1).sum())

    tr = AD_TRAIN
    ft = {k: v for k, v in tr.items() if k != "copies"}
    rows = []
    for name, opts in AD_SETTINGS.items():
        err = {"ptq": 0.0, "finetune": 0.0, "int8": 0.0}
        secs = {"ptq": 0.0, "finetune": 0.0}
        n = 0
        for i, (runs, test) in enumerate(ad_folds()):
            calib = quant_input(int8_plan, np.concatenate([ad_windows(r) for r in runs]))
            train = quant_input(int8_plan, augment_ad(runs, tr["copies"], i))
            err["int8"] += sq_err(int8_plan, test)
            n += len(test)
            for kind, plan, sec in quantize_both(int8_plan, opts, calib, train, None, log, **ft):
                err[kind] += sq_err(plan, test)
                secs[kind] += sec
        for kind in ("ptq", "finetune"):
            rows.append(record("ad", f"{kind} {name}", int8_plan, plan, secs[kind], score=round(err[kind] / n, 4),
                               score_int8=round(err["int8"] / n, 4),
                               score_change=round(err[kind] / err["int8"] - 1, 4)))
            log(json.dumps(rows[-1]))
    return rows


RUNS = {"mnist": run_mnist, "ic": run_ic, "sww": run_sww, "ad": run_ad}


def _f(v, fmt=".3f") -> str:
    return "-" if v is None else format(v, fmt)


def markdown(rows: list[dict]) -> str:
    out = ["# Ternary fine-tuning vs post-training", "",
           "Generated by `python benchmarks/finetune.py` (do not edit by hand); what each model is trained and "
           "measured on is in the script's docstring. Every number is measured on inputs held out of fine-tuning "
           "(and of the split that picks the kept epoch), emulated bit-exactly: the fine-tuned plans are the same "
           "integer contract as post-training (emulator == host C == firmware).", "",
           "| model | setting | bits/w | accuracy | int8 accuracy | top-1 agreement | agreement, decisive inputs "
           "| AD score (int8) | seconds |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ad = "-" if "score" not in r else f"{r['score']:.3f} ({r['score_int8']:.3f}, {100 * r['score_change']:+.2f}%)"
        out.append(f"| {r['model']} | {r['setting']} | {r['bits_per_weight']:.3f} | {_f(r['accuracy'])} | "
                   f"{_f(r['accuracy_int8'])} | {_f(r['top1_agreement'])} | {_f(r.get('top1_agreement_decisive'))} | "
                   f"{ad} | {r['seconds']:.0f} |")
    tuned = sum(r["seconds"] for r in rows if r["setting"].startswith("finetune"))
    out += ["", f"Quantizing + fine-tuning, all models: {tuned / 60:.1f} min (a fine-tuned row's seconds include its "
            "post-training pass; measured on a 2-core machine with nothing else running, JAX on both cores).",
            "", "Targets (issue 11): MNIST first/last int8 within 1 point of int8, all ternary within 2 points, "
            "<= 2.6 bits/w; IC fine-tuned <= 2.6 bits/w >= 80% top-1 agreement with int8, 4-bit budget >= 90%; "
            "SWW every layer ternary >= 95%; AD every layer ternary score within 2% of int8.", "",
            "Settings: IC FGQ N=64 keeps the first and last MAC layer int8 (the default policy); its 4-bit budget is "
            "the sensitivity placement over int8, power-of-two levels (GTC, 4-bit codes, L=4 to start, learned in "
            "fine-tuning), FGQ N=16 and two residual FGQ N=64 planes per layer. SWW and AD make every MAC layer "
            "ternary (depthwise too). IC is fine-tuned without labels on "
            f"{IC_TRAIN['crops']:,} crops of two photos ({IC_TRAIN['epochs']} epochs, lr {IC_TRAIN['lr']}, batch "
            f"{IC_TRAIN['batch']}, cross-entropy on the int8 top-1 at weight {IC_TRAIN['teacher_ce']}); a fifth of them "
            "picks the kept epoch. The held-out IC crops come from a strip of the photos no training crop touches, "
            "without colour jitter; they and the 20 CIFAR images are never trained on.", "",
            "IC's yardstick is the float model's row: the model int8 was quantized from agrees with int8 on only "
            "about 82% of these inputs. Most crops are textures a CIFAR-10 classifier has no clear answer for: on "
            f"the inputs where int8's top-1 logit leads the second by less than {DECISIVE:g}, float and int8 agree "
            "about as often as a coin flip between two classes. 'agreement, decisive inputs' is measured on the others "
            "(int8 leads by at least that); there float agrees with int8 almost always.", "",
            "What else was tried on IC (one-off runs, not kept; 2,020 held-out inputs: the 480 crops here and "
            "1,520 more from the same strip, plus the 20 CIFAR images; agreement with int8): FGQ N=64 12,000 crops x "
            "12 epochs 0.690 (training crops 0.721: the ternary model underfits int8 even on its own data); FGQ N=16 "
            "(2.58 bits/w) 4,000 x 3 0.652; the 2.6-bit budget placement 8,000 x 5 0.674; latent weights started at "
            "the int8 weights instead of the post-training ones, no gain (4,000 x 3: 0.657 vs 0.666); an intermediate-"
            "activation distillation loss (every tensor after the first ternary layer matched to int8's), no gain "
            "(0.662 vs 0.694 on the 500) at 1.7x the time; plain logit regression instead of KL at T=3, worse (0.535); "
            "lr 0.005 / 0.01 instead of 0.02, no better (0.576 / 0.653); 30% of the training crops replaced by blends "
            "of two, mixed (8,000 x 5: the 2.6-bit budget 0.693 vs 0.674, the 4-bit budget 0.759 vs 0.759). "
            "Before this: 6,000 crops, 4 epochs, lr 0.03: "
            "0.572; 8,000 x 5 at lr 0.02: 0.706; lr 0.05 with teacher cross-entropy 1.0: 0.676 (on the 500).", ""]
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print the records as JSON")
    ap.add_argument("--models", default=",".join(RUNS), help="comma-separated subset of " + ",".join(RUNS))
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/finetune.md"))
    ap.add_argument("--merge", metavar="JSON", help="records of an earlier --json run: keep the rows of the models "
                    "not run now (the table lists both)")
    args = ap.parse_args(argv)
    log = (lambda s: print(s, file=sys.stderr)) if args.json else print
    rows = []
    for m in args.models.split(","):
        if m not in RUNS:
            ap.error(f"unknown model {m!r}; choose from {', '.join(RUNS)}")
        rows += RUNS[m](log)
    if args.merge:
        old = [r for r in json.loads(Path(args.merge).read_text()) if r["model"] not in {r["model"] for r in rows}]
        order = {m: k for k, m in enumerate(["mnist_cnn", "ic", "sww", "ad"])}
        rows = sorted(old + rows, key=lambda r: order.get(r["model"], 99))  # stable: settings keep their order
    Path(args.out).write_text(markdown(rows))
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
