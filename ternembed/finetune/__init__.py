# SPDX-License-Identifier: Apache-2.0
"""Ternary fine-tuning (quantization-aware training) of a ternarized Plan, in JAX + optax.

Imported lazily: the base install never imports jax. ``finetune(int8_plan, config, inputs)`` is the
Python API (post-training ternarization, then fine-tuning; ``export --finetune`` calls it);
``finetune_plan`` fine-tunes an existing ternary plan. The result is a Plan of the same integer
contract as post-training (see :mod:`.train`).
"""
from __future__ import annotations

from .deps import require_jax

__all__ = ["finetune", "finetune_plan", "require_jax"]


def finetune(int8_plan, config, train_inputs, labels=None, *, calib_inputs=None, **options):
    """Ternarize ``int8_plan`` with ``config`` (a TernaryConfig, calibrated on ``calib_inputs``,
    default the training inputs), then fine-tune it on ``train_inputs`` (int8 array, or float data
    for a float-input plan's int8 input, leading sample axis). Returns (plan, FinetuneReport) with
    the post-training report as ``report.ptq``; ``options`` go to :func:`finetune_plan`."""
    require_jax()
    import numpy as np
    from ..errors import InputError
    from ..data import to_plan_inputs
    from ..quantize.plan_pass import ternarize_plan
    from .train import _check, finetune_plan
    x = np.asarray(train_inputs[0] if isinstance(train_inputs, (list, tuple)) else train_inputs)
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise InputError("training data contains NaN or infinity")
    x = to_plan_inputs(int8_plan, [x])[0]  # float data for an int8 input: quantized
    x, labels = _check(x, labels, int8_plan, "training data")  # before the post-training pass uses it
    tplan, ptq = ternarize_plan(int8_plan, config, [x] if calib_inputs is None else list(calib_inputs))
    plan, report = finetune_plan(int8_plan, tplan, x, labels, **options)
    report.ptq = ptq
    return plan, report


def __getattr__(name):
    if name == "finetune_plan":  # lazily: jax is imported only when training
        from .train import finetune_plan
        return finetune_plan
    raise AttributeError(name)
