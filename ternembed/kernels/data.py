# SPDX-License-Identifier: Apache-2.0
"""int8 data-movement ops as one strided copy, bit-exact with TFLite Micro (which copies bytes).

STRIDED_SLICE, SLICE, SPLIT, SPLIT_V, UNPACK and TRANSPOSE all read the input at
offset + sum_k i_k * stride_k for an output index (i_0 .. i_4) in row-major order: one
kernel (StridedCopyParams, C twin firmware/kernels/te_strided_copy_s8.c) does them all.
PACK is a concatenation along a new axis (te_concat_s8 with axis sizes of 1). None of
these requantize: TFLM copies the int8 bytes whatever the quantization parameters.

The geometry functions here (TFLM's index rules) also serve the constant folder (fold.py),
which applies them to constant tensors of any dtype.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import UnsupportedOpError

MAX_RANK = 5


def _row_major_strides(shape: Sequence[int]) -> list[int]:
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= int(d)
    return strides[::-1]


@dataclass(frozen=True)
class StridedCopyParams:
    """te_strided_copy_params: out[i] = in[offset + sum_k i_k * stride_k], 5 dims, outermost first."""

    offset: int
    count: tuple[int, int, int, int, int]
    stride: tuple[int, int, int, int, int]


def strided_copy_params(offset: int, counts: Sequence[int], strides: Sequence[int]) -> StridedCopyParams:
    """Merge dims that are contiguous in the input (so the innermost run is as long as possible),
    drop dims of count 1, and pad to MAX_RANK at the front."""
    dims = [(int(c), int(s)) for c, s in zip(counts, strides) if int(c) != 1]
    if any(c == 0 for c, _ in dims):
        dims = [(0, 1)]
    merged: list[tuple[int, int]] = []
    for c, s in dims:
        if merged and merged[-1][1] == c * s:
            merged[-1] = (merged[-1][0] * c, s)
        else:
            merged.append((c, s))
    if len(merged) > MAX_RANK:
        raise UnsupportedOpError(f"a copy over {len(merged)} non-contiguous dims (at most {MAX_RANK})")
    merged = [(1, 0)] * (MAX_RANK - len(merged)) + merged
    return StridedCopyParams(int(offset), tuple(c for c, _ in merged), tuple(s for _, s in merged))


def copy_indices(p: StridedCopyParams) -> np.ndarray:
    """Flat input index of each output element, in output order."""
    idx = np.array(p.offset, dtype=np.int64)
    for c, s in zip(p.count, p.stride):
        idx = idx[..., None] + np.arange(c, dtype=np.int64) * s
    return idx.reshape(-1)


def strided_copy(x: np.ndarray, p: StridedCopyParams) -> np.ndarray:
    """x: [samples, ...] (each sample one whole input tensor) -> [samples, output size]."""
    x = np.asarray(x)
    return x.reshape(len(x), -1)[:, copy_indices(p)]


# ---- geometry of each op (shapes without a sample axis) ----------------------------------------

def _axis(axis: int, rank: int, what: str) -> int:
    a = int(axis) + rank if int(axis) < 0 else int(axis)
    if not 0 <= a < rank:
        raise UnsupportedOpError(f"{what} axis {axis} out of range for rank {rank}")
    return a


def strided_slice_geometry(shape: Sequence[int], begin: Sequence[int], end: Sequence[int],
                           strides: Sequence[int], begin_mask: int = 0, end_mask: int = 0,
                           shrink_axis_mask: int = 0, ellipsis_mask: int = 0, new_axis_mask: int = 0
                           ) -> tuple[list[int], list[int], list[int], list[int]]:
    """TFLM StridedSlice (StartForAxis/StopForAxis; TFLM ignores ellipsis and new-axis masks, so
    they are refused): (start, count, step) per input axis and the output shape."""
    if ellipsis_mask or new_axis_mask:
        raise UnsupportedOpError("STRIDED_SLICE with an ellipsis or new-axis mask is not supported")
    rank = len(shape)
    if not len(begin) == len(end) == len(strides) <= rank:
        raise UnsupportedOpError(f"STRIDED_SLICE begin/end/strides of lengths {len(begin)}, "
                                 f"{len(end)}, {len(strides)} for rank {rank}")
    starts, counts, steps, out_shape = [], [], [], []
    for k in range(rank):
        size = int(shape[k])
        if k >= len(begin):  # TFLM maps fewer indices onto the leading axes; the rest is whole
            starts.append(0), counts.append(size), steps.append(1), out_shape.append(size)
            continue
        stride = int(strides[k])
        if stride == 0:
            raise UnsupportedOpError("STRIDED_SLICE stride 0")
        lo, hi = (0, size) if stride > 0 else (-1, size - 1)
        start = int(begin[k])
        if begin_mask >> k & 1:
            start = -(2**31) if stride > 0 else 2**31 - 1
        start = start + size if start < 0 else start
        start = min(max(start, lo), hi)
        shrink = bool(shrink_axis_mask >> k & 1)
        if shrink:
            stop = start + 1
        else:
            stop = int(end[k])
            if end_mask >> k & 1:
                stop = 2**31 - 1 if stride > 0 else -(2**31)
            stop = stop + size if stop < 0 else stop
            stop = min(max(stop, lo), hi)
        n = max(0, -(-(stop - start) // stride)) if stride > 0 else max(0, -((start - stop) // stride))
        if shrink and n != 1:
            raise UnsupportedOpError(f"STRIDED_SLICE shrinks axis {k} at index {start} outside size {size}")
        starts.append(start), counts.append(n), steps.append(stride)
        if not shrink:
            out_shape.append(n)
    return starts, counts, steps, out_shape


def slice_geometry(shape: Sequence[int], begin: Sequence[int], size: Sequence[int]
                   ) -> tuple[list[int], list[int], list[int], list[int]]:
    """TFLM SLICE: size -1 means to the end."""
    if not len(begin) == len(size) == len(shape):
        raise UnsupportedOpError(f"SLICE begin/size of lengths {len(begin)}, {len(size)} for rank {len(shape)}")
    starts, counts = [], []
    for d, b, s in zip(shape, begin, size):
        b, s = int(b), int(s)
        s = int(d) - b if s == -1 else s
        if b < 0 or s < 0 or b + s > int(d):
            raise UnsupportedOpError(f"SLICE begin {list(begin)} size {list(size)} outside shape {list(shape)}")
        starts.append(b), counts.append(s)
    return starts, counts, [1] * len(shape), counts


def slice_params(shape: Sequence[int], starts: Sequence[int], counts: Sequence[int],
                 steps: Sequence[int]) -> StridedCopyParams:
    """The strided copy of a box of the input (start, count, step per axis)."""
    rm = _row_major_strides(shape)
    offset = sum(s * r for s, r in zip(starts, rm))
    return strided_copy_params(offset, counts, [st * r for st, r in zip(steps, rm)])


def split_geometry(shape: Sequence[int], axis: int, sizes: Sequence[int]) -> list[tuple[list[int], list[int]]]:
    """SPLIT / SPLIT_V: (starts, counts) of each part along `axis` (one size may be -1 in SPLIT_V)."""
    a = _axis(axis, len(shape), "SPLIT")
    sizes = [int(s) for s in sizes]
    if sizes.count(-1) == 1:
        sizes[sizes.index(-1)] = int(shape[a]) - sum(s for s in sizes if s != -1)
    if sum(sizes) != int(shape[a]) or any(s < 0 for s in sizes):
        raise UnsupportedOpError(f"SPLIT sizes {sizes} do not add up to {shape[a]} along axis {a}")
    parts, at = [], 0
    for s in sizes:
        starts = [0] * len(shape)
        starts[a] = at
        counts = [int(d) for d in shape]
        counts[a] = s
        parts.append((starts, counts))
        at += s
    return parts


def transpose_params(shape: Sequence[int], perm: Sequence[int]) -> StridedCopyParams:
    """TRANSPOSE: output axis k walks input axis perm[k]."""
    rank = len(shape)
    perm = [_axis(p, rank, "TRANSPOSE") for p in perm]
    if sorted(perm) != list(range(rank)):
        raise UnsupportedOpError(f"TRANSPOSE permutation {perm} is not a permutation of {rank} axes")
    rm = _row_major_strides(shape)
    return strided_copy_params(0, [shape[p] for p in perm], [rm[p] for p in perm])


# ---- PACK: concatenation along a new axis ------------------------------------------------------

@dataclass(frozen=True)
class PackParams:
    """Each of `count` inputs is `outer` rows of `inner` bytes; output row o = input rows o in turn."""

    outer: int
    inner: int
    count: int


def pack_params(in_shape: Sequence[int], axis: int, count: int) -> PackParams:
    rank = len(in_shape) + 1
    a = _axis(axis, rank, "PACK")
    outer = int(np.prod(in_shape[:a], dtype=np.int64))
    inner = int(np.prod(in_shape[a:], dtype=np.int64))
    return PackParams(outer, inner, int(count))


def pack(xs: Sequence[np.ndarray], p: PackParams) -> np.ndarray:
    """xs: [samples, ...] each -> [samples, outer * count * inner]."""
    n = len(xs[0])
    rows = [np.asarray(x).reshape(n, p.outer, 1, p.inner) for x in xs]
    return np.concatenate(rows, axis=2).reshape(n, -1)


# ---- RESIZE_NEAREST_NEIGHBOR: a gather of whole pixels ------------------------------------------

def nearest_indices(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """TFLM GetNearestNeighbor for every output coordinate (float32 arithmetic, as TFLM)."""
    if align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    pos = (np.arange(out_size, dtype=np.float32) + np.float32(0.5 if half_pixel_centers else 0.0)) * scale
    if align_corners:  # TfLiteRound: halves away from zero
        idx = np.trunc(pos.astype(np.float64) + np.copysign(0.5, pos)).astype(np.int64)
    else:
        idx = np.floor(pos).astype(np.int64)
    idx = np.minimum(idx, in_size - 1)
    return np.maximum(idx, 0) if half_pixel_centers else idx


def resize_nearest(x: np.ndarray, in_shape: Sequence[int], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """x: [samples, ...] whole NHWC tensors of in_shape -> [samples, N, len(rows), len(cols), C]."""
    x = np.asarray(x).reshape((len(x),) + tuple(in_shape))
    return x[:, :, rows][:, :, :, cols]


# ---- RESIZE_BILINEAR: TFLM's integer interpolation (10 fractional bits per axis) ---------------

def _c_div(a: np.ndarray, b: int) -> np.ndarray:
    """C integer division (truncates toward zero)."""
    return np.where(a >= 0, a // b, -((-a) // b))


def bilinear_taps(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """[out_size, 3] int32: (lower index, upper index, position - 1024 * lower) per output coordinate,
    TFLM's ComputeInterpolationValuesInteger."""
    if align_corners and out_size > 1:
        scale = ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    else:
        scale = ((1 << 10) * in_size + out_size // 2) // out_size
    o = np.arange(out_size, dtype=np.int64)
    pos = o * scale + (scale // 2 - (1 << 9) if half_pixel_centers else 0)
    lower = np.maximum(_c_div(pos, 1 << 10), 0)
    upper = np.minimum(_c_div(pos + (1 << 10) - 1, 1 << 10), in_size - 1)
    return np.stack([lower, upper, pos - (1 << 10) * lower], axis=1).astype(np.int32)


def resize_bilinear(x: np.ndarray, in_shape: Sequence[int], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """x: [samples, ...] whole NHWC int8 tensors of in_shape -> [samples, N, len(rows), len(cols), C]."""
    x = np.asarray(x, np.int64).reshape((len(x),) + tuple(in_shape))
    y0, y1, wy = (np.asarray(rows[:, k], np.int64)[:, None] for k in range(3))  # [out_h, 1]
    x0, x1, wx = (np.asarray(cols[:, k], np.int64)[None, :] for k in range(3))  # [1, out_w]
    one = 1 << 10
    w = [((one - wy) * (one - wx))[..., None], (wy * (one - wx))[..., None],
         ((one - wy) * wx)[..., None], (wy * wx)[..., None]]
    total = x[:, :, y0, x0] * w[0] + x[:, :, y1, x0] * w[1] + x[:, :, y0, x1] * w[2] + x[:, :, y1, x1] * w[3]
    rounded = total + np.where(total > 0, 1 << 19, -(1 << 19))
    return _c_div(rounded, 1 << 20).astype(np.int8)


# ---- DEPTH_TO_SPACE / SPACE_TO_DEPTH: block rearrangements, strided copies of 5 dims --------------

def depth_to_space_params(shape: Sequence[int], block: int) -> StridedCopyParams:
    """out[n, h*b + i, w*b + j, c] = in[n, h, w, (i*b + j)*C' + c]; shape: the NHWC input."""
    n, h, w, c = (int(d) for d in shape)
    if block < 1 or c % (block * block):
        raise UnsupportedOpError(f"DEPTH_TO_SPACE block {block} does not divide {c} channels")
    cc = c // (block * block)
    # output order (n, h, i, w, j, c') -> input strides
    return strided_copy_params(0, [n, h, block, w, block, cc],
                               [h * w * c, w * c, block * cc, c, cc, 1])


def space_to_depth_params(shape: Sequence[int], block: int) -> StridedCopyParams:
    """out[n, h, w, (i*b + j)*C + c] = in[n, h*b + i, w*b + j, c]; shape: the NHWC input."""
    n, h, w, c = (int(d) for d in shape)
    if block < 1 or h % block or w % block:
        raise UnsupportedOpError(f"SPACE_TO_DEPTH block {block} does not divide {h}x{w}")
    # output order (n, h', w', i, j, c) -> input strides
    return strided_copy_params(0, [n, h // block, w // block, block, block, c],
                               [h * w * c, block * w * c, block * c, w * c, c, 1])


# ---- GATHER with constant indices: rows of `inner` bytes picked along one axis ------------------

@dataclass(frozen=True)
class GatherParams:
    """out[o, k] = in[o, indices[k]], rows of `inner` bytes; `outer` blocks of `axis_size` rows."""

    outer: int
    axis_size: int
    inner: int


def gather_params(shape: Sequence[int], axis: int, indices: Sequence[int]) -> GatherParams:
    a = _axis(axis, len(shape), "GATHER")
    if any(not 0 <= int(i) < int(shape[a]) for i in indices):
        raise UnsupportedOpError(f"GATHER indices outside [0, {shape[a]}) (TFLM refuses them)")
    return GatherParams(int(np.prod(shape[:a], dtype=np.int64)), int(shape[a]),
                        int(np.prod(shape[a + 1:], dtype=np.int64)))


def gather(x: np.ndarray, p: GatherParams, indices: np.ndarray) -> np.ndarray:
    """x: [samples, ...] whole tensors -> [samples, outer * len(indices) * inner]."""
    x = np.asarray(x).reshape(len(x), p.outer, p.axis_size, p.inner)
    return x[:, :, np.asarray(indices, np.int64).reshape(-1)].reshape(len(x), -1)


def reverse_params(shape: Sequence[int], axes: Sequence[int]) -> StridedCopyParams:
    """REVERSE_V2: the reversed axes walk backwards from their last element."""
    rank = len(shape)
    if any(not 0 <= int(a) < rank for a in axes):
        raise UnsupportedOpError(f"REVERSE_V2 axes {list(axes)} outside [0, {rank}) (TFLM refuses them)")
    rm = _row_major_strides(shape)
    flip = {int(a) for a in axes}
    offset = sum((int(shape[a]) - 1) * rm[a] for a in flip)
    return strided_copy_params(offset, shape, [-rm[a] if a in flip else rm[a] for a in range(rank)])


def broadcast_to_params(shape: Sequence[int], out_shape: Sequence[int]) -> StridedCopyParams:
    """BROADCAST_TO: stride 0 along the dims the input repeats."""
    shape = (1,) * (len(out_shape) - len(shape)) + tuple(int(d) for d in shape)
    if any(d not in (1, o) for d, o in zip(shape, out_shape)):
        raise UnsupportedOpError(f"cannot broadcast {list(shape)} to {list(out_shape)}")
    rm = _row_major_strides(shape)
    return strided_copy_params(0, out_shape, [0 if d == 1 else r for d, r in zip(shape, rm)])


# ---- MIRROR_PAD: a separable gather (one input index table per axis) ---------------------------

def mirror_indices(in_size: int, before: int, after: int, reflect: bool) -> np.ndarray:
    """TFLM GetInputDimension for every padded position of one axis."""
    offset = 1 if reflect else 0
    out = []
    for i in range(before + in_size + after):
        if i < before:
            first = before + offset - 1
            out.append(first - min(i, first - offset))
        elif i - before >= in_size:
            last = in_size - (1 + offset)
            out.append(last - min(i - before - in_size, last))
        else:
            out.append(i - before)
    return np.asarray(out, np.int32)


@dataclass(frozen=True)
class AxisGatherParams:
    """te_axis_gather_params: 4 axes (NHWC); output (i0..i3) reads the input at the sum of
    offsets[k][i_k] (element offsets, one table per axis, concatenated); `contiguous`: the last
    axis' table is 0, 1, 2, ... (whole runs are copied)."""

    count: tuple[int, int, int, int]
    contiguous: int


def axis_gather(shape: Sequence[int], tables: Sequence[np.ndarray]) -> tuple[AxisGatherParams, np.ndarray]:
    """Params and the concatenated offset tables for input `shape` (rank <= 4) and one input-index
    table per axis."""
    if len(shape) > 4:
        raise UnsupportedOpError(f"a {len(shape)}-D gather (at most 4-D)")
    pad = 4 - len(shape)
    shape = (1,) * pad + tuple(int(d) for d in shape)
    tables = [np.zeros(1, np.int64)] * pad + [np.asarray(t, np.int64) for t in tables]
    rm = _row_major_strides(shape)
    offsets = np.concatenate([t * r for t, r in zip(tables, rm)]).astype(np.int32)
    last = tables[-1]
    contiguous = int(np.array_equal(last, np.arange(len(last))))
    return AxisGatherParams(tuple(len(t) for t in tables), contiguous), offsets


def axis_gather_run(x: np.ndarray, p: AxisGatherParams, offsets: np.ndarray) -> np.ndarray:
    """x: [samples, ...] whole tensors -> [samples, output size]."""
    idx = np.zeros(1, np.int64)
    at = 0
    for c in p.count:
        idx = (idx[:, None] + np.asarray(offsets[at:at + c], np.int64)[None, :]).reshape(-1)
        at += c
    x = np.asarray(x)
    return x.reshape(len(x), -1)[:, idx]


# ---- REDUCE_MAX / REDUCE_MIN: raw int8 extremes (TFLM needs equal input and output scales) ------

@dataclass(frozen=True)
class ReduceParams:
    """te_reduce_minmax_params: the kept axes walk the output in order, the reduced axes each
    output element's inputs; both as (count, input stride) over 5 dims; is_max selects max."""

    keep: StridedCopyParams
    reduce: StridedCopyParams
    is_max: int


def reduce_params(shape: Sequence[int], axes: Sequence[int], is_max: bool) -> ReduceParams:
    rank = len(shape)
    red = {_axis(a, rank, "REDUCE") for a in axes}
    rm = _row_major_strides(shape)
    keep = [k for k in range(rank) if k not in red]
    return ReduceParams(strided_copy_params(0, [shape[k] for k in keep], [rm[k] for k in keep]),
                        strided_copy_params(0, [shape[k] for k in sorted(red)], [rm[k] for k in sorted(red)]),
                        int(is_max))


def reduce_minmax(x: np.ndarray, p: ReduceParams) -> np.ndarray:
    """x: [samples, ...] whole tensors -> [samples, output size]."""
    x = np.asarray(x)
    idx = copy_indices(p.keep)[:, None] + copy_indices(p.reduce)[None, :]
    v = x.reshape(len(x), -1)[:, idx]
    return v.max(axis=2) if p.is_max else v.min(axis=2)
