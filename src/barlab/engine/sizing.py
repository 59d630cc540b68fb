"""Sizing: how a target becomes shares, and a broker's buying-power check at submit. One
definition each, used by the kernel (engine/kernel.py) and by the live bridge before each order
it sends.

The buying-power rule is Alpaca's (api/alpaca-trading.md §4 and §8): what new exposure may use
is ``margin x equity - (long market value + |short market value|)`` (the account's
``buying_power``: e.g. 2 x 100,008.30 - 1,902.50 = 198,114.10 in its sample account), never
below 0, less what open orders reserve. Short-sale proceeds raise cash but not buying power:
a short position uses buying power like a long one of the same value. Orders that add
exposure (buys to open, sells to open a short) reserve their shares at the check price as
soon as they are accepted; closing orders free nothing until they fill."""

from __future__ import annotations

import numpy as np
from numba import njit

from barlab.engine.costs import affordable_qty_nb
from barlab.engine.jit import helper_nb

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


@helper_nb
def gross_nb(pos, price):
    """Gross exposure in dollars: ``|pos|`` shares marked at ``price``, summed in column order
    (symbols without a position skipped, so an unknown price does not matter)."""
    total = 0.0
    for j in range(pos.shape[0]):
        if pos[j] != 0.0:
            total += abs(pos[j]) * price[j]
    return total


@njit(cache=True)
def buying_power_nb(equity, gross, margin):
    """Alpaca's buying power (dollars) before open orders: ``margin`` (the account's
    multiplier: 1 cash-like, 2 Reg T, 4 intraday) times ``equity``, less the ``gross``
    exposure of the positions (:func:`gross_nb`), never below 0. Long only that is cash plus
    ``margin - 1`` times the equity; with shorts it is that less twice their value (the
    proceeds sit in cash but are not spendable, and the position takes power like a long)."""
    return max(margin * equity - gross, 0.0)


@njit(cache=True)
def check_price_nb(side, last, limit, stop, buffer):
    """Dollars per share an order that adds exposure on ``side`` (+1 buy, -1 sell) reserves
    of the buying power: a buy with a limit (limit, stop-limit) its limit; a sell with a limit
    the larger of its limit and ``last`` plus ``buffer`` (Alpaca: "MAX(order's limit price,
    3% above the current ask price)"); any other order the larger of ``last`` and its stop
    (NaN: none), plus ``buffer`` (e.g. 0.03). ``last`` is the last close."""
    price = last
    if stop > price:  # comparisons with NaN are false: no stop (or no close) keeps the close
        price = stop
    price *= 1.0 + buffer
    if np.isnan(limit):
        return price
    if side > 0 or not price > limit:
        return limit
    return price


@njit(cache=True)
def afford_at_signal_nb(
    want, pos, last, limit, stop, buffer, power, rate, per_share, per_order, minimum, maximum,
    fractional,
):  # fmt: skip
    """A broker's buying-power check at submit, as ``size_on="signal"`` models it: the shares
    of a move from ``pos`` to ``want`` that add exposure (beyond closing the position) cost
    :func:`check_price_nb` each (from the last close ``last``, the order's ``limit`` and
    ``stop``, NaN: none, and the broker's ``buffer``) out of ``power`` (dollars,
    :func:`buying_power_nb` at the signal's close less what the orders checked before
    reserved); fewer are asked for when ``power`` does not cover them. Buys to open and sells
    to open a short are checked alike; the closing part costs nothing and frees nothing (not
    until it fills). Returns the new ``want`` and the power left. Used by the kernel at each
    signal and by the live bridge before each order it sends."""
    side = 1.0 if want > pos else -1.0
    closing = max(0.0, -pos) if side > 0 else max(0.0, pos)
    adding = max(0.0, abs(want - pos) - closing)
    check_px = check_price_nb(side, last, limit, stop, buffer)
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
