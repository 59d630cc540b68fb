"""How the kernel's helpers are compiled."""

from __future__ import annotations

from numba import njit

helper_nb = njit(cache=True, _nrt=False)
"""Decorator for the functions the simulation loop calls on every bar or order. They read and
write arrays the kernel owns and allocate or return none, so they are compiled without numba's
reference counting (its ``_nrt`` option): a call then no longer takes and drops a reference on
each array it is passed, two atomic operations per array that cost more than most helpers' own
work (the W1 kernel went from 1.0 to 0.85 ms). A function that allocates or returns an array
must use ``njit`` instead."""
