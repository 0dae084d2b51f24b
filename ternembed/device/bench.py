# SPDX-License-Identifier: Apache-2.0
"""Benchmark a model on a device: repeated invocations, per-layer and total cycle statistics.

    result = bench("out/ic", "socket://127.0.0.1:4321", runs=20, out_dir="bench/")
    print(result.summary())        # median/min/max per layer and in total
    # bench/bench.json, bench/bench.csv, bench/bench.png (bar chart of per-layer median cycles)

One input is loaded once (the firmware keeps a copy and restores it before every invocation);
``warmup`` invocations are discarded (caches, first-touch effects on real boards), then ``runs``
invocations without checksums are timed. The output of the last run is compared with the
emulator's, so a benchmark of a wrong firmware does not pass unnoticed.
"""
from __future__ import annotations

import csv
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import write_bytes_atomic
from ..plan import Plan
from .client import DeviceClient
from .validate import (_device_dict, _check_shapes, layer_names, resolve_target, sample_bytes,
                       write_json_atomic)


@dataclass
class BenchResult:
    model: str
    model_hash: str
    port: str
    runs: int
    warmup: int
    device: dict
    layers: list[dict]
    cycles: np.ndarray  # [runs, layers]
    totals: np.ndarray  # [runs]
    output_exact: bool | None
    link: dict = field(default_factory=dict)
    seconds: float = 0.0
    files: dict = field(default_factory=dict)
    project: str = ""  # the project folder's name (e.g. the demo's int8 / ternary), if benched from one

    @property
    def unit_word(self) -> str:
        """What the counter counts: QEMU's -icount ticks on an emulated board, core cycles on a real one."""
        return "ticks" if self.device.get("ticks_per_instruction") else "cycles"

    @property
    def title(self) -> str:
        """The model and how it is quantized: int8 and ternary exports of one model share its name."""
        from ..kernelspec import TERNARY_KERNELS
        ternary = sum(r["kernel"] in TERNARY_KERNELS for r in self.layers)
        what = f"{self.model} ({f'{ternary} ternary layer(s)' if ternary else 'int8'})"
        return f"{self.project}: {what}" if self.project else what

    def _ms(self, c: float) -> float:
        return c / self.device["cycles_hz"] * 1e3

    def table(self) -> list[dict]:
        rows = []
        total_med = float(np.median(self.totals)) or 1.0
        for t, row in enumerate(self.layers):
            col = self.cycles[:, t]
            med = float(np.median(col))
            rows.append({**row, "median_cycles": med, "min_cycles": int(col.min()),
                         "max_cycles": int(col.max()), "median_ms": self._ms(med),
                         "share": med / total_med})
        return rows

    def total(self) -> dict:
        med = float(np.median(self.totals))
        return {"median_cycles": med, "min_cycles": int(self.totals.min()),
                "max_cycles": int(self.totals.max()), "median_ms": self._ms(med),
                "min_ms": self._ms(self.totals.min()), "max_ms": self._ms(self.totals.max())}

    def to_dict(self) -> dict:
        """The JSON report; its counts are named by what they hold (median_ticks on QEMU,
        median_cycles on a board), like the CSV's columns."""
        u = self.unit_word

        def named(row: dict) -> dict:
            return {(k[:-len("cycles")] + u if k.endswith("_cycles") else k): v for k, v in row.items()}

        d = {"format": 1, "model": self.model, "model_hash": self.model_hash, "port": self.port,
             "device": self.device, "runs": self.runs, "warmup": self.warmup,
             "counts": u, "unit": self.device.get("cycles_unit"), "hz": self.device.get("cycles_hz"),
             "total": named(self.total()), "layers": [named(r) for r in self.table()],
             "output_exact": self.output_exact, "per_run_totals": [int(v) for v in self.totals],
             "link": self.link, "seconds": self.seconds}
        tpi = self.device.get("ticks_per_instruction")
        if tpi:
            d["total"]["median_instructions"] = self.total()["median_cycles"] / tpi
            d["note"] = ("emulated board: QEMU -icount ticks, proportional to executed "
                         "instructions (every instruction counts the same), not core cycles")
        return d

    def summary(self) -> str:
        tot = self.total()
        unit = self.device.get("cycles_unit", "cycles")
        lines = [f"{self.model} on {self.device.get('board', '?')}: {self.runs} runs "
                 f"(+{self.warmup} warm-up), median {tot['median_cycles']:.0f} {unit} = "
                 f"{tot['median_ms']:.3f} ms at {self.device['cycles_hz'] / 1e6:g} MHz "
                 f"(min {tot['min_cycles']}, max {tot['max_cycles']})"]
        if self.device.get("ticks_per_instruction"):
            lines.append("  (emulated: ticks count instructions, not cycles)")
        lines.append(f"  {'#':>3}  {'op':<20} {'kernel':<14} {'median':>12} {'min':>12} "
                     f"{'max':>12} {'ms':>9} {'share':>6}")
        for r in self.table():
            lines.append(f"  {r['index']:>3}  {r['op'][:20]:<20} {r['kernel'][:14]:<14} "
                         f"{r['median_cycles']:>12.0f} {r['min_cycles']:>12} {r['max_cycles']:>12} "
                         f"{r['median_ms']:>9.3f} {100 * r['share']:>5.1f}%")
        if self.output_exact is not None:
            lines.append(f"  output of the last run {'equals' if self.output_exact else 'DIFFERS FROM'}"
                         " the emulator's")
        for k, v in self.files.items():
            lines.append(f"  {k}: {v}")
        return "\n".join(lines)


def bench(target: "Plan | Path | str", port: str | None, *, runs: int = 20, warmup: int = 1,
          inputs=None, seed: int = 0, out_dir: Path | str | None = None,
          client: DeviceClient | None = None, progress: bool = True, timeout: float = 2.0,
          invoke_timeout: float = 120.0, retries: int = 6, chart: bool = True) -> BenchResult:
    """Benchmark (module docstring). ``inputs``: arrays whose first sample is used (default:
    a deterministic random input). ``out_dir``: where bench.json/.csv/.png go."""
    from .. import emulate
    from ..render import default_test_inputs

    if runs < 1:
        raise ValueError("runs must be >= 1")
    tgt = resolve_target(target)
    plan = tgt.plan
    if inputs is None:
        inputs = default_test_inputs(plan, 1, seed)
    elif isinstance(inputs, np.ndarray):
        inputs = [inputs]
    from ..data import to_plan_inputs
    inputs = [x[:1] for x in emulate.check_inputs(plan, to_plan_inputs(plan, list(inputs)))]
    expected = [np.ascontiguousarray(y[0], dtype=y.dtype.newbyteorder("<")).tobytes()
                for y in emulate.run(plan, inputs)]
    t0 = time.monotonic()
    own = client is None
    dev = client or DeviceClient(port, timeout=timeout, invoke_timeout=invoke_timeout,
                                 retries=retries)
    try:
        info = dev.hello(tgt.model_hash)
        _check_shapes(plan, info)
        dev.load_input(sample_bytes(plan, inputs, 0))
        for _ in range(warmup):
            dev.invoke(checksums=False)
        cycles, totals = [], []
        it = range(runs)
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=runs, desc=f"bench {plan.name}", unit="run", dynamic_ncols=True)
        try:
            for _ in it:
                r = dev.invoke(checksums=False)
                c = dev.layer_cycles()
                cycles.append(c)
                totals.append(r.total_cycles)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        outs = dev.read_outputs()
        result = BenchResult(plan.name, tgt.model_hash, dev.port, runs, warmup, _device_dict(info),
                             layer_names(plan), np.asarray(cycles, dtype=np.int64),
                             np.asarray(totals, dtype=np.int64), outs == expected,
                             dev.stats.to_dict(), time.monotonic() - t0,
                             project=tgt.project.name if tgt.project else "")
    finally:
        if own:
            dev.close()
    if out_dir is not None:
        write_outputs(result, Path(out_dir), chart)
    return result


def write_outputs(result: BenchResult, out_dir: Path, chart: bool = True) -> dict:
    """bench.json, bench.csv and (``chart``) bench.png in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "bench.json", result.to_dict())
    result.files["json"] = str(out_dir / "bench.json")
    buf = io.StringIO()
    w = csv.writer(buf)
    # Columns named by what the counter holds (QEMU ticks or core cycles), so the file explains itself.
    u = result.unit_word
    w.writerow(["layer", "name", "op", "kernel", f"median_{u}", f"min_{u}", f"max_{u}", "median_ms", "share"])
    for r in result.table():
        w.writerow([r["index"], r["name"], r["op"], r["kernel"], f"{r['median_cycles']:.1f}",
                    r["min_cycles"], r["max_cycles"], f"{r['median_ms']:.6f}", f"{r['share']:.6f}"])
    tot = result.total()
    w.writerow(["total", "", "", "", f"{tot['median_cycles']:.1f}", tot["min_cycles"],
                tot["max_cycles"], f"{tot['median_ms']:.6f}", "1.0"])
    write_bytes_atomic(out_dir / "bench.csv", buf.getvalue().encode())
    result.files["csv"] = str(out_dir / "bench.csv")
    if chart:
        write_bytes_atomic(out_dir / "bench.png", bar_chart_png(result))
        result.files["png"] = str(out_dir / "bench.png")
    return result.files


def short_names(names: list[str], width: int = 24) -> list[str]:
    """Layer names without what they all share (converters prefix every tensor with the same
    'StatefulPartitionedCall:...' or 'sequential/...'), cut to `width` from the informative end."""
    first = [n.split(";")[0] for n in names]
    prefix = os.path.commonprefix(first) if len(first) > 1 else ""
    prefix = prefix[:prefix.rfind("/") + 1] if "/" in prefix else ("" if len(prefix) < 8 else prefix)
    out = []
    for n in first:
        n = n[len(prefix):] or n
        out.append(n if len(n) <= width else "…" + n[-(width - 1):])
    return out


def bar_chart_png(result: BenchResult) -> bytes:
    """A horizontal bar chart of per-layer median cycles (min..max whiskers), drawn with Pillow."""
    from PIL import Image, ImageDraw, ImageFont

    rows = result.table()
    try:
        font = ImageFont.load_default(size=13)  # scalable font (Pillow >= 10.1 with FreeType)
    except TypeError:
        font = ImageFont.load_default()
    unit = result.device.get("cycles_unit", "cycles")
    names = short_names([r["name"] for r in rows])
    labels = [f"{r['index']:>3} {r['kernel']:<14} {n}" for r, n in zip(rows, names)]

    def text_w(s: str) -> int:
        box = font.getbbox(s)
        return box[2] - box[0]

    row_h, top, bottom, right = 16, 46, 30, 140
    left = max((text_w(s) for s in labels), default=100) + 16
    plot_w = 560
    width, height = left + plot_w + right, top + row_h * max(len(rows), 1) + bottom
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    tot = result.total()
    d.text((10, 8), f"{result.title} on {result.device.get('board', '?')}: per-layer median "
                    f"{unit} over {result.runs} runs", fill="black", font=font)
    d.text((10, 24), f"total median {tot['median_cycles']:.0f} {unit} = {tot['median_ms']:.3f} ms "
                     f"at {result.device['cycles_hz'] / 1e6:g} MHz", fill="black", font=font)
    vmax = max((r["max_cycles"] for r in rows), default=1) or 1
    for k, (r, lab) in enumerate(zip(rows, labels)):
        y = top + k * row_h
        d.text((8, y + 2), lab, fill="black", font=font)
        w = int(plot_w * r["median_cycles"] / vmax)
        d.rectangle([left, y + 3, left + max(w, 1), y + row_h - 3], fill=(70, 110, 180))
        lo = left + int(plot_w * r["min_cycles"] / vmax)
        hi = left + int(plot_w * r["max_cycles"] / vmax)
        d.line([lo, y + row_h // 2, hi, y + row_h // 2], fill="black")
        d.text((left + max(w, 1) + 6, y + 2), f"{r['median_cycles']:.0f} ({100 * r['share']:.1f}%)",
               fill="black", font=font)
    d.line([left, top - 2, left, height - bottom + 2], fill="gray")
    d.text((left, height - bottom + 8), f"0 .. {vmax} {unit}", fill="gray", font=font)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()
