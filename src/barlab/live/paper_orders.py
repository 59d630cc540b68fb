"""The paper emulator's orders: the mutable order record, validation of a ``POST /v2/orders``
body (api/alpaca-trading.md §2.1) and the Order JSON exactly as Alpaca sends it (§2.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from barlab.live.wire import ExchangeRejection, asset_id, check_increment, dec, parse_decimal
from barlab.live.wire import ts_utc as _ts

TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")
TIME_IN_FORCE = ("day", "gtc", "opg", "cls", "ioc", "fok")
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

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> float:
        """Shares still to fill (for a notional order not yet filled: NaN)."""
        return math.nan if self.qty is None else self.qty - self.filled_qty

    @property
    def filled_avg_price(self) -> float | None:
        return self.filled_value / self.filled_qty if self.filled_qty > 0 else None

    def to_json(self) -> dict[str, Any]:
        """The Order object of the trading API; every field present, null where unset."""
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
            "order_class": "",
            "order_type": self.type,
            "type": self.type,
            "side": side,
            "position_intent": self.position_intent,
            "time_in_force": self.time_in_force,
            "limit_price": dec(self.limit_price),
            "stop_price": dec(self.stop_price),
            "status": self.status,
            "extended_hours": self.extended_hours,
            "legs": None,
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
        **prices, **trail,
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
