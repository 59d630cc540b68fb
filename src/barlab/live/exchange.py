"""PaperExchange: the pure, I/O-free state machine of the local Alpaca paper emulator. It replays
Bars one bar at a time and keeps orders, fills, positions, the account and the market clock.

Interface (stable; the HTTP and WebSocket layers of the emulator are built on it)
---------------------------------------------------------------------------------
``PaperExchange(bars, *, cash=100_000.0, rules=None, seed=0, **rule_options)``
    ``rule_options`` are the fields of :class:`ExchangeRules` (slippage_bps, max_participation,
    fractional, multiplier, shorting, shortable, allow_flip, market_buffer, wash_trade_guard,
    partial_fill_rate).
``now_ns``; ``index`` (the last closed bar, -1 before the first); ``bars``; ``symbols``;
``clock`` (:class:`~barlab.live.market_clock.MarketClock`)
``advance() -> int | None``
    Processes the next bar: at its start, DAY orders past their session close expire,
    ``accepted`` orders become ``new`` when a session opens, and working orders fill by the
    rules of :mod:`barlab.live.fills` (sells before buys), then the exit orders of positions
    (bracket, OTO and OCO legs, :mod:`barlab.live.brackets`); then the bar closes (``now_ns`` =
    its end), a ``bar`` message goes out per symbol and DAY orders at their close expire.
    Returns the bar's row, None once the bars are exhausted.
``open_bar() -> int | None`` and ``close_bar() -> int``
    The two halves of ``advance()``. Between them the market stands at the bar's open: an
    order submitted then is worked in that bar at once (a market order fills at its open),
    as a real one sent a moment after the open fills near it; the replay uses this to send
    the opening half of a position flip once its closing half filled.
``bars_until_now() -> Bars`` (the closed bars); ``bar_messages(row) -> list[dict]``
``submit_order(body) / replace_order(id, body) / get_order(id) / get_order_by_client_id(cid)``
``list_orders(...) / cancel_order(id) / cancel_all_orders()``
``list_positions() / get_position(symbol) / close_position(symbol, ...) / close_all_positions()``
``account() / clock_json() / calendar_json(start, end)``
    Each answers with the JSON the trading API sends (dicts and lists); a refusal raises
    :class:`~barlab.live.wire.ExchangeRejection` carrying the HTTP status, code and message.
``add_listener(fn)`` / ``remove_listener(fn)``
    ``fn(kind, payload)`` is called synchronously: ``("trade_update", data)`` with the
    trade_updates ``data`` object ({"event", "order", "timestamp"} plus "price", "qty",
    "position_qty", "execution_id" on fills) and ``("bar", message)`` with the market-data bar
    ``{"T": "b", "S", "o", "h", "l", "c", "v", "t", "n", "vw"}`` for every symbol when a bar
    closes. Event order: ``new`` on submit (or at the open for orders sent while closed),
    ``partial_fill``/``fill``, ``canceled``, ``expired``, ``replaced`` (the old order) then
    ``new`` (its replacement).

Not thread-safe: one thread (the emulator's event loop) owns it.
"""

from __future__ import annotations

import logging
import math
import random
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from barlab.bars import Bars
from barlab.errors import ConfigError
from barlab.live import book, brackets
from barlab.live.book import ExchangeRules
from barlab.live.fills import BarPrices, Fill, fill_in_bar, trail, trailing_stop_price
from barlab.live.market_clock import MarketClock
from barlab.live.paper_orders import PaperOrder, parse_order_request
from barlab.live.portfolio import Portfolio
from barlab.live.wire import ExchangeRejection, dec, ts_bar, ts_utc

log = logging.getLogger(__name__)

Listener = Callable[[str, dict[str, Any]], None]


class PaperExchange:
    """Replays ``bars`` as an Alpaca paper account (see the module docstring).

    Parameters
    ----------
    bars : Bars
        What the market does, e.g. two days of 1-minute bars for ("AAPL", "MSFT").
    cash : float
        Starting cash in dollars, e.g. 100_000.
    rules : ExchangeRules, optional
        Fill and account rules; or pass their fields as keywords.
    seed : int
        Seeds order and execution ids and the random partial fills, so a replay is the same
        every time.
    """

    def __init__(
        self,
        bars: Bars,
        *,
        cash: float = 100_000.0,
        rules: ExchangeRules | None = None,
        seed: int = 0,
        **rule_options: Any,
    ) -> None:
        if bars.n_bars == 0:
            raise ConfigError("PaperExchange needs at least one bar to replay")
        self.bars = bars
        self.symbols = bars.symbols
        self.rules = rules or ExchangeRules(**rule_options)
        self.clock = MarketClock(bars.ts_ns, bars.timeframe)
        self.portfolio = Portfolio(bars.symbols, cash=cash, multiplier=self.rules.multiplier)
        self.orders: dict[str, PaperOrder] = {}
        self.by_client_id: dict[str, str] = {}
        self.index = -1
        self._now = int(bars.ts_ns[0])
        self._rng = random.Random(seed)
        self.fill_rng = random.Random(seed + 1)
        """Draws the random partial fills (apart, so the ids do not depend on them)."""
        self._listeners: list[Listener] = []
        self._open_row: int | None = None
        """The bar between open_bar() and close_bar(), whose open the market stands at."""

    # -- time ----------------------------------------------------------------------------------

    @property
    def now_ns(self) -> int:
        """Simulated time: the end of the last closed bar (the first bar's start before it)."""
        return self._now

    def advance(self) -> int | None:
        """Process the next bar (module docstring); its row, or None at the end of the bars."""
        if self.open_bar() is None:
            return None
        return self.close_bar()

    def open_bar(self) -> int | None:
        """Open the next bar and fill what works at its open; its row, or None at the end."""
        if self._open_row is not None:
            raise RuntimeError("open_bar() twice: close_bar() the bar opened first")
        i = self.index + 1
        if i >= self.bars.n_bars:
            return None
        ts = int(self.bars.ts_ns[i])
        self._now = ts
        regular = bool(self.clock.regular[i])
        if regular and self.clock.first_of_session[i]:
            self.portfolio.lastday_price[:] = self.portfolio.last_price
            self.portfolio.last_equity = self.portfolio.equity()
        self._expire_day_orders(ts)
        if regular:
            for order in self._open_orders():
                if order.status == "accepted":
                    self._route(order)
        self._open_row = i
        for order in sorted(self._open_orders(), key=lambda o: o.side):
            if order.is_open and order.status != "accepted" and not brackets.is_exit(order):
                self._work(order, i, regular)
        brackets.work_exits(self, self._bar_prices(i, regular))
        return i

    def close_bar(self) -> int:
        """Close the bar open_bar() opened: last prices, bar messages, DAY orders at a close."""
        i = self._open_row
        if i is None:
            raise RuntimeError("close_bar() without open_bar()")
        self._open_row = None
        self.index = i
        self._now = int(self.bars.ts_ns[i]) + self.clock.bar_ns
        close = self.bars.close[i]
        seen = ~np.isnan(close)
        self.portfolio.last_price[seen] = close[seen]
        for message in self.bar_messages(i):
            self._emit("bar", message)
        self._expire_day_orders(self._now)
        return i

    def _bar_prices(self, i: int, regular: bool, col: int | None = None) -> dict[int, BarPrices]:
        """Bar ``i`` per column that traded in it (none outside regular hours, where exit
        orders do not work)."""
        b, out = self.bars, {}
        if not regular:
            return out
        for j in range(len(self.symbols)) if col is None else (col,):
            if not np.isnan(b.open[i, j]):
                out[j] = BarPrices(
                    float(b.open[i, j]), float(b.high[i, j]), float(b.low[i, j]),
                    float(b.close[i, j]), bool(self.clock.first_of_session[i]),
                    bool(self.clock.last_of_session[i]),
                )  # fmt: skip
        return out

    def bars_until_now(self) -> Bars:
        """The bars closed so far (rows ``0 .. index``)."""
        return self.bars.slice(0, self.index + 1)

    def bar_messages(self, row: int) -> list[dict[str, Any]]:
        """Market-data ``b`` messages of bar ``row``, one per symbol that traded in it."""
        b = self.bars
        out = []
        for j, symbol in enumerate(self.symbols):
            o, h, lo, c, v = (float(a[row, j]) for a in (b.open, b.high, b.low, b.close, b.volume))
            if math.isnan(c):
                continue
            volume = 0 if math.isnan(v) else round(v)
            out.append(
                {"T": "b", "S": symbol, "o": o, "h": h, "l": lo, "c": c, "v": volume,
                 "t": ts_bar(int(b.ts_ns[row])), "n": max(1, volume // 100) if volume else 0,
                 "vw": round((h + lo + c) / 3.0, 4)}
            )  # fmt: skip
        return out

    def add_listener(self, fn: Listener) -> None:
        """Call ``fn(kind, payload)`` on every trade update and closed bar."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    # -- orders --------------------------------------------------------------------------------

    def submit_order(self, body: Any) -> dict[str, Any]:
        """``POST /v2/orders``: the new Order, or ExchangeRejection (403/422) and no order."""
        req = parse_order_request(body, fractional=self.rules.fractional)
        col = self._col(req.symbol)
        coid = req.client_order_id
        if coid is not None and coid in self.by_client_id:
            raise ExchangeRejection(422, 40010001, "client_order_id must be unique")
        book.check_submit(self, req, col)
        brackets.check(self, req, col)
        order = PaperOrder(
            id=self._uuid(), client_order_id=coid or self._uuid(), symbol=req.symbol, col=col,
            side=req.side, type=req.type, time_in_force=req.time_in_force, qty=req.qty,
            notional=req.notional, limit_price=req.limit_price, stop_price=req.stop_price,
            trail_price=req.trail_price, trail_percent=req.trail_percent,
            extended_hours=req.extended_hours, created_ns=self._now, updated_ns=self._now,
        )  # fmt: skip
        return self._accept(order, brackets.attach(self, order, req))

    def replace_order(self, order_id: str, body: Any) -> dict[str, Any]:
        """``PATCH /v2/orders/{id}``: the replacement Order (the old one becomes ``replaced``)."""
        old = self._order(order_id)
        if old.legs or old.parent_id is not None:
            raise ExchangeRejection(
                422, 42210000, "orders of a bracket, OCO or OTO cannot be replaced here; cancel "
                "and submit again"
            )  # fmt: skip
        new = book.replacement(self, old, body)
        old.status = "replaced"
        old.replaced_ns = old.updated_ns = self._now
        old.replaced_by = new.id
        self._event("replaced", old)
        return self._accept(new)

    def get_order(self, order_id: str, *, nested: bool = False) -> dict[str, Any]:
        order = self._order(order_id)
        return order.to_json(brackets.nested(self, order) if nested else None)

    def get_order_by_client_id(self, client_order_id: str) -> dict[str, Any]:
        order_id = self.by_client_id.get(client_order_id)
        if order_id is None:
            raise ExchangeRejection(404, 40410000, "order not found")
        return self.orders[order_id].to_json()

    def list_orders(self, **query: Any) -> list[dict[str, Any]]:
        """``GET /v2/orders`` (status, limit, after, until, direction, symbols, side, nested:
        legs rolled under their parents instead of listed on their own)."""
        nested = query.pop("nested", None) in ("true", True)
        orders = list(self.orders.values())
        if nested:
            orders = [o for o in orders if o.parent_id is None]
        return [
            o.to_json(brackets.nested(self, o) if nested else None)
            for o in book.select(orders, **query)
        ]

    def cancel_order(self, order_id: str) -> None:
        """``DELETE /v2/orders/{id}``: cancels at once (404 unknown, 422 no longer open); a
        parent's held legs are canceled with it."""
        order = self._order(order_id)
        if not order.is_live:
            raise ExchangeRejection(422, 42210000, f'order is already in "{order.status}" state')
        order.canceled_ns = self._now
        self._update(order, "canceled", "canceled")
        brackets.cancel_legs(self, order)

    def cancel_all_orders(self) -> list[dict[str, Any]]:
        """``DELETE /v2/orders``: the 207 body, one entry per open (or held) order."""
        out = []
        for order in [o for o in self.orders.values() if o.is_live]:
            if order.is_live:  # a parent canceled before may have taken it along
                self.cancel_order(order.id)
                out.append({"id": order.id, "status": 200, "body": order.to_json()})
        return out

    # -- positions and account ------------------------------------------------------------------

    def list_positions(self) -> list[dict[str, Any]]:
        cols = sorted(self.portfolio.holdings)
        return [self.portfolio.position_json(c, held_for_orders=book.held(self, c)) for c in cols]

    def get_position(self, symbol: str) -> dict[str, Any]:
        col = self.symbols.index(symbol) if symbol in self.symbols else -1
        if col not in self.portfolio.holdings:
            raise ExchangeRejection(404, 40410000, "position does not exist")
        return self.portfolio.position_json(col, held_for_orders=book.held(self, col))

    def close_position(
        self, symbol: str, *, qty: float | None = None, percentage: float | None = None
    ) -> dict[str, Any]:
        """``DELETE /v2/positions/{symbol}``: the closing market Order."""
        return self.submit_order(book.closing_order(self, symbol, qty=qty, percentage=percentage))

    def close_all_positions(self, *, cancel_orders: bool = False) -> list[dict[str, Any]]:
        """``DELETE /v2/positions``: the 207 body, one entry per position."""
        if cancel_orders:
            self.cancel_all_orders()
        out = []
        for col in sorted(self.portfolio.holdings):
            symbol = self.symbols[col]
            try:
                out.append({"symbol": symbol, "status": 200, "body": self.close_position(symbol)})
            except ExchangeRejection as e:
                out.append({"symbol": symbol, "status": e.status, "body": e.body()})
        return out

    def account(self) -> dict[str, Any]:
        return self.portfolio.account_json(
            reserved=book.reserved(self), now_ns=self._now, shorting=self.rules.shorting
        )

    def clock_json(self) -> dict[str, Any]:
        return self.clock.clock_json(self._now)

    def calendar_json(self, start: Any, end: Any) -> list[dict[str, Any]]:
        return self.clock.calendar_json(start, end)

    # -- internals -----------------------------------------------------------------------------

    def ref_price(self, col: int) -> float:
        """The last close of a symbol, or before its first bar closes, the next open."""
        price = self.portfolio.last_price[col]
        if np.isnan(price):
            upcoming = self.bars.open[self.index + 1 :, col]
            known = upcoming[~np.isnan(upcoming)]
            price = known[0] if len(known) else np.nan
        return float(price)

    def _accept(self, order: PaperOrder, legs: list[PaperOrder] | None = None) -> dict[str, Any]:
        if order.type == "trailing_stop":  # Alpaca's hwm: the price at submit
            order.hwm = self.ref_price(order.col)
            order.stop_price = trailing_stop_price(order)
        if order.time_in_force == "day":
            order.expires_ns = self.clock.session_close_ns(self._now)
        routed = self.clock.is_open(self._now) or order.extended_hours
        order.status = "new" if routed else "accepted"
        self.orders[order.id] = order
        self.by_client_id[order.client_order_id] = order.id
        for leg in legs or ():
            leg.expires_ns = order.expires_ns
            self.orders[leg.id] = leg
            self.by_client_id[leg.client_order_id] = leg.id
        log.info("paper order %s %s %s: %s", order.symbol, order.type, order.id, order.status)
        if routed:
            self._route(order, event=False)
        answer = order.to_json(brackets.nested(self, order))  # as accepted, before any fill
        i = self._open_row
        if i is not None and order.is_open:  # sent while the market stands at a bar's open
            regular = bool(self.clock.regular[i])
            if not brackets.is_exit(order):
                self._work(order, i, regular)
            family = {order.id, *order.legs}
            brackets.work_exits(self, self._bar_prices(i, regular, order.col), only=family)
        return answer

    def _route(self, order: PaperOrder, *, event: bool = True) -> None:
        """``order`` reaches the market (``new``); an OCO's stop leg works along with it."""
        if event:
            self._update(order, "new", "new")
        else:
            self._event("new", order)
        if order.order_class == "oco":
            brackets.activate(self, order)

    def _work(self, order: PaperOrder, i: int, regular: bool) -> None:
        """Try to fill ``order`` in bar ``i``."""
        j = order.col
        if np.isnan(self.bars.open[i, j]) or not (regular or order.extended_hours):
            return
        bar = self._bar_prices(i, True, j)[j]
        fill = fill_in_bar(order, bar)
        if fill.triggered:
            order.triggered, order.updated_ns = True, self._now
        filled = fill.price is not None and self.execute(order, fill) > 0
        if not filled and order.type == "trailing_stop":
            trail(order, bar)
        tif = order.time_in_force
        if order.is_open and (
            tif in ("ioc", "fok") or (tif == "opg" and bar.first) or (tif == "cls" and bar.last)
        ):
            if tif in ("ioc", "fok"):
                order.canceled_ns = self._now
                self._update(order, "canceled", "canceled")
            else:
                order.expired_ns = self._now
                self._update(order, "expired", "expired")

    def execute(self, order: PaperOrder, fill: Fill) -> float:
        """Fill ``order`` at ``fill`` in the bar open now (slippage, participation, random
        partial fills); the shares filled."""
        assert fill.price is not None and self._open_row is not None
        price = fill.price
        if not fill.protected:
            price = price * (1.0 + order.side * self.rules.slippage_bps * 1e-4)  # as the kernel
        volume = float(self.bars.volume[self._open_row, order.col])
        qty = book.fill_qty(self, order, price, volume)
        if qty > 0 and not (order.time_in_force == "fok" and qty < order.remaining - 1e-9):
            self._fill(order, qty, price)
            return qty
        return 0.0

    def _fill(self, order: PaperOrder, qty: float, price: float) -> None:
        order.filled_qty = round(order.filled_qty + qty, 9)
        order.filled_value += qty * price
        done = order.remaining <= 1e-9
        if done:
            order.filled_ns = self._now
        position = self.portfolio.apply_fill(order.col, order.side, qty, price)
        log.info("paper fill %s %s x %s @ %s", order.symbol, order.side, qty, price)
        fill = {"price": dec(price), "qty": dec(qty), "position_qty": dec(position),
                "execution_id": self._uuid()}  # fmt: skip
        event = "fill" if done else "partial_fill"
        self._update(order, "filled" if done else "partially_filled", event, **fill)
        if done:
            brackets.cancel_siblings(self, order)
            if order.order_class in ("bracket", "oto"):
                brackets.activate(self, order)

    def _expire_day_orders(self, now_ns: int) -> None:
        for order in self._open_orders():
            if order.expires_ns is not None and order.expires_ns <= now_ns:
                order.expired_ns = now_ns
                self._update(order, "expired", "expired")
                brackets.cancel_legs(self, order)

    def _update(self, order: PaperOrder, status: str, event: str, **extra: Any) -> None:
        order.status = status
        order.updated_ns = self._now
        self._event(event, order, **extra)

    def _event(self, event: str, order: PaperOrder, **extra: Any) -> None:
        payload = {"event": event, "timestamp": ts_utc(self._now), "order": order.to_json()}
        self._emit("trade_update", {**payload, **extra})

    def _emit(self, kind: str, payload: dict[str, Any]) -> None:
        for fn in list(self._listeners):
            try:
                fn(kind, payload)
            except Exception:  # a broken listener must not corrupt the exchange
                log.exception("paper exchange listener %r failed on %s", fn, kind)

    def _open_orders(self) -> list[PaperOrder]:
        return [o for o in self.orders.values() if o.is_open]

    def _order(self, order_id: str) -> PaperOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise ExchangeRejection(404, 40410000, "order not found")
        return order

    def _col(self, symbol: str) -> int:
        if symbol not in self.symbols:
            raise ExchangeRejection(422, 42210000, f'asset "{symbol}" is not tradable')
        return self.symbols.index(symbol)

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
