# SPDX-License-Identifier: Apache-2.0
"""Accuracy and size of ternary quantization on the shared real models -> benchmarks/results/accuracy.md

    python benchmarks/accuracy.py [--out benchmarks/results/accuracy.md] [--json FILE] [--models ad_int8,ic]

For every model: the int8 original, TWN per channel, FGQ N=16, FGQ N=64, TRN 2 planes at N=64
(uniform settings: first/last MAC layer and depthwise layers int8, the pass's defaults), and the
sensitivity placement under 2.5, 3 and 4 bits per weight. Each row is emulated bit-exactly on all
inputs and compared with the int8 original: top-1 agreement for classifiers, score change for AD,
output MAE change for hello_world. Calibration (bias correction, sensitivity) uses one half of the
inputs (every other one); "held-out" columns are measured on the other half only.

Inputs: AD the 196 windows of the bundled ToyCar clip (fp32 model calibrated to int8 on them);
IC the 20 CIFAR-10 images plus 520 32x32 crops of scikit-learn's two sample images; SWW the 45
calibration spectrograms + 3 fixed inputs; VWW the 2 person images plus 200 96x96 crops of the
sample images; micro_speech the 4 bundled feature sets; hello_world 200 points on [0, 2pi].
Every number is measured here.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from shared_data import (MODELS, ad_windows, cifar_images, person_images, quantize,  # noqa: E402
                         sine_inputs)
from ternembed import emulate  # noqa: E402
from ternembed.lower import lower  # noqa: E402
from ternembed.quantize.plan_pass import ternarize_plan  # noqa: E402
from ternembed.quantize.policy import TernaryConfig  # noqa: E402
from ternembed.tflite import read  # noqa: E402


# ------------------------------------------------------------------------------------- inputs
def sample_crops(n: int, size: int, seed: int) -> np.ndarray:
    """n random square crops (side 1x..5x size) of sklearn's sample images, resized to size x size, float 0..255."""
    from PIL import Image
    from sklearn.datasets import load_sample_images
    imgs = load_sample_images().images
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        img = imgs[k % len(imgs)]
        h, w = img.shape[:2]
        side = int(rng.integers(size, min(5 * size, h) + 1))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = Image.fromarray(img[y:y + side, x:x + side]).resize((size, size), Image.BILINEAR)
        a = np.asarray(crop, np.float32)
        if rng.random() < 0.5:
            a = a[:, ::-1]
        out.append(a)
    return np.stack(out)


@dataclass
class Model:
    name: str
    plan: Any
    inputs: list[np.ndarray]
    labels: np.ndarray | None = None
    kind: str = "classify"  # classify | ad | sine
    extra: dict = field(default_factory=dict)


def _input_quant(plan) -> tuple[float, int]:
    b = plan.buffers[plan.inputs[0]]
    return b.scale, b.zero_point


def load_models(only: set[str] | None) -> list[Model]:
    from ternembed.calibrate import quantize_graph
    ms: list[Model] = []

    def want(n: str) -> bool:
        return only is None or n in only

    win = ad_windows()
    if want("ad_int8"):
        plan = lower(read(MODELS / "mlperf_ad/ad01_int8.tflite"))
        s, zp = _input_quant(plan)
        ms.append(Model("ad_int8", plan, [quantize(win, s, zp)], kind="ad",
                        extra=dict(x=win, float_model=MODELS / "mlperf_ad/ad01_fp32.tflite", float_inputs=win)))
    if want("ad_fp32"):
        path = MODELS / "mlperf_ad/ad01_fp32.tflite"
        g = read(path)
        plan = lower(quantize_graph(g, path, [win[::2]]))  # activation ranges from the calibration half
        ms.append(Model("ad_fp32", plan, [win], kind="ad", extra=dict(x=win, float_model=path, float_inputs=win)))
    if want("ic"):
        plan = lower(read(MODELS / "mlperf_ic/pretrainedResnet_quant.tflite"))
        s, zp = _input_quant(plan)
        imgs, labels = cifar_images()
        crops = sample_crops(520, 32, seed=1)
        xf = np.concatenate([imgs, crops])
        ms.append(Model("ic", plan, [quantize(xf, s, zp)], np.concatenate([labels, -np.ones(len(crops), int)]),
                        extra=dict(float_model=MODELS / "mlperf_ic/pretrainedResnet.tflite", float_inputs=xf)))
    if want("sww"):
        plan = lower(read(MODELS / "mlperf_sww/str_ww_ref_model.tflite"))
        s, zp = _input_quant(plan)
        z = np.load(MODELS / "mlperf_sww/calibration_samples.npz")
        fx = np.load(MODELS / "mlperf_sww/fixed_data_c_test_inputs.npz")
        ms.append(Model("sww", plan, [np.concatenate([quantize(z["specs"], s, zp), fx["x"]])],
                        np.concatenate([z["labels"].astype(int), fx["y"]])))
    if want("vww"):
        plan = lower(read(MODELS / "mlperf_vww/vww_96_int8.tflite"))
        s, zp = _input_quant(plan)
        person, plabels = person_images()
        grey = np.repeat(person[..., None], 3, axis=-1).astype(np.float32) + 128.0
        xf = np.concatenate([grey, sample_crops(200, 96, seed=2)]) / 255.0
        ms.append(Model("vww", plan, [quantize(xf, s, zp)], np.concatenate([plabels, -np.ones(len(xf) - 2, int)]),
                        extra=dict(float_model=MODELS / "mlperf_vww/vww_96_float.tflite", float_inputs=xf.astype(np.float32))))
    if want("micro_speech"):
        plan = lower(read(MODELS / "tflm/micro_speech_quantized.tflite"))
        z = np.load(MODELS / "tflm/micro_speech_data/DERIVED_features_int8_49x40.npz")
        x = np.stack([z[k].reshape(1960) for k in ("yes", "no", "silence", "noise")])
        ms.append(Model("micro_speech", plan, [x], np.array([2, 3, 0, 0])))
    if want("hello_world"):
        plan = lower(read(MODELS / "tflm/hello_world_int8.tflite"))
        s, zp = _input_quant(plan)
        xs = sine_inputs(200)
        ms.append(Model("hello_world", plan, [quantize(xs, s, zp)], kind="sine", extra=dict(x=xs[:, 0])))
    return ms


# ------------------------------------------------------------------------------------ metrics
def dequant(plan, y: np.ndarray) -> np.ndarray:
    b = plan.buffers[plan.outputs[0]]
    y = np.asarray(y).reshape(len(y), -1)
    if np.issubdtype(y.dtype, np.integer):
        return (y.astype(np.float64) - b.zero_point) * b.scale
    return y.astype(np.float64)


def evaluate(m: Model, plan, y: np.ndarray, y8: np.ndarray) -> dict[str, Any]:
    """Metrics of outputs y against the int8 original's y8 (float) on all inputs and the held-out half."""
    yf, y8f = dequant(plan, y), dequant(plan, y8)
    n = len(yf)
    held = np.arange(n) % 2 == 1
    r: dict[str, Any] = {}
    if yf.shape[1] == 1:  # one output value per input: cosine over the inputs
        yf_, y8_ = yf.reshape(1, -1), y8f.reshape(1, -1)
    else:
        yf_, y8_ = yf, y8f
    cos = (yf_ * y8_).sum(1) / np.maximum(np.linalg.norm(yf_, axis=1) * np.linalg.norm(y8_, axis=1), 1e-30)
    r["cosine"] = float(cos.mean())
    if m.kind == "classify":
        agree = yf.argmax(1) == y8f.argmax(1)
        r["agreement"] = float(agree.mean())
        r["agreement_heldout"] = float(agree[held].mean())
        lab = m.labels
        if lab is not None and np.any(lab >= 0):
            k = lab >= 0
            r["accuracy"] = f"{int((yf.argmax(1)[k] == lab[k]).sum())}/{int(k.sum())}"
    elif m.kind == "ad":
        x = m.extra["x"]
        score = float(((x - yf) ** 2).mean())
        score8 = float(((x - y8f) ** 2).mean())
        r["score"] = score
        r["score_change"] = (score - score8) / score8
        sh = float(((x[held] - yf[held]) ** 2).mean())
        s8h = float(((x[held] - y8f[held]) ** 2).mean())
        r["score_change_heldout"] = (sh - s8h) / s8h
    else:  # sine
        x = m.extra["x"]
        mae = float(np.abs(yf[:, 0] - np.sin(x)).mean())
        mae8 = float(np.abs(y8f[:, 0] - np.sin(x)).mean())
        r["mae"] = mae
        r["mae_change"] = mae - mae8
    return r


# ----------------------------------------------------------------------------------- settings
def settings(m: Model) -> list[tuple[str, TernaryConfig | str | None]]:
    place = dict(method="fgq", group=64, max_planes=3, depthwise="place")
    half = int(0.5 * m.plan.weight_bytes)
    rows: list[tuple[str, TernaryConfig | str | None]] = [("int8 original", None)]
    if "float_model" in m.extra:
        rows.append(("fp32 original", "float"))
    if m.kind == "classify":
        rows.append(("int8 + 1-LSB noise", "noise"))
    return rows + [
        ("TWN per channel", TernaryConfig(method="twn")),
        ("FGQ N=16", TernaryConfig(method="fgq", group=16)),
        ("FGQ N=64", TernaryConfig(method="fgq", group=64)),
        ("TRN 2 planes N=64", TernaryConfig(method="trn", group=64, planes=2)),
        ("placement 2.5 bits", TernaryConfig(budget_bits=2.5, **place)),
        ("placement 3 bits", TernaryConfig(budget_bits=3.0, **place)),
        ("placement 4 bits", TernaryConfig(budget_bits=4.0, **place)),
        ("placement 4 bits, <= 0.5x", TernaryConfig(budget_bits=4.0, max_flash=half, **place)),
    ]


def run_model(m: Model, log: Callable[[str], None]) -> list[dict[str, Any]]:
    rows = []
    calib = [x[::2] for x in m.inputs]
    y8 = emulate.run(m.plan, m.inputs)[0]
    for label, cfg in settings(m):
        t0 = time.perf_counter()
        if cfg == "float":  # the float original, for reference (weight bytes: 4 per float weight)
            from ternembed.reference import run_litert
            y = run_litert(m.extra["float_model"], [m.extra["float_inputs"]])[0]
            fb = _float_weight_bytes(m.extra["float_model"])
            row = dict(model=m.name, setting=label, weight_bytes=fb, ratio=fb / m.plan.weight_bytes, bits=32.0,
                       seconds=time.perf_counter() - t0, **evaluate(m, m.plan, y, y8))
            rows.append(row)
            log(f"{m.name:13s} {label:26s} " + _fmt(row))
            continue
        if cfg == "noise":  # noise floor: +-1 LSB on 0.1% of the second MAC layer's outputs
            y = _noisy_run(m)
            row = dict(model=m.name, setting=label, weight_bytes=m.plan.weight_bytes, ratio=1.0, bits=8.0,
                       seconds=time.perf_counter() - t0, **evaluate(m, m.plan, y, y8))
            rows.append(row)
            log(f"{m.name:13s} {label:26s} " + _fmt(row))
            continue
        if cfg is None:
            plan, rep = m.plan, None
        else:
            plan, rep = ternarize_plan(m.plan, cfg, calib)
        y = emulate.run(plan, m.inputs)[0]
        row = dict(model=m.name, setting=label, weight_bytes=plan.weight_bytes,
                   ratio=plan.weight_bytes / m.plan.weight_bytes,
                   bits=rep.bits_per_weight if rep else _int8_bits(m.plan),
                   seconds=time.perf_counter() - t0, **evaluate(m, m.plan, y, y8))
        if rep is not None:
            row["layers"] = " ".join(_short(L) for L in rep.layers)
            if rep.notes:
                row["notes"] = rep.notes
        rows.append(row)
        log(f"{m.name:13s} {label:26s} " + _fmt(row))
    return rows


def _noisy_run(m: Model, frac: float = 0.001, seed: int = 0) -> np.ndarray:
    """The int8 plan with +-1 added to a random 0.1% of the second MAC layer's int8 outputs."""
    from ternembed.emulate import ADAPTERS
    from ternembed.quantize.plan_pass import mac_layers
    plan = m.plan
    pos = mac_layers(plan)[1].pos
    vals = emulate.run(plan, m.inputs, keep_all=True)
    out = plan.steps[pos].outputs[0]
    rng = np.random.default_rng(seed)
    v = vals[out].astype(np.int64)
    hit = rng.random(v.shape) < frac
    vals[out] = np.clip(v + hit * rng.choice([-1, 1], v.shape), -128, 127).astype(np.int8)
    n = len(m.inputs[0])
    for step in plan.steps[pos + 1:]:
        res = ADAPTERS[step.kernel](step, [vals[i] for i in step.inputs])
        b = plan.buffers[step.outputs[0]]
        vals[step.outputs[0]] = np.asarray(res).reshape((n,) + tuple(b.shape[1:])).astype(b.dtype)
    return vals[plan.outputs[0]]


def _fmt(row: dict) -> str:
    return (f"{row['ratio']:.3f}x {row['bits']:.3f} b/w  "
            + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in row.items() if k in ("agreement", "agreement_heldout", "accuracy",
                                                         "score_change", "mae_change", "cosine"))
            + f"  ({row['seconds']:.1f}s)")


def _float_weight_bytes(path) -> int:
    g = read(path)
    return int(sum(t.data.nbytes for t in g.tensors if t.data is not None and t.dtype == "float32"))


def _int8_bits(plan) -> float:
    return 8.0


def _dash(r: dict) -> str:
    if r["setting"].startswith("fp32"):
        return "float"
    return "all 8, noise" if "noise" in r["setting"] else "all 8"


def _short(L) -> str:
    if L.method == "int8":
        return "8"
    if L.method == "lossless":
        return "L"
    return str(L.planes if L.planes is not None else "p")


# ------------------------------------------------------------------------------------- report
TARGETS = """\
## Targets of issue 3

| target | measured | met |
|---|---|---|
"""


NOTES = """\
Notes on the targets:

- IC (ResNet-8) is not met, by a wide margin, and we see no post-training path to it on these
  inputs: 520 of the 540 are crops of two photographs, far from CIFAR-10, on which the network
  is fragile. The fp32 model itself agrees with the int8 model on only about 89% of them, and the
  int8 model perturbed by +-1 LSB on 0.1% of one layer's outputs already loses about 5-7 points
  (rows above). At 4 bits the placement has to put the two largest layers (71% of the weights)
  at one ternary plane. What was tried (IC agreement, uniform FGQ N=64 1 plane / TRN 2 planes):
  TWN / exact / FGQ N=16..64 / TRN / pow2 / RTN offset fits (rows above); bias correction
  (6% -> 17% with plain fits, 15% -> 40% with feedback fits); error-feedback fits on calibration
  statistics (17% -> 40% at 1 plane, 51% -> 62% at 2 planes); a sequential (in-network) bias
  correction (62% -> 69% for TRN, but it hurt SWW badly, so it is an option, not the default);
  Hessian damping 0.001-0.2 (no effect); a richer placement candidate list (FGQ N=64 1-3
  planes, N=16 1-2 planes, pow2 N=32 levels 2-3): 45% -> 53% at 2.5 bits and 64% -> 72% at
  4 bits, at twice the placement time (`candidates` in the config; not used in the rows above).
  On the 20 CIFAR-10 images the 4-bit placement keeps the int8 accuracy (18/20).
- Weight bytes <= 0.5x int8 at a 4-bit budget: bits/w counts codes and group scales only (int8 = 8),
  so biases and per-channel requantization (12 bytes per output channel, int8 or ternary) come on
  top and a pure 4-bit budget lands at 0.50-0.57x; the '<= 0.5x' rows add the flash cap and meet it
  everywhere except hello_world, whose 684 bytes are mostly biases and requantization of 33 channels.
- micro_speech has 4 inputs and hello_world one output value per input: their agreement numbers say
  little. The uniform rows of micro_speech are all int8 because its two MAC layers are a depthwise
  layer and the last layer (the defaults keep both int8).
"""


def targets(rows: list[dict[str, Any]]) -> tuple[str, list[str]]:
    def get(model: str, setting: str) -> dict | None:
        for r in rows:
            if r["model"] == model and r["setting"] == setting:
                return r
        return None

    lines, verdicts = [], []

    def add(name: str, value: str, ok: bool | None) -> None:
        mark = "n/a" if ok is None else ("yes" if ok else "**no**")
        lines.append(f"| {name} | {value} | {mark} |")
        verdicts.append(f"{name}: {value} -> {mark}")

    for model in ("ic", "sww"):
        for setting in ("placement 4 bits", "placement 4 bits, <= 0.5x"):
            r = get(model, setting)
            if r:
                add(f"{model.upper()} {setting}: top-1 agreement >= 95%", f"{100 * r['agreement']:.1f}%",
                    r["agreement"] >= 0.95)
    for model in ("ad_int8", "ad_fp32"):
        for setting in ("placement 4 bits", "placement 4 bits, <= 0.5x"):
            r = get(model, setting)
            if r:
                add(f"{model} {setting}: score within 5% of int8", f"{100 * r['score_change']:+.2f}%",
                    abs(r["score_change"]) <= 0.05)
    for r in rows:
        if r["setting"] in ("placement 4 bits", "placement 4 bits, <= 0.5x"):
            add(f"{r['model']} {r['setting']}: weight bytes <= 0.5x int8", f"{r['ratio']:.3f}x", r["ratio"] <= 0.5)
    for r in rows:
        if r["setting"] == "placement 2.5 bits" and "agreement" in r:
            add(f"{r['model']} 2.5 bits: top-1 agreement >= 90% (aim)", f"{100 * r['agreement']:.1f}%", r["agreement"] >= 0.90)
    return TARGETS + "\n".join(lines) + "\n", verdicts


def markdown(rows: list[dict[str, Any]], models: list[Model], seconds: float) -> str:
    out = ["# Ternary quantization: accuracy and size on the shared models", "",
           "Generated by `python benchmarks/accuracy.py` (do not edit by hand). Every number is measured:",
           "weight bytes are all constant bytes of the emulated Plan (codes, scales, biases, requantization);",
           "bits/w is the average over the FC/conv/depthwise layers of 8 x (codes + integer group scales +",
           "plane shifts) / weights, so int8 = 8 and one FGQ N=64 plane = 2.125 (biases and the per-channel",
           "requantization, which int8 has too, are in weight B but not in bits/w). Uniform settings keep the",
           "first and last MAC layer and depthwise layers int8; placement chooses per layer (depthwise",
           "included) among int8 and 1/2/3 residual planes of FGQ N=64 by measured sensitivity; the",
           "'<= 0.5x' row adds a flash cap of half the int8 weight bytes. Fits use error feedback and bias",
           "correction on calibration statistics. Calibration uses every other input; the held-out columns",
           "use only the others. Layers: per MAC layer 8 = int8, 1/2/3 = ternary planes, L = lossless.",
           "fp32 original: the float model in ai-edge-litert on the float inputs (weight B = float bytes).",
           "int8 + 1-LSB noise: the int8 plan with +-1 added to a random 0.1% of the second MAC layer's",
           "outputs -- how much top-1 agreement the smallest possible perturbation already costs.", ""]
    for m in models:
        mr = [r for r in rows if r["model"] == m.name]
        if not mr:
            continue
        n = len(m.inputs[0])
        out.append(f"## {m.name} ({n} inputs, int8 plan {m.plan.weight_bytes:,} weight bytes)")
        out.append("")
        if m.kind == "classify":
            hdr = ["setting", "weight B", "x int8", "bits/w", "accuracy", "top-1 agree", "held-out", "cosine", "layers"]
            body = [[r["setting"], r["weight_bytes"], f"{r['ratio']:.3f}", f"{r['bits']:.3f}", r.get("accuracy", "-"),
                     f"{100 * r['agreement']:.1f}%", f"{100 * r['agreement_heldout']:.1f}%", f"{r['cosine']:.4f}",
                     r.get("layers", _dash(r))] for r in mr]
        elif m.kind == "ad":
            hdr = ["setting", "weight B", "x int8", "bits/w", "score", "change", "held-out change", "cosine", "layers"]
            body = [[r["setting"], r["weight_bytes"], f"{r['ratio']:.3f}", f"{r['bits']:.3f}", f"{r['score']:.4f}",
                     f"{100 * r['score_change']:+.2f}%", f"{100 * r['score_change_heldout']:+.2f}%",
                     f"{r['cosine']:.5f}", r.get("layers", _dash(r))] for r in mr]
        else:
            hdr = ["setting", "weight B", "x int8", "bits/w", "MAE vs sin", "change", "cosine", "layers"]
            body = [[r["setting"], r["weight_bytes"], f"{r['ratio']:.3f}", f"{r['bits']:.3f}", f"{r['mae']:.4f}",
                     f"{r['mae_change']:+.4f}", f"{r['cosine']:.4f}", r.get("layers", _dash(r))] for r in mr]
        out.append("| " + " | ".join(hdr) + " |")
        out.append("|" + "---|" * len(hdr))
        for b in body:
            out.append("| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in b) + " |")
        notes = sorted({n for r in mr for n in r.get("notes", [])})
        for n_ in notes:
            out.append(f"\nNote: {n_}")
        out.append("")
    t, _ = targets(rows)
    out.append(t)
    out.append(NOTES)
    out.append(f"Run time: {seconds:.0f} s.")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/accuracy.md"))
    ap.add_argument("--json", help="also write all rows as JSON here")
    ap.add_argument("--models", help="comma-separated subset: ad_int8,ad_fp32,ic,sww,vww,micro_speech,hello_world")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    only = set(args.models.split(",")) if args.models else None
    models = load_models(only)
    rows: list[dict[str, Any]] = []
    for m in models:
        rows += run_model(m, lambda s: print(s, flush=True))
    seconds = time.perf_counter() - t0
    text = markdown(rows, models, seconds)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=float))
    _, verdicts = targets(rows)
    print("\n".join(verdicts))
    print(f"wrote {args.out} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
