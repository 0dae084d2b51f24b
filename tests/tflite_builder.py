# SPDX-License-Identifier: Apache-2.0
"""Build small .tflite flatbuffers by hand, for tests that compare against TFLite Micro.

Only the `flatbuffers` runtime package is needed: tables are written slot by slot
following the TFLite schema (schema.fbs), so the generated `tflite` bindings are not
required. Typical use, a one-op int8 model:

    from tflite_builder import Tensor, single_op_model
    model = single_op_model(
        "SOFTMAX",
        inputs=[Tensor((1, 10), "int8", scale=0.1, zero_point=3)],
        outputs=[Tensor((1, 10), "int8", scale=1 / 256, zero_point=-128)],
        options={"beta": 1.0},
    )
    # model is bytes: tflite_micro.runtime.Interpreter.from_bytes(model)

Constant tensors (weights, paddings, axes) are Tensors with `data`; they are
stored in buffers and are not graph inputs. Multi-op graphs: use ModelBuilder.

Options are given as a dict of snake_case schema field names; enum fields accept
names ("SAME", "RELU6") or numbers. Supported option tables are listed in
OPTION_TABLES; ops without options (LOGISTIC, TANH, RELU, QUANTIZE, ...) take none.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import flatbuffers
import numpy as np

# --- schema constants (tensorflow/lite/schema/schema.fbs) -------------------------

BUILTIN_OPERATOR = {
    "ADD": 0, "AVERAGE_POOL_2D": 1, "CONCATENATION": 2, "CONV_2D": 3,
    "DEPTHWISE_CONV_2D": 4, "DEQUANTIZE": 6, "FULLY_CONNECTED": 9, "LOGISTIC": 14,
    "MAX_POOL_2D": 17, "MUL": 18, "RELU": 19, "RELU_N1_TO_1": 20, "RELU6": 21,
    "RESHAPE": 22, "SOFTMAX": 25, "TANH": 28, "PAD": 34, "TRANSPOSE": 39, "MEAN": 40,
    "SUB": 41, "SQUEEZE": 43, "STRIDED_SLICE": 45, "MAXIMUM": 55, "MINIMUM": 57,
    "PADV2": 60, "SUM": 74, "LEAKY_RELU": 98, "QUANTIZE": 114, "HARD_SWISH": 117,
    "GATHER": 36, "SPLIT": 49, "CAST": 53, "PRELU": 54, "SLICE": 65, "TRANSPOSE_CONV": 67,
    "SHAPE": 77, "REDUCE_PROD": 81, "PACK": 83, "UNPACK": 88, "RESIZE_NEAREST_NEIGHBOR": 97,
    "SQUARED_DIFFERENCE": 99, "SPLIT_V": 102, "RESIZE_BILINEAR": 23, "DEPTH_TO_SPACE": 5,
    "SPACE_TO_DEPTH": 26, "REVERSE_V2": 105, "BROADCAST_TO": 130, "MIRROR_PAD": 100, "REDUCE_MAX": 82,
    "REDUCE_MIN": 89, "CALL_ONCE": 129, "VAR_HANDLE": 142,
    "READ_VARIABLE": 143, "ASSIGN_VARIABLE": 144,
}

TENSOR_TYPE = {
    "float32": 0, "float16": 1, "int32": 2, "uint8": 3, "int64": 4, "bool": 6,
    "int16": 7, "int8": 9, "resource": 13,
}

PADDING = {"SAME": 0, "VALID": 1}
ACTIVATION = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3, "TANH": 4, "SIGN_BIT": 5}

# Scalar field kinds: (slot, kind, default). Kinds: i8, i32, bool, f32, pad, act, ivec, str.
_POOL = {"padding": (0, "pad", 0), "stride_w": (1, "i32", 1), "stride_h": (2, "i32", 1),
         "filter_width": (3, "i32", 1), "filter_height": (4, "i32", 1),
         "fused_activation_function": (5, "act", 0)}

# op name -> (BuiltinOptions union type, {field: (slot, kind, default)})
OPTION_TABLES = {
    "CONV_2D": (1, {"padding": (0, "pad", 0), "stride_w": (1, "i32", 1),
                    "stride_h": (2, "i32", 1), "fused_activation_function": (3, "act", 0),
                    "dilation_w_factor": (4, "i32", 1), "dilation_h_factor": (5, "i32", 1)}),
    "DEPTHWISE_CONV_2D": (2, {"padding": (0, "pad", 0), "stride_w": (1, "i32", 1),
                              "stride_h": (2, "i32", 1), "depth_multiplier": (3, "i32", 1),
                              "fused_activation_function": (4, "act", 0),
                              "dilation_w_factor": (5, "i32", 1),
                              "dilation_h_factor": (6, "i32", 1)}),
    "AVERAGE_POOL_2D": (5, _POOL),
    "MAX_POOL_2D": (5, _POOL),
    "FULLY_CONNECTED": (8, {"fused_activation_function": (0, "act", 0),
                            "weights_format": (1, "i8", 0), "keep_num_dims": (2, "bool", False),
                            "asymmetric_quantize_inputs": (3, "bool", False)}),
    "SOFTMAX": (9, {"beta": (0, "f32", 1.0)}),
    "CONCATENATION": (10, {"axis": (0, "i32", 0), "fused_activation_function": (1, "act", 0)}),
    "ADD": (11, {"fused_activation_function": (0, "act", 0), "pot_scale_int16": (1, "bool", True)}),
    "RESHAPE": (17, {"new_shape": (0, "ivec", None)}),
    "MUL": (21, {"fused_activation_function": (0, "act", 0)}),
    "PAD": (22, {}),
    "MEAN": (27, {"keep_dims": (0, "bool", False)}),
    "SUM": (27, {"keep_dims": (0, "bool", False)}),
    "SUB": (28, {"fused_activation_function": (0, "act", 0), "pot_scale_int16": (1, "bool", True)}),
    "SQUEEZE": (30, {"squeeze_dims": (0, "ivec", None)}),
    "PADV2": (43, {}),
    "STRIDED_SLICE": (32, {"begin_mask": (0, "i32", 0), "end_mask": (1, "i32", 0),
                           "ellipsis_mask": (2, "i32", 0), "new_axis_mask": (3, "i32", 0),
                           "shrink_axis_mask": (4, "i32", 0), "offset": (5, "bool", False)}),
    "SHAPE": (55, {"out_type": (0, "i8", 2)}),
    "PACK": (59, {"values_count": (0, "i32", 0), "axis": (1, "i32", 0)}),
    "UNPACK": (64, {"num": (0, "i32", 0), "axis": (1, "i32", 0)}),
    "SPLIT": (35, {"num_splits": (0, "i32", 0)}),
    "SPLIT_V": (79, {"num_splits": (0, "i32", 0)}),
    "GATHER": (23, {"axis": (0, "i32", 0), "batch_dims": (1, "i32", 0)}),
    "REDUCE_PROD": (27, {"keep_dims": (0, "bool", False)}),
    "REDUCE_MAX": (27, {"keep_dims": (0, "bool", False)}),
    "REDUCE_MIN": (27, {"keep_dims": (0, "bool", False)}),
    "LEAKY_RELU": (75, {"alpha": (0, "f32", 0.0)}),
    "RESIZE_NEAREST_NEIGHBOR": (74, {"align_corners": (0, "bool", False),
                                     "half_pixel_centers": (1, "bool", False)}),
    "RESIZE_BILINEAR": (15, {"new_height": (0, "i32", 0), "new_width": (1, "i32", 0),
                             "align_corners": (2, "bool", False), "half_pixel_centers": (3, "bool", False)}),
    "TRANSPOSE_CONV": (49, {"padding": (0, "pad", 0), "stride_w": (1, "i32", 1),
                            "stride_h": (2, "i32", 1), "fused_activation_function": (3, "act", 0)}),
    "DEPTH_TO_SPACE": (94, {"block_size": (0, "i32", 0)}),
    "SPACE_TO_DEPTH": (19, {"block_size": (0, "i32", 0)}),
    "MIRROR_PAD": (77, {"mode": (0, "i8", 0)}),
    "CALL_ONCE": (103, {"init_subgraph_index": (0, "i32", 0)}),
    "VAR_HANDLE": (111, {"container": (0, "str", None), "shared_name": (1, "str", None)}),
    "READ_VARIABLE": (112, {}),
    "ASSIGN_VARIABLE": (113, {}),
}


@dataclass
class Tensor:
    """A tensor of the graph. `data` makes it a constant stored in the model.

    scale / zero_point: scalars for per-tensor quantization, sequences for per-axis
    (with quantized_dimension). None leaves the tensor unquantized.
    """

    shape: Sequence[int]
    dtype: str = "int8"
    scale: float | Sequence[float] | None = None
    zero_point: int | Sequence[int] | None = None
    data: np.ndarray | None = None
    quantized_dimension: int = 0
    name: str = ""


@dataclass
class _Op:
    opcode_index: int
    inputs: list[int]
    outputs: list[int]
    options: tuple[int, dict, dict] | None  # (union type, field table, values)


class ModelBuilder:
    """Accumulates tensors and operators of one subgraph, then serialises a Model."""

    def __init__(self, opcodes: list[int] | None = None) -> None:
        self.tensors: list[Tensor] = []
        self.ops: list[_Op] = []
        self.opcodes: list[int] = [] if opcodes is None else opcodes  # shared by all subgraphs
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.subgraphs: list["ModelBuilder"] = []  # subgraphs 1, 2, ... (e.g. a CALL_ONCE init)

    def add_subgraph(self) -> tuple[int, "ModelBuilder"]:
        """A further subgraph of this model: (its index, its builder)."""
        self.subgraphs.append(ModelBuilder(self.opcodes))
        return len(self.subgraphs), self.subgraphs[-1]

    def add_tensor(self, t: Tensor) -> int:
        self.tensors.append(t)
        return len(self.tensors) - 1

    def add_op(self, op: str | int, inputs: Sequence[int], outputs: Sequence[int],
               options: dict | None = None) -> None:
        name = op if isinstance(op, str) else None
        code = BUILTIN_OPERATOR[op] if isinstance(op, str) else int(op)
        if code not in self.opcodes:
            self.opcodes.append(code)
        table = None
        if name in OPTION_TABLES:
            union, fields = OPTION_TABLES[name]
            values = dict(options or {})
            unknown = set(values) - set(fields)
            if unknown:
                raise ValueError(f"unknown options for {name}: {sorted(unknown)}")
            table = (union, fields, values)
        elif options:
            raise ValueError(f"no option table known for op {op}")
        self.ops.append(_Op(self.opcodes.index(code), list(inputs), list(outputs), table))

    # -- serialisation --------------------------------------------------------------

    def _build_subgraph(self, b: flatbuffers.Builder, tensor_buffer: list[int], k: int) -> int:
        tensor_offsets = []
        for i, t in enumerate(self.tensors):
            name_off = b.CreateString(t.name or f"t{i}")
            shape_off = _int32_vector(b, t.shape)
            quant_off = _quantization(b, t) if t.scale is not None else None
            b.StartObject(10)
            b.PrependUOffsetTRelativeSlot(0, shape_off, 0)
            b.PrependInt8Slot(1, TENSOR_TYPE[t.dtype], 0)
            b.PrependUint32Slot(2, tensor_buffer[i], 0)
            b.PrependUOffsetTRelativeSlot(3, name_off, 0)
            if quant_off is not None:
                b.PrependUOffsetTRelativeSlot(4, quant_off, 0)
            tensor_offsets.append(b.EndObject())

        op_offsets = []
        for op in self.ops:
            in_off = _int32_vector(b, op.inputs)
            out_off = _int32_vector(b, op.outputs)
            opt_off = _options(b, op.options[1], op.options[2]) if op.options else None
            b.StartObject(14)
            b.PrependUint32Slot(0, op.opcode_index, 0)
            b.PrependUOffsetTRelativeSlot(1, in_off, 0)
            b.PrependUOffsetTRelativeSlot(2, out_off, 0)
            if opt_off is not None:
                b.PrependUint8Slot(3, op.options[0], 0)
                b.PrependUOffsetTRelativeSlot(4, opt_off, 0)
            op_offsets.append(b.EndObject())

        tensors_vec = _offset_vector(b, tensor_offsets)
        ops_vec = _offset_vector(b, op_offsets)
        sg_in = _int32_vector(b, self.inputs)
        sg_out = _int32_vector(b, self.outputs)
        sg_name = b.CreateString("main" if k == 0 else f"subgraph{k}")
        b.StartObject(6)
        b.PrependUOffsetTRelativeSlot(0, tensors_vec, 0)
        b.PrependUOffsetTRelativeSlot(1, sg_in, 0)
        b.PrependUOffsetTRelativeSlot(2, sg_out, 0)
        b.PrependUOffsetTRelativeSlot(3, ops_vec, 0)
        b.PrependUOffsetTRelativeSlot(4, sg_name, 0)
        return b.EndObject()

    def build(self) -> bytes:
        b = flatbuffers.Builder(1024)
        graphs = [self] + self.subgraphs

        # Buffers: 0 is the conventional empty buffer; each constant gets its own.
        buffer_data: list[bytes | None] = [None]
        tensor_buffers: list[list[int]] = []
        for g in graphs:
            tensor_buffer: list[int] = []
            for t in g.tensors:
                if t.data is None:
                    tensor_buffer.append(0)
                else:
                    arr = np.ascontiguousarray(np.asarray(t.data, dtype=_np_dtype(t.dtype)))
                    if tuple(arr.shape) != tuple(t.shape) and arr.size != int(np.prod(t.shape)):
                        raise ValueError(f"tensor {t.name!r}: data shape {arr.shape} != {t.shape}")
                    buffer_data.append(arr.tobytes())
                    tensor_buffer.append(len(buffer_data) - 1)
            tensor_buffers.append(tensor_buffer)

        buffer_offsets = []
        for data in buffer_data:
            data_off = None
            if data is not None:
                b.StartVector(1, len(data), 16)  # 16-byte alignment for any element type
                for byte in reversed(data):
                    b.PrependUint8(byte)
                data_off = b.EndVector()
            b.StartObject(3)
            if data_off is not None:
                b.PrependUOffsetTRelativeSlot(0, data_off, 0)
            buffer_offsets.append(b.EndObject())

        subgraph_offsets = [g._build_subgraph(b, tb, k) for k, (g, tb) in enumerate(zip(graphs, tensor_buffers))]

        opcode_offsets = []
        for code in self.opcodes:
            b.StartObject(4)
            b.PrependInt8Slot(0, min(code, 127), 0)
            b.PrependInt32Slot(2, 1, 1)
            b.PrependInt32Slot(3, code, 0)
            opcode_offsets.append(b.EndObject())

        opcodes_vec = _offset_vector(b, opcode_offsets)
        subgraphs_vec = _offset_vector(b, subgraph_offsets)
        buffers_vec = _offset_vector(b, buffer_offsets)
        desc = b.CreateString("ternembed test model")
        b.StartObject(8)
        b.PrependUint32Slot(0, 3, 0)
        b.PrependUOffsetTRelativeSlot(1, opcodes_vec, 0)
        b.PrependUOffsetTRelativeSlot(2, subgraphs_vec, 0)
        b.PrependUOffsetTRelativeSlot(3, desc, 0)
        b.PrependUOffsetTRelativeSlot(4, buffers_vec, 0)
        model = b.EndObject()
        b.Finish(model, file_identifier=b"TFL3")
        return bytes(b.Output())


def single_op_model(op: str | int, inputs: Sequence[Tensor], outputs: Sequence[Tensor],
                    options: dict | None = None) -> bytes:
    """One operator; the non-constant inputs become the graph inputs, in order."""
    mb = ModelBuilder()
    in_idx = [mb.add_tensor(t) for t in inputs]
    out_idx = [mb.add_tensor(t) for t in outputs]
    mb.inputs = [i for i, t in zip(in_idx, inputs) if t.data is None]
    mb.outputs = out_idx
    mb.add_op(op, in_idx, out_idx, options)
    return mb.build()


def run_tflm(model: bytes, inputs: Sequence[np.ndarray], arena_size: int = 64 * 1024,
             num_outputs: int = 1) -> list[np.ndarray]:
    """Run a model on the TFLite Micro Python interpreter (package tflite-micro)."""
    from tflite_micro import runtime  # imported lazily: optional test dependency

    interp = runtime.Interpreter.from_bytes(model, arena_size=arena_size)
    for i, x in enumerate(inputs):
        interp.set_input(np.ascontiguousarray(x), i)
    interp.invoke()
    return [np.array(interp.get_output(i)) for i in range(num_outputs)]


# --- helpers ----------------------------------------------------------------------------

def _np_dtype(name: str):
    return {"float32": np.float32, "float16": np.float16, "int32": np.int32,
            "uint8": np.uint8, "int64": np.int64, "bool": np.bool_, "int16": np.int16,
            "int8": np.int8}[name]


def _int32_vector(b: flatbuffers.Builder, values: Sequence[int]) -> int:
    values = [int(v) for v in values]
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependInt32(v)
    return b.EndVector()


def _offset_vector(b: flatbuffers.Builder, offsets: Sequence[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _quantization(b: flatbuffers.Builder, t: Tensor) -> int:
    scales = np.atleast_1d(np.asarray(t.scale, dtype=np.float32))
    zps = np.atleast_1d(np.asarray(0 if t.zero_point is None else t.zero_point, dtype=np.int64))
    if zps.size == 1 and scales.size > 1:
        zps = np.repeat(zps, scales.size)
    b.StartVector(4, scales.size, 4)
    for s in reversed(scales):
        b.PrependFloat32(float(s))
    scale_off = b.EndVector()
    b.StartVector(8, zps.size, 8)
    for z in reversed(zps):
        b.PrependInt64(int(z))
    zp_off = b.EndVector()
    b.StartObject(7)
    b.PrependUOffsetTRelativeSlot(2, scale_off, 0)
    b.PrependUOffsetTRelativeSlot(3, zp_off, 0)
    b.PrependInt32Slot(6, int(t.quantized_dimension), 0)
    return b.EndObject()


def _options(b: flatbuffers.Builder, fields: dict, values: dict) -> int:
    vectors = {}
    for name, (slot, kind, _default) in fields.items():
        if kind == "ivec" and values.get(name) is not None:
            vectors[name] = _int32_vector(b, values[name])
        if kind == "str" and values.get(name) is not None:
            vectors[name] = b.CreateString(values[name])
    b.StartObject(max((s for s, _, _ in fields.values()), default=-1) + 1)
    for name, (slot, kind, default) in fields.items():
        value = values.get(name, default)
        if kind in ("ivec", "str"):
            if name in vectors:
                b.PrependUOffsetTRelativeSlot(slot, vectors[name], 0)
        elif kind == "pad":
            b.PrependInt8Slot(slot, PADDING[value] if isinstance(value, str) else int(value), -1)
        elif kind == "act":
            b.PrependInt8Slot(slot, ACTIVATION[value] if isinstance(value, str) else int(value), -1)
        elif kind == "i8":
            b.PrependInt8Slot(slot, int(value), -1)
        elif kind == "i32":
            b.PrependInt32Slot(slot, int(value), -(2**31))
        elif kind == "bool":
            b.PrependBoolSlot(slot, bool(value), not bool(value))
        elif kind == "f32":
            b.PrependFloat32Slot(slot, float(value), float("nan"))
        else:  # pragma: no cover - table typo
            raise AssertionError(kind)
    return b.EndObject()
