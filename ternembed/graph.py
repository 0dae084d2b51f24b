# SPDX-License-Identifier: Apache-2.0
"""The model as ternembed sees it after reading: tensors, ops in execution order, quantization.

The Graph is a plain data structure. Readers build it (tflite.py), calibration
turns a float Graph into an int8 one (calibrate.py), and lowering turns it into
a Plan of kernel calls (lower.py). Nothing here runs a model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Quant:
    """Affine quantization x_real = scale * (q - zero_point), per tensor or per channel."""

    scale: np.ndarray  # float32, [1] or [channels]
    zero_point: np.ndarray  # int64, same length as scale
    axis: int = 0  # the channel axis when per channel

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    @property
    def s(self) -> float:
        """The per-tensor scale (first one for per-channel tensors)."""
        return float(self.scale[0])

    @property
    def zp(self) -> int:
        return int(self.zero_point[0])


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name: int8, int32, float32, ...
    quant: Quant | None = None
    data: np.ndarray | None = None  # constant tensors (weights, biases, shapes)

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize


@dataclass
class Op:
    index: int
    type: str  # TFLite builtin name, e.g. "CONV_2D"
    inputs: list[int]  # tensor indices, -1 for an absent optional input
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)
    version: int = 1


@dataclass
class Graph:
    name: str
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    subgraphs: int = 1  # subgraphs in the file; only the first is run
    description: str = ""
    # Resource variables (streaming state): name -> constant initial value (from CALL_ONCE's init
    # subgraph), and the resource tensors of VAR_HANDLE -> the variable they name (state.py).
    variables: dict[str, Tensor] = field(default_factory=dict)
    resources: dict[int, str] = field(default_factory=dict)

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def op_inputs(self, op: Op) -> list[Tensor | None]:
        return [self.tensors[i] if i >= 0 else None for i in op.inputs]

    def op_outputs(self, op: Op) -> list[Tensor]:
        return [self.tensors[i] for i in op.outputs]

    @property
    def kind(self) -> str:
        """'int8' (full integer), 'float32', or 'hybrid' (int8 weights, float activations)."""
        act = {self.tensors[i].dtype for op in self.ops for i in op.outputs}
        weights = {t.dtype for t in self.tensors if t.is_const and t.dtype in ("int8", "float32")}
        if act <= {"int8", "int32", "int16", "uint8"} or ("int8" in act and _io_only_float(self)):
            return "int8"
        if "int8" in weights and "float32" in act:
            return "hybrid"
        return "float32"


def _io_only_float(g: Graph) -> bool:
    """Full-int8 models with a float interface: float tensors only around QUANTIZE/DEQUANTIZE."""
    for op in g.ops:
        if op.type in ("QUANTIZE", "DEQUANTIZE"):
            continue
        for i in op.inputs + op.outputs:
            if i >= 0 and g.tensors[i].dtype == "float32":
                return False
    return True
