# SPDX-License-Identifier: Apache-2.0
"""Read a .tflite flatbuffer into a Graph.

Only subgraph 0 is read (it is the one TFLite Micro runs). Ops that compute constants (shape
arithmetic) are folded away here (fold.py). Every failure of the
flatbuffer library on a damaged file becomes a ModelError that names the file.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import tflite as fb

from .errors import ModelError
from .fold import fold_constants
from .state import resolve_state
from .graph import Graph, Op, Quant, Tensor

_OP_NAMES = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
_OPTION_CLASSES = {v: k for k, v in vars(fb.BuiltinOptions).items() if not k.startswith("_")}
_DTYPES = {
    fb.TensorType.FLOAT32: "float32", fb.TensorType.FLOAT16: "float16", fb.TensorType.INT32: "int32",
    fb.TensorType.UINT8: "uint8", fb.TensorType.INT64: "int64", fb.TensorType.BOOL: "bool",
    fb.TensorType.INT16: "int16", fb.TensorType.INT8: "int8", fb.TensorType.FLOAT64: "float64",
    fb.TensorType.UINT32: "uint32", fb.TensorType.UINT16: "uint16",
}
_ENUMS = {
    "padding": {v: k for k, v in vars(fb.Padding).items() if not k.startswith("_")},
    "fused_activation_function": {
        v: k for k, v in vars(fb.ActivationFunctionType).items() if not k.startswith("_")},
}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _read_options(op: fb.Operator) -> dict:
    """All scalar and vector fields of an op's builtin options, keyed in snake_case."""
    table = op.BuiltinOptions()
    cls_name = _OPTION_CLASSES.get(op.BuiltinOptionsType())
    if table is None or cls_name in (None, "NONE") or not hasattr(fb, cls_name):
        return {}
    opts = getattr(fb, cls_name)()
    opts.Init(table.Bytes, table.Pos)
    out: dict = {}
    for attr in dir(opts):
        if attr.startswith("_") or attr in ("Init",) or attr.startswith("GetRootAs"):
            continue
        if attr.endswith(("Length", "IsNone", "AsNumpy")) or "BufferHasIdentifier" in attr:
            continue
        key = _snake(attr)
        if hasattr(opts, attr + "AsNumpy"):
            value = getattr(opts, attr + "AsNumpy")()
            out[key] = [] if isinstance(value, int) else [int(v) for v in value]
            continue
        try:
            value = getattr(opts, attr)()
        except TypeError:
            continue
        out[key] = _ENUMS[key].get(value, value) if key in _ENUMS else value
    return out


_ZP_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}  # others: int32


def _quant(t: fb.Tensor, shape: tuple[int, ...], dtype: str) -> Quant | None:
    q = t.Quantization()
    if q is None or q.ScaleLength() == 0:
        return None
    scale = np.asarray(q.ScaleAsNumpy(), dtype=np.float32).copy()
    zp = q.ZeroPointAsNumpy()
    zp = np.zeros(scale.shape, np.int64) if isinstance(zp, int) else np.asarray(zp, np.int64).copy()
    if zp.size == 1 and scale.size > 1:
        zp = np.repeat(zp, scale.size)
    axis = int(q.QuantizedDimension())
    if scale.size > 1 and axis >= len(shape) and shape and shape[-1] == scale.size:
        axis = len(shape) - 1  # some converters write the weights' axis on 1-D biases too
    if zp.size != scale.size or (scale.size > 1 and not (
            0 <= axis < len(shape) and shape[axis] == scale.size)):
        raise ValueError(f"tensor {t.Name()!r}: inconsistent quantization parameters")
    lo, hi = _ZP_RANGE.get(dtype, (-(1 << 31), (1 << 31) - 1))
    if not np.isfinite(scale).all() or zp.size and not (lo <= zp.min() and zp.max() <= hi):
        raise ValueError(f"tensor {t.Name()!r}: scale not finite or zero point outside {dtype}'s range")
    return Quant(scale=scale, zero_point=zp, axis=axis)


def _buffer_data(model: fb.Model, buf: bytes, index: int) -> bytes | None:
    if index <= 0 or index >= model.BuffersLength():
        return None
    b = model.Buffers(index)
    if b.Offset() > 1:  # large models keep tensor data after the flatbuffer
        if b.Offset() + b.Size() > len(buf):
            raise ValueError(f"buffer {index} points past the end of the file")
        return buf[b.Offset(): b.Offset() + b.Size()]
    if b.DataLength() == 0:
        return None
    return b.DataAsNumpy().tobytes()


def parse(buf: bytes, name: str = "model") -> Graph:
    """Parse .tflite bytes into a Graph (subgraph 0)."""
    if len(buf) < 16:
        raise ModelError(f"{name}: not a .tflite model (only {len(buf)} bytes)")
    if buf[4:8] != b"TFL3":
        raise ModelError(f"{name}: not a .tflite model (no 'TFL3' file identifier)")
    try:
        return _parse(buf, name)
    except ModelError:
        raise
    except Exception as exc:  # the flatbuffer library raises anything on damaged data
        raise ModelError(f"{name}: damaged or truncated .tflite model ({type(exc).__name__}: {exc})") from None


def _parse(buf: bytes, name: str) -> Graph:
    model = fb.Model.GetRootAsModel(buf, 0)
    limit = len(buf) // 4  # no table can hold more entries than the file has words
    n_sub = model.SubgraphsLength()
    if n_sub == 0:
        raise ModelError(f"{name}: the model has no subgraph")
    if n_sub > limit or model.OperatorCodesLength() > limit or model.BuffersLength() > limit:
        raise ValueError("table lengths exceed the file size")
    codes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())  # schema rule for old and new files
        op_name = _OP_NAMES.get(code, f"BUILTIN_{code}")
        if op_name == "CUSTOM":
            op_name = f"CUSTOM:{(oc.CustomCode() or b'').decode(errors='replace')}"
        codes.append((op_name, oc.Version()))

    tensors, ops, g_in, g_out = _read_subgraph(model, buf, codes, limit, 0)
    desc = (model.Description() or b"").decode(errors="replace")
    graph = fold_constants(Graph(name, tensors, ops, g_in, g_out, n_sub, desc))
    return resolve_state(graph, lambda k: Graph(f"{name} subgraph {k}", *_read_subgraph(model, buf, codes, limit, k)))


def _read_subgraph(model: fb.Model, buf: bytes, codes: list, limit: int, k: int):
    """(tensors, ops, inputs, outputs) of subgraph k."""
    if not 0 <= k < model.SubgraphsLength():
        raise ValueError(f"subgraph {k} of {model.SubgraphsLength()}")
    sg = model.Subgraphs(k)
    if sg.TensorsLength() > limit or sg.OperatorsLength() > limit:
        raise ValueError("table lengths exceed the file size")
    tensors = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        dtype = _DTYPES.get(t.Type(), f"type{t.Type()}")
        raw = _buffer_data(model, buf, t.Buffer())
        data = None
        if raw is not None and dtype in _DTYPES.values():
            count = int(np.prod(shape, dtype=np.int64)) if shape else 1
            arr = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
            if arr.size != count:
                raise ValueError(f"tensor {i} holds {arr.size} values, its shape {shape} needs {count}")
            data = arr.reshape(shape).astype(dtype)
        tname = (t.Name() or b"").decode(errors="replace")
        tensors.append(Tensor(i, tname, shape, dtype, _quant(t, shape, dtype), data))

    ops = []
    for i in range(sg.OperatorsLength()):
        o = sg.Operators(i)
        if o.OpcodeIndex() >= len(codes):
            raise ValueError(f"op {i} uses opcode {o.OpcodeIndex()} of {len(codes)}")
        op_name, version = codes[o.OpcodeIndex()]
        ins = [int(x) for x in o.InputsAsNumpy()] if o.InputsLength() else []
        outs = [int(x) for x in o.OutputsAsNumpy()] if o.OutputsLength() else []
        for x in ins + outs:
            if x >= len(tensors) or x < -1:
                raise ValueError(f"op {i} refers to tensor {x} of {len(tensors)}")
        ops.append(Op(i, op_name, ins, outs, _read_options(o), version))

    g_in = [int(x) for x in sg.InputsAsNumpy()] if sg.InputsLength() else []
    g_out = [int(x) for x in sg.OutputsAsNumpy()] if sg.OutputsLength() else []
    for x in g_in + g_out:
        if not 0 <= x < len(tensors):
            raise ValueError(f"graph input/output refers to tensor {x} of {len(tensors)}")
    return tensors, ops, g_in, g_out


MAX_MODEL_BYTES = 64 << 20  # no MCU has this much flash; a larger file is not a model for us


def read(path: str | Path) -> Graph:
    """Read a .tflite file. Raises ModelError with a clear message on any problem."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such file")
    if path.is_dir():
        raise ModelError(f"{path}: is a folder, expected a .tflite file")
    try:  # bounded: /dev/zero or a pipe must not fill the memory; a FIFO nobody writes is empty, not a hang
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as f:
            buf = f.read(MAX_MODEL_BYTES + 1)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror})") from None
    if len(buf) > MAX_MODEL_BYTES:
        raise ModelError(f"{path}: larger than {MAX_MODEL_BYTES >> 20} MB, more than any microcontroller "
                         "holds; is it a .tflite model?")
    return parse(buf, path.name)
