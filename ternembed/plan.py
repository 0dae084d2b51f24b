# SPDX-License-Identifier: Apache-2.0
"""The Plan: the one contract between Python and C.

A Plan is a list of kernel calls (Steps) over activation tensors, with every
constant in its final integer form. The emulator executes it, the renderer
turns it into C, the reports read it: all three see exactly the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Buffer:
    """An activation tensor: what lives in the arena (or is a model input/output)."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # int8 for everything inside; float32 only at a float model's edges
    scale: float = 1.0
    zero_point: int = 0

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample: without the leading batch axis of 1 (tensors without one,
        e.g. the [4, 5] parts of an UNPACK, are whole per sample)."""
        return tuple(self.shape[1:]) if self.shape and self.shape[0] == 1 else tuple(self.shape)


@dataclass
class Step:
    """One kernel call. `params` holds scalars and numpy arrays; arrays go to flash."""

    op_index: int  # index of the op in the source model (for error messages and reports)
    op_type: str  # source op, e.g. CONV_2D
    kernel: str  # kernel family, e.g. conv_s8
    inputs: list[int]  # Buffer indices
    outputs: list[int]
    params: dict[str, Any] = field(default_factory=dict)
    macs: int = 0

    @property
    def weight_bytes(self) -> int:
        """Bytes of constant arrays this step keeps in flash."""
        return sum(v.nbytes for v in self.params.values() if isinstance(v, np.ndarray))


@dataclass
class Plan:
    name: str
    buffers: dict[int, Buffer]
    steps: list[Step]
    inputs: list[int]
    outputs: list[int]
    source_kind: str = "int8"  # kind of the model this plan came from
    # (first, last, rows per call) step ranges run row by row (line-buffered); see segments.py
    segments: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(s.macs for s in self.steps)

    @property
    def weight_bytes(self) -> int:
        return sum(s.weight_bytes for s in self.steps)


def quant_bytes(step: Step) -> int:
    """Flash bytes of a MAC step's weight representation: what ternarization changes.

    int8: the O*K weight bytes. Ternary: packed codes + integer group scales + plane shifts +
    offsets + the extra bias rows of switchable planes. Not counted (every MAC step has them, int8
    or ternary, one int32 each per output channel): one bias row, the requantization multiplier
    (which also carries the per-channel scale s_o of the FGQ form) and the shift.
    bits/weight = 8 * quant_bytes / (O*K): int8 8.0, FGQ N=64 2.125, N=16 2.5 (docs/methods.md).
    """
    p = step.params
    O = int(np.asarray(p["multiplier"]).size)
    return int(step.weight_bytes - 4 * O - np.asarray(p["multiplier"]).nbytes - np.asarray(p["shift"]).nbytes)
