"""What happens at every bar's close: the account marked to the close, the positions recorded,
the halts of the risk rules updated; and :func:`close_quiet_bars_nb`, the kernel's short path
that closes a run of bars on which nothing trades."""

from __future__ import annotations

import numpy as np

from barlab.engine.jit import helper_nb


@helper_nb
def limits_nb(value, day_start_equity, daily_loss, peak, max_drawdown, halted, stopped):
    """The account's halts after a bar closes at equity ``value``: ``(halted, peak, stopped)``
    (the daily loss limit for the rest of the session, the highest equity so far, the max
    drawdown halt for good)."""
    halted |= value <= day_start_equity - daily_loss  # without branches: loops vectorise
    peak = max(peak, value)
    stopped |= value <= peak * (1.0 - max_drawdown)
    return halted, peak, stopped


@helper_nb
def any_held_nb(pos):
    """Is a position open in any symbol?"""
    j = 0
    while j < pos.shape[0] and pos[j] == 0.0:
        j += 1
    return j < pos.shape[0]


@helper_nb
def mark_to_close_nb(cash, close, high, low, pos, last, seen, held):
    """Equity at a bar's close: cash plus positions marked at their last known close. Also
    records the positions (into ``held``) and the extreme prices the open trades saw in the
    bar. ``close``, ``high``, ``low`` and ``held`` are the bar's rows (one value per symbol)."""
    value = cash
    for j in range(pos.shape[0]):
        c = close[j]
        if np.isfinite(c):
            last[j] = c
        if pos[j] != 0.0:
            value += pos[j] * last[j]
            if np.isfinite(high[j]):
                seen[j, 0] = max(seen[j, 0], high[j])
                seen[j, 1] = min(seen[j, 1], low[j])
        held[j] = pos[j]
    return value


@helper_nb
def close_quiet_bars_nb(
    t, end, cash, close, high, low, day_id, pos, last, seen, positions, equity, cash_out,
    daily_loss, max_drawdown, prev_equity, day_start_equity, halted, peak, stopped,
):  # fmt: skip
    """Close bars ``t`` to ``end - 1``, on which nothing trades: each bar's equity, cash and
    positions, and the halts. Returns ``(prev_equity, day_start_equity, halted, peak,
    stopped)`` after the last one. The same numbers as :func:`mark_to_close_nb` and
    :func:`limits_nb` bar by bar, computed a symbol at a time over slices: loops that start
    at 0 and hold no inner loop, which the compiler makes twice as fast."""
    if t == end:
        return prev_equity, day_start_equity, halted, peak, stopped
    values = equity[t:end]
    values[:] = cash
    cash_out[t:end] = cash
    for j in range(pos.shape[0]):
        closes, held = close[t:end, j], positions[t:end, j]
        held[:] = pos[j]
        known = last[j]
        if pos[j] == 0.0:  # only its last known close matters
            for k in range(closes.size - 1, -1, -1):
                if np.isfinite(closes[k]):
                    known = closes[k]
                    break
        else:
            highs, lows = high[t:end, j], low[t:end, j]
            highest, lowest = seen[j, 0], seen[j, 1]
            for k in range(closes.size):
                known = closes[k] if np.isfinite(closes[k]) else known
                values[k] += pos[j] * known
                if np.isfinite(highs[k]):  # max() and min(), as mark_to_close_nb
                    highest = highs[k] if highs[k] > highest else highest
                    lowest = lows[k] if lows[k] < lowest else lowest
            seen[j, 0], seen[j, 1] = highest, lowest
        last[j] = known
    days = day_id[t:end]
    day = day_id[t - 1] if t > 0 else ~day_id[0]  # ~: another session than the first bar's
    for k in range(values.size):
        if days[k] != day:  # a new session
            day = days[k]
            day_start_equity = prev_equity
            halted = False
        prev_equity = values[k]
        halted, peak, stopped = limits_nb(
            prev_equity, day_start_equity, daily_loss, peak, max_drawdown, halted, stopped
        )
    return prev_equity, day_start_equity, halted, peak, stopped
