# SPDX-License-Identifier: Apache-2.0
"""Round trips and exact byte layouts of the bit formats shared with C (ternembed.pack)."""
from __future__ import annotations

import numpy as np
import pytest

from ternembed import pack as P

SHAPES = [(1, 1), (1, 2), (3, 3), (2, 4), (5, 5), (4, 6), (3, 7), (2, 31), (2, 32), (3, 33), (1, 63),
          (2, 64), (3, 65), (7, 100), (16, 640)]
TERNARY_FORMATS = ["2bit", "base3", "planes"]


@pytest.mark.parametrize("fmt", TERNARY_FORMATS)
@pytest.mark.parametrize("shape", SHAPES)
def test_ternary_roundtrip(fmt: str, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(TERNARY_FORMATS.index(fmt) * 100_000 + shape[0] * 1000 + shape[1])
    codes = rng.integers(-1, 2, size=shape).astype(np.int8)
    buf = P.pack(fmt, codes)
    assert buf.dtype == np.uint8 and buf.ndim == 1
    assert buf.size == shape[0] * P.row_bytes(fmt, shape[1])
    out = P.unpack(fmt, buf, *shape)
    assert out.dtype == np.int8
    np.testing.assert_array_equal(out, codes)
    # bytes objects are accepted too (e.g. read back from a generated file)
    np.testing.assert_array_equal(P.unpack(fmt, buf.tobytes(), *shape), codes)


@pytest.mark.parametrize("shape", SHAPES)
def test_int4_roundtrip(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    v = rng.integers(-8, 8, size=shape).astype(np.int8)
    buf = P.pack_int4(v)
    assert buf.size == shape[0] * ((shape[1] + 1) // 2)
    np.testing.assert_array_equal(P.unpack_int4(buf, *shape), v)


@pytest.mark.parametrize("fmt", TERNARY_FORMATS)
def test_all_same_and_extremes(fmt: str) -> None:
    for val in (-1, 0, 1):
        for K in (1, 4, 5, 32, 37):
            codes = np.full((2, K), val, dtype=np.int8)
            np.testing.assert_array_equal(P.unpack(fmt, P.pack(fmt, codes), 2, K), codes)


def test_2bit_layout() -> None:
    # weights [+1, -1, 0, +1] -> fields 01, 11, 00, 01 from bit 0 up -> 0b01_00_11_01
    assert P.pack_2bit(np.array([[1, -1, 0, 1]])).tolist() == [0b01001101]
    # K=5: second byte holds weight 4 in bits 1..0, padding is 0
    assert P.pack_2bit(np.array([[0, 0, 0, 0, -1]])).tolist() == [0, 0b11]
    # rows start on a byte boundary
    assert P.pack_2bit(np.array([[1], [-1]])).tolist() == [0b01, 0b11]
    # decoding with a sign-extending shift as C does: (int8)(b << (6-2j)) >> 6
    b = int(P.pack_2bit(np.array([[1, -1, 0, 1]]))[0])
    dec = [int(np.int8(np.uint8((b << (6 - 2 * j)) & 0xFF))) >> 6 for j in range(4)]
    assert dec == [1, -1, 0, 1]


def test_base3_layout() -> None:
    # digits t+1 = [0, 1, 2, 1, 1] -> 0 + 3 + 18 + 27 + 81 = 129
    assert P.pack_base3(np.array([[-1, 0, 1, 0, 0]])).tolist() == [129]
    # K=1: padding digits are 1 (weight 0): 2 + 3 + 9 + 27 + 81 = 122
    assert P.pack_base3(np.array([[1]])).tolist() == [122]
    assert P.pack_base3(np.array([[1, 1, 1, 1, 1]])).tolist() == [242]
    with pytest.raises(ValueError):
        P.unpack_base3(np.array([243], dtype=np.uint8), 1, 5)


def test_planes_layout() -> None:
    codes = np.zeros((1, 33), dtype=np.int8)
    codes[0, 0] = 1
    codes[0, 1] = -1
    codes[0, 31] = -1
    codes[0, 32] = 1
    buf = P.pack_planes(codes)
    assert buf.size == 16
    words = buf.view("<u4").tolist()  # [nz_0, sign_0, nz_1, sign_1]
    assert words == [(1 << 0) | (1 << 1) | (1 << 31), (1 << 1) | (1 << 31), 1, 0]
    # sign bits of zero weights are ignored when decoding
    buf2 = buf.copy()
    buf2[4 + 1] |= 0x80  # sign bit 15 of block 0 (weight 15 is zero)
    np.testing.assert_array_equal(P.unpack_planes(buf2, 1, 33), codes)


def test_int4_layout() -> None:
    assert P.pack_int4(np.array([[1, -1]])).tolist() == [0xF1]
    assert P.pack_int4(np.array([[-8, 7, 3]])).tolist() == [0x78, 0x03]
    with pytest.raises(ValueError):
        P.pack_int4(np.array([[8]]))


def test_2bit_matches_planes_bits() -> None:
    # bit 0 of each 2-bit field is the nonzero mask, bit 1 the sign mask
    rng = np.random.default_rng(5)
    codes = rng.integers(-1, 2, size=(1, 32)).astype(np.int8)
    two = P.pack_2bit(codes)
    fields = np.stack([(two >> (2 * j)) & 3 for j in range(4)], axis=-1).reshape(-1)
    words = P.pack_planes(codes).view("<u4")
    nz = [(int(words[0]) >> i) & 1 for i in range(32)]
    sg = [(int(words[1]) >> i) & 1 for i in range(32)]
    assert nz == [int(f & 1) for f in fields]
    assert sg == [int(f >> 1) for f in fields]


def test_errors() -> None:
    with pytest.raises(ValueError):
        P.pack_2bit(np.array([[2]]))
    with pytest.raises(ValueError):
        P.pack_base3(np.array([[-2]]))
    with pytest.raises(ValueError):
        P.unpack_2bit(np.zeros(3, dtype=np.uint8), 1, 16)  # wrong length
    with pytest.raises(ValueError):
        P.unpack_2bit(np.array([0b10], dtype=np.uint8), 1, 1)  # invalid field
    with pytest.raises(ValueError):
        P.row_bytes("nope", 4)
    with pytest.raises(ValueError):
        P.row_bytes("2bit", 0)


def test_one_dimensional_input_is_one_row() -> None:
    codes = np.array([1, 0, -1, 1, 1, 0, -1], dtype=np.int8)
    for fmt in TERNARY_FORMATS:
        np.testing.assert_array_equal(P.unpack(fmt, P.pack(fmt, codes), 1, 7)[0], codes)
