"""Entry/exit booleans to targets: the strategy state machine, vectorized for backtests and
stepped bar by bar by the live bridge."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def signals_to_target_nb(entries, exits, short_entries, short_exits, out):
    """Turn entry/exit booleans into targets (+1, -1, 0; NaN where nothing changes).

    An entry and an opposite signal on the same bar cancel out; an exit acts only on a position
    of its own direction.
    """
    n, m = entries.shape
    for j in range(m):
        state = 0
        for t in range(n):
            e = entries[t, j]
            x = exits[t, j]
            se = short_entries[t, j]
            sx = short_exits[t, j]
            new = signal_step_nb(state, e, x, se, sx)
            out[t, j] = np.nan if new == state else float(new)
            state = new


@njit(cache=True)
def signal_step_nb(state, entry, exit_, short_entry, short_exit):
    """The side (+1, -1, 0) held after one row of entry/exit booleans, from ``state``: the rule
    of :func:`signals_to_target_nb`, also stepped bar by bar by the live bridge."""
    if entry and not exit_ and not short_entry:
        return 1
    if short_entry and not short_exit and not entry:
        return -1
    if (state == 1 and exit_ and not entry) or (state == -1 and short_exit and not short_entry):
        return 0
    return state


@njit(cache=True, nogil=True)
def count_targets_nb(target):
    """``(instructions, infinities)`` of a 2-D target array: the cells that are not NaN, and
    those that are inf or -inf. One pass without branches."""
    given = 0
    infinite = 0
    cells = target.ravel()  # a view of a C-contiguous array: one loop, vectorised
    for i in range(cells.size):
        given += cells[i] == cells[i]
        infinite += abs(cells[i]) == np.inf
    return given, infinite
