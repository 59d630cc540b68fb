"""Order types and where they fill on a bar: the one definition of each fill rule.

The kernel (engine/kernel.py) applies these functions bar by bar; the live bridge computes the
levels of the exits it attaches to an entry with :func:`exit_levels_nb`, and the paper
exchange (live/fills.py) fills by the same rules. Prices are dollars; ``side`` is +1 (buy)
or -1 (sell); NaN means "no such price".

- market: the next bar's open (slippage applied by the caller).
- limit: a buy fills when a bar trades at or below the limit: at the open if it gapped
  through, else at the limit; never slipped (the limit protects the price). Sells mirror.
- stop: a buy triggers when a bar trades at or above the stop and fills at the worse of the
  open and the stop (slippage applied). Sells mirror.
- stop-limit: in the triggering bar it fills at the stop rule's price only if that is within
  the limit; after that it rests as a plain limit order.
- trailing stop order: a stop whose level follows the market: ``trail`` (a fraction) above
  the lowest low (buys) or below the highest high (sells) seen since the order was placed,
  starting at the close of the bar that placed it; a bar is tested against the level set by
  the bars before it.
- attached exits (stop-loss, take-profit, trailing stop; fractions of the entry's reference
  price or multiples of the ATR at the entry's signal bar): see :func:`exit_levels_nb` and
  :func:`exit_fill_nb`. Stops are slipped; a take-profit is a limit order, never slipped.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from barlab.engine.costs import fill_price_nb

# statuses in the order log
ORDER_FILLED = 0
ORDER_RESIZED = 1  # filled, with fewer shares than asked (reason says why)
ORDER_REFUSED = 2  # nothing filled (reason says why)
ORDER_PARTIAL = 3  # filled in part; the rest waits for the next bars (volume participation)
ORDER_CANCELLED = 4  # a resting order replaced by a newer instruction before it filled
ORDER_EXPIRED = 5  # a day order whose session ended before it filled

STATUS_NAMES = {
    ORDER_FILLED: "filled",
    ORDER_RESIZED: "resized",
    ORDER_REFUSED: "refused",
    ORDER_PARTIAL: "partially_filled",
    ORDER_CANCELLED: "cancelled",
    ORDER_EXPIRED: "expired",
}

# kinds of order: instructions of the strategy, and the exits attached to entries
KIND_MARKET = 0
KIND_STOP_LOSS = 1
KIND_TAKE_PROFIT = 2
KIND_TRAILING_STOP = 3  # the attached trailing exit
KIND_LIMIT = 4
KIND_STOP = 5
KIND_STOP_LIMIT = 6
KIND_TRAILING_ORDER = 7  # an instruction given as a trailing stop order

KIND_NAMES = {
    KIND_MARKET: "market",
    KIND_STOP_LOSS: "stop_loss",
    KIND_TAKE_PROFIT: "take_profit",
    KIND_TRAILING_STOP: "trailing_stop",
    KIND_LIMIT: "limit",
    KIND_STOP: "stop",
    KIND_STOP_LIMIT: "stop_limit",
    KIND_TRAILING_ORDER: "trailing_stop_order",
}


@njit(cache=True)
def order_kind_nb(lim, stp, trail):
    """The kind of an instruction from its prices (NaN: not given)."""
    if not np.isnan(trail):
        return KIND_TRAILING_ORDER
    if np.isnan(stp):
        return KIND_MARKET if np.isnan(lim) else KIND_LIMIT
    return KIND_STOP if np.isnan(lim) else KIND_STOP_LIMIT


@njit(cache=True)
def stop_touched_nb(side, high, low, stp):
    """Did a bar reach a buy (``side`` +1) or sell stop at ``stp``?"""
    return high >= stp if side == 1 else low <= stp


@njit(cache=True)
def resting_fill_nb(side, open_, high, low, lim, stp):
    """Where a resting limit, stop or stop-limit order fills in one bar, before slippage:
    ``(price, triggered, limit_protected)``; ``triggered`` False when it does not fill."""
    if not np.isnan(stp):
        if not stop_touched_nb(side, high, low, stp):
            return 0.0, False, False
        price = max(open_, stp) if side == 1 else min(open_, stp)
        if np.isnan(lim):
            return price, True, False
        within = price <= lim if side == 1 else price >= lim
        return price, within, True
    if side == 1:
        if open_ <= lim:
            return open_, True, True
        return lim, low <= lim, True
    if open_ >= lim:
        return open_, True, True
    return lim, high >= lim, True


@njit(cache=True)
def trailing_level_nb(side, lowest, highest, trail):
    """The stop of a trailing stop order: ``trail`` above the lowest low since it was placed
    (a buy) or below the highest high (a sell)."""
    if side == 1:
        return lowest * (1.0 + trail)
    return highest * (1.0 - trail)


@njit(cache=True)
def intended_side_nb(tg, held):
    """The side an unfilled instruction would have traded: toward its target's sign."""
    if tg > 0.0 or (tg == 0.0 and held < 0.0):
        return 1
    return -1


@njit(cache=True)
def order_px_nb(base, lim, stp, side, slippage_bps):
    """The price an instruction is sized at: its limit, else its stop or ``base`` slipped."""
    if not np.isnan(lim):
        return lim
    if not np.isnan(stp):
        return fill_price_nb(stp, side, slippage_bps)
    return fill_price_nb(base, side, slippage_bps)


@njit(cache=True)
def tick_nb(price):
    """``price`` on the tick a US broker accepts: whole cents at or above $1, 1/100 cent
    below (dollars, e.g. 97.8824 -> 97.88; NaN stays NaN)."""
    scale = 100.0 if price >= 1.0 else 10_000.0
    return np.rint(price * scale) / scale


@njit(cache=True)
def exit_levels_nb(direction, ref, best, atr, sl, tp, trail, sl_atr, tp_atr, trail_atr):
    """The levels of the exits attached to a position: ``(stop, stop_kind, target)``.

    ``direction`` is +1 (long) or -1 (short); ``ref`` the entry's reference price (the fill
    bar's open, or with ``size_on="signal"`` the signal bar's close); ``best`` the best price
    since entry (highest high for a long) of the bars before this one; ``atr`` the ATR at the
    entry's signal bar. Distances are fractions (``sl``, ``tp``, ``trail``; of ``ref``, and of
    ``best`` for the trailing stop) or ATR multiples (``*_atr``); ``inf`` = off. Of a
    stop-loss and a trailing stop the tighter one is the stop (a tie: the stop-loss). The
    stop-loss and the take-profit are prices a broker accepts (:func:`tick_nb`), as a live
    bracket order sends them; the trailing level moves with the market and is not rounded.
    ``stop_kind`` is 0 and ``stop`` NaN when there is no stop; ``target`` is NaN when there is
    none (also while the ATR is still unknown).
    """
    d = float(direction)
    stop = np.nan
    kind = 0
    if sl < np.inf:
        stop = tick_nb(ref * (1.0 - d * sl))
    elif sl_atr < np.inf:
        stop = tick_nb(ref - d * sl_atr * atr)
    if np.isfinite(stop):
        kind = KIND_STOP_LOSS
    level = np.nan
    if trail < np.inf:
        level = best * (1.0 - d * trail)
    elif trail_atr < np.inf:
        level = best - d * trail_atr * atr
    if np.isfinite(level) and (kind == 0 or level * d > stop * d):
        stop = level
        kind = KIND_TRAILING_STOP
    target = np.nan
    if tp < np.inf:
        target = tick_nb(ref * (1.0 + d * tp))
    elif tp_atr < np.inf:
        target = tick_nb(ref + d * tp_atr * atr)
    return stop, kind, target


@njit(cache=True)
def exit_fill_nb(direction, open_, high, low, stop, stop_kind, target, optimistic, gap_check):
    """Which attached exit fills in this bar and at what price before slippage:
    ``(kind, price, ambiguous)``, kind 0 when none does.

    With ``gap_check`` an open already beyond a level fills there (not on the bar a position
    was entered at its open: that open is the entry). A bar whose range holds both the stop and
    the target is ambiguous: the stop fills unless ``optimistic``.
    """
    d = float(direction)
    # in long terms (prices times d): a stop is hit below it, a target above it
    o, lo, hi = open_ * d, (low if d > 0 else high) * d, (high if d > 0 else low) * d
    s = stop * d if stop_kind != 0 else -np.inf
    g = target * d if np.isfinite(target) else np.inf
    if gap_check and o <= s:
        return stop_kind, open_, False
    if gap_check and o >= g:
        return KIND_TAKE_PROFIT, open_, False
    hit_stop = stop_kind != 0 and lo <= s
    hit_target = g < np.inf and hi >= g
    if hit_stop and hit_target:
        if optimistic:
            return KIND_TAKE_PROFIT, target, True
        return stop_kind, stop, True
    if hit_stop:
        return stop_kind, stop, False
    if hit_target:
        return KIND_TAKE_PROFIT, target, False
    return 0, 0.0, False
