# SPDX-License-Identifier: Apache-2.0
"""Post-training ternary weight quantizers (pure numpy): the public face of the modules that hold them.

Every function here works on ONE layer's weights ``w`` of shape ``[out, K]``: ``K`` is the
reduction length in TFLite order (FC ``[out, in]``; conv ``[out, kh, kw, in]`` flattened, so
input channels are innermost). The caller reshapes. Integer arrays (e.g. TFLite int8 weights,
symmetric per output channel) are accepted and treated as floats: a per-channel scale does not
change which ternary codes are chosen inside that channel.

The methods are described in ``docs/methods.md``. Summary of what lives here:

Sections, one module each: ``fit_core`` (helpers, 1-D solvers, integer scales, the integer
contract), ``fgq`` (groups, residual planes), ``pow2``, ``offset`` (scale + offset, lossless),
``accounting`` (bits per weight).

* 1-D solvers: :func:`exact_fit`, :func:`twn`, :func:`hefan`, :func:`tga`.
* FGQ group ternarization with the integer scale form ``alpha_g = s_o * a_g``: :func:`ternarize`.
* TRN residual planes: :func:`residual_planes`; He-Fan residual expansion: :func:`residual_expansion`.
* Power-of-two levels (GTC post-training analogue): :func:`pow2_quantize`, :func:`choose_levels`.
* Scale + offset (RTN-style): :func:`scale_offset`.
* Already-ternary models: :func:`detect_ternary`, :func:`lossless_ternary`.
* Storage accounting: :func:`bits_per_weight`.
* The integer accumulation contract the C kernels implement: :func:`int_dot`.

Why the integer scale form: with ``alpha_g = s_o * a_g`` (float ``s_o`` per output row, small
unsigned integer ``a_g`` per group) the whole dot product of one output is an exact integer,
``acc_o = sum_g a_g * sum_{i in g} t_i * x_i``, and the single float factor ``s_o`` (times the
activation scale) is folded into the per-channel requantization multiplier.
"""
from __future__ import annotations

from .accounting import (  # noqa: F401
    bits_per_weight,
)
from .fgq import (  # noqa: F401
    ResidualPlanes,
    TernaryWeights,
    expansion_scales,
    residual_expansion,
    residual_planes,
    ternarize,
)
from .fit_core import (  # noqa: F401
    METHODS,
    TernaryFit,
    code_sums,
    exact_fit,
    group_ids,
    hefan,
    int_dot,
    integer_scales,
    n_groups,
    normal_cdf,
    normal_pdf,
    relative_error,
    tga,
    tga_alpha_factor,
    twn,
)
from .offset import (  # noqa: F401
    OffsetTernaryWeights,
    detect_ternary,
    lossless_ternary,
    scale_offset,
)
from .pow2 import (  # noqa: F401
    LevelChoice,
    Pow2Weights,
    choose_levels,
    pow2_quantize,
)

__all__ = [
    "TernaryFit",
    "TernaryWeights",
    "ResidualPlanes",
    "Pow2Weights",
    "LevelChoice",
    "OffsetTernaryWeights",
    "METHODS",
    "exact_fit",
    "twn",
    "hefan",
    "tga",
    "normal_pdf",
    "normal_cdf",
    "tga_alpha_factor",
    "ternarize",
    "integer_scales",
    "residual_planes",
    "expansion_scales",
    "residual_expansion",
    "pow2_quantize",
    "choose_levels",
    "scale_offset",
    "detect_ternary",
    "lossless_ternary",
    "bits_per_weight",
    "relative_error",
    "group_ids",
    "n_groups",
    "int_dot",
    "code_sums",
]
