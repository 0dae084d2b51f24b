# SPDX-License-Identifier: Apache-2.0
"""A differentiable twin of a lowered integer Plan, in JAX.

Values are the int8 codes as float32 (the grid the Plan computes on); every step rounds with a
straight-through gradient and clamps like its kernel, so what is trained is what the integer
Plan computes (up to the fixed-point rounding of the requantization). Trainable: the ternary
steps (t2, p2, to kernels), each as a :class:`.forms.Form` (latent float weights in the step's
integer weight units, ternarized in the forward pass against thresholds re-decided from the
learned scales, plus a change ``db`` [O] of the bias). int8 steps are frozen.
Padding is the Plan's own (top, left) with bottom/right implied by ``out_hw``, so
TFLite's asymmetric SAME padding of stride-2 convs is reproduced.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from ..plan import Plan, Step
from .forms import decode

TRAINABLE = tuple(f"{fam}_{kind}_s8" for kind in ("t2", "p2", "to") for fam in ("fc", "conv", "dwconv"))
SUPPORTED = TRAINABLE + ("fc_s8", "conv_s8", "dwconv_s8", "maxpool_s8", "avgpool_s8", "copy",
                         "add_s8", "softmax_s8")


def ste_round(x):
    return x + jax.lax.stop_gradient(jnp.round(x) - x)


def realized_mult(params) -> np.ndarray:
    mult = np.asarray(params["multiplier"], np.float64)
    shift = np.asarray(params["shift"], np.int64)
    return mult * np.ldexp(1.0, shift - 31)


def _pads(step: Step, in_hw, k_hw):
    p = step.params
    out = []
    for ax in range(2):
        s, d, pad0 = p["stride"][ax], p["dilation"][ax], p["pad"][ax]
        need = (p["out_hw"][ax] - 1) * s + (k_hw[ax] - 1) * d + 1
        out.append((pad0, max(need - in_hw[ax] - pad0, 0)))
    return out


def _mac(step: Step, family: str, x, W, b, mult):
    """acc = W (x + input_offset) + b, then requantize, offset and clamp (float, STE rounding)."""
    p = step.params
    xc = x + p.get("input_offset", 0)
    if family == "fc":
        K = W.shape[1]
        acc = xc.reshape(-1, K) @ W.T
    else:
        kh, kw = p["kernel_hw"] if "kernel_hw" in p else np.asarray(p["weights"]).shape[1:3]
        pads = _pads(step, xc.shape[1:3], (kh, kw))
        if family == "conv":
            rhs = W.reshape(W.shape[0], kh, kw, -1)
            acc = jax.lax.conv_general_dilated(xc, rhs, tuple(p["stride"]), pads, rhs_dilation=tuple(p["dilation"]),
                                               dimension_numbers=("NHWC", "OHWI", "NHWC"))
        else:
            rhs = W.T.reshape(kh, kw, 1, W.shape[0])
            acc = jax.lax.conv_general_dilated(xc, rhs, tuple(p["stride"]), pads, rhs_dilation=tuple(p["dilation"]),
                                               dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                               feature_group_count=xc.shape[3])
    out = ste_round((acc + b) * mult) + p.get("output_offset", 0)
    return jnp.clip(out, p.get("act_min", -128), p.get("act_max", 127))


def _int8_weights(step: Step) -> np.ndarray:
    w = np.asarray(step.params["weights"], np.float64)
    if step.kernel == "dwconv_s8":
        return w.reshape(-1, w.shape[3]).T
    return w.reshape(w.shape[0], -1)


def _pool(step: Step, x):
    pp = step.params["pool"]
    win, strides = (1, pp.filter_h, pp.filter_w, 1), (1, pp.stride_h, pp.stride_w, 1)
    pads = []
    for size, k, s, pad0, n in ((x.shape[1], pp.filter_h, pp.stride_h, pp.pad_top, pp.out_h),
                                (x.shape[2], pp.filter_w, pp.stride_w, pp.pad_left, pp.out_w)):
        pads.append((pad0, max((n - 1) * s + k - size - pad0, 0)))
    pads = [(0, 0)] + pads + [(0, 0)]
    if step.kernel == "maxpool_s8":
        y = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, win, strides, pads)
    else:  # average over the taps inside the image (TFLM), rounded half away
        s = jax.lax.reduce_window(x, 0.0, jax.lax.add, win, strides, pads)
        n = jax.lax.reduce_window(jnp.ones_like(x[:1]), 0.0, jax.lax.add, win, strides, pads)
        y = ste_round(s / n)
    return jnp.clip(y, pp.act.min, pp.act.max)


def _add(plan: Plan, step: Step, a, b):
    o = plan.buffers[step.outputs[0]]
    ba, bb = (plan.buffers[i] for i in step.inputs)
    real = (a - ba.zero_point) * ba.scale + (b - bb.zero_point) * bb.scale
    act = step.params["op"].act
    return jnp.clip(ste_round(real / o.scale) + o.zero_point, act.min, act.max)


class Twin:
    """``twin.logits(params, x)``: the float logits (the input of a final SOFTMAX, else the output)
    of the Plan on int8 inputs x, with the trainable steps' weights from ``params``."""

    def __init__(self, plan: Plan, asymmetric: bool = False):
        bad = sorted({s.kernel for s in plan.steps} - set(SUPPORTED))
        if bad:
            raise InputError(f"{plan.name}: fine-tuning does not model these kernels yet: {', '.join(bad)}")
        if len(plan.inputs) != 1 or len(plan.outputs) != 1:
            raise InputError(f"{plan.name}: fine-tuning takes models with one input and one output")
        self.plan = plan
        self.forms = {k: decode(s, asymmetric) for k, s in enumerate(plan.steps) if s.kernel in TRAINABLE}
        self.mults = {k: realized_mult(plan.steps[k].params) for k in self.forms}
        last = plan.steps[-1]
        self.logit_buffer = last.inputs[0] if last.kernel == "softmax_s8" else plan.outputs[0]
        buf = plan.buffers[self.logit_buffer]
        self.logit_scale, self.logit_zp = float(buf.scale), float(buf.zero_point)
        self._steps = plan.steps if last.kernel != "softmax_s8" else plan.steps[:-1]

    def init_params(self) -> dict:
        return {str(k): {n: jnp.asarray(v, jnp.float32) for n, v in f.init().items()} for k, f in self.forms.items()}

    def lr_scales(self) -> dict:
        """Per-tensor magnitude (mean |.|) that scales the learning rate; the bias is trained as a
        float32 change ``db`` on its exact float64 start (biases outgrow float32's integers)."""
        return {str(k): f.lr_scales() for k, f in self.forms.items()}

    def logits(self, params: dict, x):
        plan = self.plan
        vals = {plan.inputs[0]: x.astype(jnp.float32)}
        for k, step in enumerate(self._steps):
            args = [vals[i] for i in step.inputs]
            kern = step.kernel
            if kern in TRAINABLE:
                f, pr = self.forms[k], params[str(k)]
                y = _mac(step, kern.split("_")[0], args[0], f.weights(pr), jnp.asarray(f.b, jnp.float32) + pr["db"],
                         jnp.asarray(self.mults[k], jnp.float32))
            elif kern in ("fc_s8", "conv_s8", "dwconv_s8"):
                p = step.params
                W = _int8_weights(step)  # numpy: a constant of the traced function
                O = W.shape[0]
                b = np.broadcast_to(np.asarray(p["bias"], np.float64), (O,)) - p.get("input_offset", 0) * W.sum(axis=1)
                mult = np.broadcast_to(realized_mult(p), (O,))
                y = _mac(step, kern.split("_")[0], args[0], jnp.asarray(W, jnp.float32), jnp.asarray(b, jnp.float32),
                         jnp.asarray(mult, jnp.float32))
            elif kern in ("maxpool_s8", "avgpool_s8"):
                y = _pool(step, args[0])
            elif kern == "add_s8":
                y = _add(plan, step, args[0], args[1])
            elif kern == "copy":
                y = args[0]
            else:
                raise InputError(f"{plan.name}: fine-tuning cannot run {kern} inside the model")
            out = plan.buffers[step.outputs[0]]
            vals[step.outputs[0]] = y.reshape((x.shape[0],) + tuple(out.sample_shape))
        z = vals[self.logit_buffer]
        return ((z - self.logit_zp) * self.logit_scale).reshape(x.shape[0], -1)
