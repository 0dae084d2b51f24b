# SPDX-License-Identifier: Apache-2.0
"""What `ternembed inspect` shows: per-op shapes, MACs, weight bytes and support."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import Graph, Op
from .lower import LOWERINGS, unsupported_reason


@dataclass
class OpInfo:
    index: int
    type: str
    inputs: list[str]  # "1x32x32x3 int8" for activations
    outputs: list[str]
    macs: int
    weight_bytes: int
    supported: bool
    why: str


def _desc(graph: Graph, i: int) -> str:
    t = graph.tensors[i]
    return f"{'x'.join(map(str, t.shape)) or 'scalar'} {t.dtype}"


def op_macs(graph: Graph, op: Op) -> int:
    """Multiply-accumulates of one op, from its shapes alone (any quantization)."""
    try:
        if op.type == "FULLY_CONNECTED":
            w = graph.tensors[op.inputs[1]]
            return int(graph.tensors[op.inputs[0]].size // w.shape[1] * w.shape[0] * w.shape[1])
        if op.type == "CONV_2D":
            w, out = graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
            return int(out.size * int(np.prod(w.shape[1:])))
        if op.type == "DEPTHWISE_CONV_2D":
            w, out = graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
            return int(out.size * w.shape[1] * w.shape[2])
    except (IndexError, ZeroDivisionError):
        return 0
    return 0


def analyze(graph: Graph) -> list[OpInfo]:
    infos = []
    for op in graph.ops:
        acts_in = [i for i in op.inputs if i >= 0 and not graph.tensors[i].is_const]
        consts = [i for i in op.inputs if i >= 0 and graph.tensors[i].is_const]
        weight_bytes = sum(graph.tensors[i].nbytes for i in consts
                           if op.type not in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"))
        if graph.kind == "int8":
            why = unsupported_reason(graph, op)
        else:  # float/hybrid: the op only has to be one we can run after calibration
            why = None if op.type in LOWERINGS else f"op {op.type} is not supported"
        infos.append(OpInfo(op.index, op.type, [_desc(graph, i) for i in acts_in],
                            [_desc(graph, i) for i in op.outputs], op_macs(graph, op), weight_bytes,
                            why is None, why or ""))
    return infos
