# SPDX-License-Identifier: Apache-2.0
"""Float and hybrid models -> full-int8 graphs, with activation ranges from calibration data.

Ranges are recorded by running the original model in ai-edge-litert on the
calibration samples. Outlier policy: plain min/max over all samples (as the
TFLite converter does), always widened to include 0 so that zero is exact;
`percentile=P` clips each tensor's range to the P-th / (100-P)-th percentiles instead.
Weights are quantized symmetric per output channel, biases to int32 at
scale_in * scale_w, both as the TFLite converter does.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from .errors import CalibrationError, UnsupportedOpError
from .graph import Graph, Op, Quant, Tensor

# Ops whose output must carry the input's quantization (the int8 kernels just move bytes or compare),
# and which inputs carry the data (default: the first; None: every input).
_TIED = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "MAX_POOL_2D", "AVERAGE_POOL_2D", "PAD", "PADV2",
         "CONCATENATION", "STRIDED_SLICE", "SLICE", "SPLIT", "SPLIT_V", "UNPACK", "PACK", "TRANSPOSE",
         "GATHER", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "REVERSE_V2", "BROADCAST_TO", "MIRROR_PAD",
         "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "MAXIMUM", "MINIMUM", "REDUCE_MAX", "REDUCE_MIN"}
_TIED_INPUTS = {"SPLIT": (1,), "CONCATENATION": None, "PACK": None, "MAXIMUM": None, "MINIMUM": None}
# Ops whose int8 output quantization is fixed by TFLite's kernels.
_FIXED = {"SOFTMAX": (1 / 256, -128), "LOGISTIC": (1 / 256, -128), "TANH": (1 / 128, 0)}
# Weight input index and the channel axis that gets its own scale.
_WEIGHT_AXIS = {"FULLY_CONNECTED": (1, 0), "CONV_2D": (1, 0), "DEPTHWISE_CONV_2D": (1, 3),
                "TRANSPOSE_CONV": (1, 0)}
# (input, bias) positions where they are not (0, 2).
_INPUT_BIAS = {"TRANSPOSE_CONV": (2, 3)}


def record_ranges(model_path: str | Path, graph: Graph, samples: list[np.ndarray],
                  percentile: float | None = None) -> dict[int, tuple[float, float]]:
    """(min, max) of every float activation tensor over the calibration samples."""
    from .reference import litert_interpreter
    interp = litert_interpreter(model_path, preserve_all=True)
    in_d = interp.get_input_details()
    wanted = [t.index for t in graph.tensors if not t.is_const and t.dtype == "float32"]
    seen: dict[int, list[np.ndarray]] = {i: [] for i in wanted}
    for s in range(len(samples[0])):
        for k, d in enumerate(in_d):
            interp.set_tensor(d["index"], np.asarray(samples[k][s], np.float32).reshape(d["shape"]))
        interp.invoke()
        for i in wanted:
            v = interp.get_tensor(i)
            if percentile is None:
                seen[i].append(np.array([v.min(), v.max()], np.float64))
            else:
                seen[i].append(np.asarray(v, np.float64).ravel())
    ranges = {}
    for i, vals in seen.items():
        if percentile is None:
            both = np.stack(vals)
            ranges[i] = (float(both[:, 0].min()), float(both[:, 1].max()))
        else:
            allv = np.concatenate(vals)
            ranges[i] = (float(np.percentile(allv, percentile)), float(np.percentile(allv, 100 - percentile)))
    return ranges


def asymmetric_int8(lo: float, hi: float) -> Quant:
    """TFLite-style int8 parameters for the range [lo, hi], widened to include 0."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-12:
        hi = lo + 1e-6
    scale = np.float32((hi - lo) / 255.0)
    zp = int(np.clip(round(-128 - lo / float(scale)), -128, 127))
    return Quant(np.array([scale], np.float32), np.array([zp], np.int64))


def _symmetric_per_channel(w: np.ndarray, axis: int) -> tuple[np.ndarray, Quant]:
    moved = np.moveaxis(w.astype(np.float64), axis, 0).reshape(w.shape[axis], -1)
    amax = np.abs(moved).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, Quant(scale, np.zeros(scale.size, np.int64), axis)


def _widen_for_bias(tensors: list[Tensor], wi: int, axis: int, bias: np.ndarray, x_scale: float) -> None:
    """Channels with (near) zero weights but a real bias would need a bias beyond int32:
    raise their weight scale until the bias fits in 2^30 steps (the converter does the same)."""
    w = tensors[wi]
    need = np.abs(bias.astype(np.float64)) / (x_scale * 2.0**30)
    scale = w.quant.scale.astype(np.float64)
    if np.all(scale >= need):
        return
    new_scale = np.maximum(scale, need).astype(np.float32)
    shape = [1] * w.data.ndim
    shape[axis] = -1
    real = w.data.astype(np.float64) * scale.reshape(shape)
    q = np.clip(np.round(real / new_scale.reshape(shape)), -127, 127).astype(np.int8)
    tensors[wi] = Tensor(w.index, w.name, w.shape, "int8", Quant(new_scale, w.quant.zero_point, axis), q)


class _Ties:
    """Union-find over tensors that must share quantization parameters."""

    def __init__(self):
        self.parent: dict[int, int] = {}

    def find(self, i: int) -> int:
        while self.parent.get(i, i) != i:
            i = self.parent[i]
        return i

    def tie(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def _tie_constant_operands(graph: Graph, tensors: list[Tensor]) -> None:
    """A float constant operand of an op that compares or concatenates raw int8 bytes (clip_by_value's
    MAXIMUM/MINIMUM, a constant CONCATENATION part) takes the op's output quantization."""
    for op in graph.ops:
        if op.type not in _TIED or _TIED_INPUTS.get(op.type, ()) is not None:
            continue
        out = tensors[op.outputs[0]].quant
        for i in op.inputs:
            src = graph.tensors[i]
            if i >= 0 and src.is_const and src.dtype == "float32" and out is not None:
                q = np.clip(np.round(src.data / out.s) + out.zp, -128, 127).astype(np.int8)
                tensors[i] = Tensor(src.index, src.name, src.shape, "int8", out, q)


def quantize_graph(graph: Graph, model_path: str | Path, samples: list[np.ndarray] | None,
                   percentile: float | None = None) -> Graph:
    """A full-int8 copy of a float or hybrid graph with a float interface (QUANTIZE/DEQUANTIZE at the edges)."""
    if graph.kind == "int8":
        return graph
    if samples is None:
        raise CalibrationError(f"{graph.name} is a {graph.kind} model: its activation ranges need "
                               "calibration data; pass --calib FILE (.npy/.npz with a leading sample "
                               "axis, or a folder of images): a few hundred real inputs, preprocessed as "
                               "in deployment and covering every class, are enough")
    ranges = record_ranges(model_path, graph, samples, percentile)
    tensors = [copy.copy(t) for t in graph.tensors]
    ties = _Ties()
    for op in graph.ops:
        if op.type in _TIED:
            data_inputs = _TIED_INPUTS.get(op.type, (0,))
            picked = op.inputs if data_inputs is None else [op.inputs[k] for k in data_inputs if k < len(op.inputs)]
            acts = [i for i in picked if i >= 0 and not graph.tensors[i].is_const] + op.outputs
            for i in acts[1:]:
                ties.tie(acts[0], i)
    group_range: dict[int, tuple[float, float]] = {}
    for i, (lo, hi) in ranges.items():
        root = ties.find(i)
        glo, ghi = group_range.get(root, (lo, hi))
        group_range[root] = (min(glo, lo), max(ghi, hi))
    fixed = {op.outputs[0]: _FIXED[op.type] for op in graph.ops if op.type in _FIXED}

    def act_quant(i: int) -> Quant:
        if i in fixed:
            s, zp = fixed[i]
            return Quant(np.array([s], np.float32), np.array([zp], np.int64))
        return asymmetric_int8(*group_range[ties.find(i)])

    for i in ranges:
        t = tensors[i]
        tensors[i] = Tensor(t.index, t.name, t.shape, "int8", act_quant(i), None)
    _quantize_constants(graph, tensors)
    _tie_constant_operands(graph, tensors)

    # Float interface: new float tensors at the edges, joined by QUANTIZE / DEQUANTIZE ops.
    ops = [copy.copy(op) for op in graph.ops]
    new_inputs, new_outputs = [], []
    pre, post = [], []
    for i in graph.inputs:
        src = graph.tensors[i]
        f = Tensor(len(tensors), src.name + "_float", src.shape, "float32")
        tensors.append(f)
        pre.append(Op(-1, "QUANTIZE", [f.index], [i]))
        new_inputs.append(f.index)
    for i in graph.outputs:
        src = graph.tensors[i]
        f = Tensor(len(tensors), src.name + "_float", src.shape, "float32")
        tensors.append(f)
        post.append(Op(-1, "DEQUANTIZE", [i], [f.index]))
        new_outputs.append(f.index)
    return Graph(graph.name, tensors, pre + ops + post, new_inputs, new_outputs, graph.subgraphs,
                 graph.description)


def _quantize_constants(graph: Graph, tensors: list[Tensor]) -> None:
    """Weights per channel, biases at scale_in * scale_w, other float constants per tensor."""
    done: set[int] = set()
    for op in graph.ops:
        if op.type in _WEIGHT_AXIS:
            w_pos, axis = _WEIGHT_AXIS[op.type]
            wi = op.inputs[w_pos]
            w = tensors[wi]
            if w.data is None:
                raise UnsupportedOpError(f"{graph.name}: op {op.index} {op.type}: weights must be constant")
            if w.dtype == "float32" and wi not in done:
                q, quant = _symmetric_per_channel(w.data, axis)
                tensors[wi] = Tensor(w.index, w.name, w.shape, "int8", quant, q)
                done.add(wi)
            x_pos, b_pos = _INPUT_BIAS.get(op.type, (0, 2))
            bi = op.inputs[b_pos] if len(op.inputs) > b_pos else -1
            if bi >= 0 and tensors[bi].dtype == "float32":
                x_scale = float(tensors[op.inputs[x_pos]].quant.s)
                if wi in done and tensors[wi].quant.per_channel:
                    _widen_for_bias(tensors, wi, axis, tensors[bi].data, x_scale)
                w_scale = np.broadcast_to(tensors[wi].quant.scale.astype(np.float64), tensors[bi].shape)
                bscale = x_scale * w_scale
                data = np.round(tensors[bi].data.astype(np.float64) / bscale)
                tensors[bi] = Tensor(bi, tensors[bi].name, tensors[bi].shape, "int32",
                                     Quant(bscale.astype(np.float32), np.zeros(bscale.size, np.int64)),
                                     np.clip(data, -2**31, 2**31 - 1).astype(np.int32))
                done.add(bi)
    for t in tensors:
        if t.is_const and t.dtype == "float32" and t.index not in done:
            quant = asymmetric_int8(float(t.data.min()), float(t.data.max()))
            q = np.clip(np.round(t.data / quant.s) + quant.zp, -128, 127).astype(np.int8)
            tensors[t.index] = Tensor(t.index, t.name, t.shape, "int8", quant, q)
