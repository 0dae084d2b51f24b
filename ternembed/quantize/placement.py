# SPDX-License-Identifier: Apache-2.0
"""Sensitivity-driven placement of ternary layers (the TRN idea, made measurable).

On calibration inputs the int8 plan is run once and every activation is kept. For each placeable
MAC layer and each candidate setting (int8, and the ternary candidates of the config: by default
1, 2, 3 residual planes at the configured group size) the layer alone is replaced and the network
is rerun *from that layer on* (earlier activations come from the cache). The fidelity loss of a
setting is the normalised squared error of the model output against the int8 plan,

    loss = sum_samples ||y - y_int8||^2 / sum_samples ||y_int8 - mean(y_int8)||^2

(outputs dequantized with their Buffer's scale and zero point). Small independent perturbations
add in this measure, so the loss of a placement is predicted as the sum of its layers' losses.
With ``sensitivity = "layer"`` the relative squared error of the layer's own output is used
instead (a cheaper proxy that ignores how errors propagate).

Greedy: every placeable layer starts at its cheapest setting; then the upgrade (to any costlier
setting of one layer) with the largest loss reduction per extra byte that still fits the budget
is applied, until none fits. Budgets: ``budget_bits`` (average bits per weight over all MAC layers,
codes + group scales, int8 = 8, see :func:`ternembed.quantize.plan_pass.quant_bytes`), ``max_flash``
(all constant bytes of the plan, biases and requantization included). ``min_agreement``: the greedy path is
followed (within any other budget) and the
shortest prefix whose *measured* agreement (top-1 for classifiers, mean output cosine otherwise)
reaches the target is taken (binary search over the path, a few full reruns).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..plan import Plan, Step

__all__ = ["Evaluator", "Placement", "place", "resolve_task", "dequantize_outputs"]


def dequantize_outputs(plan: Plan, outs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Float outputs: int8 buffers as scale * (q - zero_point), float buffers as they are."""
    res = []
    for idx, y in zip(plan.outputs, outs):
        buf = plan.buffers[idx]
        y = np.asarray(y)
        if np.issubdtype(y.dtype, np.integer):
            res.append((y.astype(np.float64) - buf.zero_point) * float(buf.scale))
        else:
            res.append(y.astype(np.float64))
    return res


def resolve_task(plan: Plan, task: str, ref: Sequence[np.ndarray]) -> str:
    """'classify' when the model ends in a softmax/logistic (or a softmax-quantized output
    with >= 2 classes), else 'regress'."""
    if task != "auto":
        return task
    y = np.asarray(ref[0])
    if y.reshape(len(y), -1).shape[1] < 2:
        return "regress"
    for s in reversed(plan.steps):
        k = s.kernel.lower()
        if k == "copy" or "quantize" in k:
            continue
        if "softmax" in k or "logistic" in k:
            return "classify"
        break
    buf = plan.buffers[plan.outputs[0]]
    if buf.dtype == "int8" and abs(float(buf.scale) - 1 / 256) < 1e-9 and buf.zero_point == -128:
        return "classify"
    return "regress"


class Evaluator:
    """The int8 plan's activations on calibration inputs, and reruns with some steps replaced."""

    def __init__(self, plan: Plan, inputs: list[np.ndarray], task: str = "auto"):
        from .. import emulate
        self.plan = plan
        self.values = emulate.run(plan, inputs, keep_all=True)
        self.n = len(np.asarray(inputs[0]))
        self.ref_raw = [self.values[i] for i in plan.outputs]
        self.ref = [y.reshape(self.n, -1) for y in dequantize_outputs(plan, self.ref_raw)]
        self.task = resolve_task(plan, task, self.ref_raw)
        self.den = sum(float(((y - y.mean(axis=0)) ** 2).sum()) for y in self.ref)
        if self.den <= 0:
            self.den = max(sum(float((y ** 2).sum()) for y in self.ref), 1e-30)
        self.runs = 0

    def run(self, replace: dict[int, Step]) -> list[np.ndarray]:
        """Raw outputs with plan.steps[pos] replaced by replace[pos] (reruns from the first one)."""
        from ..emulate import ADAPTERS, STATE_KERNELS
        plan = self.plan
        if not replace:
            return list(self.ref_raw)
        self.runs += 1
        vals = dict(self.values)
        for k in range(min(replace), len(plan.steps)):
            step = replace.get(k, plan.steps[k])
            if step.kernel in STATE_KERNELS or not step.inputs:  # variables as read in the int8 run; constants
                continue
            res = ADAPTERS[step.kernel](step, [vals[i] for i in step.inputs])
            out = plan.buffers[step.outputs[0]]
            vals[step.outputs[0]] = np.asarray(res).reshape((self.n,) + tuple(out.shape[1:])).astype(out.dtype)
        return [vals[i] for i in plan.outputs]

    def step_output(self, pos: int, step: Step) -> np.ndarray:
        """One step run alone on the cached int8 inputs."""
        from ..emulate import ADAPTERS
        res = ADAPTERS[step.kernel](step, [self.values[i] for i in step.inputs])
        out = self.plan.buffers[step.outputs[0]]
        return np.asarray(res).reshape((self.n,) + tuple(out.shape[1:])).astype(out.dtype)

    def layer_error(self, pos: int, step: Step) -> float:
        """Relative L2 of one step's output against the int8 step, both on int8 inputs."""
        out_idx = step.outputs[0]
        buf = self.plan.buffers[out_idx]
        y0 = self.values[out_idx].astype(np.float64) - buf.zero_point
        y = self.step_output(pos, step).astype(np.float64) - buf.zero_point
        den = float(np.linalg.norm(y0))
        num = float(np.linalg.norm(y - y0))
        return num / den if den > 0 else (0.0 if num == 0 else float("inf"))

    def metrics(self, outs: Sequence[np.ndarray]) -> dict[str, Any]:
        """nmse (the placement loss), mean cosine, top-1 agreement (classifiers)."""
        ys = [y.reshape(self.n, -1) for y in dequantize_outputs(self.plan, outs)]
        nmse = sum(float(((y - r) ** 2).sum()) for y, r in zip(ys, self.ref)) / self.den
        y, r = ys[0], self.ref[0]
        if y.shape[1] == 1:  # one value per input: the cosine is taken over the inputs
            y, r = y.reshape(1, -1), r.reshape(1, -1)
        num = (y * r).sum(axis=1)
        den = np.linalg.norm(y, axis=1) * np.linalg.norm(r, axis=1)
        cos = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(np.all(y == r, axis=1), 1.0, 0.0))
        m: dict[str, Any] = dict(nmse=nmse, cosine=float(cos.mean()), samples=self.n, task=self.task)
        if self.task == "classify":
            y, r = ys[0], self.ref[0]
            m["top1_agreement"] = float((y.argmax(axis=1) == r.argmax(axis=1)).mean())
        why = self.uninformative()
        if why:
            m["uninformative"] = why
        return m

    def uninformative(self) -> str | None:
        """Why agreement on these calibration inputs means nothing, if it does not: outputs that barely
        change across inputs (random or blank data) make any model 'agree'."""
        r = self.ref[0]
        spread = float(np.sqrt(((r - r.mean(axis=0)) ** 2).mean()))
        scale = float(np.sqrt((r ** 2).mean())) or 1.0
        if self.n < 2 or spread <= 1e-3 * scale:
            return (f"the int8 model's outputs are (nearly) constant over the {self.n} calibration input(s): "
                    "the agreement figures mean nothing; calibrate with real inputs")
        if self.task == "classify":
            top = np.bincount(r.argmax(axis=1)).max() / self.n
            if top >= 0.95 and r.shape[1] > 1:
                return (f"the int8 model gives one class for {top:.0%} of the calibration inputs: top-1 "
                        "agreement says little; calibrate with real inputs of every class")
        return None

    def agreement(self, outs: Sequence[np.ndarray]) -> float:
        m = self.metrics(outs)
        return m["top1_agreement"] if self.task == "classify" else m["cosine"]

    def loss(self, outs: Sequence[np.ndarray]) -> float:
        return self.metrics(outs)["nmse"]


@dataclass
class Candidate:
    label: str
    step: Step | None  # None = keep the int8 step
    qbytes: int  # weight + scale bytes (quant_bytes)
    flash: int  # all constant bytes of the step
    loss: float


@dataclass
class Placement:
    choice: dict[int, Step | None]
    candidates: dict[int, list[Candidate]]
    path: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    budget: dict[str, Any] = field(default_factory=dict)
    runs: int = 0

    def sensitivity_table(self) -> list[dict[str, Any]]:
        return [dict(pos=pos, setting=c.label, bytes=c.qbytes, loss=c.loss)
                for pos, cs in self.candidates.items() for c in cs]


def place(plan: Plan, layers, placeable, fixed: dict[int, Step], cfg, ev: Evaluator, make_step) -> Placement:
    """Choose a setting for every placeable layer under the config's budget (see module doc).

    ``make_step(layer, spec) -> Step`` builds a candidate (the pass's fitting and step building).
    """
    from ..plan import quant_bytes

    specs = cfg.candidate_specs()
    cands: dict[int, list[Candidate]] = {}
    runs0 = ev.runs
    from tqdm import tqdm
    # Measuring every candidate of every layer on the calibration data is the long part (minutes on
    # 100-layer models): show it. tqdm writes to stderr and stays silent when that is not a terminal.
    for L in tqdm(placeable, desc="placement: measuring layers", unit="layer", leave=False,
                  disable=None, dynamic_ncols=True):
        int8_q = quant_bytes(L.step)
        entries = [Candidate("int8", None, int8_q, L.step.weight_bytes, 0.0)]
        for spec in specs:
            st = make_step(L, spec)
            q = quant_bytes(st)
            if q >= int8_q:
                continue  # never worth it: not smaller than int8
            if cfg.sensitivity == "model":
                loss = ev.loss(ev.run({L.pos: st}))
            else:
                loss = ev.layer_error(L.pos, st) ** 2
            entries.append(Candidate(spec.label(), st, q, st.weight_bytes, loss))
        cands[L.pos] = entries

    # budget limits on the placeable layers' bytes
    total_w = sum(L.n_weights for L in layers)
    fixed_q = sum(quant_bytes(fixed.get(L.pos, L.step)) for L in layers if L.pos not in cands)
    q_lim = None if cfg.budget_bits is None else cfg.budget_bits * total_w / 8.0 - fixed_q
    flash_fixed = sum(fixed.get(k, s).weight_bytes for k, s in enumerate(plan.steps) if k not in cands)
    f_lim = None if cfg.max_flash is None else cfg.max_flash - flash_fixed

    state = {pos: min(range(len(es)), key=lambda j: (es[j].qbytes, es[j].loss)) for pos, es in cands.items()}

    def totals(st: dict[int, int]) -> tuple[int, int, float]:
        q = sum(cands[p][j].qbytes for p, j in st.items())
        f = sum(cands[p][j].flash for p, j in st.items())
        loss = sum(cands[p][j].loss for p, j in st.items())
        return q, f, loss

    def fits(q: float, f: float) -> bool:
        return (q_lim is None or q <= q_lim + 1e-9) and (f_lim is None or f <= f_lim)

    notes: list[str] = []
    q, f, loss = totals(state)
    if not fits(q, f):
        what = []
        if q_lim is not None and q > q_lim + 1e-9:
            what.append(f"{cfg.budget_bits} bits/weight (cheapest placement: "
                        f"{8 * (q + fixed_q) / total_w:.3f})")
        if f_lim is not None and f > f_lim:
            what.append(f"{cfg.max_flash} flash bytes (cheapest placement: {f + flash_fixed})")
        notes.append("budget cannot be met: " + " and ".join(what) + "; the cheapest placement is used")
    path = [dict(state)]
    trace = [dict(step="start", qbytes=q, loss=loss)]
    while True:
        best = None
        for pos in sorted(cands):
            es = cands[pos]
            cur = es[state[pos]]
            for j, e in enumerate(es):
                dq = e.qbytes - cur.qbytes
                gain = cur.loss - e.loss
                if dq <= 0 or gain <= 0:
                    continue
                if not fits(q + dq, f + e.flash - cur.flash):
                    continue
                r = gain / dq
                if best is None or r > best[0]:
                    best = (r, pos, j)
        if best is None:
            break
        _, pos, j = best
        state[pos] = j
        q, f, loss = totals(state)
        path.append(dict(state))
        trace.append(dict(step=f"op {plan.steps[pos].op_index} -> {cands[pos][j].label}", qbytes=q, loss=loss))

    chosen_state = state
    budget: dict[str, Any] = dict(budget_bits=cfg.budget_bits, max_flash=cfg.max_flash, min_agreement=cfg.min_agreement)
    if cfg.min_agreement is not None:
        def agree(st: dict[int, int]) -> float:
            rep = {p: cands[p][j].step for p, j in st.items() if cands[p][j].step is not None}
            rep.update({p: s for p, s in fixed.items()})
            return ev.agreement(ev.run(rep))
        lo, hi = 0, len(path) - 1
        if agree(path[hi]) < cfg.min_agreement:
            notes.append(f"min_agreement {cfg.min_agreement} not reached even with the costliest placement "
                         "within the other budgets")
            chosen_state = path[hi]
        else:
            while lo < hi:
                mid = (lo + hi) // 2
                if agree(path[mid]) >= cfg.min_agreement:
                    hi = mid
                else:
                    lo = mid + 1
            chosen_state = path[lo]
        trace.append(dict(step=f"min_agreement: prefix {path.index(chosen_state)} of {len(path) - 1}"))
    q, f, loss = totals(chosen_state)
    budget.update(bits_per_weight=8 * (q + fixed_q) / total_w, flash=f + flash_fixed, predicted_loss=loss,
                  met=fits(q, f))
    choice = {p: cands[p][j].step for p, j in chosen_state.items()}
    return Placement(choice, cands, trace, notes, budget, ev.runs - runs0)
