"""Write a small single-subgraph .tflite file with the schema builders of the `tflite` package.

Just enough of the format for the digits example: float32 / int8 / int32 tensors,
per-tensor or per-channel quantization, and operators whose options are
FullyConnectedOptions or SoftmaxOptions. The output depends only on the arguments,
so the same graph always gives the same bytes.

    g = Graph("my model")
    x = g.tensor("input", (1, 64), "float32")
    ...
    g.op("SOFTMAX", [logits], [probs], beta=1.0)
    g.inputs, g.outputs = [x], [probs]
    data = g.serialize()
"""
from __future__ import annotations

from dataclasses import dataclass, field

import flatbuffers
import numpy as np
import tflite

_TYPES = {"float32": tflite.TensorType.FLOAT32, "int8": tflite.TensorType.INT8,
          "int32": tflite.TensorType.INT32}
_NUMPY = {"float32": np.float32, "int8": np.int8, "int32": np.int32}
_ACTIVATIONS = {"NONE": tflite.ActivationFunctionType.NONE,
                "RELU": tflite.ActivationFunctionType.RELU,
                "RELU6": tflite.ActivationFunctionType.RELU6}
_OPTIONS = {"FULLY_CONNECTED": {"fused_activation_function"}, "SOFTMAX": {"beta"}}


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None
    scale: np.ndarray | None
    zero_point: np.ndarray | None
    axis: int


@dataclass
class _Op:
    code: str
    inputs: list[int]
    outputs: list[int]
    options: dict = field(default_factory=dict)


class Graph:
    """Tensors and operators of one subgraph; `serialize()` gives the model bytes."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.tensors: list[_Tensor] = []
        self.ops: list[_Op] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []

    def tensor(self, name: str, shape, dtype: str, data=None, scale=None, zero_point=None,
               axis: int = 0) -> int:
        """Add a tensor; `data` makes it a constant. scale/zero_point: scalar or per-channel."""
        if data is not None:
            data = np.ascontiguousarray(np.asarray(data, dtype=_NUMPY[dtype]).reshape(shape))
        if scale is not None:
            scale = np.atleast_1d(np.asarray(scale, np.float32))
            zp = np.zeros(scale.shape, np.int64) if zero_point is None else zero_point
            zero_point = np.atleast_1d(np.asarray(zp, np.int64))
            if zero_point.shape != scale.shape:
                raise ValueError(f"{name}: {scale.size} scales but {zero_point.size} zero points")
        self.tensors.append(_Tensor(name, tuple(int(d) for d in shape), dtype, data, scale,
                                    zero_point, axis))
        return len(self.tensors) - 1

    def op(self, code: str, inputs: list[int], outputs: list[int], **options) -> None:
        if code not in _OPTIONS:
            raise ValueError(f"operator {code} is not supported by this writer")
        unknown = set(options) - _OPTIONS[code]
        if unknown:
            raise ValueError(f"unknown options for {code}: {sorted(unknown)}")
        self.ops.append(_Op(code, list(inputs), list(outputs), options))

    # -- serialisation ------------------------------------------------------------------------

    def serialize(self) -> bytes:
        b = flatbuffers.Builder(4096)
        codes = sorted({op.code for op in self.ops}, key=[op.code for op in self.ops].index)

        # Buffer 0 is the empty buffer shared by every non-constant tensor.
        buffers = [_buffer(b, None)]
        buffer_of = []
        for t in self.tensors:
            if t.data is None:
                buffer_of.append(0)
            else:
                buffers.append(_buffer(b, t.data.tobytes()))
                buffer_of.append(len(buffers) - 1)

        tensors = [_tensor(b, t, buffer_of[i]) for i, t in enumerate(self.tensors)]
        operators = [_operator(b, op, codes.index(op.code)) for op in self.ops]

        tensors_vec = _table_vector(b, tflite.SubGraphStartTensorsVector, tensors)
        ops_vec = _table_vector(b, tflite.SubGraphStartOperatorsVector, operators)
        in_vec = _int32_vector(b, tflite.SubGraphStartInputsVector, self.inputs)
        out_vec = _int32_vector(b, tflite.SubGraphStartOutputsVector, self.outputs)
        name = b.CreateString("main")
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tensors_vec)
        tflite.SubGraphAddInputs(b, in_vec)
        tflite.SubGraphAddOutputs(b, out_vec)
        tflite.SubGraphAddOperators(b, ops_vec)
        tflite.SubGraphAddName(b, name)
        subgraph = tflite.SubGraphEnd(b)

        opcodes = []
        for code in codes:
            number = getattr(tflite.BuiltinOperator, code)
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(number, 127))
            tflite.OperatorCodeAddBuiltinCode(b, number)
            tflite.OperatorCodeAddVersion(b, 1)
            opcodes.append(tflite.OperatorCodeEnd(b))

        opcodes_vec = _table_vector(b, tflite.ModelStartOperatorCodesVector, opcodes)
        subgraphs_vec = _table_vector(b, tflite.ModelStartSubgraphsVector, [subgraph])
        buffers_vec = _table_vector(b, tflite.ModelStartBuffersVector, buffers)
        description = b.CreateString(self.description)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, opcodes_vec)
        tflite.ModelAddSubgraphs(b, subgraphs_vec)
        tflite.ModelAddDescription(b, description)
        tflite.ModelAddBuffers(b, buffers_vec)
        model = tflite.ModelEnd(b)
        b.Finish(model, file_identifier=b"TFL3")
        return bytes(b.Output())


# ---- helpers -----------------------------------------------------------------------------------

def _int32_vector(b: flatbuffers.Builder, start, values) -> int:
    start(b, len(values))
    for v in reversed(list(values)):
        b.PrependInt32(int(v))
    return b.EndVector()


def _table_vector(b: flatbuffers.Builder, start, offsets) -> int:
    start(b, len(offsets))
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _buffer(b: flatbuffers.Builder, data: bytes | None) -> int:
    data_off = None
    if data is not None:
        # Raw bytes, aligned to 16 so that any element type can be read in place.
        b.StartVector(1, len(data), 16)
        b.head -= len(data)
        b.Bytes[b.head:b.head + len(data)] = data
        data_off = b.EndVector()
    tflite.BufferStart(b)
    if data_off is not None:
        tflite.BufferAddData(b, data_off)
    return tflite.BufferEnd(b)


def _tensor(b: flatbuffers.Builder, t: _Tensor, buffer: int) -> int:
    name = b.CreateString(t.name)
    shape = _int32_vector(b, tflite.TensorStartShapeVector, t.shape)
    quant = None
    if t.scale is not None:
        tflite.QuantizationParametersStartScaleVector(b, t.scale.size)
        for s in reversed(t.scale):
            b.PrependFloat32(float(s))
        scale = b.EndVector()
        tflite.QuantizationParametersStartZeroPointVector(b, t.zero_point.size)
        for z in reversed(t.zero_point):
            b.PrependInt64(int(z))
        zero_point = b.EndVector()
        tflite.QuantizationParametersStart(b)
        tflite.QuantizationParametersAddScale(b, scale)
        tflite.QuantizationParametersAddZeroPoint(b, zero_point)
        tflite.QuantizationParametersAddQuantizedDimension(b, t.axis)
        quant = tflite.QuantizationParametersEnd(b)
    tflite.TensorStart(b)
    tflite.TensorAddShape(b, shape)
    tflite.TensorAddType(b, _TYPES[t.dtype])
    tflite.TensorAddBuffer(b, buffer)
    tflite.TensorAddName(b, name)
    if quant is not None:
        tflite.TensorAddQuantization(b, quant)
    return tflite.TensorEnd(b)


def _operator(b: flatbuffers.Builder, op: _Op, opcode_index: int) -> int:
    inputs = _int32_vector(b, tflite.OperatorStartInputsVector, op.inputs)
    outputs = _int32_vector(b, tflite.OperatorStartOutputsVector, op.outputs)
    if op.code == "FULLY_CONNECTED":
        tflite.FullyConnectedOptionsStart(b)
        tflite.FullyConnectedOptionsAddFusedActivationFunction(
            b, _ACTIVATIONS[op.options.get("fused_activation_function", "NONE")])
        options, options_type = tflite.FullyConnectedOptionsEnd(b), tflite.BuiltinOptions.FullyConnectedOptions
    else:
        tflite.SoftmaxOptionsStart(b)
        tflite.SoftmaxOptionsAddBeta(b, float(op.options.get("beta", 1.0)))
        options, options_type = tflite.SoftmaxOptionsEnd(b), tflite.BuiltinOptions.SoftmaxOptions
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, opcode_index)
    tflite.OperatorAddInputs(b, inputs)
    tflite.OperatorAddOutputs(b, outputs)
    tflite.OperatorAddBuiltinOptionsType(b, options_type)
    tflite.OperatorAddBuiltinOptions(b, options)
    return tflite.OperatorEnd(b)
