# SPDX-License-Identifier: Apache-2.0
"""Numpy reference kernels: the bit-exact model of firmware/kernels/*.c."""
