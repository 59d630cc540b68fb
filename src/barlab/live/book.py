"""The paper exchange's order book rules: the account's options (:class:`ExchangeRules`), what
open orders hold and reserve, the buying-power and short-sale checks at submit
(api/alpaca-trading.md §8), replacements, fill sizes, closing orders and the ``GET /v2/orders``
filters. Functions over a :class:`PaperExchange`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from barlab.engine.sizing import check_price_nb
from barlab.errors import ConfigError
from barlab.live.paper_orders import PaperOrder, parse_order_request
from barlab.live.wire import ExchangeRejection, dec, parse_decimal

if TYPE_CHECKING:
    from barlab.live.exchange import PaperExchange
    from barlab.live.paper_orders import OrderRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeRules:
    """How the paper exchange fills and what it allows.

    Attributes
    ----------
    slippage_bps : float
        Adverse slippage on market and stop fills, basis points (0: none, like Alpaca paper).
    max_participation : float or None
        Most of a bar's volume one order takes, e.g. 0.1; the rest fills on later bars as
        ``partial_fill`` events. None: any size fills at once.
    fractional : bool
        Accept fractional ``qty`` and ``notional`` orders (whole shares otherwise).
    multiplier : float
        Buying power per dollar of equity: 1 (a cash account), 2 or 4 (margin).
    shorting : bool
        Short sales allowed (the account's ``shorting_enabled``).
    shortable : frozenset of str or None
        The easy-to-borrow symbols; None: all of them.
    allow_flip : bool
        One order may take a position from long to short (or back); Alpaca refuses it (403).
    market_buffer : float
        Orders that add exposure, other than limit buys, are checked against buying power at
        least this fraction above the last price, e.g. 0.03 (see :func:`order_cost`).
    wash_trade_guard : bool
        Refuse an order opposite to an open order in the same symbol (403, "potential wash
        trade detected"), as Alpaca can.
    partial_fill_rate : float
        Chance that a fill is cut to a random part of the order (seeded), e.g. 0.1 as Alpaca's
        paper fills do about 10% of the time; the rest fills on later bars. 0: never.
    """

    slippage_bps: float = 0.0
    max_participation: float | None = None
    fractional: bool = False
    multiplier: float = 1.0
    shorting: bool = True
    shortable: frozenset[str] | None = None
    allow_flip: bool = False
    market_buffer: float = 0.03
    wash_trade_guard: bool = False
    partial_fill_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.slippage_bps < 0:
            raise ConfigError(f"slippage_bps must be >= 0, got {self.slippage_bps}")
        if self.max_participation is not None and not 0 < self.max_participation <= 1:
            raise ConfigError(
                f"max_participation must be in (0, 1], e.g. 0.1, got {self.max_participation}"
            )
        if not 0 <= self.partial_fill_rate <= 1:
            raise ConfigError(
                f"partial_fill_rate must be in [0, 1], e.g. 0.1, got {self.partial_fill_rate}"
            )
        if self.multiplier not in (1.0, 2.0, 4.0):
            raise ConfigError(f"multiplier must be 1, 2 or 4, got {self.multiplier}")


MIN_SHORT_EQUITY = 2_000.0
"""Dollars of equity an account needs to sell short (Alpaca's margin minimum)."""


def held(ex: PaperExchange, col: int, side: int | None = None) -> float:
    """Shares of a symbol that open orders on ``side`` hold (default: the side that closes the
    position, i.e. sells for a long); the Position's ``qty_available`` is qty less this."""
    if side is None:
        side = -1 if ex.portfolio.qty(col) >= 0 else 1
    total, counted = 0.0, set()
    for o in ex.orders.values():
        mine = o.is_open and o.col == col and o.side == side and o.qty is not None
        if mine and not counted.intersection(o.oco):  # an OCO pair holds its shares once
            total += o.remaining
            counted.add(o.id)
    return total


def exposure_qty(ex: PaperExchange, col: int, side: int, qty: float) -> float:
    """The part of ``qty`` shares on ``side`` that adds exposure (beyond closing the position)."""
    pos = ex.portfolio.qty(col)
    closing = max(0.0, -pos) if side > 0 else max(0.0, pos)
    return max(0.0, qty - closing)


def order_cost(ex: PaperExchange, order: PaperOrder | OrderRequest, qty: float) -> float:
    """Dollars of buying power ``qty`` exposure-adding shares of ``order`` need, at the price
    the backtest checks them at (:func:`~barlab.engine.sizing.check_price_nb`, Alpaca's rule):
    a buy's limit; a sell's limit, or the last price plus ``market_buffer`` if higher (Alpaca:
    "MAX(order's limit price, 3% above the current ask price)"); otherwise the last price, or
    the stop if higher, plus ``market_buffer``. A notional buy needs its dollars."""
    if order.notional is not None:
        return order.notional if order.side > 0 else 0.0
    last = ex.ref_price(
        order.col if isinstance(order, PaperOrder) else ex.symbols.index(order.symbol)
    )
    limit = math.nan if order.limit_price is None else order.limit_price
    stop = math.nan if order.stop_price is None else order.stop_price
    return qty * check_price_nb(order.side, last, limit, stop, ex.rules.market_buffer)


def reserved(ex: PaperExchange) -> float:
    """Dollars of buying power the open orders hold: the part of each that adds exposure (buys
    to open, sells to open a short) at :func:`order_cost`; closing orders hold none, and free
    none until they fill (api/alpaca-trading.md §8, Buying power)."""
    total = 0.0
    for o in ex.orders.values():
        if o.is_open:
            qty = o.remaining if o.qty is not None else 0.0
            total += order_cost(ex, o, exposure_qty(ex, o.col, o.side, qty))
    return total


def check_submit(ex: PaperExchange, req: OrderRequest, col: int) -> None:
    """Shorting and buying-power checks; ExchangeRejection (403/422) when the order may not go.

    Buying power is Alpaca's (:meth:`Portfolio.buying_power`): multiplier x equity less the
    gross exposure (long market value + |short market value|) less what open orders reserve
    (:func:`reserved`); the part of the order that adds exposure must fit in it at
    :func:`order_cost`. The backtest checks the same (engine/sizing.py)."""
    if ex.rules.wash_trade_guard and any(
        o.is_open and o.col == col and o.side != req.side for o in ex.orders.values()
    ):
        raise ExchangeRejection(403, 40310000, "potential wash trade detected. use complex orders")
    pos = ex.portfolio.qty(col)
    qty = req.qty if req.qty is not None else req.notional / ex.ref_price(col)  # type: ignore[operator]
    opposite = max(0.0, pos) if req.side < 0 else max(0.0, -pos)
    if opposite > 0 or req.side < 0:
        available = round(opposite - held(ex, col, req.side), 9)
        short = qty > available + 1e-9
        if short and (opposite > 0 or available < 0) and not ex.rules.allow_flip:
            raise ExchangeRejection(
                403, 40310000,
                f"insufficient qty available for order (requested: {dec(qty)}, "
                f"available: {dec(max(available, 0.0))})",
                available=dec(max(available, 0.0)), existing_qty=dec(pos),
                held_for_orders=dec(held(ex, col, req.side)), symbol=req.symbol,
            )  # fmt: skip
        if short and req.side < 0:
            _check_short(ex, req, qty)
    need = order_cost(ex, req, exposure_qty(ex, col, req.side, qty))
    power = ex.portfolio.buying_power(reserved(ex))
    if need > power + 1e-9:
        raise ExchangeRejection(
            403, 40310000, "insufficient buying power",
            buying_power=dec(round(power, 2)), cost_basis=dec(round(need, 2)),
        )  # fmt: skip


def _check_short(ex: PaperExchange, req: OrderRequest, qty: float) -> None:
    rules = ex.rules
    if not rules.shorting or ex.portfolio.equity() < MIN_SHORT_EQUITY:
        raise ExchangeRejection(403, 40310000, "account is not allowed to short")
    if rules.shortable is not None and req.symbol not in rules.shortable:
        raise ExchangeRejection(422, 42210000, f'asset "{req.symbol}" cannot be sold short')
    if qty != math.floor(qty) or req.notional is not None:
        raise ExchangeRejection(403, 40310000, "fractional orders cannot be sold short")


def replacement(ex: PaperExchange, old: PaperOrder, body: Any) -> PaperOrder:
    """The order that replaces ``old`` after ``PATCH`` with ``body`` (checked like a submit)."""
    if not isinstance(body, dict):
        raise ExchangeRejection(400, 40010000, "failed to decode request body")
    if old.status not in ("new", "partially_filled"):
        raise ExchangeRejection(422, 42210000, "unable to replace order in current state")
    if old.notional is not None or (old.qty or 0) != math.floor(old.qty or 0):
        raise ExchangeRejection(422, 42210000, "fractional orders cannot be replaced")
    merged = {
        "symbol": old.symbol, "side": "buy" if old.side > 0 else "sell", "type": old.type,
        "time_in_force": body.get("time_in_force", old.time_in_force),
        "qty": body.get("qty", dec(old.remaining)), "limit_price": old.limit_price,
        "stop_price": old.stop_price if old.type != "trailing_stop" else None,
        "extended_hours": old.extended_hours,
        "client_order_id": body.get("client_order_id"),
    }  # fmt: skip
    for key in ("limit_price", "stop_price"):
        if body.get(key) is not None:
            merged[key] = body[key]
    if old.type == "trailing_stop":
        trail = body.get("trail")
        merged["trail_price"] = trail if trail is not None else old.trail_price
        merged["trail_percent"] = None if merged["trail_price"] is not None else old.trail_percent
    req = parse_order_request(merged, fractional=ex.rules.fractional)
    if req.client_order_id is not None and req.client_order_id in ex.by_client_id:
        raise ExchangeRejection(422, 40010001, "client_order_id must be unique")
    status = old.status
    old.status = "pending_replace"  # its holds and reservation no longer count
    try:
        check_submit(ex, req, old.col)
    finally:
        old.status = status
    return dataclasses.replace(
        old, id=ex._uuid(), client_order_id=req.client_order_id or ex._uuid(), qty=req.qty,
        time_in_force=req.time_in_force, limit_price=req.limit_price, stop_price=req.stop_price,
        trail_price=req.trail_price, trail_percent=req.trail_percent, status="new",
        filled_qty=0.0, filled_value=0.0, created_ns=ex.now_ns, updated_ns=ex.now_ns,
        filled_ns=None, expired_ns=None, canceled_ns=None, replaced_ns=None, replaced_by=None,
        replaces=old.id, expires_ns=None, triggered=False,
    )  # fmt: skip


def fill_qty(ex: PaperExchange, order: PaperOrder, price: float, volume: float) -> float:
    """Shares ``order`` fills at ``price`` in a bar of ``volume`` shares (participation cap,
    random partial fills)."""
    if order.qty is None:  # notional: the shares the dollars buy, to 9 decimals
        order.qty = math.floor(order.notional / price * 1e9) / 1e9  # type: ignore[operator]
    qty = order.remaining
    cap = ex.rules.max_participation
    if cap is not None:
        limit = 0.0 if math.isnan(volume) else cap * volume
        limit = limit if ex.rules.fractional else math.floor(limit)
        qty = min(qty, limit)
    rate = ex.rules.partial_fill_rate
    if rate > 0 and qty > 1 and ex.fill_rng.random() < rate:  # drawn only when enabled
        part = qty * ex.fill_rng.uniform(0.1, 0.9)
        qty = max(1.0, part if ex.rules.fractional else math.floor(part))
    return max(0.0, round(qty, 9))


def closing_order(
    ex: PaperExchange, symbol: str, *, qty: float | None, percentage: float | None
) -> dict[str, Any]:
    """The market order body that closes all, ``qty`` shares or ``percentage`` % of a position."""
    if qty is not None and percentage is not None:
        raise ExchangeRejection(422, 40010001, "only one of qty or percentage may be given")
    col = ex.symbols.index(symbol) if symbol in ex.symbols else -1
    pos = ex.portfolio.qty(col) if col >= 0 else 0.0
    if pos == 0.0:
        raise ExchangeRejection(404, 40410000, "position does not exist")
    size = abs(pos)
    if percentage is not None:
        if not 0 < percentage <= 100:
            raise ExchangeRejection(422, 40010001, "percentage must be in (0, 100]")
        size = abs(pos) * percentage / 100.0
        size = round(size, 9) if ex.rules.fractional else math.floor(size)
    elif qty is not None:
        size = qty
    if size <= 0:
        raise ExchangeRejection(422, 40010001, "qty must be > 0")
    side = "sell" if pos > 0 else "buy"
    return {"symbol": symbol, "qty": dec(size), "side": side, "type": "market",
            "time_in_force": "day"}  # fmt: skip


def select(orders: list[PaperOrder], **query: Any) -> list[PaperOrder]:
    """The ``GET /v2/orders`` filters: ``status`` open|closed|all, ``limit`` (<= 500),
    ``after``/``until`` (RFC 3339, exclusive, on submission time), ``direction`` asc|desc,
    ``symbols`` (comma-separated), ``side``."""
    status = query.get("status") or "open"
    if status not in ("open", "closed", "all"):
        raise ExchangeRejection(422, 40010001, f"invalid status: {status!r}")
    out = [o for o in orders if status == "all" or o.is_live == (status == "open")]
    if query.get("symbols"):
        wanted = set(str(query["symbols"]).split(","))
        out = [o for o in out if o.symbol in wanted]
    if query.get("side") in ("buy", "sell"):
        side = 1 if query["side"] == "buy" else -1
        out = [o for o in out if o.side == side]
    for key, keep in (
        ("after", lambda o, t: o.created_ns > t),
        ("until", lambda o, t: o.created_ns < t),
    ):
        if query.get(key):
            t = _parse_time(query[key], key)
            out = [o for o in out if keep(o, t)]
    out.sort(key=lambda o: o.created_ns, reverse=query.get("direction", "desc") != "asc")
    limit = parse_decimal(query.get("limit") or 50, "limit") or 50
    if not 1 <= limit <= 500:
        raise ExchangeRejection(422, 40010001, "limit must be between 1 and 500")
    return out[: int(limit)]


def _parse_time(value: str, key: str) -> int:
    try:
        when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ExchangeRejection(422, 40010001, f"failed to parse {key}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1_000_000) * 1000
