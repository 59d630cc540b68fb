"""Indicators over 2-D arrays (n_bars, n_symbols), computed column by column in numba.

NaN marks a missing bar: it is skipped (the window counts the last ``window`` present bars) and
the output at that row is NaN too.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from barlab.errors import StrategyError


@njit(cache=True)
def _sma_columns_nb(x, window, out):
    # one column at a time, state in registers: fastest for a few symbols
    n, m = x.shape
    buf = np.empty(window)
    for j in range(m):
        total = 0.0
        seen = 0
        slot = 0
        for t in range(n):
            v = x[t, j]
            if np.isnan(v):
                out[t, j] = np.nan
                continue
            if seen >= window:
                total -= buf[slot]
            buf[slot] = v
            total += v
            seen += 1
            slot = slot + 1 if slot + 1 < window else 0
            out[t, j] = total / window if seen >= window else np.nan


@njit(cache=True)
def _sma_rows_nb(x, window, out):
    # row by row (the arrays are C-contiguous), one ring buffer per column: for many symbols
    n, m = x.shape
    buf = np.empty((window, m))
    total = np.zeros(m)
    seen = np.zeros(m, dtype=np.int64)
    slots = np.zeros(m, dtype=np.int64)
    for t in range(n):
        for j in range(m):
            v = x[t, j]
            if np.isnan(v):
                out[t, j] = np.nan
                continue
            slot = slots[j]
            if seen[j] >= window:
                total[j] -= buf[slot, j]
            buf[slot, j] = v
            total[j] += v
            seen[j] += 1
            slots[j] = slot + 1 if slot + 1 < window else 0
            out[t, j] = total[j] / window if seen[j] >= window else np.nan


_ROW_WISE_FROM = 9  # symbols; measured: column loops win below, row loops above


def sma(x: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average of the last ``window`` present values of each column.

    Parameters
    ----------
    x : float64 array (n_bars, n_symbols), e.g. ``bars.close``
    window : int
        Number of bars, >= 1, e.g. ``50``.

    Returns
    -------
    float64 array of x's shape; NaN until a column has ``window`` values, and where x is NaN.
    """
    if int(window) != window or window < 1:
        raise StrategyError(f"sma window must be a whole number >= 1, got {window!r}")
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if arr.ndim == 1:
        return sma(arr[:, None], window)[:, 0]
    out = np.empty_like(arr)
    kernel = _sma_rows_nb if arr.shape[1] >= _ROW_WISE_FROM else _sma_columns_nb
    kernel(arr, int(window), out)
    return out


def crossed_above(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True at t where ``a[t-1] < b[t-1]`` and ``a[t] > b[t]`` (strict; NaN never crosses)."""
    out = np.zeros(a.shape, dtype=np.bool_)
    with np.errstate(invalid="ignore"):
        out[1:] = (a[:-1] < b[:-1]) & (a[1:] > b[1:])
    return out


def crossed_below(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True at t where ``a[t-1] > b[t-1]`` and ``a[t] < b[t]``."""
    return crossed_above(b, a)
