"""Alpaca market-data stream messages as small frozen records, the one parser of their JSON,
and :class:`MarketDataStore`, the in-memory latest quote, last trades and latest bar per symbol.

Wire format: ../shared/api/alpaca-trading.md section 7 (``b``/``u``/``d`` bars, ``t`` trades,
``q`` quotes; ``success``, ``subscription`` and ``error`` control messages).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from barlab.errors import ProviderError

MINUTE_NS = 60 * 10**9

BAR_KINDS = {"b": "bar", "u": "updated", "d": "daily"}
"""Wire ``T`` of a bar message -> :attr:`Bar.kind`."""

CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses")
"""Subscription channels a client may ask for, as named in subscribe messages."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """One bar from the stream (or from a REST backfill).

    ``kind`` is ``"bar"`` (a minute bar, sent about 1 s after its minute closes), ``"updated"``
    (a later revision of a minute bar already sent, same ``ts_ns``) or ``"daily"``.
    ``ts_ns`` is the bar *start*, ns since the epoch, UTC; prices in dollars, volume in shares.
    """

    symbol: str
    ts_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    trade_count: int = 0
    vwap: float = float("nan")
    kind: str = "bar"


@dataclass(frozen=True, slots=True, kw_only=True)
class Trade:
    """One trade: ``price`` in dollars, ``size`` in shares, ``ts_ns`` ns since the epoch UTC."""

    symbol: str
    ts_ns: int
    price: float
    size: float
    trade_id: int = 0
    exchange: str = ""
    conditions: tuple[str, ...] = ()
    tape: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Quote:
    """The best bid and offer: prices in dollars, sizes in round lots as Alpaca sends them."""

    symbol: str
    ts_ns: int
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float
    bid_exchange: str = ""
    ask_exchange: str = ""
    conditions: tuple[str, ...] = ()
    tape: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Control:
    """A control message: ``success`` (``msg`` = ``"connected"`` or ``"authenticated"``),
    ``subscription`` (``subscriptions`` = channel -> symbols, the full current set) or
    ``error`` (``code`` as in section 7, e.g. 402 auth failed, 406 connection limit)."""

    type: str
    msg: str = ""
    code: int = 0
    subscriptions: Mapping[str, tuple[str, ...]] | None = None


Event = Bar | Trade | Quote


def parse_ts_ns(text: str) -> int:
    """RFC 3339 (``2021-02-22T19:15:00Z``, up to 9 fractional digits, ``Z`` or an offset) as
    ns since the epoch; exact to the nanosecond, unlike ``datetime.fromisoformat``."""
    if not isinstance(text, str) or len(text) < 20:
        raise ValueError(f"expected an RFC 3339 timestamp, got {text!r}")
    head, rest = text[:19], text[19:]
    frac = ""
    if rest.startswith("."):
        end = 1
        while end < len(rest) and rest[end].isdigit():
            end += 1
        frac, rest = rest[1:end], rest[end:]
    if len(frac) > 9:
        raise ValueError(f"more than 9 fractional digits in {text!r}")
    zone = "+00:00" if rest in ("Z", "z") else rest
    seconds = dt.datetime.fromisoformat(head + zone)
    if seconds.tzinfo is None:
        raise ValueError(f"timestamp without a zone: {text!r}")
    return int(seconds.timestamp()) * 10**9 + int(frac.ljust(9, "0") or 0)


def format_ts(ts_ns: int) -> str:
    """ns since the epoch as RFC 3339 UTC: ``...T19:15:00Z``, or with 9 digits when sub-second."""
    seconds, ns = divmod(ts_ns, 10**9)
    text = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ns:09d}Z" if ns else f"{text}Z"


def parse_message(msg: Mapping[str, Any]) -> Event | Control | None:
    """One element of a server array as a record; None for types barlab does not use
    (statuses, LULDs, corrections, cancel errors). Raises ProviderError naming the field."""
    kind = msg.get("T") if isinstance(msg, Mapping) else None
    try:
        if kind in BAR_KINDS:
            return Bar(
                symbol=msg["S"], ts_ns=parse_ts_ns(msg["t"]), open=float(msg["o"]),
                high=float(msg["h"]), low=float(msg["l"]), close=float(msg["c"]),
                volume=float(msg["v"]), trade_count=int(msg.get("n") or 0),
                vwap=float(msg["vw"]) if msg.get("vw") is not None else float("nan"),
                kind=BAR_KINDS[kind],
            )  # fmt: skip
        if kind == "t":
            return Trade(
                symbol=msg["S"], ts_ns=parse_ts_ns(msg["t"]), price=float(msg["p"]),
                size=float(msg["s"]), trade_id=int(msg.get("i") or 0),
                exchange=msg.get("x") or "", conditions=tuple(msg.get("c") or ()),
                tape=msg.get("z") or "",
            )  # fmt: skip
        if kind == "q":
            return Quote(
                symbol=msg["S"], ts_ns=parse_ts_ns(msg["t"]), bid_price=float(msg["bp"]),
                bid_size=float(msg["bs"]), ask_price=float(msg["ap"]),
                ask_size=float(msg["as"]), bid_exchange=msg.get("bx") or "",
                ask_exchange=msg.get("ax") or "", conditions=tuple(msg.get("c") or ()),
                tape=msg.get("z") or "",
            )  # fmt: skip
        if kind == "success":
            return Control(type="success", msg=str(msg.get("msg", "")))
        if kind == "error":
            return Control(type="error", msg=str(msg.get("msg", "")), code=int(msg["code"]))
        if kind == "subscription":
            subs = {ch: tuple(msg.get(ch) or ()) for ch in CHANNELS if ch in msg}
            return Control(type="subscription", subscriptions=subs)
    except (KeyError, TypeError, ValueError) as e:
        raise ProviderError(
            f"alpaca market-data message of type {kind!r} is malformed ({type(e).__name__}: "
            f"{e}); got {dict(msg)!r}"
        ) from e
    return None


class MarketDataStore:
    """The latest quote, the last ``retention`` trades and the latest bar of each symbol.

    Thread-safe: the feed's thread writes, the bridge reads.

    Parameters
    ----------
    retention : int
        Trades kept per symbol (config ``market_data_retention``), e.g. ``1000``.
    """

    def __init__(self, *, retention: int = 1000) -> None:
        if not isinstance(retention, int) or retention < 1:
            raise ValueError(
                f"market_data_retention must be a whole number >= 1, got {retention!r}"
            )
        self.retention = retention
        self._lock = threading.Lock()
        self._quotes: dict[str, Quote] = {}
        self._trades: dict[str, deque[Trade]] = {}
        self._bars: dict[str, Bar] = {}

    def __repr__(self) -> str:
        return f"MarketDataStore(retention={self.retention}, symbols={len(self.symbols())})"

    def update(self, event: Event | Control | None) -> None:
        """Record a Bar, Trade or Quote; anything else is ignored."""
        with self._lock:
            if isinstance(event, Quote):
                self._quotes[event.symbol] = event
            elif isinstance(event, Trade):
                trades = self._trades.get(event.symbol)
                if trades is None:
                    trades = self._trades[event.symbol] = deque(maxlen=self.retention)
                trades.append(event)
            elif isinstance(event, Bar) and event.kind != "daily":
                last = self._bars.get(event.symbol)
                if last is None or event.ts_ns >= last.ts_ns:
                    self._bars[event.symbol] = event

    def latest_quote(self, symbol: str) -> Quote | None:
        with self._lock:
            return self._quotes.get(symbol)

    def trades(self, symbol: str) -> tuple[Trade, ...]:
        """The last trades of ``symbol``, oldest first (at most ``retention``)."""
        with self._lock:
            return tuple(self._trades.get(symbol, ()))

    def latest_bar(self, symbol: str) -> Bar | None:
        """The most recent minute bar (a revision replaces the bar it revises)."""
        with self._lock:
            return self._bars.get(symbol)

    def last_price(self, symbol: str) -> float | None:
        """The newest of the last trade's price and the latest bar's close, in dollars."""
        with self._lock:
            trades, bar = self._trades.get(symbol), self._bars.get(symbol)
            trade = trades[-1] if trades else None
        if trade and (bar is None or trade.ts_ns >= bar.ts_ns):
            return trade.price
        return bar.close if bar else (trade.price if trade else None)

    def symbols(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(sorted({*self._quotes, *self._trades, *self._bars}))
