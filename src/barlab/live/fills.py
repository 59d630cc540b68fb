"""Fill prices of the paper emulator: where a working order fills in one bar, by the backtest
kernel's own rules (the functions of engine/orders.py), so the two compare trade by trade.

- market: the bar's open. ``opg``: the open of a session's first bar; ``cls``: the close of its
  last bar (a limit price must be marketable there, else the order expires).
- limit: a buy fills when the bar trades at or below the limit: at the open if it gapped
  through, else at the limit. Sells mirror. Limit prices are not slipped.
- stop (and trailing stop): a buy triggers when the bar trades at or above the stop and fills at
  the worse of the open and the stop. Sells mirror.
- stop_limit: in the triggering bar it fills at the stop rule's price only if that is within
  the limit; otherwise it rests as a plain limit order from the next bar.
- trailing stop: the watermark (``hwm``) starts at the last close known at submit, as
  Alpaca's starts at the price at submit, and follows the high (sells) or low (buys) of each
  later bar the order did not fill in; the stop is ``hwm x (1 -/+ trail_percent / 100)`` (or
  ``hwm -/+ trail_price``), tested against the bar after: the kernel's trailing stop order.
- bracket / OCO exits (:func:`exit_pair_fill`): the take-profit limit and the stop of one
  position, after the open's fills (also in the bar the entry filled in). An open beyond a
  level fills that leg at the open; a bar whose range holds both levels fills the stop. That
  is barlab's ``fill_policy="pessimistic"``: the real exchange decides by the sequence of
  trades inside the bar, which minute bars do not show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from barlab.engine.orders import (
    KIND_STOP_LOSS,
    KIND_TAKE_PROFIT,
    exit_fill_nb,
    resting_fill_nb,
    stop_touched_nb,
    trailing_level_nb,
)
from barlab.live.paper_orders import PaperOrder


@dataclass(frozen=True, slots=True)
class BarPrices:
    """One symbol's bar: prices in dollars; ``first``/``last``: it opens or closes a session."""

    open: float
    high: float
    low: float
    close: float
    first: bool
    last: bool


@dataclass(frozen=True, slots=True)
class Fill:
    """Where an order fills in a bar: ``price`` before slippage (None: not this bar);
    ``protected``: a limit price (never slipped); ``triggered``: a stop-limit's stop was reached."""

    price: float | None
    protected: bool = False
    triggered: bool = False


NO_FILL = Fill(None)


def fill_in_bar(order: PaperOrder, bar: BarPrices) -> Fill:
    """Where ``order`` fills in ``bar``, if it does (pure: the caller applies ``triggered``)."""
    side, kind = order.side, order.type
    if order.time_in_force == "opg":
        return _at(bar.open, order.limit_price, side) if bar.first else NO_FILL
    if order.time_in_force == "cls":
        return _at(bar.close, order.limit_price, side) if bar.last else NO_FILL
    if kind == "market":
        return Fill(bar.open)
    lim = math.nan if order.limit_price is None else order.limit_price
    stop = math.nan
    if kind != "limit" and not (kind == "stop_limit" and order.triggered):
        assert order.stop_price is not None, "stop orders carry a stop price"
        stop = order.stop_price
    price, filled, protected = resting_fill_nb(side, bar.open, bar.high, bar.low, lim, stop)
    if filled:
        return Fill(price, protected=protected)
    stop_limit = kind == "stop_limit" and not math.isnan(stop)
    if stop_limit and stop_touched_nb(side, bar.high, bar.low, stop):
        return Fill(None, triggered=True)  # a plain limit order from the next bar
    return NO_FILL


def _at(price: float, limit: float | None, side: int) -> Fill:
    """An auction fill at ``price`` (open or close), within ``limit`` when there is one."""
    if limit is None:
        return Fill(price)
    ok = price <= limit if side > 0 else price >= limit
    return Fill(price, protected=True) if ok else NO_FILL


def trail(order: PaperOrder, bar: BarPrices) -> None:
    """Move a trailing stop's watermark with a bar it did not fill in, and its stop with it."""
    if order.hwm is None:
        order.hwm = bar.high if order.side < 0 else bar.low
    elif order.side < 0:
        order.hwm = max(order.hwm, bar.high)
    else:
        order.hwm = min(order.hwm, bar.low)
    order.stop_price = trailing_stop_price(order)


def trailing_stop_price(order: PaperOrder) -> float:
    """The stop of a trailing order from its watermark: below it for sells, above for buys
    (not rounded: the kernel's ``trailing_level_nb`` to the last bit, with ``trail_percent``
    = 100 x its trail)."""
    hwm = order.hwm
    assert hwm is not None
    if order.trail_price is not None:
        return hwm - order.trail_price if order.side < 0 else hwm + order.trail_price
    trail = (order.trail_percent or 0.0) / 100.0
    return float(trailing_level_nb(1 if order.side > 0 else -1, hwm, hwm, trail))


def exit_pair_fill(stop: PaperOrder, target: PaperOrder, bar: BarPrices) -> tuple[str, Fill]:
    """Which of a position's two exit orders fills in ``bar`` (``"stop"``, ``"target"`` or
    ``""``) and where, before slippage (the rule of the kernel's ``exit_fill_nb``, pessimistic:
    see the module docstring). ``stop`` is a stop order and ``target`` a limit order on the
    same side (a sell for a long)."""
    s, g = stop.stop_price, target.limit_price
    assert s is not None and g is not None
    direction = -stop.side  # a sell exits a long
    kind, price, _ = exit_fill_nb(
        direction, bar.open, bar.high, bar.low, s, KIND_STOP_LOSS, g, False, True
    )
    if kind == KIND_TAKE_PROFIT:
        return "target", Fill(price, protected=True)
    if kind:
        return "stop", Fill(price)
    return "", NO_FILL
