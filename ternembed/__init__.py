# SPDX-License-Identifier: Apache-2.0
"""ternembed: ternary-weight neural networks on Arm Cortex-M microcontrollers."""

__version__ = "0.1.0"
