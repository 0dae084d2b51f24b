# SPDX-License-Identifier: Apache-2.0
"""Table of the shared int8 models: ops, MACs, weight bytes, bit-exact vs TFLite Micro, emulator speed.

    python benchmarks/emulator.py [--json]

Every figure is measured here: bit-exactness on the model's bundled samples, emulator time per
inference as the best of 3 batched runs divided by the batch size.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from shared_data import int8_cases  # noqa: E402
from ternembed import emulate  # noqa: E402
from ternembed.lower import lower  # noqa: E402
from ternembed.reference import run_tflm  # noqa: E402
from ternembed.report import table  # noqa: E402
from ternembed.tflite import read  # noqa: E402


def measure(case) -> dict:
    plan = lower(read(case.model))
    ours = emulate.run(plan, case.inputs)
    ref = run_tflm(case.model, case.inputs)
    exact = all(np.array_equal(o, r) for o, r in zip(ours, ref))
    n = len(case.inputs[0])
    best = min(_timed(lambda: emulate.run(plan, case.inputs)) for _ in range(3))
    t0 = time.perf_counter()
    run_tflm(case.model, case.inputs)
    tflm = time.perf_counter() - t0
    return dict(model=case.name, ops=len(plan.steps), macs=plan.macs, weight_bytes=plan.weight_bytes,
                samples=n, bit_exact=exact, emulator_ms=1000 * best / n, tflm_ms=1000 * tflm / n)


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = [measure(c) for c in int8_cases()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(table(["model", "ops", "MACs", "weight B", "samples", "bit-exact", "emulator ms/inf", "TFLM ms/inf"],
                [[r["model"], r["ops"], r["macs"], r["weight_bytes"], r["samples"],
                  "yes" if r["bit_exact"] else "NO", round(r["emulator_ms"], 3), round(r["tflm_ms"], 3)]
                 for r in rows]))


if __name__ == "__main__":
    main()
