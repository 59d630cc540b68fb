"""The exits attached to open positions while the kernel holds them: their levels, kept per
entry (and moved with a trailing stop's best price), and the scan for the first bar that
gives an instruction or fills one of them (:func:`quiet_held_until_nb`), which lets the
kernel close the bars before it on its short path. The fill rules themselves are
:func:`barlab.engine.orders.exit_levels_nb` and :func:`barlab.engine.orders.exit_fill_nb`."""

from __future__ import annotations

import numpy as np

from barlab.engine.instructions import has_instruction_nb
from barlab.engine.jit import helper_nb
from barlab.engine.orders import exit_fill_nb, exit_levels_nb


@helper_nb
def exit_levels_of_nb(held, ref, best, atr, exits):
    """:func:`exit_levels_nb` for a position of ``held`` shares; ``exits`` holds the run's
    distances in its order. The kernel keeps them until the entry or its best price changes:
    computed on every bar they would cost more than the rest of a quiet bar."""
    sl, tp, trail, sl_atr, tp_atr, trail_atr = exits
    d = 1 if held > 0.0 else -1
    return exit_levels_nb(d, ref, best, atr, sl, tp, trail, sl_atr, tp_atr, trail_atr)


@helper_nb
def quiet_held_until_nb(
    t, target, pos, open_, high, low, best, entry_px, entry_atr, stop_at, stop_kind, target_at,
    exits, trails, optimistic, below, above,
):  # fmt: skip
    """The first bar from ``t`` on that gives an instruction or fills an exit attached to an
    open position (``n``: none), the positions staying as they are; the best prices and the
    exit levels that trail them move with the bars before it. ``below``/``above``: scratch,
    one float per symbol."""
    m = pos.shape[0]
    if not trails:  # the levels stay: one comparison each per bar
        for j in range(m):
            d = 1.0 if pos[j] > 0.0 else -1.0
            below[j] = stop_at[j] * d if stop_kind[j] != 0 else -np.inf
            above[j] = target_at[j] * d if np.isfinite(target_at[j]) else np.inf
        return _untouched_until_nb(t, target, pos, open_, high, low, below, above)
    while t < target.shape[0] and not has_instruction_nb(target, t):
        for j in range(m):
            if pos[j] != 0.0 and np.isfinite(open_[t, j]):
                kind, _, _ = exit_fill_nb(
                    1 if pos[j] > 0.0 else -1, open_[t, j], high[t, j], low[t, j], stop_at[j],
                    stop_kind[j], target_at[j], optimistic, np.bool_(True),
                )  # fmt: skip
                if kind != 0:
                    return t
        if trails:
            for j in range(m):
                if pos[j] != 0.0 and np.isfinite(open_[t, j]):
                    best[j] = best_price_nb(pos[j], best[j], high[t, j], low[t, j])
                    stop_at[j], stop_kind[j], target_at[j] = exit_levels_of_nb(
                        pos[j], entry_px[j], best[j], entry_atr[j], exits
                    )
        t += 1
    return t


@helper_nb
def _untouched_until_nb(t, target, pos, open_, high, low, below, above):
    """The first bar from ``t`` on that gives an instruction or reaches an exit level of an open
    position (``n``: none). ``below``/``above`` are each symbol's stop and target in long terms
    (the level times the position's sign; -inf/inf: none): a bar reaches one when its open or
    low (a long's; a short's high) is at or below the stop, or its open or high at or above the
    target, which is when :func:`exit_fill_nb` fills (symbols without a bar skipped). Without
    branches on the prices: a third faster than asking :func:`exit_fill_nb` on every bar."""
    targets, opens, highs, lows = target[t:], open_[t:], high[t:], low[t:]  # slices: from 0
    for k in range(targets.shape[0]):
        hit = False
        for j in range(targets.shape[1]):
            o = opens[k, j]
            if pos[j] > 0.0:
                lo, hi, at = lows[k, j], highs[k, j], o
            else:
                lo, hi, at = -highs[k, j], -lows[k, j], -o
            touched = (at <= below[j]) | (lo <= below[j]) | (at >= above[j]) | (hi >= above[j])
            hit |= (not np.isnan(targets[k, j])) | ((pos[j] != 0.0) & np.isfinite(o) & touched)
        if hit:
            return t + k
    return target.shape[0]


@helper_nb
def best_price_nb(held, best, high, low):
    """The best price since entry of a position of ``held`` shares after a bar."""
    return max(best, high) if held > 0.0 else min(best, low)
