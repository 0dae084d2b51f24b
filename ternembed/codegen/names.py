# SPDX-License-Identifier: Apache-2.0
"""Model-supplied strings (tensor, op and model names) made harmless for C source.

Nothing from a .tflite file reaches generated C except through these three functions:

* ``c_identifier``: letters, digits and ``_`` only, never starting with a digit, never a C
  keyword or a reserved name (leading ``_`` + capital or double underscore);
* ``c_comment``: printable ASCII only; every other byte, ``%``, ``\\`` and ``?`` (trigraphs:
  ``-std=c99`` turns ``??/`` into a backslash) become ``%XX``; ``*/`` and ``/*`` are split,
  so the text can neither end the comment nor start a nested one, nor splice lines;
* ``c_string``: a C string literal; bytes outside printable ASCII and ``"``, ``\\``, ``?``
  are written as three-digit octal escapes, which cannot run into the next character.
"""
from __future__ import annotations

import re

C_KEYWORDS = frozenset("""
auto break case char const continue default do double else enum extern float for goto if inline
int long register restrict return short signed sizeof static struct switch typedef union unsigned
void volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic _Noreturn
_Static_assert _Thread_local asm typeof main NULL
""".split())

_COMMENT_SAFE = re.compile(r"[A-Za-z0-9 _.,:;+=()<>#@!&|^~\[\]{}'\-*/$`]")


def c_identifier(text: str, prefix: str = "te_", max_len: int = 48) -> str:
    """A valid, non-reserved C identifier made from ``text`` (not guaranteed unique: see Namer)."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", str(text))
    s = re.sub(r"_+", "_", s).strip("_")
    if not s:
        s = "x"
    if s[0].isdigit() or s in C_KEYWORDS:
        s = "_" + s
    s = (prefix + s) if prefix else s
    if s.startswith("__") or (s.startswith("_") and len(s) > 1 and s[1].isupper()):
        s = "x" + s
    return s[:max_len].rstrip("_") or "x"


class Namer:
    """Hands out unique identifiers: a second request for the same base gets a numeric suffix."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, text: str, prefix: str = "te_") -> str:
        base = c_identifier(text, prefix)
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name


def c_comment(text: str, max_len: int = 200) -> str:
    """Text safe inside a /* ... */ comment (one line, printable ASCII)."""
    out = []
    for ch in str(text):
        if _COMMENT_SAFE.fullmatch(ch):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    s = "".join(out)
    while "*/" in s or "/*" in s:
        s = s.replace("*/", "* /").replace("/*", "/ *")
    if len(s) > max_len:
        s = s[:max_len - 3] + "..."
        while "*/" in s or "/*" in s:  # truncation cannot create one, but stay safe
            s = s.replace("*/", "* /").replace("/*", "/ *")
    return s


def c_string(text: str | bytes) -> str:
    """A C string literal (with the quotes) holding the UTF-8 bytes of ``text``."""
    data = text if isinstance(text, bytes) else str(text).encode("utf-8")
    out = ['"']
    for b in data:
        ch = chr(b)
        if 0x20 <= b < 0x7F and ch not in '"\\?':
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    out.append('"')
    return "".join(out)
