"""Sizing: how a target becomes shares, and a broker's buying-power check at submit. One
definition each, used by the kernel (engine/kernel.py) and by the live bridge before each order
it sends."""

from __future__ import annotations

import numpy as np
from numba import njit

from barlab.engine.costs import affordable_qty_nb

# how a target is read (barlab.strategy.SIZE_TYPES, in this order)
SIZE_EQUAL = 0
SIZE_WEIGHT = 1
SIZE_NOTIONAL = 2
SIZE_SHARES = 3


@njit(cache=True)
def whole_nb(qty, fractional):
    """``qty`` rounded down to whole shares unless ``fractional``."""
    if fractional:
        return qty
    return float(int(qty))


@njit(cache=True)
def want_nb(sizing, tg, equity, alloc, px, rate, per_share, fractional):
    """Signed shares target ``tg`` asks for, sized on ``equity`` at price ``px`` (dollars)."""
    if sizing == SIZE_SHARES:
        return np.sign(tg) * whole_nb(abs(tg), fractional)
    if sizing == SIZE_EQUAL:
        value = abs(tg) * alloc * max(equity, 0.0)
    elif sizing == SIZE_WEIGHT:
        value = abs(tg) * max(equity, 0.0)
    else:
        value = abs(tg)
    return np.sign(tg) * whole_nb(value / (px * (1.0 + rate) + per_share), fractional)


@njit(cache=True)
def afford_at_signal_nb(
    want, pos, check_px, power, rate, per_share, per_order, minimum, maximum, fractional
):  # fmt: skip
    """A broker's buying-power check at submit, as ``size_on="signal"`` models it: the shares
    of a move from ``pos`` to ``want`` that add exposure (beyond closing the position) cost
    ``check_px`` each (the last close plus the broker's buffer, dollars) out of ``power``
    (dollars); fewer are asked for when ``power`` does not cover them. Returns the new
    ``want`` and the power left. Used by the kernel at each signal and by the live bridge
    before each order it sends."""
    side = 1.0 if want > pos else -1.0
    closing = max(0.0, -pos) if side > 0 else max(0.0, pos)
    adding = max(0.0, abs(want - pos) - closing)
    if adding <= 0.0 or not check_px > 0.0:
        return want, power
    if adding * check_px > power:
        most = affordable_qty_nb(
            power, check_px, rate, per_share, per_order, minimum, maximum, fractional
        )
        if most < adding:
            want -= side * (adding - most)
            adding = most
    return want, power - adding * check_px
