# SPDX-License-Identifier: Apache-2.0
"""Streaming state: resource variables (VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE) and the
CALL_ONCE subgraph that initializes them, resolved when the model is read.

Streaming models (microWakeWord and the like) keep ring buffers of past frames in resource
variables. CALL_ONCE runs an init subgraph on the first invoke; converters write it as
VAR_HANDLE + ASSIGN_VARIABLE of constants, so it is evaluated here, once: each variable gets
its constant initial value. The VAR_HANDLE ops of the main graph only name variables and
vanish; READ_VARIABLE and ASSIGN_VARIABLE stay and lower to copies between the activation
and a persistent buffer (lower_ops.py). An init subgraph that computes anything else is left
as it is: the CALL_ONCE op is then reported unsupported, by index.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from .fold import fold_constants
from .graph import Graph, Op, Tensor

STATE_OPS = ("CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE")


def variable_name(op: Op) -> str:
    """A VAR_HANDLE's variable: container and shared name, as TFLM identifies it."""
    def text(v) -> str:
        return v.decode(errors="replace") if isinstance(v, (bytes, bytearray)) else str(v or "")
    container, shared = text(op.options.get("container")), text(op.options.get("shared_name"))
    return f"{container}/{shared}" if container else shared


def resolve_state(graph: Graph, read_subgraph: Callable[[int], Graph]) -> Graph:
    if not any(op.type in STATE_OPS for op in graph.ops):
        return graph
    variables: dict[str, Tensor] = {}
    resources: dict[int, str] = {}
    kept: list[Op] = []
    for op in graph.ops:
        if op.type == "VAR_HANDLE" and op.outputs:
            resources[op.outputs[0]] = variable_name(op)
        elif op.type == "CALL_ONCE" and _initial_values(op, read_subgraph, variables):
            pass
        else:
            kept.append(op)
    return dataclasses.replace(graph, ops=kept, variables=variables, resources=resources)


def _initial_values(op: Op, read_subgraph: Callable[[int], Graph], variables: dict[str, Tensor]) -> bool:
    """Evaluate a CALL_ONCE init subgraph of constant assignments into `variables`; False (and
    nothing added) when it does anything else."""
    try:
        init = fold_constants(read_subgraph(int(op.options.get("init_subgraph_index", -1))))
    except (ValueError, IndexError):
        return False
    handles: dict[int, str] = {}
    found: dict[str, Tensor] = {}
    for o in init.ops:
        if o.type == "VAR_HANDLE" and o.outputs:
            handles[o.outputs[0]] = variable_name(o)
        elif o.type == "ASSIGN_VARIABLE" and len(o.inputs) == 2 and o.inputs[0] in handles \
                and init.tensors[o.inputs[1]].is_const:
            found[handles[o.inputs[0]]] = init.tensors[o.inputs[1]]
        else:
            return False
    variables.update(found)
    return True
