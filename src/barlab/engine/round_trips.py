"""How the kernel's fills become round trips (its trade log): a trade opens with the first fill
that takes a symbol's position away from flat and closes with the one that brings it back (or
reverses it); its entry and exit prices are the averages of the fills on each side, its PnL
is net of every fill's fees, and its MAE/MFE come from the extreme prices seen while it was
open."""

from __future__ import annotations

import numpy as np

from barlab.engine.jit import helper_nb


@helper_nb
def excursions_nb(k, trades_i, trades_f, seen_hi, seen_lo):
    """MAE and MFE of trade ``k`` (fractions of its average entry price) from the extreme
    prices seen while it was open."""
    entry = trades_f[k, 1]
    if trades_i[k, 1] == 1:
        trades_f[k, 5] = seen_lo / entry - 1.0
        trades_f[k, 6] = seen_hi / entry - 1.0
    else:
        trades_f[k, 5] = 1.0 - seen_hi / entry
        trades_f[k, 6] = 1.0 - seen_lo / entry


@helper_nb
def book_nb(j, t, side, qty, px, fee, old, trades_i, trades_f, n_trades, trade_at, flows, seen):
    """Add a fill to symbol ``j``'s round trip: close the old position first, then open.

    ``flows[j]`` holds the open trade's [bought qty, bought $, sold qty, sold $, fees] and
    ``seen[j]`` the [highest, lowest] price seen while it is open. Returns the new trade count.
    """
    if trade_at[j] != -1:  # every fill's price was seen while the trade was open
        seen[j, 0] = max(seen[j, 0], px)
        seen[j, 1] = min(seen[j, 1], px)
    closing = min(qty, abs(old)) if old != 0.0 and np.sign(old) != side else 0.0
    if closing > 0.0:
        _add_fill_nb(flows, j, side, closing, px)
        flows[j, 4] += fee * closing / qty
        if closing == abs(old):
            k = trade_at[j]
            long = trades_i[k, 1] == 1
            trades_i[k, 3] = t
            trades_i[k, 4] = 0
            trades_f[k, 1] = (flows[j, 1] if long else flows[j, 3]) / trades_f[k, 0]
            trades_f[k, 2] = (flows[j, 3] / flows[j, 2]) if long else (flows[j, 1] / flows[j, 0])
            trades_f[k, 3] = flows[j, 3] - flows[j, 1] - flows[j, 4]
            trades_f[k, 4] = flows[j, 4]
            excursions_nb(k, trades_i, trades_f, seen[j, 0], seen[j, 1])
            trade_at[j] = -1
    opening = qty - closing
    if opening > 0.0:
        if trade_at[j] == -1:
            k = n_trades
            n_trades += 1
            trade_at[j] = k
            trades_i[k, 0] = j
            trades_i[k, 1] = side
            trades_i[k, 2] = t
            trades_i[k, 3] = -1
            trades_i[k, 4] = 1
            trades_i[k, 5] = 0
            trades_f[k, 0] = 0.0
            flows[j, :] = 0.0
            seen[j, 0] = px
            seen[j, 1] = px
        k = trade_at[j]
        trades_f[k, 0] += opening
        _add_fill_nb(flows, j, side, opening, px)
        flows[j, 4] += fee - (fee * closing / qty if closing > 0.0 else 0.0)
    return n_trades


@helper_nb
def _add_fill_nb(flows, j, side, qty, px):
    """Add ``qty`` shares at ``px`` to the bought (``side`` 1) or sold columns of ``flows[j]``."""
    at = 0 if side == 1 else 2
    flows[j, at] += qty
    flows[j, at + 1] += qty * px
