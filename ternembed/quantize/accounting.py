# SPDX-License-Identifier: Apache-2.0
"""Storage accounting: stored bits per weight of every kind of ternary fit."""
from __future__ import annotations



from .fgq import ResidualPlanes, TernaryWeights
from .fit_core import grouped_bits
from .offset import OffsetTernaryWeights
from .pow2 import Pow2Weights

# --------------------------------------------------------------------------------------------
# storage accounting
# --------------------------------------------------------------------------------------------
def bits_per_weight(
    result: TernaryWeights | ResidualPlanes | Pow2Weights | OffsetTernaryWeights,
    code_bits: float | None = None,
    scale_bits: int = 32,
    row_overhead: bool = True,
) -> float:
    """Stored bits per weight: codes + integer group scales (+ per-output float scales).

    Defaults follow the pack formats: ternary codes 2 bits (pass code_bits=1.6 for base-3),
    pow2 codes 2 bits for L=1 else 4 bits (signed nibble), a_g ``bits`` each, s_o ``scale_bits``
    per output row (RTN: gamma and beta, 2 * scale_bits). ``row_overhead=False`` leaves out the
    per-row terms, giving docs/methods.md's figures (N=4 -> 4.0, 8 -> 3.0, 16 -> 2.5, 64 -> 2.125).
    Residual planes add up over planes.
    """
    if isinstance(result, ResidualPlanes):
        out, K = result.shape
        total = sum(bits_per_weight(p, code_bits, scale_bits, row_overhead) for p in result.planes)
        return float(total)
    if isinstance(result, OffsetTernaryWeights):
        out, K = result.shape
        cb = 2.0 if code_bits is None else float(code_bits)
        return cb + (2.0 * scale_bits / K if row_overhead else 0.0)
    if isinstance(result, Pow2Weights):
        cb = (2.0 if result.levels == 1 else 4.0) if code_bits is None else float(code_bits)
    elif isinstance(result, TernaryWeights):
        cb = 2.0 if code_bits is None else float(code_bits)
    else:
        raise TypeError(f"unsupported result type {type(result).__name__}")
    return grouped_bits(cb, result.shape, result.group, result.bits, scale_bits, row_overhead)


