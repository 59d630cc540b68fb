"""Alpaca's live streams as barlab reads them: :class:`MarketDataFeed` (bars, trades and
quotes from ``/v2/{feed}``, reconnecting, resubscribing and backfilling missed bars over REST,
each bar delivered once and in order), on :class:`~barlab.live.stream.ReconnectingStream`
(api/alpaca-trading.md §7, 11). :class:`TradeUpdatesStream` (trade_updates.py) is re-exported
here: the bridge imports both streams from this module.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from barlab.errors import AuthError, BarlabError, ConfigError, ProviderError
from barlab.live.marketdata import (
    MINUTE_NS,
    Bar,
    Control,
    Event,
    MarketDataStore,
    Quote,
    Trade,
    parse_message,
)
from barlab.live.stream import Connection, Reconnect, ReconnectingStream, StreamOptions
from barlab.live.trade_updates import TradeUpdate, TradeUpdatesStream, stream_url

__all__ = [
    "Backfill", "Bar", "FeedClosed", "FeedStats", "MarketDataFeed", "MarketDataStore", "Quote",
    "StreamOptions", "Trade", "TradeUpdate", "TradeUpdatesStream", "alpaca_backfill",
]  # fmt: skip

log = logging.getLogger(__name__)

FEEDS = ("iex", "sip", "delayed_sip", "test")
FEED_CHANNELS = ("bars", "updatedBars", "dailyBars", "trades", "quotes")
FATAL_CODES = {
    400: "the server could not parse a request (a barlab bug; please report it)",
    405: "too many symbols for the plan; subscribe to fewer trades/quotes symbols",
    408: "v2 streaming is not enabled for this account",
    409: 'the plan does not include this feed; use feed="iex"',
    410: "this subscribe action is not valid on this feed",
    411: "the keys lack the scope for this stream",
}
"""Market-data error codes a reconnect cannot fix (402 auth failed is an AuthError)."""

_COUNTS = ("bars", "trades", "quotes", "duplicates", "backfilled", "backfill_errors", "malformed")

Backfill = Callable[[tuple[str, ...], int, int], Iterable[Bar]]
"""``backfill(symbols, start_ns, end_ns)``: the minute bars of ``symbols`` starting in
[start_ns, end_ns], e.g. from the Alpaca REST provider (:func:`alpaca_backfill`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedClosed:
    """The last event of a stopped feed: ``error`` is None after stop(), else why it ended."""

    error: BarlabError | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedStats:
    """A snapshot of what a feed has done, for logs and Prometheus.

    Latency is receive time minus bar *end* (start + 60 s) of live minute bars, in seconds
    (about 1 s at Alpaca); backfilled bars are not counted in it.
    """

    connections: int = 0
    bars: int = 0
    trades: int = 0
    quotes: int = 0
    duplicates: int = 0
    backfilled: int = 0
    backfill_errors: int = 0
    malformed: int = 0
    errors: Mapping[int, int] | None = None
    latency_last_s: float = float("nan")
    latency_max_s: float = float("nan")
    latency_mean_s: float = float("nan")


class MarketDataFeed:
    """Alpaca's market-data WebSocket for a set of symbols, delivered one event at a time.

    Minute bars reach ``on_event`` (or :attr:`events`) in order per symbol, each (symbol,
    bar start) once, also across reconnects: after a drop the feed reconnects with backoff,
    re-authenticates, resubscribes the full set, then asks ``backfill`` for the bars it missed.

    Parameters
    ----------
    url : str
        The stream host, ``"wss://stream.data.alpaca.markets"`` or an emulator's
        ``"ws://127.0.0.1:8123"``; ``/v2/{feed}`` is appended unless already there.
    key_id, secret_key : str
        The account's keys; never logged or shown.
    feed : str
        ``"iex"`` (free plans), ``"sip"``, ``"delayed_sip"`` or ``"test"``.
    symbols : sequence of str
        e.g. ``("AAPL", "MSFT")``.
    channels : sequence of str
        Any of ``bars``, ``updatedBars``, ``dailyBars``, ``trades``, ``quotes``.
    on_event : callable, optional
        Called with each Bar, Trade, Quote and finally a FeedClosed, on the feed's thread
        (keep it quick: a slow client is disconnected). When None they go to :attr:`events`.
    store : MarketDataStore, optional
        Updated with every event before it is delivered.
    backfill : callable, optional
        ``backfill(symbols, start_ns, end_ns)`` -> bars, see :data:`Backfill`.
    start_ns : int, optional
        Minute bars starting before this are never delivered; when set, the first connect also
        backfills from it (a gapless hand-over from a REST warm-up).
    options : StreamOptions, optional
        Backoff, timeouts and pings.
    clock_ns : callable
        Current time in ns since the epoch, for latency and the backfill's end.
    """

    def __init__(
        self,
        url: str,
        *,
        key_id: str,
        secret_key: str,
        feed: str = "iex",
        symbols: Sequence[str],
        channels: Sequence[str] = ("bars",),
        on_event: Callable[[Event | FeedClosed], None] | None = None,
        store: MarketDataStore | None = None,
        backfill: Backfill | None = None,
        start_ns: int | None = None,
        options: StreamOptions | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        if not key_id or not secret_key:
            raise AuthError("the market-data feed needs both key_id and secret_key; one is empty")
        if feed not in FEEDS:
            raise ConfigError(f"market-data feed must be one of {', '.join(FEEDS)}, got {feed!r}")
        unknown = [c for c in channels if c not in FEED_CHANNELS]
        if unknown or not channels:
            raise ConfigError(
                f"market-data channels must be some of {', '.join(FEED_CHANNELS)}, "
                f"got {list(channels)!r}"
            )
        if (
            isinstance(symbols, str)
            or not symbols
            or not all(isinstance(s, str) and s for s in symbols)
        ):
            raise ConfigError(f"market-data symbols must be non-empty strings, got {symbols!r}")
        self.symbols = tuple(dict.fromkeys(symbols))
        self.channels = tuple(channels)
        self.feed = feed
        self.events: queue.Queue[Event | FeedClosed] = queue.Queue()
        self._on_event = on_event or self.events.put
        self._store = store
        self._backfill = backfill
        self._clock_ns = clock_ns
        self._keys = (key_id, secret_key)
        self._floor = -1 if start_ns is None else start_ns - 1
        self._backfill_from_start = start_ns is not None
        self._last_ts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(_COUNTS, 0)
        self._errors: dict[int, int] = {}
        self._latency = [float("nan"), float("nan"), 0.0, 0]  # last, max, sum, n
        self._stream = ReconnectingStream(
            stream_url(url, f"/v2/{feed}"), self, name="market data",
            secrets=self._keys, options=options, error_type=ProviderError,
        )  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"MarketDataFeed(url={self._stream.url!r}, symbols={len(self.symbols)}, "
            f"channels={self.channels!r})"
        )

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> MarketDataFeed:
        self._stream.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close the connection and join the thread; a FeedClosed event follows."""
        self._stream.stop(timeout_s)

    def __enter__(self) -> MarketDataFeed:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_connected(self, timeout_s: float = 10.0) -> None:
        """Block until subscribed (and backfilled); raises the AuthError or ProviderError that
        stopped the feed, or TimeoutError."""
        self._stream.wait_connected(timeout_s)

    @property
    def running(self) -> bool:
        return self._stream.running

    @property
    def connected(self) -> bool:
        return self._stream.connected

    @property
    def error(self) -> BarlabError | None:
        return self._stream.error

    @property
    def stats(self) -> FeedStats:
        with self._lock:
            last, high, total, n = self._latency
            return FeedStats(
                connections=self._stream.connections, errors=dict(self._errors),
                latency_last_s=last, latency_max_s=high,
                latency_mean_s=total / n if n else float("nan"), **self._counts,
            )  # fmt: skip

    # -- session (called on the stream's thread) ------------------------------------------
    def handshake(self, conn: Connection, *, reconnect: bool) -> None:
        self._expect(conn, "connected")
        key_id, secret_key = self._keys
        conn.send_json({"action": "auth", "key": key_id, "secret": secret_key})
        self._expect(conn, "authenticated")
        conn.send_json({"action": "subscribe", **{c: list(self.symbols) for c in self.channels}})
        self._expect(conn, "subscription")
        if self._backfill is not None and (reconnect or self._backfill_from_start):
            self._run_backfill()

    def on_message(self, message: Any) -> None:
        for item in message if isinstance(message, list) else [message]:
            try:
                parsed = parse_message(item)
            except ProviderError as e:
                self._count("malformed")
                log.warning("market data: skipping a message: %s", e)
                continue
            if isinstance(parsed, Control):
                if parsed.type == "error":
                    self._on_error(parsed)
            elif parsed is not None:
                self._deliver(parsed, live=True)

    def on_closed(self, error: BarlabError | None) -> None:
        self._emit(FeedClosed(error=error))

    # -- internals ------------------------------------------------------------------------
    def _expect(self, conn: Connection, what: str) -> None:
        """Read control messages until ``what`` (a success msg, or ``subscription``)."""
        while True:
            message = conn.recv_json()
            for item in message if isinstance(message, list) else [message]:
                parsed = parse_message(item)
                if not isinstance(parsed, Control):
                    if parsed is not None:
                        self._deliver(parsed, live=True)
                elif parsed.type == "error":
                    self._on_error(parsed)
                elif what in (parsed.type, parsed.msg):
                    return

    def _on_error(self, error: Control) -> None:
        with self._lock:
            self._errors[error.code] = self._errors.get(error.code, 0) + 1
        where = f"{self._stream.url} (error {error.code}: {error.msg})"
        if error.code == 402:
            raise AuthError(
                f"the market-data server refused the keys at {where}; check APCA_API_KEY_ID "
                "and APCA_API_SECRET_KEY (paper and live keys both work for market data)"
            )
        if error.code in FATAL_CODES:
            raise ProviderError(f"market data stopped at {where}: {FATAL_CODES[error.code]}")
        if error.code == 403:  # already authenticated: harmless
            return
        # 401, 404 auth timeout, 406 connection limit, 407 slow client, 500: try again
        raise Reconnect(f"error {error.code}: {error.msg}")

    def _run_backfill(self) -> None:
        assert self._backfill is not None
        with self._lock:
            seen = [self._last_ts.get(s) for s in self.symbols if s in self._last_ts]
            if not seen and self._floor < 0:
                return
            watermark = max([*seen, self._floor])
            start = min(self._last_ts.get(s, watermark) for s in self.symbols) + 1
        end = self._clock_ns()
        try:
            bars = [b for b in self._backfill(self.symbols, start, end) if b.kind == "bar"]
        except BarlabError as e:
            self._count("backfill_errors")
            log.error("market data: backfill from %s failed, bars may be missing: %s", start, e)
            return
        bars.sort(key=lambda b: (b.ts_ns, b.symbol))
        for bar in bars:
            if bar.symbol in self.symbols:
                self._deliver(bar, live=False)

    def _deliver(self, event: Event, *, live: bool) -> None:
        if isinstance(event, Bar):
            if event.kind == "bar" and not self._first_time(event):
                self._count("duplicates")
                return
            self._count("bars" if live else "backfilled")
            if live and event.kind == "bar":
                self._record_latency(event)
        else:
            self._count("trades" if isinstance(event, Trade) else "quotes")
        if self._store is not None:
            self._store.update(event)
        self._emit(event)

    def _first_time(self, bar: Bar) -> bool:
        with self._lock:
            if bar.ts_ns <= self._last_ts.get(bar.symbol, self._floor):
                return False
            self._last_ts[bar.symbol] = bar.ts_ns
            return True

    def _record_latency(self, bar: Bar) -> None:
        latency = (self._clock_ns() - (bar.ts_ns + MINUTE_NS)) / 1e9
        with self._lock:
            _, high, total, n = self._latency
            high = latency if n == 0 else max(high, latency)
            self._latency = [latency, high, total + latency, n + 1]

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _emit(self, event: Event | FeedClosed) -> None:
        try:
            self._on_event(event)
        except Exception:  # a bug in the consumer must not kill the feed
            log.exception("market data: on_event raised on %s", type(event).__name__)


def alpaca_backfill(provider: Any, *, timeframe: str = "1m") -> Backfill:
    """A :data:`Backfill` over barlab's Alpaca REST provider
    (:class:`barlab.data.providers.alpaca.AlpacaProvider`, or any provider whose
    ``fetch(symbol, start, end, timeframe=)`` returns frames in barlab's bar schema)."""
    from barlab.data.calendar import NEW_YORK

    def backfill(symbols: tuple[str, ...], start_ns: int, end_ns: int) -> list[Bar]:
        first = dt.datetime.fromtimestamp(start_ns / 1e9, tz=NEW_YORK).date()
        last = max(first, dt.datetime.fromtimestamp(end_ns / 1e9, tz=NEW_YORK).date())
        bars = []
        for symbol in symbols:
            frame = provider.fetch(symbol, first, last, timeframe=timeframe)
            for row in frame.iter_rows(named=True):
                ts_ns = int(row["ts"].timestamp()) * 10**9
                if start_ns <= ts_ns <= end_ns:
                    bars.append(_bar_of(symbol, ts_ns, row))
        return bars

    return backfill


def _bar_of(symbol: str, ts_ns: int, row: Mapping[str, Any]) -> Bar:
    vwap = row.get("vwap")
    return Bar(
        symbol=symbol, ts_ns=ts_ns, open=row["open"], high=row["high"], low=row["low"],
        close=row["close"], volume=row["volume"], trade_count=int(row.get("n_trades") or 0),
        vwap=float("nan") if vwap is None else vwap,
    )  # fmt: skip
