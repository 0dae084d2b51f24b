# SPDX-License-Identifier: Apache-2.0
"""Mutated real models: reading, lowering and emulating them ends in a result or a TernembedError, never a crash."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared_data import MODELS
from ternembed import emulate
from ternembed.errors import TernembedError
from ternembed.lower import lower
from ternembed.tflite import parse

SEEDS = [MODELS / "tflm/hello_world_int8.tflite", MODELS / "tflm/micro_speech_quantized.tflite",
         MODELS / "mlperf_sww/str_ww_ref_model.tflite"]
BUFS = [p.read_bytes() for p in SEEDS]


def exercise(buf: bytes) -> None:
    try:
        graph = parse(buf, "fuzzed.tflite")
        plan = lower(graph)
        inputs = [np.zeros((1,) + tuple(plan.buffers[i].shape[1:]), plan.buffers[i].dtype) for i in plan.inputs]
        if sum(x.size for x in inputs) > 1_000_000:
            return
        emulate.run(plan, inputs)
    except TernembedError as exc:
        assert str(exc) and "\n" not in str(exc).strip()


mutation = st.tuples(st.integers(0, 2**31), st.integers(0, 255))


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(range(len(BUFS))), st.lists(mutation, min_size=1, max_size=8))
def test_byte_mutations(which, edits):
    buf = bytearray(BUFS[which])
    for pos, val in edits:
        buf[pos % len(buf)] = val
    exercise(bytes(buf))


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(range(len(BUFS))), st.integers(0, 2**31))
def test_truncations(which, cut):
    buf = BUFS[which]
    exercise(buf[: cut % len(buf)])


def test_seeded_mutation_sweep():
    """A fixed sweep of random multi-byte mutations (found crashes hypothesis's shrinker-first search missed)."""
    rng = np.random.default_rng(2026)
    for k in range(1500):
        buf = bytearray(BUFS[k % len(BUFS)])
        for _ in range(int(rng.integers(1, 8))):
            buf[int(rng.integers(len(buf)))] = int(rng.integers(256))
        exercise(bytes(buf))
