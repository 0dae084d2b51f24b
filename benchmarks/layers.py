# SPDX-License-Identifier: Apache-2.0
"""Per-layer benchmark: is any exported ternary layer slower than its int8 form, and how well does the
cost model predict each layer?

    python benchmarks/layers.py                      # table on stdout, writes benchmarks/results/layers.md
    python benchmarks/layers.py --models vww_int8 --no-write

For every shared model (as benchmarks/memory.py: the int8 original, calibrated on every other bundled
input) the int8 plan and the ternary exports (`ternary`: `ternembed export`'s defaults; `speed`:
`--optimize speed`, the board's RAM as budget) are built as the protocol firmware for QEMU mps2-an386
(Cortex-M4) and run once under `-icount`; the firmware's per-layer timer brackets give each layer's
instructions (ticks / 1.6). Every ternary MAC layer is put beside the same layer of the int8 run, and
beside `ternembed.costmodel.estimate` for the variant the export chose (the fitted formula of
`ternembed/kernel_costs.json`, written by `benchmarks/kernels.py --write`).

Issue 13's rule: no exported layer slower than its int8 form unless the user's budget demands it (the
export moves a layer the cost model predicts slower back to int8, `rambudget.fit_arena`). `slower`
counts ternary layers measured more than 3% slower than int8 (a flat 3% for timer-bracket noise and
layers of a few hundred instructions).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from memory import BOARD, LABELS, MODELS, first_input, int8_plan  # noqa: E402
from models import _run_board, int8_cases  # noqa: E402

from ternembed.boards import get_board  # noqa: E402
from ternembed.costmodel import estimate  # noqa: E402
from ternembed.kernelspec import MAC_KERNELS  # noqa: E402
from ternembed.quantize.plan_pass import ternarize_plan  # noqa: E402
from ternembed.quantize.policy import TernaryConfig  # noqa: E402
from ternembed.rambudget import board_ram, export_variants  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "layers.md"
SLOWER = 1.03


def _est(step, core: str) -> float | None:
    try:
        return estimate(step, core, step.params.get("variant", "default")).instructions
    except (KeyError, FileNotFoundError):
        return None


def run_model(name: str, case, work: Path) -> list[dict]:
    board = get_board(BOARD)
    plan, calib = int8_plan(case)
    first = first_input(plan, case)
    tplan, _ = ternarize_plan(plan, TernaryConfig(), calib)
    runs = {}
    plans = {"int8": plan}
    for config, opt in (("ternary", "ram"), ("speed", "speed")):
        plans[config] = export_variants(tplan, plan, board, opt, board_ram(board) if opt == "speed" else None)[0]
    for config, p in plans.items():
        d = Path(tempfile.mkdtemp(prefix=f"{name}-{config}-", dir=work))
        try:
            runs[config] = _run_board(p, BOARD, d, first)
        finally:
            shutil.rmtree(d, ignore_errors=True)
    base = {r["index"]: r["instructions"] for r in runs["int8"]["layers"]}
    rows = []
    for config in ("ternary", "speed"):
        p = plans[config]
        measured = {r["index"]: r["instructions"] for r in runs[config]["layers"]}
        for pos, (s, b) in enumerate(zip(p.steps, plan.steps)):
            if s is b or s.kernel not in MAC_KERNELS:
                continue
            key = next((k for k in (pos, s.op_index) if k in measured and k in base), None)
            if key is None:
                continue
            rows.append(dict(model=name, config=config, op=s.op_index, op_type=s.op_type, kernel=s.kernel,
                             variant=s.params.get("variant", "default"), int8=base[key], ternary=measured[key],
                             est_int8=_est(b, board.core), est_ternary=_est(s, board.core),
                             total_int8=runs["int8"]["instructions"], total=runs[config]["instructions"]))
    return rows


def table(rows: list[dict]) -> str:
    out = ["| model | config | op | kernel (variant) | int8 instr | ternary instr | x int8 | estimated x int8 | "
           "estimate error |", "|---|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = r["ternary"] / r["int8"]
        est = (r["est_ternary"] / r["est_int8"]) if r["est_ternary"] and r["est_int8"] else None
        err = (r["est_ternary"] / r["ternary"] - 1) if r["est_ternary"] else None
        flag = " **slower**" if ratio > SLOWER else ""
        out.append(f"| {LABELS.get(r['model'], r['model'])} | {r['config']} | {r['op']} | {r['kernel']} ({r['variant']}) | "
                   f"{r['int8']:,.0f} | {r['ternary']:,.0f} | {ratio:.2f}x{flag} | "
                   f"{'-' if est is None else f'{est:.2f}x'} | {'-' if err is None else f'{100 * err:+.0f}%'} |")
    return "\n".join(out)


def summary(rows: list[dict]) -> str:
    out = ["| model | config | ternary MAC layers | slower than int8 (> 3%) | whole model x int8 | "
           "median estimate error |", "|---|---|---:|---:|---:|---:|"]
    keys = dict.fromkeys((r["model"], r["config"]) for r in rows)
    for m, c in keys:
        rs = [r for r in rows if r["model"] == m and r["config"] == c]
        slow = [r for r in rs if r["ternary"] / r["int8"] > SLOWER]
        errs = [abs(r["est_ternary"] / r["ternary"] - 1) for r in rs if r["est_ternary"]]
        med = f"{100 * float(np.median(errs)):.0f}%" if errs else "-"
        out.append(f"| {LABELS.get(m, m)} | {c} | {len(rs)} | {len(slow)} | {rs[0]['total'] / rs[0]['total_int8']:.2f}x | "
                   f"{med} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated model names")
    ap.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    cases = {c.name: c for c in int8_cases()}
    t0 = time.time()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            if name not in cases:
                raise SystemExit(f"unknown model {name!r}; known: {', '.join(cases)}")
            rows += run_model(name, cases[name], Path(tmp))
            print(f"{name}: done ({time.time() - t0:.0f} s)", file=sys.stderr)
    text = summary(rows) + "\n\n" + table(rows)
    print(text)
    if not args.no_write:
        doc = __doc__.split("\n\n", 2)[2].strip()
        RESULTS.write_text("# Per-layer speed: ternary against int8 (generated by `python benchmarks/layers.py`)\n\n"
                           + doc + "\n\n" + text + f"\n\nRun time {time.time() - t0:.0f} s.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
