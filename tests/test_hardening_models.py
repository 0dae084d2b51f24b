# SPDX-License-Identifier: Apache-2.0
"""Damaged and endless models: inspect and export read them bounded and end in one line (exit 2)
naming what is wrong, never an IndexError or KeyError from inside the reader or the lowering."""
import os
import random
import threading
from pathlib import Path

import pytest

from hardening import BOARD, MODEL, assert_one_line, cli, run
from shared_data import MODELS

SMALL = 60_000  # export is run on the models up to this size (quantizing and streaming big ones is slow)


def _models() -> list[Path]:
    shared = sorted(MODELS.rglob("*.tflite")) if MODELS.is_dir() else []
    return [MODEL, *(p for p in shared if p.stat().st_size < 1_200_000)]


def flipped(data: bytes, seed: int) -> bytes:
    """``data`` with 1 to 64 random bits flipped, mostly in the first 4 KB (tables, shapes, indices)."""
    rng = random.Random(seed)
    b = bytearray(data)
    for _ in range(rng.choice([1, 4, 16, 64])):
        i = rng.randrange(min(len(b), 4096) if rng.random() < 0.7 else len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def _check(result, what):
    code, err = result
    if code != 0:
        assert code in (2, 4), (what, code, err)
        assert_one_line(result, code=code)


@pytest.mark.parametrize("model", _models(), ids=lambda p: p.stem)
def test_bit_flipped_models_are_one_line_or_fine(tmp_path, model):
    """Seeded flips of every real model: inspect each, export the small ones (exit 0, 2 or 4)."""
    data = model.read_bytes()
    for seed in range(24):
        f = tmp_path / f"{model.stem}_{seed}.tflite"
        f.write_bytes(flipped(data, seed))
        _check(cli("inspect", f), (model.name, seed))
        if len(data) < SMALL and seed < 6:
            _check(cli("export", f, "-b", BOARD, "-o", tmp_path / "out", "--force"), (model.name, seed))


@pytest.mark.parametrize("model,seed,command,words", [
    ("tflite_micro_magic_wand", 30, "inspect", ["op", "RESHAPE", "is malformed"]),  # was IndexError in lower
    ("simple_add_model", 10, "export", ["zero point outside int8"]),  # a 64-bit zero point reached codegen
])
def test_known_damaged_models(tmp_path, model, seed, command, words):
    path = next((p for p in _models() if p.stem == model), None)
    if path is None:
        pytest.skip(f"{model}.tflite is in ../shared")
    f = tmp_path / "m.tflite"
    f.write_bytes(flipped(path.read_bytes(), seed))
    extra = ["-b", BOARD, "-o", tmp_path / "out"] if command == "export" else []
    assert_one_line(cli(command, f, *extra), *words)


def test_reading_is_bounded(tmp_path):
    """/dev/zero and a pipe that never ends stop at 64 MB; a FIFO nobody writes is empty, not a hang."""
    assert_one_line(cli("inspect", "/dev/zero"), "larger than 64 MB")
    fifo = tmp_path / "model.tflite"
    os.mkfifo(fifo)
    assert_one_line(run("inspect", fifo), "only 0 bytes")  # a subprocess: a hang would time out, not block

    def endless():
        try:
            with open(fifo, "wb") as fh:  # does not block: `keep` is a reader
                while True:
                    fh.write(b"\0" * (1 << 20))
        except OSError:  # every reader is gone: broken pipe
            pass
    keep = os.open(fifo, os.O_RDWR)  # a writer from the start (no race with the thread), and a reader
    writer = threading.Thread(target=endless, daemon=True)
    writer.start()
    try:
        assert_one_line(run("inspect", fifo), "larger than 64 MB")
    finally:
        os.close(keep)  # the last reader: the writer's next write fails
    writer.join(10)
    assert not writer.is_alive()
