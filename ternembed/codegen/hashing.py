# SPDX-License-Identifier: Apache-2.0
"""The model hash: sha256 over everything in a Plan that decides what the firmware computes.

Covered: every buffer's shape, dtype and quantization; the model's inputs and outputs; every
step's kernel, op type, operands and parameters (arrays by dtype, shape and bytes; param
dataclasses field by field). Not covered: names (tensor, op, model), which change no result.
The firmware embeds the hex digest (te_model_hash), so a device can be matched to its Plan.
"""
from __future__ import annotations

import dataclasses
import hashlib
import struct

import numpy as np

from ..plan import Plan

HASH_VERSION = b"ternembed-plan-hash-v1"


def _encode(v) -> bytes:
    if isinstance(v, np.ndarray):
        a = np.ascontiguousarray(v)
        head = f"A{a.dtype.str}{list(a.shape)}".encode()
        return head + struct.pack("<Q", a.nbytes) + a.tobytes()
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        parts = [f"D{type(v).__name__}".encode()]
        for f in dataclasses.fields(v):
            parts.append(f.name.encode() + b"=" + _encode(getattr(v, f.name)))
        return b"(" + b",".join(parts) + b")"
    if isinstance(v, dict):
        return b"{" + b",".join(_encode(k) + b":" + _encode(v[k]) for k in sorted(v, key=str)) + b"}"
    if isinstance(v, (list, tuple)):
        return b"[" + b",".join(_encode(x) for x in v) + b"]"
    if isinstance(v, (bool, np.bool_)):
        return b"B1" if v else b"B0"
    if isinstance(v, (int, np.integer)):
        return f"I{int(v)}".encode()
    if isinstance(v, (float, np.floating)):
        return b"F" + struct.pack("<d", float(v))
    if v is None:
        return b"N"
    if isinstance(v, str):
        return b"S" + struct.pack("<I", len(v.encode())) + v.encode()
    raise TypeError(f"cannot hash a plan parameter of type {type(v).__name__}")


def plan_hash(plan: Plan) -> str:
    """Hex sha256 of the plan's constants and structure (see the module docstring)."""
    h = hashlib.sha256(HASH_VERSION)
    for i in sorted(plan.buffers):
        b = plan.buffers[i]
        h.update(_encode(("buffer", i, tuple(b.shape), b.dtype, float(np.float32(b.scale)),
                          int(b.zero_point))))
    h.update(_encode(("io", list(plan.inputs), list(plan.outputs))))
    for t, s in enumerate(plan.steps):
        h.update(_encode(("step", t, s.kernel, s.op_type, list(s.inputs), list(s.outputs))))
        h.update(_encode(s.params))
    if plan.segments:  # row streaming changes the firmware, not a value
        h.update(_encode(("segments", [tuple(x) for x in plan.segments])))
    return h.hexdigest()
