# SPDX-License-Identifier: Apache-2.0
"""Argument types for the command line: every number is range-checked where it is parsed.

argparse turns the ValueError of a type function into one line naming the option and exits 2,
so `--timeout nan`, `--runs 0` or `--group 1000` never reach the code that would misuse them.
"""
from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                         f"got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def in_range(kind: type, low: float | None = None, high: float | None = None, *, low_open: bool = False):
    """A type function for numbers in [low, high] (or (low, high] with low_open)."""
    def parse(text: str):
        value = _number(text, kind)
        too_low = low is not None and (value <= low if low_open else value < low)
        if too_low or (high is not None and value > high):
            lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
            hi = "" if high is None else f"<= {high:g}"
            raise argparse.ArgumentTypeError(f"must be {' and '.join(x for x in (lo, hi) if x)}, got {text}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


positive_int = in_range(int, 1)
non_negative_int = in_range(int, 0)
positive_seconds = in_range(float, 0, low_open=True)
fraction = in_range(float, 0, 1)


# Taps per ternary group along the reduction axis: --group, and group=N in --layer specs and config
# files (quantize.policy); more than a row holds would be cut to the row under a misleading label.
GROUP_MIN, GROUP_MAX = 4, 64


def group_size(text: str) -> str:
    """--group: 'channel' (one group per output channel) or GROUP_MIN..GROUP_MAX taps."""
    if text.strip().lower() in ("channel", "ch"):
        return "channel"
    value = _number(text, int)
    if not GROUP_MIN <= value <= GROUP_MAX:
        raise argparse.ArgumentTypeError(f"must be {GROUP_MIN}..{GROUP_MAX} or 'channel', got {text}")
    return str(value)
