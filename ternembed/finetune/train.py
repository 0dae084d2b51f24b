# SPDX-License-Identifier: Apache-2.0
"""Fine-tune the ternary steps of a Plan by distillation, then lower back to the integer contract.

Start: the post-training ternary Plan (its codes, integer group scales, corrected biases and
realized multipliers are the twin's starting point, so epoch 0 *is* the post-training plan).
Train: KL distillation at a temperature from the int8 Plan's outputs on the user's inputs (the
teacher is the emulator, bit-exact), plus cross-entropy when labels are given; Adam with a
per-tensor learning rate of ``lr * mean|tensor|`` (weight magnitudes differ by orders of
magnitude between layers). After every epoch the latent weights are lowered exactly the way the
post-training pass stores them (:func:`lower_params`: codes, integer scales on a per-row unit
c_o, then ``plan_pass.build_step``) and the *integer* Plan is scored on a held-out split with the
emulator; the best one is kept. So the result is emulator == host C == firmware by construction.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from .. import emulate
from ..errors import InputError
from ..plan import Plan
from ..quantize import plan_pass as PP


@dataclass
class FinetuneReport:
    epochs: int
    best_epoch: int  # 0 = the post-training plan was never beaten on the held-out split
    metric: str  # "agreement" (top-1 with the int8 plan), "accuracy" (labels) or "fidelity" (regression)
    history: list[dict] = field(default_factory=list)  # per epoch: loss, agreement or fidelity, accuracy
    seconds: float = 0.0

    @property
    def best(self) -> dict:
        return self.history[self.best_epoch]

    def table(self) -> str:
        cols = [k for k in ("agreement", "fidelity", "accuracy") if k in self.history[0]]
        lines = ["epoch  loss      " + "".join(f"{c:11s}" for c in cols)]
        for h in self.history:
            vals = "".join("-          " if h[c] is None else f"{h[c]:.4f}     " for c in cols)
            loss = "-" if h["loss"] is None else f"{h['loss']:.4f}"
            mark = "  <- kept" if h["epoch"] == self.best_epoch else ""
            lines.append(f"{h['epoch']:5d}  {loss:8s}  {vals.rstrip()}{mark}")
        return "\n".join(lines)


def lower_params(plan: Plan, int8_plan: Plan, twin, params) -> Plan:
    """The integer Plan of trained parameters: each trainable step rebuilt by plan_pass.build_step
    (same storage, same accumulator checks) from its form's LayerFit (:meth:`.forms.Form.fit`)
    and its bias; the other steps unchanged."""
    steps = list(plan.steps)
    layers = {L.pos: L for L in PP.mac_layers(int8_plan)}
    for k, form in twin.forms.items():
        st = plan.steps[k]
        pr = params[str(k)]
        fit = form.fit({n: v for n, v in pr.items() if n != "db"})
        L2 = replace(layers[k], bias_q=form.b + np.asarray(pr["db"], np.float64), real_mult=twin.mults[k])
        new = PP.build_step(L2, fit)
        new.params["method"] = form.label(st.params.get("method", form.kind), fit)
        steps[k] = new
    return Plan(plan.name, plan.buffers, steps, list(plan.inputs), list(plan.outputs), plan.source_kind)


def _check(x: np.ndarray, labels, plan: Plan, what: str):
    x = emulate.check_inputs(plan, [x])[0]
    if len(x) == 0:
        raise InputError(f"{what}: no samples")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(x),) or not np.issubdtype(labels.dtype, np.integer):
            raise InputError(f"{what}: labels must be integers, one per sample ({len(x)}); got "
                             f"{labels.dtype} {list(labels.shape)}")
    return x, labels


def finetune_plan(int8_plan: Plan, ternary_plan: Plan, inputs: np.ndarray, labels: np.ndarray | None = None, *,
                  eval_inputs: np.ndarray | None = None, eval_labels: np.ndarray | None = None,
                  epochs: int = 10, seconds: float | None = None, lr: float = 0.01, batch: int = 64,
                  temperature: float = 3.0, ce_weight: float = 1.0, holdout: float = 0.2, seed: int = 0,
                  schedule: str = "cosine", teacher_ce: float = 0.0, task: str = "auto",
                  asymmetric: bool = False,
                  progress: bool = True) -> tuple[Plan, FinetuneReport]:
    """Fine-tune the single-plane ternary steps of ``ternary_plan`` (from ``ternarize_plan(int8_plan,
    ...)``) on ``inputs`` (int8, leading sample axis); returns (integer Plan, report).

    The held-out split that picks the best epoch is ``eval_inputs`` if given, else a seeded
    ``holdout`` fraction of ``inputs`` (not trained on). ``seconds`` stops after the epoch that
    passes it. Deterministic for a given seed.
    """
    from .deps import require_jax
    require_jax()
    import jax
    import jax.numpy as jnp
    import optax
    from tqdm import tqdm
    from .twin import Twin

    x, labels = _check(inputs, labels, int8_plan, "training data")
    if not np.isfinite(np.asarray(x, np.float64)).all():
        raise InputError("training data contains NaN or infinity")
    rng = np.random.default_rng(seed)
    if eval_inputs is None:
        perm = rng.permutation(len(x))
        n_ev = max(1, int(round(holdout * len(x)))) if len(x) > 1 else 0
        ev, tr = perm[:n_ev], perm[n_ev:]
        if len(tr) == 0:
            raise InputError("training data: too few samples to hold some out (give --eval)")
        x_ev, y_ev = x[ev], None if labels is None else labels[ev]
        x, labels = x[tr], None if labels is None else labels[tr]
    else:
        x_ev, y_ev = _check(eval_inputs, eval_labels, int8_plan, "held-out data")

    twin = Twin(ternary_plan, asymmetric)
    if not twin.forms:
        raise InputError(f"{ternary_plan.name}: no ternary layer to fine-tune (all int8?)")

    def teacher(xs):
        out = emulate.run(int8_plan, [xs], keep_all=True)[twin.logit_buffer]
        return ((out.astype(np.float64) - twin.logit_zp) * twin.logit_scale).reshape(len(xs), -1)

    t_tr = teacher(x).astype(np.float32)
    t_ev = teacher(x_ev)
    from ..quantize.placement import resolve_task
    task = resolve_task(int8_plan, task, [t_ev])
    var = float(np.var(t_tr)) or 1.0  # regression: squared error relative to the output's variance

    def score(plan) -> dict:
        out = emulate.run(plan, [x_ev], keep_all=True)[twin.logit_buffer].reshape(len(x_ev), -1)
        if task == "regress":  # 1 - relative squared error vs the int8 outputs (1 = identical)
            z = (out.astype(np.float64) - twin.logit_zp) * twin.logit_scale
            return dict(fidelity=float(1 - ((z - t_ev) ** 2).mean() / max(np.var(t_ev), 1e-30)), accuracy=None)
        pred = out.argmax(axis=1)
        return dict(agreement=float((pred == t_ev.argmax(axis=1)).mean()),
                    accuracy=None if y_ev is None else float((pred == y_ev).mean()))

    params = twin.init_params()
    lr_tree = jax.tree_util.tree_map(lambda m: lr * m, twin.lr_scales())
    opt = optax.adam(1.0)  # its updates are already -m/sqrt(v); the per-tensor rate scales them
    opt_state = opt.init(params)
    T = float(temperature)

    def loss_fn(p, xb, tb, yb, has_y):
        z = twin.logits(p, xb)
        if task == "regress":
            return ((z - tb) ** 2).mean() / var
        kl = optax.kl_divergence(jax.nn.log_softmax(z / T), jax.nn.softmax(tb / T)).mean() * T * T
        ce = optax.softmax_cross_entropy_with_integer_labels(z, yb).mean()
        return kl + has_y * ce

    @jax.jit
    def train_step(p, s, xb, tb, yb, has_y, rate):
        loss, g = jax.value_and_grad(loss_fn)(p, xb, tb, yb, has_y)
        u, s = opt.update(g, s, p)
        p = jax.tree_util.tree_map(lambda v, d, r: v + rate * r * d, p, u, lr_tree)
        return p, s, loss

    start = time.monotonic()
    metric = "fidelity" if task == "regress" else ("accuracy" if y_ev is not None else "agreement")
    history = [dict(epoch=0, loss=None, **score(ternary_plan))]
    best_plan, best_epoch, best_val = ternary_plan, 0, history[0][metric]
    bs = max(1, min(int(batch), len(x)))
    # no labels: optionally cross-entropy on the teacher's top-1 (sharpens top-1 agreement)
    if labels is not None:
        y_all = labels.astype(np.int32)
    else:
        y_all = np.zeros(len(x), np.int32) if task == "regress" else t_tr.argmax(axis=1).astype(np.int32)
    has_y = jnp.float32(ce_weight if labels is not None else teacher_ce)
    bar = tqdm(range(1, int(epochs) + 1), desc="fine-tune", unit="epoch", disable=not progress)
    done, n_steps = 0, int(epochs) * (len(x) // bs)
    for epoch in bar:
        order = rng.permutation(len(x))
        losses = []
        for i in range(0, len(x) - bs + 1, bs):
            idx = order[i:i + bs]
            step = (epoch - 1) * (len(x) // bs) + i // bs
            rate = jnp.float32(0.5 * (1 + np.cos(np.pi * step / n_steps)) if schedule == "cosine" else 1.0)
            params, opt_state, loss = train_step(params, opt_state, jnp.asarray(x[idx], jnp.float32),
                                                 jnp.asarray(t_tr[idx]), jnp.asarray(y_all[idx]), has_y, rate)
            losses.append(float(loss))
        plan = lower_params(ternary_plan, int8_plan, twin, params)
        h = dict(epoch=epoch, loss=float(np.mean(losses)), **score(plan))
        history.append(h)
        if h[metric] > best_val:
            best_plan, best_epoch, best_val = plan, epoch, h[metric]
        bar.set_postfix(loss=f"{h['loss']:.4f}", **{k: f"{v:.4f}" for k, v in h.items()
                                                      if k not in ("epoch", "loss") and v is not None})
        done = epoch
        if seconds is not None and time.monotonic() - start > seconds:
            break
    bar.close()
    return best_plan, FinetuneReport(done, best_epoch, metric, history, time.monotonic() - start)
