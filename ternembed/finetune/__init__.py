"""Ternary fine-tuning (quantization-aware training) of a ternarized Plan, in JAX + optax.

Imported lazily: the base install never imports jax. ``finetune_plan`` is the Python API; the
result is a Plan of the same integer contract as post-training (see :mod:`.train`).
"""
from __future__ import annotations

__all__ = ["finetune_plan", "require_jax"]


def require_jax():
    """Import jax and optax, or fail with one line naming the extra to install."""
    try:
        import jax  # noqa: F401
        import optax  # noqa: F401
    except ImportError as exc:
        from ..errors import InputError
        raise InputError(f"fine-tuning needs JAX and optax ({exc.name} is not installed): "
                         "pip install 'ternembed[train]'") from None


def __getattr__(name):
    if name == "finetune_plan":
        from .train import finetune_plan
        return finetune_plan
    raise AttributeError(name)
