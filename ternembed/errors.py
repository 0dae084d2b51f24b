# SPDX-License-Identifier: Apache-2.0
"""Errors a user can act on. Each one is printed as a single line by the CLI (exit code 2)."""


class TernembedError(Exception):
    """Base class: a problem with the user's input or environment, not a bug in ternembed."""

    exit_code = 2


class ModelError(TernembedError):
    """The .tflite file cannot be read (empty, truncated, not a flatbuffer, inconsistent)."""


class UnsupportedOpError(TernembedError):
    """The model uses an operator (or an option of one) that ternembed cannot run."""


class InputError(TernembedError):
    """Input data for emulate/validate/calibrate has the wrong shape, dtype or format."""


class CalibrationError(TernembedError):
    """A float model needs calibration data and none (or unusable data) was given."""


class UnknownBoardError(TernembedError):
    """The board name is not one of the known boards."""
