# SPDX-License-Identifier: Apache-2.0
"""Streaming models: resource variables initialized by CALL_ONCE, carried across invokes
(ternembed/state.py). A microWakeWord-style model of our own (a ring buffer of past frames in a
resource variable, a depthwise convolution over it, a dense head) against TFLite Micro over
many successive invokes; the generated C on the host and on QEMU; state resettable."""
from __future__ import annotations

import numpy as np
import pytest

import tflite_builder as tb
from ternembed import emulate
from ternembed.hostcheck import compile_host_model
from ternembed.lower import lower
from ternembed.reference import run_tflm
from ternembed.tflite import parse

FEATURES, PAST = 8, 3  # frame size; frames the ring buffer keeps
INVOKES = 60


def streaming_model() -> bytes:
    rng = np.random.default_rng(0)
    q = (0.05, -3)  # the frame, the ring buffer and their concatenation share one quantization
    mb = tb.ModelBuilder()
    add = mb.add_tensor
    k, init = mb.add_subgraph()
    h0 = init.add_tensor(tb.Tensor((), "resource", name="ring_handle"))
    init.add_op("VAR_HANDLE", [], [h0], {"shared_name": "ring"})
    zeros = init.add_tensor(tb.Tensor((1, PAST, 1, FEATURES), "int8", *q,
                                      data=np.full((1, PAST, 1, FEATURES), q[1], np.int8), name="ring_init"))
    init.add_op("ASSIGN_VARIABLE", [h0, zeros], [])

    mb.add_op("CALL_ONCE", [], [], {"init_subgraph_index": k})
    x = add(tb.Tensor((1, 1, 1, FEATURES), "int8", *q, name="frame"))
    h = add(tb.Tensor((), "resource", name="ring_handle"))
    mb.add_op("VAR_HANDLE", [], [h], {"shared_name": "ring"})
    ring = add(tb.Tensor((1, PAST, 1, FEATURES), "int8", *q, name="ring"))
    mb.add_op("READ_VARIABLE", [h], [ring])
    window = add(tb.Tensor((1, PAST + 1, 1, FEATURES), "int8", *q, name="window"))
    mb.add_op("CONCATENATION", [ring, x], [window], {"axis": 1})
    oldest = add(tb.Tensor((1, 1, 1, FEATURES), "int8", *q, name="oldest"))
    kept = add(tb.Tensor((1, PAST, 1, FEATURES), "int8", *q, name="kept"))
    sizes = add(tb.Tensor((2,), "int32", data=np.array([1, PAST], np.int32)))
    axis = add(tb.Tensor((1,), "int32", data=np.array([1], np.int32)))
    mb.add_op("SPLIT_V", [window, sizes, axis], [oldest, kept], {"num_splits": 2})
    mb.add_op("ASSIGN_VARIABLE", [h, kept], [])
    dw_w = add(tb.Tensor((1, PAST + 1, 1, FEATURES), "int8", [0.02] * FEATURES, [0] * FEATURES,
                         data=rng.integers(-127, 128, (1, PAST + 1, 1, FEATURES)), quantized_dimension=3))
    dw_b = add(tb.Tensor((FEATURES,), "int32", [1e-3] * FEATURES, [0] * FEATURES,
                         data=rng.integers(-200, 200, FEATURES)))
    dw = add(tb.Tensor((1, 1, 1, FEATURES), "int8", 0.08, -20, name="dw"))
    mb.add_op("DEPTHWISE_CONV_2D", [window, dw_w, dw_b], [dw],
              {"padding": "VALID", "depth_multiplier": 1, "fused_activation_function": "RELU"})
    fc_w = add(tb.Tensor((4, FEATURES), "int8", 0.02, 0, data=rng.integers(-127, 128, (4, FEATURES))))
    logits = add(tb.Tensor((1, 4), "int8", 0.1, 5, name="logits"))
    mb.add_op("FULLY_CONNECTED", [dw, fc_w, -1], [logits])
    probs = add(tb.Tensor((1, 4), "int8", 1 / 256, -128, name="probs"))
    mb.add_op("SOFTMAX", [logits], [probs], {"beta": 1.0})
    mb.inputs, mb.outputs = [x], [probs, window]
    return mb.build()


@pytest.fixture(scope="module")
def streaming():
    model = streaming_model()
    plan = lower(parse(model))
    frames = np.random.default_rng(1).integers(-128, 128, (INVOKES, 1, 1, FEATURES)).astype(np.int8)
    return model, plan, frames


def test_reads_and_lowers_state(streaming):
    _, plan, _ = streaming
    kernels = [s.kernel for s in plan.steps]
    assert kernels[0] == "read_variable" and "assign_variable" in kernels
    assert "CALL_ONCE" not in [s.op_type for s in plan.steps]


def test_emulator_equals_tflm_over_successive_invokes(streaming):
    model, plan, frames = streaming
    ours, ref = emulate.run(plan, [frames]), run_tflm(model, [frames])
    for o, r in zip(ours, ref):
        assert o.tobytes() == r.reshape(o.shape).tobytes()
    window = ours[1].reshape(INVOKES, PAST + 1, FEATURES)
    assert np.array_equal(window[PAST:, 0], frames[:-PAST, 0, 0])  # the ring buffer really carries frames
    assert len(np.unique(ours[0])) > 10


def test_state_is_carried_and_restartable(streaming):
    _, plan, frames = streaming
    whole = emulate.run(plan, [frames])
    state = emulate.initial_state(plan)
    first = emulate.run(plan, [frames[:25]], state=state)
    rest = emulate.run(plan, [frames[25:]], state=state)  # the same state object, carried on
    for w, a, b in zip(whole, first, rest):
        assert np.array_equal(w, np.concatenate([a, b]))
    again = emulate.run(plan, [frames[25:]])  # a fresh run starts from the initial state
    assert not np.array_equal(again[1], rest[1])


@pytest.mark.parametrize("dsp", [False, True], ids=["portable", "dsp"])
def test_host_c_carries_state(streaming, dsp):
    _, plan, frames = streaming
    model = compile_host_model(plan, emulate_dsp=dsp)
    want = emulate.run(plan, [frames])
    for _ in range(2):  # run() starts from the initial state each time (te_model_reset_state)
        got = model.run([frames])
        for g, w in zip(got, want):
            assert g.tobytes() == w.tobytes()


@pytest.mark.qemu
def test_selftest_on_qemu_carries_state(streaming, tmp_path):
    from test_ops_data import selftest_on_qemu
    _, plan, frames = streaming
    assert selftest_on_qemu(plan, [frames], tmp_path / "stream") == INVOKES


@pytest.mark.qemu
def test_validate_sequence_over_serial_link_on_qemu(streaming, tmp_path):
    """The protocol firmware over QEMU's UART: validate resets the state (RESET_STATE) and
    compares the whole sequence; a second run after a reset is exact again."""
    import shutil

    from ternembed.boards import get_board
    from ternembed.build import build_project
    from ternembed.device.firmware import export_protocol_project
    from ternembed.device.qemu import QemuSession
    from ternembed.device.validate import validate
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found")
    _, plan, frames = streaming
    board = "qemu_mps2_an386"
    export_protocol_project(plan, board, tmp_path / "proto")
    built = build_project(tmp_path / "proto", use_platformio=False)
    assert built.planned["state_bytes"] == PAST * FEATURES  # te_state[] is planned static RAM
    elf = built.elf
    with QemuSession(elf, get_board(board)) as q:
        for _ in range(2):
            res = validate(tmp_path / "proto", q.url, [frames], progress=False, invoke_timeout=60)
            assert res.status == "complete" and res.exact == INVOKES and res.layers_exact == INVOKES


def test_ternarized_streaming_model_keeps_int8_state(streaming):
    from ternembed.quantize.plan_pass import ternarize_plan
    from ternembed.quantize.policy import TernaryConfig
    _, plan, frames = streaming
    config = TernaryConfig(method="fgq", group=8, first_last="ternary", depthwise="ternary", budget_bits=4.0)
    tplan, _ = ternarize_plan(plan, config, [frames])
    kernels = [s.kernel for s in tplan.steps]
    assert "dwconv_t2_s8" in kernels and "fc_t2_s8" in kernels
    assert [s for s in tplan.steps if s.kernel.endswith("variable")] == \
        [s for s in plan.steps if s.kernel.endswith("variable")]
    got, want = compile_host_model(tplan).run([frames]), emulate.run(tplan, [frames])
    for g, w in zip(got, want):
        assert g.tobytes() == w.tobytes()


def test_init_subgraph_that_computes_is_named_unsupported():
    from ternembed.errors import UnsupportedOpError
    mb = tb.ModelBuilder()
    k, init = mb.add_subgraph()
    h0 = init.add_tensor(tb.Tensor((), "resource"))
    init.add_op("VAR_HANDLE", [], [h0], {"shared_name": "v"})
    a = init.add_tensor(tb.Tensor((1, 4), "int8", 0.1, 0))  # not a constant: computed by an input
    init.add_op("ASSIGN_VARIABLE", [h0, a], [])
    mb.add_op("CALL_ONCE", [], [], {"init_subgraph_index": k})
    x = mb.add_tensor(tb.Tensor((1, 4), "int8", 0.1, 0))
    y = mb.add_tensor(tb.Tensor((1, 4), "int8", 0.1, 0))
    mb.add_op("RELU", [x], [y])
    mb.inputs, mb.outputs = [x], [y]
    with pytest.raises(UnsupportedOpError, match="op 0 CALL_ONCE is not supported"):
        lower(parse(mb.build()))
