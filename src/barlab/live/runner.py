"""Wiring one bridge session: the broker, the warm-up, the market-data feed, the trade-updates
stream and the journal around a :class:`~barlab.live.bridge.LiveBridge`, until stopped.

:func:`run_session` is what ``backtest live --paper`` runs, and what the replay runs against
the local emulator; the endpoints decide which. It returns when ``stop`` is set or the feed
ends with an error (raised).
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from barlab.bars import TIMEFRAMES
from barlab.errors import BarlabError
from barlab.live.bridge import BridgeConfig, LiveBridge
from barlab.live.journal import Journal, JournalState
from barlab.live.marketdata import Bar
from barlab.strategy import Strategy

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoints:
    """Where the bridge talks to, and with which keys (never shown: ``repr=False``).

    Attributes
    ----------
    trading_url : str
        e.g. ``"https://paper-api.alpaca.markets"`` or ``"http://127.0.0.1:8765"``.
    stream_url : str
        The market-data WebSocket host, e.g. ``"wss://stream.data.alpaca.markets"``.
    data_url : str
        The market-data REST host (warm-up and backfill), e.g. ``"https://data.alpaca.markets"``.
    feed : str
        ``"iex"`` or ``"sip"``.
    allow_live : bool
        The live trading host is allowed (``--live`` with its confirmation).
    requests_per_minute : float
        The broker client's request budget, e.g. 190 (Alpaca allows 200 per key).
    """

    trading_url: str
    stream_url: str
    data_url: str
    key_id: str = field(repr=False)
    secret_key: str = field(repr=False)
    feed: str = "iex"
    allow_live: bool = False
    requests_per_minute: float = 190.0

    @property
    def trade_updates_url(self) -> str:
        """The trade_updates WebSocket: the trading host over ws(s)://."""
        return "ws" + self.trading_url.removeprefix("http")


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionOptions:
    """How a session runs besides the trading rules.

    Attributes
    ----------
    grace_s : float or None
        Wall-clock seconds after a bar time ends before it is acted on without the bars of
        symbols that did not trade, e.g. 5; None (a paced replay): only once every symbol sent
        its bar or a later bar arrives.
    on_shutdown : str
        ``"cancel"`` open orders when stopping, or ``"keep"`` them.
    reconnect_base_s : float
        First backoff of the streams' reconnects, seconds, e.g. 1.0.
    source : str
        Labels the window's Bars, e.g. ``"alpaca"`` or ``"demo"``.
    market_data_retention : int
        Trades kept per symbol in ``bridge.market_data`` (``[live] market_data_retention``).
    metrics, health : optional
        :class:`barlab.live.ops.BridgeMetrics` and :class:`barlab.live.ops.Health`: the session
        reports bars and feed latency to the first and registers its checks with the second
        (``feed_connected``, ``broker_reachable``, ``halted``, ``last_bar_ns``).
    """

    grace_s: float | None = 5.0
    on_shutdown: str = "cancel"
    reconnect_base_s: float = 1.0
    source: str = "alpaca"
    market_data_retention: int = 1000
    metrics: Any = None
    health: Any = None


def run_session(
    strategy: Strategy,
    *,
    endpoints: Endpoints,
    symbols: tuple[str, ...],
    timeframe: str,
    config: BridgeConfig,
    journal_path: str | Path,
    stop: threading.Event,
    options: SessionOptions | None = None,
    on_ready: Callable[[LiveBridge], None] | None = None,
) -> LiveBridge:
    """Run the bridge until ``stop`` is set; returns it (its ``stats`` say what it did)."""
    from barlab.data.providers.alpaca import AlpacaProvider
    from barlab.live.broker import AlpacaBroker
    from barlab.live.feed import (
        MarketDataFeed,
        MarketDataStore,
        StreamOptions,
        TradeUpdatesStream,
        alpaca_backfill,
    )

    opts = options or SessionOptions()
    keys = {"key_id": endpoints.key_id, "secret_key": endpoints.secret_key}
    broker = AlpacaBroker(
        endpoints.trading_url, allow_live=endpoints.allow_live,
        requests_per_minute=endpoints.requests_per_minute, **keys,
    )  # fmt: skip
    state = JournalState.load(journal_path)
    journal = Journal(journal_path)
    bridge = LiveBridge(
        strategy, broker=broker, symbols=symbols, timeframe=timeframe, journal=journal,
        config=config, source=opts.source, metrics=opts.metrics,
    )  # fmt: skip
    journal.append(
        "start", strategy=strategy.label(), params=strategy.get_params(), symbols=list(symbols),
        timeframe=timeframe, dry_run=config.dry_run, window_bars=config.window_bars,
        options=config.options.to_dict(), resumed=bool(state.bars),
    )  # fmt: skip
    bridge.resume(state)
    bridge.reconcile()
    provider = AlpacaProvider(
        base_url=endpoints.data_url, feed=endpoints.feed,
        requests_per_minute=endpoints.requests_per_minute, **keys,
    )  # fmt: skip
    backfill = alpaca_backfill(provider, timeframe=timeframe)
    bar_ns = TIMEFRAMES[timeframe] * 10**9
    now_ns = int(broker.get_clock().timestamp.timestamp() * 10**9)
    start_ns = _warm_up(bridge, backfill, now_ns=now_ns, bar_ns=bar_ns)
    stream_options = StreamOptions(backoff_base_s=opts.reconnect_base_s)
    # the latest quote and the last trades of each symbol, for strategies that stream them
    bridge.market_data = MarketDataStore(retention=opts.market_data_retention)
    feed = MarketDataFeed(
        endpoints.stream_url, feed=endpoints.feed, symbols=symbols, backfill=backfill,
        start_ns=start_ns, options=stream_options, store=bridge.market_data,
        channels=("bars", *strategy.market_data), **keys,
    )  # fmt: skip
    updates = TradeUpdatesStream(
        endpoints.trade_updates_url, on_update=bridge.on_trade_update,
        on_reconnect=bridge.reconcile, options=stream_options, **keys,
    )  # fmt: skip
    if opts.health is not None:
        _register(opts.health, bridge, feed, broker)
    try:
        updates.start().wait_connected(30.0)
        feed.start().wait_connected(30.0)
        journal.append("ready", start_ns=start_ns)
        if on_ready is not None:
            on_ready(bridge)
        _loop(bridge, feed, stop, grace_s=opts.grace_s, bar_ns=bar_ns, metrics=opts.metrics)
    finally:
        _shut_down(bridge, opts.on_shutdown)
        feed.stop()
        updates.stop()
        journal.close()
    return bridge


def _warm_up(bridge: LiveBridge, backfill: Callable, *, now_ns: int, bar_ns: int) -> int | None:
    """Fill the window from the REST bars before ``now_ns``; the last bar time is acted on
    when it is still actionable (it ended at most one bar ago) and the journal has not done it;
    after a restart, the bars after the journal's last one are stepped through the strategy's
    state (:meth:`LiveBridge.process`). Returns where the stream takes over (ns), or None when
    there was no history."""
    days = bridge.config.window_bars * bar_ns / (390 * 60 * 10**9) + 5
    span = int(dt.timedelta(days=days * 7 / 5).total_seconds() * 10**9)
    # after a restart, the bars missed since the journal's last one are stepped through too:
    # the history reaches a window before them
    since = min(now_ns, bridge.resumed_at or now_ns) - span
    history = [b for b in backfill(bridge.symbols, since, now_ns) if b.ts_ns + bar_ns <= now_ns]
    if not history:
        return None
    last_ts = max(b.ts_ns for b in history)
    bridge.warm([b for b in history if b.ts_ns < last_ts])
    latest = [b for b in history if b.ts_ns == last_ts]
    bridge.process(last_ts, latest, trade=now_ns - (last_ts + bar_ns) <= bar_ns)
    bridge.assembler.done_until = last_ts
    log.info("bridge warmed up with %d bar times", len(bridge.window))
    return last_ts + bar_ns


def _register(health: Any, bridge: LiveBridge, feed: Any, broker: Any) -> None:
    def broker_reachable() -> bool:
        broker.get_clock()
        return True

    health.register("feed_connected", lambda: feed.connected)
    health.register("broker_reachable", broker_reachable)
    health.register("halted", lambda: bridge.halted or bridge.stopped)
    health.register("last_bar_ns", lambda: bridge.window.last_ts)


def _loop(
    bridge: LiveBridge,
    feed: Any,
    stop: threading.Event,
    *,
    grace_s: float | None,
    bar_ns: int,
    metrics: Any = None,
) -> None:
    from barlab.live.feed import FeedClosed

    events: queue.Queue = feed.events  # type: ignore[attr-defined]
    while not stop.is_set():
        try:
            event = events.get(timeout=0.05)
        except queue.Empty:
            if grace_s is not None:
                bridge.flush(time.time_ns() - bar_ns - int(grace_s * 1e9))
            continue
        if isinstance(event, Bar) and event.kind == "bar":
            if metrics is not None:
                latency = (time.time_ns() - event.ts_ns - bar_ns) / 1e9
                metrics.bar_received(latency, bar_ts_ns=event.ts_ns)
            bridge.on_bar(event)
        elif isinstance(event, FeedClosed):
            if event.error is not None:
                raise event.error
            return


def _shut_down(bridge: LiveBridge, on_shutdown: str) -> None:
    if on_shutdown == "cancel" and not bridge.config.dry_run:
        try:
            bridge.broker.cancel_all_orders()
        except BarlabError as e:
            log.error("bridge: cancelling open orders on shutdown failed: %s", e)
    bridge.journal.append("stop", stats=bridge.stats, on_shutdown=on_shutdown)
