# SPDX-License-Identifier: Apache-2.0
"""Where the latent weights start: at the int8 model's weights, kept inside the post-training codes.

A latent weight that starts exactly on its quantized value sits half a scale away from the nearest
threshold, so a code flips only after many steps of a consistent gradient (measured on IC: the
codes hardly moved in 3 epochs, and the ternary model matched int8 on 63% of its own training
crops). Starting at the int8 weight (the finest weights there are, in the ternary step's units)
puts the weights that are borderline next to their thresholds. A weight whose int8 value rounds
to another code than the post-training fit chose (error feedback) starts on its quantized value,
so epoch 0 is still exactly the post-training plan.
"""
from __future__ import annotations

import numpy as np

from ..plan import Plan
from .forms import Form

def int8_weights_in_units(int8_plan: Plan, k: int, mult: np.ndarray) -> np.ndarray:
    """The int8 step k's weights [O, K] in the units of a step whose realized multiplier is ``mult``
    (W8 * mult8 / mult: the same real contribution to the accumulator's output)."""
    from .twin import _int8_weights, realized_mult
    step = int8_plan.steps[k]
    W8 = _int8_weights(step)
    m8 = np.broadcast_to(realized_mult(step.params), (W8.shape[0],))
    return W8 * (m8 / np.asarray(mult, np.float64))[:, None]


def _keep_consistent(wf: np.ndarray, q: np.ndarray, a: np.ndarray) -> np.ndarray:
    """wf where its nearest of {-a, 0, a} is q (the post-training value), else q itself.

    Not clipped to the cell's edge: a start on a threshold flips at the first step (Adam's first
    updates are +-lr for every weight). Measured on IC: clipping there put ~20% of the weights on
    a threshold and the model collapsed to one class in the first epoch."""
    t = np.sign(wf) * (np.abs(wf) > 0.5 * a)
    return np.where((a > 0) & (t == np.sign(q)), wf, q)


def start(form: Form, wf: np.ndarray) -> np.ndarray:
    """The latent start of ``form`` given the int8 weights ``wf`` [O, K] in its units."""
    g = form.gid()
    if form.kind in ("fgq", "ttq"):
        a = np.abs(form.start["a" if form.kind == "fgq" else "ap"])[:, g]
        return _keep_consistent(wf, form.w, a)
    if form.kind == "rtn":
        off = form.start["off"][:, None]
        return off + _keep_consistent(wf - off, form.w - off, np.abs(form.start["a"])[:, g])
    if form.kind == "trn":  # the residual left by the other planes goes to the last plane
        lat = np.array(form.latent, np.float64)
        a = np.abs(form.start["a"])[-1][:, g]
        rest = lat[:-1].sum(axis=0)
        lat[-1] = _keep_consistent(wf - rest, lat[-1], a)
        return lat
    return form.init()["w"]  # gtc: several levels per cell; starts on its levels as before
