# SPDX-License-Identifier: Apache-2.0
"""The report of the ternary pass: per layer what was done and what it cost, and the totals.

Every number is measured from the plans themselves (byte counts of the params that go to flash,
errors from emulating on the calibration inputs), never assumed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


from ..kernelspec import spec
from ..plan import Plan, Step
from ..report import table

__all__ = ["LayerReport", "TernaryReport", "build_report"]


@dataclass
class LayerReport:
    op_index: int
    op_type: str
    name: str
    kernel: str
    method: str  # int8, lossless, or a spec label such as fgq/N64x2
    reason: str  # why this setting: default, first layer, override ..., placement, depthwise, ...
    out_channels: int
    depth: int
    weights: int
    group: int | None
    planes: int | None
    levels: int | None
    sparsity: float  # share of taps whose combined integer weight is 0
    bits_per_weight: float  # 8 * (codes + group scales + plane shifts + offsets) / weights (plan_pass.quant_bytes)
    int8_bits_per_weight: float
    weight_bytes: int  # all constant bytes of the step
    int8_weight_bytes: int
    mults_removed: float  # share of multiplications removed against int8
    output_error: float | None  # relative L2 of the layer output vs int8 (int8 inputs, calib data)


@dataclass
class TernaryReport:
    model: str
    layers: list[LayerReport]
    weight_bytes: int  # all constant bytes of the new plan
    int8_weight_bytes: int
    mac_weights: int
    bits_per_weight: float  # over all MAC layers, scales included
    int8_bits_per_weight: float
    task: str | None = None
    samples: int = 0
    agreement: dict[str, Any] | None = None  # nmse, cosine, top1_agreement on the calibration inputs
    budget: dict[str, Any] = field(default_factory=dict)
    sensitivity: list[dict[str, Any]] = field(default_factory=list)
    placement_trace: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def size_ratio(self) -> float:
        return self.weight_bytes / self.int8_weight_bytes if self.int8_weight_bytes else 1.0

    def table(self) -> str:
        rows = []
        for L in self.layers:
            rows.append([L.op_index, L.op_type, L.method, L.reason,
                         "-" if L.group is None else L.group, "-" if L.planes is None else L.planes,
                         f"{L.sparsity:.2f}", f"{L.bits_per_weight:.3f}", L.weight_bytes,
                         f"{L.mults_removed:.3f}", "-" if L.output_error is None else f"{L.output_error:.4f}"])
        out = [table(["op", "type", "method", "why", "group", "planes", "sparsity", "bits/w", "bytes",
                      "mults removed", "out err"], rows, "rllllrrrrrr")]
        out.append(f"weights: {self.weight_bytes:,} B vs int8 {self.int8_weight_bytes:,} B "
                   f"({self.size_ratio:.3f}x); MAC layers {self.bits_per_weight:.3f} bits/weight "
                   f"(int8 {self.int8_bits_per_weight:.3f})")
        if self.agreement:
            a = self.agreement
            s = f"on {a['samples']} calibration inputs: output cosine {a['cosine']:.4f}, nmse {a['nmse']:.4g}"
            if "top1_agreement" in a:
                s += f", top-1 agreement {a['top1_agreement']:.4f}"
            out.append(s + " against the int8 model")
            out.append("  (cosine: 1 = outputs point the same way as int8's; nmse: squared error over the "
                       "variance of int8's outputs across inputs, 0 = identical, 1 = no better than "
                       "always answering their mean; top-1 agreement: share of inputs with the same class)")
            if a.get("uninformative"):
                out.append(f"  warning: {a['uninformative']}")
        if self.budget:
            b = self.budget
            out.append("budget: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                              for k, v in b.items() if v is not None))
        out += [f"note: {n}" for n in self.notes]
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["size_ratio"] = self.size_ratio
        return d


def _layer_report(L, new_step: Step, why: str, ev) -> LayerReport:
    from ..kernels.ternary import decode_weights
    from ..plan import quant_bytes
    n = L.n_weights
    p = new_step.params
    O, K = L.out_channels, L.depth
    if not spec(new_step.kernel).ternary:
        method, group, planes, levels = "int8", None, None, None
        sparsity = float((L.w == 0).mean())
        removed = 0.0
    else:
        fam = spec(new_step.kernel).weights
        W, off = decode_weights(p, fam)
        if off is not None:
            W = W + off[:, None]
        sparsity = float((W == 0).mean())
        group = int(p["group"])
        G = -(-K // group)
        planes = int(p.get("active_planes", p.get("planes", 1)))
        levels = int(p["levels"]) if fam == "p2" else None
        method = str(p.get("method", fam))
        mults = {"t2": planes * G, "p2": G, "to": G + 1}[fam]
        removed = 1.0 - mults / K
    err = None if ev is None else ev.layer_error(L.pos, new_step)
    return LayerReport(L.op_index, L.step.op_type, L.name, new_step.kernel, method, why, O, K, n, group, planes,
                       levels, sparsity, 8.0 * quant_bytes(new_step) / n, 8.0 * quant_bytes(L.step) / n,
                       new_step.weight_bytes, L.step.weight_bytes, removed, err)


def build_report(plan: Plan, new_plan: Plan, layers, why: dict[int, str], cfg, ev, placement, notes) -> TernaryReport:
    from ..plan import quant_bytes
    reps = []
    for L in layers:
        st = new_plan.steps[L.pos]
        w = why.get(L.pos, "")
        if w == "placement" and st is L.step:
            w = "placement (int8)"
        reps.append(_layer_report(L, st, w, ev))
    nw = sum(L.n_weights for L in layers)
    q_new = sum(quant_bytes(new_plan.steps[L.pos]) for L in layers)
    q_old = sum(quant_bytes(L.step) for L in layers)
    rep = TernaryReport(plan.name, reps, new_plan.weight_bytes, plan.weight_bytes, nw,
                        8.0 * q_new / nw if nw else 0.0, 8.0 * q_old / nw if nw else 0.0, notes=list(notes))
    if ev is not None:
        changed = {k: s for k, s in enumerate(new_plan.steps) if s is not plan.steps[k]}
        rep.agreement = ev.metrics(ev.run(changed))
        rep.task = ev.task
        rep.samples = ev.n
    if placement is not None:
        rep.budget = dict(placement.budget, sensitivity_runs=placement.runs)
        ops = {L.pos: L.op_index for L in layers}
        rep.sensitivity = [dict(op_index=ops[d.pop("pos")], **d) for d in placement.sensitivity_table()]
        rep.placement_trace = placement.path
    return rep
