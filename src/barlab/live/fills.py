"""Fill prices of the paper emulator: where a working order fills in one bar, by the same rules
as barlab's backtest kernel (engine/kernel.py), so the two can be compared trade by trade.

- market: the bar's open. ``opg``: the open of a session's first bar; ``cls``: the close of its
  last bar (a limit price must be marketable there, else the order expires).
- limit: a buy fills when the bar trades at or below the limit: at the open if it gapped
  through, else at the limit. Sells mirror. Limit prices are not slipped.
- stop (and trailing stop): a buy triggers when the bar trades at or above the stop and fills at
  the worse of the open and the stop. Sells mirror.
- stop_limit: in the triggering bar it fills at the stop rule's price only if that is within
  the limit; otherwise it rests as a plain limit order from the next bar.
- trailing stop: the stop follows the best high (sells) or low (buys) of the bars *before*.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    if kind == "limit" or (kind == "stop_limit" and order.triggered):
        return _limit(order.limit_price, side, bar)  # type: ignore[arg-type]
    stop = order.stop_price
    assert stop is not None, "stop orders carry a stop price"
    touched = bar.high >= stop if side > 0 else bar.low <= stop
    if not touched:
        return NO_FILL
    price = max(bar.open, stop) if side > 0 else min(bar.open, stop)
    if kind == "stop_limit":
        lim = order.limit_price
        assert lim is not None
        within = price <= lim if side > 0 else price >= lim
        return Fill(price, protected=True) if within else Fill(None, triggered=True)
    return Fill(price)


def _limit(limit: float, side: int, bar: BarPrices) -> Fill:
    if side > 0:
        if bar.open <= limit:
            return Fill(bar.open, protected=True)
        return Fill(limit, protected=True) if bar.low <= limit else NO_FILL
    if bar.open >= limit:
        return Fill(bar.open, protected=True)
    return Fill(limit, protected=True) if bar.high >= limit else NO_FILL


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
    """The stop of a trailing order from its watermark: below it for sells, above for buys."""
    hwm = order.hwm
    assert hwm is not None
    if order.trail_price is not None:
        offset = order.trail_price
    else:
        offset = hwm * (order.trail_percent or 0.0) / 100.0
    return round(hwm - offset if order.side < 0 else hwm + offset, 4)
