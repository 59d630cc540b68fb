"""The pure simulation zone: numba kernels and their Python wrappers."""
