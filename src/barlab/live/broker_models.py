"""What :class:`~barlab.live.broker.AlpacaBroker` returns: frozen records parsed from Alpaca's
JSON (api/alpaca-trading.md §2-4), decimal strings as floats (through Decimal, so ``"0.1"`` is
exactly 0.1), RFC 3339 timestamps (nanoseconds included) as aware datetimes.

Parsing is tolerant, as §11 asks: numbers where strings are expected, nulls, unknown fields and
new enum values are accepted; missing fields become None.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from barlab.errors import BrokerError

OPEN_STATUSES = frozenset(
    {"new", "accepted", "pending_new", "partially_filled", "accepted_for_bidding", "held",
     "pending_cancel", "pending_replace", "calculated", "stopped", "suspended"}
)  # fmt: skip
TERMINAL_STATUSES = frozenset({"filled", "canceled", "expired", "rejected", "replaced"})

_FRACTION = re.compile(r"(\.\d{6})\d+")


def to_float(value: Any) -> float | None:
    """``"189.42"`` or ``189.42`` -> 189.42; None or ``""`` -> None."""
    if value is None or value == "":
        return None
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        raise BrokerError(f"alpaca sent {value!r} where a number was expected") from None


def to_datetime(value: Any) -> dt.datetime | None:
    """RFC 3339 (``2023-12-12T22:31:24.668464435Z``, ``...-04:00``) -> an aware datetime,
    nanoseconds truncated to microseconds; None stays None."""
    if not value:
        return None
    text = _FRACTION.sub(r"\1", str(value).replace("Z", "+00:00"))
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BrokerError(f"alpaca sent {value!r} where a timestamp was expected") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """An order as the broker last reported it; prices in dollars, quantities in shares."""

    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    status: str
    qty: float | None
    notional: float | None
    filled_qty: float
    filled_avg_price: float | None
    limit_price: float | None
    stop_price: float | None
    trail_price: float | None
    trail_percent: float | None
    hwm: float | None
    extended_hours: bool
    order_class: str
    created_at: dt.datetime | None
    updated_at: dt.datetime | None
    submitted_at: dt.datetime | None
    filled_at: dt.datetime | None
    expired_at: dt.datetime | None
    canceled_at: dt.datetime | None
    failed_at: dt.datetime | None
    replaced_at: dt.datetime | None
    replaced_by: str | None
    replaces: str | None
    asset_id: str | None
    legs: tuple[Order, ...] | None

    @property
    def is_open(self) -> bool:
        """Still working (or about to): it may yet fill, be canceled or expire."""
        return self.status not in TERMINAL_STATUSES and self.status != "done_for_day"

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Order:
        legs = d.get("legs")
        times = ("created_at", "updated_at", "submitted_at", "filled_at", "expired_at",
                 "canceled_at", "failed_at", "replaced_at")  # fmt: skip
        prices = ("qty", "notional", "filled_avg_price", "limit_price", "stop_price",
                  "trail_price", "trail_percent", "hwm")  # fmt: skip
        return cls(
            id=str(d["id"]), client_order_id=str(d.get("client_order_id") or ""),
            symbol=str(d.get("symbol") or ""), side=str(d.get("side") or ""),
            type=str(d.get("type") or d.get("order_type") or ""),
            time_in_force=str(d.get("time_in_force") or ""), status=str(d.get("status") or ""),
            filled_qty=to_float(d.get("filled_qty")) or 0.0,
            extended_hours=bool(d.get("extended_hours")),
            order_class=str(d.get("order_class") or ""),
            replaced_by=d.get("replaced_by"), replaces=d.get("replaces"),
            asset_id=d.get("asset_id"),
            legs=tuple(cls.from_json(leg) for leg in legs) if legs else None,
            **{k: to_float(d.get(k)) for k in prices},
            **{k: to_datetime(d.get(k)) for k in times},
        )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """A position: ``qty`` shares, negative when short; values in dollars, ratios as 0.02."""

    symbol: str
    asset_id: str | None
    side: str
    qty: float
    qty_available: float | None
    avg_entry_price: float | None
    market_value: float | None
    cost_basis: float | None
    unrealized_pl: float | None
    unrealized_plpc: float | None
    unrealized_intraday_pl: float | None
    current_price: float | None
    lastday_price: float | None
    change_today: float | None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Position:
        numbers = ("qty_available", "avg_entry_price", "market_value", "cost_basis",
                   "unrealized_pl", "unrealized_plpc", "unrealized_intraday_pl",
                   "current_price", "lastday_price", "change_today")  # fmt: skip
        return cls(
            symbol=str(d["symbol"]), asset_id=d.get("asset_id"), side=str(d.get("side") or ""),
            qty=to_float(d.get("qty")) or 0.0, **{k: to_float(d.get(k)) for k in numbers},
        )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """The account's money in dollars (``short_market_value`` <= 0) and its flags."""

    id: str
    account_number: str
    status: str
    currency: str
    cash: float
    equity: float
    last_equity: float | None
    buying_power: float
    long_market_value: float | None
    short_market_value: float | None
    multiplier: float | None
    shorting_enabled: bool
    trading_blocked: bool
    account_blocked: bool
    created_at: dt.datetime | None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Account:
        return cls(
            id=str(d.get("id") or ""), account_number=str(d.get("account_number") or ""),
            status=str(d.get("status") or ""), currency=str(d.get("currency") or "USD"),
            cash=to_float(d.get("cash")) or 0.0, equity=to_float(d.get("equity")) or 0.0,
            last_equity=to_float(d.get("last_equity")),
            buying_power=to_float(d.get("buying_power")) or 0.0,
            long_market_value=to_float(d.get("long_market_value")),
            short_market_value=to_float(d.get("short_market_value")),
            multiplier=to_float(d.get("multiplier")),
            shorting_enabled=bool(d.get("shorting_enabled")),
            trading_blocked=bool(d.get("trading_blocked")),
            account_blocked=bool(d.get("account_blocked")),
            created_at=to_datetime(d.get("created_at")),
        )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Clock:
    """The market clock: times in New York (aware datetimes)."""

    timestamp: dt.datetime
    is_open: bool
    next_open: dt.datetime
    next_close: dt.datetime

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Clock:
        stamps = {k: to_datetime(d.get(k)) for k in ("timestamp", "next_open", "next_close")}
        return cls(is_open=bool(d.get("is_open")), **stamps)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True, kw_only=True)
class BulkResult:
    """One entry of a 207 answer (cancel all orders, close all positions): ``key`` is the
    order id or the symbol; ``order`` the order on success, ``error`` the refusal otherwise."""

    key: str
    status: int
    order: Order | None
    error: BrokerError | None
