"""Alpaca's wire format for the paper emulator: decimal strings, RFC 3339 timestamps and the
Order, Position and error JSON exactly as the trading API sends them (api/alpaca-trading.md §2-5).

Pure functions over plain values; only :mod:`barlab.live.exchange` and the emulator use them.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal
from typing import Any

from barlab.data.calendar import NEW_YORK

ASSET_NAMESPACE = uuid.UUID("6f1c6c55-0f7a-4c8e-9d55-5b0e1c1a7c3e")


class ExchangeRejection(Exception):
    """The emulator refuses a request; becomes ``{"code", "message", **extra}`` with ``status``.

    Parameters
    ----------
    status : int
        HTTP status, e.g. 403 or 422.
    code : int
        Alpaca's 8-digit code, e.g. 40310000.
    message : str
        Alpaca's words, e.g. ``"insufficient buying power"``.
    extra : dict
        Context fields some 403s carry (``buying_power``, ``available``, ...).
    """

    def __init__(self, status: int, code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


def dec(value: float | None) -> str | None:
    """A float as Alpaca's decimal string, to 9 decimals: ``10.0 -> "10"``, ``189.42 -> "189.42"``;
    None (or NaN) is null."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = format(Decimal(repr(round(float(value), 9))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def ts_utc(ts_ns: int | None) -> str | None:
    """Nanoseconds since the epoch as RFC 3339 UTC with microseconds: ``...T13:30:00.000000Z``."""
    if ts_ns is None:
        return None
    seconds, ns = divmod(int(ts_ns), 10**9)
    stamp = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{ns // 1000:06d}Z"


def ts_bar(ts_ns: int) -> str:
    """A bar's start as market data sends it: ``2021-02-22T19:15:00Z``."""
    seconds = int(ts_ns) // 10**9
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ts_et(ts_ns: int, *, fraction: bool = False) -> str:
    """A time in New York with its offset, as the clock sends it: ``2022-04-28T09:30:00-04:00``."""
    seconds, ns = divmod(int(ts_ns), 10**9)
    when = dt.datetime.fromtimestamp(seconds, tz=NEW_YORK)
    if fraction:
        when = when.replace(microsecond=ns // 1000)
        return when.isoformat(timespec="microseconds")
    return when.isoformat(timespec="seconds")


def asset_id(symbol: str) -> str:
    """A stable asset UUID per symbol (the same on every run)."""
    return str(uuid.uuid5(ASSET_NAMESPACE, symbol))


def parse_decimal(value: Any, field: str) -> float | None:
    """A request field sent as a decimal string or a number; 422 naming the field otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ExchangeRejection(422, 40010001, f"invalid {field}: {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ExchangeRejection(422, 40010001, f"invalid {field}: {value!r}") from None
    if not math.isfinite(number):
        raise ExchangeRejection(422, 40010001, f"invalid {field}: {value!r}")
    return number


def check_increment(price: float | None, field: str) -> None:
    """Sub-penny rule: at most 2 decimals at or above $1, at most 4 below (422 42210000)."""
    if price is None:
        return
    places = 2 if price >= 1.0 else 4
    if abs(round(price, places) - price) > 1e-9:
        raise ExchangeRejection(
            422,
            42210000,
            f"invalid {field} {dec(price)}. sub-penny increment does not fulfill minimum "
            "pricing criteria",
        )


def error_body(status: int) -> dict[str, Any]:
    """The body of an auth or generic failure: ``{"code": 40110000, "message": ...}``."""
    messages = {
        401: (40110000, "request is not authorized"),
        403: (40310000, "forbidden"),
        404: (40410000, "not found"),
        429: (42910000, "too many requests"),
        500: (50010000, "internal server error"),
    }
    code, message = messages.get(status, (status * 100000, "error"))
    return {"code": code, "message": message}
