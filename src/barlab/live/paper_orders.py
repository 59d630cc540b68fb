"""The paper emulator's orders: the mutable order record, validation of a ``POST /v2/orders``
body (api/alpaca-trading.md §2.1, with the bracket, OCO and OTO rules) and the Order JSON
exactly as Alpaca sends it (§2.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from barlab.live.wire import ExchangeRejection, asset_id, check_increment, dec, parse_decimal
from barlab.live.wire import ts_utc as _ts

TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")
TIME_IN_FORCE = ("day", "gtc", "opg", "cls", "ioc", "fok")
ORDER_CLASSES = ("", "simple", "bracket", "oco", "oto")
OPEN_STATUSES = frozenset({"new", "accepted", "partially_filled", "pending_new"})
TERMINAL_STATUSES = frozenset({"filled", "canceled", "expired", "rejected", "replaced"})
MAX_CLIENT_ORDER_ID = 128


@dataclass(slots=True, kw_only=True)
class PaperOrder:
    """One order in the emulator; times in nanoseconds UTC, quantities in shares, prices in
    dollars. ``side`` is +1 (buy) or -1 (sell). Mutated only by :class:`PaperExchange`."""

    id: str
    client_order_id: str
    symbol: str
    col: int
    side: int
    type: str
    time_in_force: str
    qty: float | None
    notional: float | None
    limit_price: float | None = None
    stop_price: float | None = None
    trail_price: float | None = None
    trail_percent: float | None = None
    hwm: float | None = None
    extended_hours: bool = False
    status: str = "new"
    filled_qty: float = 0.0
    filled_value: float = 0.0
    """Dollars paid or received so far: ``filled_value / filled_qty`` is the average price."""
    created_ns: int = 0
    updated_ns: int = 0
    filled_ns: int | None = None
    expired_ns: int | None = None
    canceled_ns: int | None = None
    failed_ns: int | None = None
    replaced_ns: int | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    expires_ns: int | None = None
    """When a DAY order expires (its session's close); None for the other time in force."""
    triggered: bool = False
    """A stop-limit whose stop was reached: it now rests as a limit order."""
    position_intent: str | None = None
    order_class: str = ""
    legs: tuple[str, ...] = ()
    """Ids of a bracket's or OTO's exit legs (``held`` until this order fills), or of an OCO's
    stop leg."""
    parent_id: str | None = None
    """A leg's parent order."""
    oco: tuple[str, ...] = ()
    """Orders canceled when this one fills (a bracket's other leg; an OCO's other order)."""

    @property
    def is_open(self) -> bool:
        """Working: it may fill now (a ``held`` leg may not yet)."""
        return self.status in OPEN_STATUSES

    @property
    def is_live(self) -> bool:
        """Not yet terminal: working, or a ``held`` leg waiting for its parent to fill."""
        return self.is_open or self.status == "held"

    @property
    def remaining(self) -> float:
        """Shares still to fill (for a notional order not yet filled: NaN)."""
        return math.nan if self.qty is None else self.qty - self.filled_qty

    @property
    def filled_avg_price(self) -> float | None:
        return self.filled_value / self.filled_qty if self.filled_qty > 0 else None

    def to_json(self, legs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The Order object of the trading API; every field present, null where unset
        (``legs``: the legs' Order objects, rolled under a parent)."""
        side = "buy" if self.side > 0 else "sell"
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": _ts(self.created_ns),
            "updated_at": _ts(self.updated_ns),
            "submitted_at": _ts(self.created_ns),
            "filled_at": _ts(self.filled_ns),
            "expired_at": _ts(self.expired_ns),
            "expires_at": _ts(self.expires_ns),
            "canceled_at": _ts(self.canceled_ns),
            "failed_at": _ts(self.failed_ns),
            "replaced_at": _ts(self.replaced_ns),
            "replaced_by": self.replaced_by,
            "replaces": self.replaces,
            "asset_id": asset_id(self.symbol),
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": dec(self.notional),
            "qty": dec(self.qty),
            "filled_qty": dec(self.filled_qty),
            "filled_avg_price": dec(self.filled_avg_price),
            "order_class": "" if self.order_class == "simple" else self.order_class,
            "order_type": self.type,
            "type": self.type,
            "side": side,
            "position_intent": self.position_intent,
            "time_in_force": self.time_in_force,
            "limit_price": dec(self.limit_price),
            "stop_price": dec(self.stop_price),
            "status": self.status,
            "extended_hours": self.extended_hours,
            "legs": legs if legs else None,
            "trail_percent": dec(self.trail_percent),
            "trail_price": dec(self.trail_price),
            "hwm": dec(self.hwm),
            "source": None,
            "subtag": None,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRequest:
    """A validated ``POST /v2/orders`` body (prices in dollars, quantities in shares)."""

    symbol: str
    side: int
    type: str
    time_in_force: str
    qty: float | None
    notional: float | None
    limit_price: float | None
    stop_price: float | None
    trail_price: float | None
    trail_percent: float | None
    extended_hours: bool
    client_order_id: str | None
    order_class: str = ""
    take_profit: float | None = None
    """A bracket's, OCO's or OTO's take-profit limit price."""
    stop_loss: float | None = None
    """Its stop-loss stop price."""
    stop_loss_limit: float | None = None
    """Its stop-loss limit price (the stop leg is then a stop-limit order)."""


def parse_order_request(body: Any, *, fractional: bool) -> OrderRequest:
    """Validate a submit body the way Alpaca does; raises ExchangeRejection (422) naming the
    field. Symbol, buying power and shorting are the exchange's to check."""
    if not isinstance(body, dict):
        raise ExchangeRejection(400, 40010000, "failed to decode request body")
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise ExchangeRejection(422, 40010001, "symbol is required")
    side = body.get("side")
    if side not in ("buy", "sell"):
        raise ExchangeRejection(422, 40010001, f"invalid side: {side!r}; use buy or sell")
    kind = body.get("type", body.get("order_type"))
    if kind not in TYPES:
        raise ExchangeRejection(422, 40010001, f"invalid order type: {kind!r}")
    tif = body.get("time_in_force")
    if tif not in TIME_IN_FORCE:
        raise ExchangeRejection(422, 40010001, f"invalid time_in_force: {tif!r}")
    qty = parse_decimal(body.get("qty"), "qty")
    notional = parse_decimal(body.get("notional"), "notional")
    prices = {k: parse_decimal(body.get(k), k) for k in ("limit_price", "stop_price")}
    trail = {k: parse_decimal(body.get(k), k) for k in ("trail_price", "trail_percent")}
    _check_amounts(qty, notional, kind, tif, fractional)
    order_class, exits = _parse_class(body, kind, tif, body.get("extended_hours") is True, prices)
    _check_prices(kind, prices, trail)
    extended = body.get("extended_hours") or False
    if not isinstance(extended, bool):
        raise ExchangeRejection(422, 40010001, f"invalid extended_hours: {extended!r}")
    if extended and (kind != "limit" or tif not in ("day", "gtc")):
        raise ExchangeRejection(
            422, 42210000, "extended hours order must be DAY or GTC limit orders"
        )
    coid = body.get("client_order_id")
    if coid is not None and (not isinstance(coid, str) or len(coid) > MAX_CLIENT_ORDER_ID):
        raise ExchangeRejection(
            422, 40010001, f"client_order_id must be a string of at most {MAX_CLIENT_ORDER_ID}"
        )
    return OrderRequest(
        symbol=symbol, side=1 if side == "buy" else -1, type=kind, time_in_force=tif,
        qty=qty, notional=notional, extended_hours=extended, client_order_id=coid or None,
        order_class=order_class, **exits, **prices, **trail,
    )  # fmt: skip


def _parse_class(
    body: dict[str, Any], kind: str, tif: str, extended: bool, prices: dict[str, float | None]
) -> tuple[str, dict[str, float | None]]:
    """``order_class`` and its exit prices, by §2.1's rules: a bracket needs both exits, an
    OTO exactly one, an OCO (exit-only, ``type=limit``) both; TIF day or gtc; no extended
    hours. The side rule (take-profit beyond the stop) is checked by :func:`check_exit_sides`."""
    order_class = body.get("order_class") or ""
    if order_class not in ORDER_CLASSES:
        raise ExchangeRejection(
            422, 40010001, f"invalid order_class: {order_class!r}; use simple, bracket, oco or oto"
        )
    exits: dict[str, float | None] = {"take_profit": None, "stop_loss": None,
                                      "stop_loss_limit": None}  # fmt: skip
    tp, sl = body.get("take_profit"), body.get("stop_loss")
    if order_class in ("", "simple"):
        if tp is not None or sl is not None:
            raise ExchangeRejection(
                422, 40010001, "take_profit and stop_loss need order_class bracket, oco or oto"
            )
        return "", exits
    for name, leg in (("take_profit", tp), ("stop_loss", sl)):
        if leg is not None and not isinstance(leg, dict):
            raise ExchangeRejection(422, 40010001, f"{name} must be an object")
    if tp is not None:
        exits["take_profit"] = parse_decimal(tp.get("limit_price"), "take_profit.limit_price")
    if sl is not None:
        exits["stop_loss"] = parse_decimal(sl.get("stop_price"), "stop_loss.stop_price")
        exits["stop_loss_limit"] = parse_decimal(sl.get("limit_price"), "stop_loss.limit_price")
    given = [k for k in ("take_profit", "stop_loss") if exits[k] is not None]
    if order_class in ("bracket", "oco") and len(given) != 2:
        raise ExchangeRejection(
            422, 40010001,
            f"{order_class} orders need take_profit.limit_price and stop_loss.stop_price",
        )  # fmt: skip
    if order_class == "oto" and len(given) != 1:
        raise ExchangeRejection(
            422, 40010001, "oto orders need exactly one of take_profit or stop_loss"
        )
    if order_class == "oco" and kind != "limit":
        raise ExchangeRejection(422, 40010001, "oco orders must be limit orders")
    if order_class == "oco" and prices["limit_price"] is None:
        prices["limit_price"] = exits["take_profit"]
    if tif not in ("day", "gtc") or extended:
        raise ExchangeRejection(
            422, 42210000, f"{order_class} orders must be DAY or GTC and not extended hours"
        )
    for name, value in exits.items():
        if value is not None:
            if value <= 0:
                raise ExchangeRejection(422, 40010001, f"{name} prices must be > 0")
            check_increment(value, name.replace("_limit", ".limit_price"))
    return order_class, exits


def check_exit_sides(req: OrderRequest, base: float) -> None:
    """The exits of a bracket or OTO sit on the right side of ``base`` (the entry's limit,
    or the last price): for a buy, the take-profit above, the stop-loss at least $0.01 below
    (mirrored for a sell); an OCO's exits close a position, so its stop is below its limit
    for a sell. 422 otherwise."""
    d = req.side if req.order_class != "oco" else -req.side
    tp, sl = req.take_profit, req.stop_loss
    if tp is not None and sl is not None and (tp - sl) * d <= 0:
        raise ExchangeRejection(
            422, 42210000,
            f"take_profit.limit_price must be {'above' if d > 0 else 'below'} "
            "stop_loss.stop_price",
        )  # fmt: skip
    if req.order_class == "oco" or math.isnan(base):
        return
    if sl is not None and (base - sl) * d < 0.01 - 1e-9:
        raise ExchangeRejection(
            422, 42210000,
            f"stop_loss.stop_price must be at least 0.01 {'below' if d > 0 else 'above'} the "
            f"base price {dec(base)}",
        )  # fmt: skip
    if tp is not None and (tp - base) * d <= 0:
        raise ExchangeRejection(
            422, 42210000,
            f"take_profit.limit_price must be {'above' if d > 0 else 'below'} the base price "
            f"{dec(base)}",
        )  # fmt: skip


def _check_amounts(
    qty: float | None, notional: float | None, kind: str, tif: str, fractional: bool
) -> None:
    if (qty is None) == (notional is None):
        raise ExchangeRejection(422, 40010001, "exactly one of qty or notional is required")
    if qty is not None and qty <= 0:
        raise ExchangeRejection(422, 40010001, "qty must be > 0")
    if notional is not None:
        if not fractional:
            raise ExchangeRejection(422, 42210000, "requested asset is not fractionable")
        if notional < 1.0:
            raise ExchangeRejection(422, 40010001, "notional must be >= 1")
        if kind != "market" or tif != "day":
            raise ExchangeRejection(
                422, 42210000, "notional orders must be market orders with time_in_force day"
            )
    if qty is not None and qty != math.floor(qty):
        if not fractional:
            raise ExchangeRejection(422, 42210000, "requested asset is not fractionable")
        if kind not in ("market", "stop", "stop_limit") or tif != "day":
            raise ExchangeRejection(
                422, 42210000, "fractional orders must be market, stop or stop_limit DAY orders"
            )


def _check_prices(
    kind: str, prices: dict[str, float | None], trail: dict[str, float | None]
) -> None:
    needs = {
        "market": (),
        "limit": ("limit_price",),
        "stop": ("stop_price",),
        "stop_limit": ("limit_price", "stop_price"),
        "trailing_stop": (),
    }[kind]
    for name, value in prices.items():
        if name in needs and value is None:
            raise ExchangeRejection(422, 40010001, f"{name} is required for {kind} orders")
        if name not in needs and value is not None:
            raise ExchangeRejection(422, 40010001, f"{name} is not allowed for {kind} orders")
        if value is not None and value <= 0:
            raise ExchangeRejection(422, 40010001, f"{name} must be > 0")
        check_increment(value, name)
    given = [k for k, v in trail.items() if v is not None]
    if kind == "trailing_stop":
        if len(given) != 1:
            raise ExchangeRejection(
                422,
                40010001,
                "trailing_stop orders need exactly one of trail_price or trail_percent",
            )
        if trail[given[0]] <= 0:  # type: ignore[operator]
            raise ExchangeRejection(422, 40010001, f"{given[0]} must be > 0")
    elif given:
        raise ExchangeRejection(422, 40010001, f"{given[0]} is only for trailing_stop orders")
