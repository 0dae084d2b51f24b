# SPDX-License-Identifier: Apache-2.0
"""The train extra (JAX + optax), checked before any work."""
from __future__ import annotations


def require_jax():
    """Import jax and optax, or fail with one line naming the extra to install."""
    try:
        import jax  # noqa: F401
        import optax  # noqa: F401
    except ImportError as exc:
        from ..errors import InputError
        raise InputError(f"fine-tuning needs JAX and optax ({exc.name} is not installed): "
                         "pip install 'ternembed[train]'") from None
