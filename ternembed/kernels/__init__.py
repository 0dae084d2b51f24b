"""Numpy reference kernels: the bit-exact model of firmware/kernels/*.c."""
