# SPDX-License-Identifier: Apache-2.0
"""Bit formats shared with the C kernels.

All formats are for a 2-D code array ``[n_rows, K]`` (one row per output channel, K along the
reduction in TFLite order). Common rules:

* Rows are stored one after another (row-major); each row starts on a fresh byte (or word, for
  the plane-pair format) boundary: a row occupies ``row_bytes(fmt, K)`` bytes and the buffer is
  exactly ``n_rows * row_bytes(fmt, K)`` bytes. Row r starts at byte ``r * row_bytes(fmt, K)``.
* Inside a row, weight i = 0 is the first/least significant element (little-endian order for
  both bits within a byte and bytes within a word).
* Padding at the end of a row always decodes to 0, so a kernel may process whole bytes/words
  without masking (a zero weight contributes nothing, whatever the activation padding holds).
* ``pack_*`` returns a 1-D ``np.uint8`` buffer; ``unpack_*(buf, n_rows, K)`` returns int8
  ``[n_rows, K]`` and raises ValueError on a wrong length or an invalid field.
* Alignment of the buffer start is the exporter's business (the C array declaration).

Formats (``fmt`` name for :func:`row_bytes`):

``"2bit"`` -- 4 codes per byte. Weight i of a row is in byte ``i // 4``, bits
    ``2*(i % 4) + 1 .. 2*(i % 4)``. Field: 0b00 = 0, 0b01 = +1, 0b11 = -1 (0b10 invalid).
    Why this mapping: the field is the code in 2-bit two's complement, so C decodes it with one
    sign-extending shift pair, ``(int8_t)(b << (6 - 2*j)) >> 6``; bit 0 is "nonzero" and bit 1
    is "negative", the same split as the plane-pair form, so converting between the two is pure
    bit shuffling. Row bytes: ceil(K / 4).

``"base3"`` -- 5 codes per byte (3^5 = 243 <= 256, 1.6 bits per weight). Byte j of a row holds
    weights 5j..5j+4 as ``sum_{m=0..4} (t_{5j+m} + 1) * 3^m`` (weight 5j is the least
    significant base-3 digit). Byte values 0..242; 243..255 invalid. Padding digits are 1
    (weight 0). Row bytes: ceil(K / 5).

``"planes"`` -- per row, ceil(K / 32) blocks of two little-endian uint32 words, interleaved:
    ``[nz_0, sign_0, nz_1, sign_1, ...]``. In block b, bit j of ``nz_b`` is 1 iff weight
    32b + j is nonzero and bit j of ``sign_b`` is 1 iff it is -1. Packing writes sign bit 0 for
    zero weights; unpacking ignores sign bits where nz is 0. Kernels compute
    t.x = sum over (nz & ~sign) of x - sum over (nz & sign) of x. Row bytes: 8 * ceil(K / 32),
    so every row starts on an 8-byte boundary relative to the buffer start.

``"int4"`` -- signed 4-bit values in [-8, 7] (int4 activations, or pow2 weight nibbles
    sign*(k+1)), 2 per byte. Weight i is in byte ``i // 2``, low nibble (bits 3..0) for even i,
    high nibble (bits 7..4) for odd i; two's complement. Padding nibble 0. Row bytes: ceil(K / 2).
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "FORMATS",
    "row_bytes",
    "pack_2bit",
    "unpack_2bit",
    "pack_base3",
    "unpack_base3",
    "pack_planes",
    "unpack_planes",
    "pack_int4",
    "unpack_int4",
    "pack",
    "unpack",
]

FORMATS = ("2bit", "base3", "planes", "int4")


def row_bytes(fmt: str, K: int) -> int:
    """Bytes one packed row of K values occupies in format ``fmt``."""
    if K < 1:
        raise ValueError(f"K must be >= 1 (got {K})")
    if fmt == "2bit":
        return -(-K // 4)
    if fmt == "base3":
        return -(-K // 5)
    if fmt == "planes":
        return 8 * -(-K // 32)
    if fmt == "int4":
        return -(-K // 2)
    raise ValueError(f"unknown pack format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _rows(codes: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Codes as int16 [n_rows, K] (1-D -> one row), checked to lie in [lo, hi]."""
    arr = np.asarray(codes)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"codes must be [n_rows, K] with K >= 1 (got shape {arr.shape})")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(arr == np.round(arr)):
            raise ValueError("codes must be integers")
    a16 = arr.astype(np.int16)
    if a16.size and (a16.min() < lo or a16.max() > hi):
        raise ValueError(f"codes must lie in [{lo}, {hi}]")
    return a16


def _pad(a: np.ndarray, mult: int, value: int) -> np.ndarray:
    K = a.shape[1]
    extra = (-K) % mult
    if extra == 0:
        return a
    return np.concatenate([a, np.full((a.shape[0], extra), value, dtype=a.dtype)], axis=1)


def _buf(buf: np.ndarray | bytes, fmt: str, n_rows: int, K: int) -> np.ndarray:
    """The buffer as uint8 [n_rows, row_bytes], after a length check."""
    b = np.frombuffer(buf, dtype=np.uint8) if isinstance(buf, (bytes, bytearray, memoryview)) else np.asarray(buf)
    if b.dtype != np.uint8:
        raise ValueError(f"packed buffer must be uint8 (got {b.dtype})")
    rb = row_bytes(fmt, K)
    if n_rows < 0 or b.size != n_rows * rb:
        raise ValueError(f"{fmt} buffer for {n_rows}x{K} must be {n_rows * rb} bytes (got {b.size})")
    return b.reshape(n_rows, rb)


# ---------------------------------------------------------------------------------------- 2bit
def pack_2bit(codes: np.ndarray) -> np.ndarray:
    """Ternary codes -> 2 bits each, 4 per byte (0b00=0, 0b01=+1, 0b11=-1; see module doc)."""
    c = _pad(_rows(codes, -1, 1), 4, 0)
    f = (c & 0b11).astype(np.uint8).reshape(c.shape[0], -1, 4)
    b = f[:, :, 0] | (f[:, :, 1] << 2) | (f[:, :, 2] << 4) | (f[:, :, 3] << 6)
    return b.astype(np.uint8).reshape(-1)


def unpack_2bit(buf: np.ndarray | bytes, n_rows: int, K: int) -> np.ndarray:
    """Inverse of :func:`pack_2bit`; the invalid field 0b10 is rejected (padding is not checked otherwise)."""
    b = _buf(buf, "2bit", n_rows, K)
    f = np.stack([(b >> (2 * j)) & 0b11 for j in range(4)], axis=-1).reshape(n_rows, -1)
    if np.any(f == 0b10):
        raise ValueError("invalid 2-bit code 0b10 in buffer")
    vals = (f.astype(np.int8) ^ 2) - 2  # 2-bit two's complement: 0->0, 1->1, 3->-1
    return vals[:, :K].astype(np.int8)


# --------------------------------------------------------------------------------------- base3
_POW3 = np.array([1, 3, 9, 27, 81], dtype=np.int16)


def pack_base3(codes: np.ndarray) -> np.ndarray:
    """Ternary codes -> 5 trits per byte, digit t+1, first weight least significant."""
    d = _pad(_rows(codes, -1, 1) + 1, 5, 1)
    b = (d.reshape(d.shape[0], -1, 5) * _POW3).sum(axis=-1)
    return b.astype(np.uint8).reshape(-1)


def unpack_base3(buf: np.ndarray | bytes, n_rows: int, K: int) -> np.ndarray:
    """Inverse of :func:`pack_base3`; bytes above 242 are rejected."""
    b = _buf(buf, "base3", n_rows, K).astype(np.int16)
    if np.any(b > 242):
        raise ValueError("invalid base-3 byte (> 242) in buffer")
    digits = np.stack([(b // p) % 3 for p in _POW3], axis=-1).reshape(n_rows, -1)
    return (digits[:, :K] - 1).astype(np.int8)


# -------------------------------------------------------------------------------------- planes
def pack_planes(codes: np.ndarray) -> np.ndarray:
    """Ternary codes -> interleaved (nonzero, sign) uint32 bitmask pairs per 32 weights."""
    c = _pad(_rows(codes, -1, 1), 32, 0)
    n, Kp = c.shape
    nz = np.packbits((c != 0).reshape(n, Kp // 32, 32), axis=-1, bitorder="little")  # [n, W, 4]
    sg = np.packbits((c < 0).reshape(n, Kp // 32, 32), axis=-1, bitorder="little")
    return np.stack([nz, sg], axis=2).reshape(-1).astype(np.uint8)  # [n, W, 2 words, 4 bytes]


def unpack_planes(buf: np.ndarray | bytes, n_rows: int, K: int) -> np.ndarray:
    """Inverse of :func:`pack_planes` (sign bits of zero weights are ignored)."""
    b = _buf(buf, "planes", n_rows, K).reshape(n_rows, -1, 2, 4)
    nz = np.unpackbits(b[:, :, 0, :], axis=-1, bitorder="little").reshape(n_rows, -1)
    sg = np.unpackbits(b[:, :, 1, :], axis=-1, bitorder="little").reshape(n_rows, -1)
    vals = nz.astype(np.int8) * (1 - 2 * sg.astype(np.int8))
    return vals[:, :K].astype(np.int8)


# ---------------------------------------------------------------------------------------- int4
def pack_int4(values: np.ndarray) -> np.ndarray:
    """Signed 4-bit values in [-8, 7] -> 2 per byte, low nibble first."""
    v = _pad(_rows(values, -8, 7), 2, 0)
    f = (v & 0xF).astype(np.uint8).reshape(v.shape[0], -1, 2)
    return (f[:, :, 0] | (f[:, :, 1] << 4)).astype(np.uint8).reshape(-1)


def unpack_int4(buf: np.ndarray | bytes, n_rows: int, K: int) -> np.ndarray:
    """Inverse of :func:`pack_int4` (nibbles sign-extended)."""
    b = _buf(buf, "int4", n_rows, K)
    f = np.stack([b & 0xF, b >> 4], axis=-1).reshape(n_rows, -1).astype(np.int8)
    return ((f ^ 8) - 8)[:, :K].astype(np.int8)


# -------------------------------------------------------------------------------------- generic
_PACK = {"2bit": pack_2bit, "base3": pack_base3, "planes": pack_planes, "int4": pack_int4}
_UNPACK = {"2bit": unpack_2bit, "base3": unpack_base3, "planes": unpack_planes, "int4": unpack_int4}


def pack(fmt: str, codes: np.ndarray) -> np.ndarray:
    """Pack with the format named ``fmt`` (one of FORMATS)."""
    if fmt not in _PACK:
        raise ValueError(f"unknown pack format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return _PACK[fmt](codes)


def unpack(fmt: str, buf: np.ndarray | bytes, n_rows: int, K: int) -> np.ndarray:
    """Unpack a buffer of format ``fmt`` into int8 [n_rows, K]."""
    if fmt not in _UNPACK:
        raise ValueError(f"unknown pack format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return _UNPACK[fmt](buf, n_rows, K)
