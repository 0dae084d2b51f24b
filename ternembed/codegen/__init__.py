# SPDX-License-Identifier: Apache-2.0
"""C code generation: a Plan (and its arena plan) -> the pieces of model.c and model.h.

``generate(plan)`` returns a GeneratedModel (constant arrays, parameter structs, one block of
C statements per step, input/output tables, the model hash) that the Jinja templates in
templates/ turn into files; ``render_model_sources(plan)`` renders model.c and model.h.
Kernel call emitters live in emitters.py (one function per kernel); model strings only reach
C through names.py.
"""
from __future__ import annotations

from .core import (EMITTERS, EmitContext, GeneratedModel, c_float, c_int, c_struct_value, emitter,
                   generate)
from . import emitters  # noqa: F401,E402  (registers the kernel call emitters)
from . import emitters_ternary  # noqa: F401,E402  (registers the ternary kernel emitters)
from . import emitters_data  # noqa: F401,E402  (data movement and the newer elementwise ops)
from .hashing import plan_hash
from .names import Namer, c_comment, c_identifier, c_string

__all__ = [
    "EMITTERS", "EmitContext", "GeneratedModel", "Namer", "c_comment", "c_float", "c_identifier",
    "c_int", "c_string", "c_struct_value", "emitter", "generate", "plan_hash", "supported_kernels",
    "template_env", "render_model_sources",
]


def supported_kernels() -> list[str]:
    """Every kernel with a C emitter (the modules imported above registered them)."""
    return sorted(EMITTERS)


def template_env():
    """The Jinja2 environment over templates/ (StrictUndefined: a missing value is an error)."""
    import jinja2

    from ..resources import resource_dir

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resource_dir("templates"))),
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
        trim_blocks=True, lstrip_blocks=True)


def render_model_sources(gen: GeneratedModel, hooks_header: str | None = None, prefix: str = "") -> dict[str, str]:
    """{prefix + "model.c": ..., prefix + "model.h": ...} for a generated model. ``hooks_header``:
    the header model.c takes its per-layer hooks from on the device (the protocol firmware's)."""
    from .. import __version__

    env = template_env()
    ctx = dict(m=gen, version=__version__, hooks_header=hooks_header)
    return {prefix + name: env.get_template(f"{name}.j2").render(**ctx) for name in ("model.c", "model.h")}
