"""Offline replay: the bridge against the local paper emulator over cached bars, over real
HTTP and WebSockets on 127.0.0.1, then the parity report against the backtest.

The emulator (:class:`~barlab.live.exchange.PaperExchange` behind
:class:`~barlab.live.emulator.EmulatorServer`) fills by the kernel's rules: market orders at
the next bar's open, with the same slippage; no commission (Alpaca charges none), so the
backtest side runs without commission too. :func:`drive` paces it: the next bar closes only
once the bridge has journalled the last one, so the replay runs as fast as the bridge acts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from barlab.bars import Bars
from barlab.engine.backtest import BacktestOptions
from barlab.live.bridge import BridgeConfig, LiveBridge
from barlab.live.journal import read_journal, wait_for
from barlab.live.parity import COLUMNS, ParityReport, backtest_orders, compare
from barlab.strategy import Strategy

log = logging.getLogger(__name__)


def replay_options(options: BacktestOptions) -> BacktestOptions:
    """The options both sides of a replay use: no commission (the emulator charges none)."""
    costs = dataclasses.replace(
        options.costs, commission_rate=0.0, commission_per_share=0.0, commission_per_order=0.0,
        commission_min=0.0, commission_max=None,
    )  # fmt: skip
    return dataclasses.replace(options, costs=costs)


def make_server(
    bars: Bars, options: BacktestOptions, *, key_id: str, secret_key: str, **rules: Any
) -> Any:
    """An emulator over ``bars`` with the account, slippage and buying-power buffer of
    ``options`` (``rules``: other :class:`~barlab.live.exchange.ExchangeRules`), not started."""
    from barlab.live.emulator import EmulatorServer
    from barlab.live.exchange import PaperExchange

    settings = {
        "slippage_bps": options.costs.slippage_bps, "fractional": options.fractional,
        "allow_flip": True, "market_buffer": options.buying_power_buffer, **rules,
    }  # fmt: skip
    exchange = PaperExchange(bars, cash=options.cash, **settings)
    return EmulatorServer(exchange, key_id=key_id, secret_key=secret_key, rate_limit_per_min=None)


def drive(
    server: Any,
    journal_path: Path,
    *,
    timeout_s: float = 60.0,
    bars: int | None = None,
    alive: Callable[[], bool] | None = None,
    before_bar: Callable[[Any, int], None] | None = None,
) -> int:
    """Close the emulator's bars one at a time, each once the bridge journalled the last
    (``bars``: at most this many; None: to the end; ``alive``: see
    :func:`~barlab.live.journal.wait_for`; ``before_bar(server, row)``: called before bar
    ``row`` closes, e.g. to inject faults). Returns the number closed."""
    ex = server.exchange
    offset, closed = 0, 0
    while bars is None or closed < bars:
        if before_bar is not None and ex.index + 1 < ex.bars.n_bars:
            before_bar(server, ex.index + 1)
        row = server.advance()
        if row is None:
            break
        closed += 1
        offset = wait_for(
            journal_path, "bar", ts_ns=int(ex.bars.ts_ns[row]), timeout_s=timeout_s,
            offset=offset, alive=alive,
        )  # fmt: skip
    return closed


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayResult:
    """A replay's outcome: the parity report, both sides' orders, the bridge's counters."""

    report: ParityReport
    backtest: pl.DataFrame
    bridge: pl.DataFrame
    stats: dict[str, int]


def replay(
    strategy: Strategy,
    bars: Bars,
    *,
    config: BridgeConfig,
    journal_path: Path,
    timeout_s: float = 60.0,
    before_bar: Callable[[Any, int], None] | None = None,
    exchange_rules: dict[str, Any] | None = None,
) -> ReplayResult:
    """Run ``strategy`` through the bridge over ``bars`` on a fresh emulator, then compare.

    ``config.options`` should come from ``bridge_options(replay_options(options))``;
    ``before_bar`` goes to :func:`drive`; ``exchange_rules`` override the emulator's
    :class:`~barlab.live.exchange.ExchangeRules` (tests: a stricter buying-power buffer).
    """
    from barlab.live.runner import Endpoints, SessionOptions, run_session

    key_id, secret_key = "PKREPLAY" + secrets.token_hex(6).upper(), secrets.token_hex(16)
    server = make_server(
        bars, config.options, key_id=key_id, secret_key=secret_key, **(exchange_rules or {})
    )
    with server:
        endpoints = Endpoints(
            trading_url=server.url, stream_url=server.ws_url, data_url=server.url,
            key_id=key_id, secret_key=secret_key, requests_per_minute=600_000.0,
        )  # fmt: skip
        stop = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["bridge"] = run_session(
                    strategy, endpoints=endpoints, symbols=bars.symbols,
                    timeframe=bars.timeframe, config=config, journal_path=journal_path,
                    stop=stop, options=SessionOptions(grace_s=None, source=bars.source,
                                                      reconnect_base_s=0.05),
                )  # fmt: skip
            except BaseException as e:  # handed to the caller below
                box["error"] = e

        thread = threading.Thread(target=run, name="bridge", daemon=True)
        thread.start()
        try:
            wait_for(journal_path, "ready", timeout_s=timeout_s, alive=thread.is_alive)
            drive(
                server, journal_path, timeout_s=timeout_s, alive=thread.is_alive,
                before_bar=before_bar,
            )  # fmt: skip
        except TimeoutError:
            if "error" in box:
                raise box["error"] from None
            raise
        finally:
            stop.set()
            thread.join(timeout_s)
        if "error" in box:
            raise box["error"]
        from barlab.live.broker import AlpacaBroker

        broker = AlpacaBroker(server.url, key_id, secret_key, requests_per_minute=600_000.0)
        bridge_frame = bridge_orders(broker, journal_path)
        held = {p.symbol: p.qty for p in broker.list_positions()}
        positions = {s: float(held.get(s, 0.0)) for s in bars.symbols}
    bt = backtest_orders(strategy, bars, config.options)
    report = compare(bt, bridge_frame, bridge_positions=positions)
    bridge: LiveBridge | None = box.get("bridge")
    return ReplayResult(
        report=report, backtest=bt, bridge=bridge_frame, stats=bridge.stats if bridge else {}
    )


def bridge_orders(broker: Any, journal_path: Path) -> pl.DataFrame:
    """The bridge's orders that filled, as the broker reports them (by the journalled client
    order ids), in the comparison's columns."""
    from barlab.errors import NotFoundError

    intents = {r["client_order_id"]: r for r in read_journal(journal_path) if r["kind"] == "intent"}
    rows = []
    for coid, intent in intents.items():
        try:
            order = broker.get_order_by_client_id(coid)
        except NotFoundError:
            continue  # refused at submit: journalled with its error
        if order.filled_qty <= 0 or order.filled_at is None:
            continue
        rows.append({
            "symbol": order.symbol, "signal_ns": int(intent["bar_ts_ns"]), "side": order.side,
            "qty": order.filled_qty, "fill_ns": _ns(order.filled_at),
            "price": order.filled_avg_price,
        })  # fmt: skip
    schema = {"symbol": pl.String, "signal_ns": pl.Int64, "side": pl.String,
              "qty": pl.Float64, "fill_ns": pl.Int64, "price": pl.Float64}  # fmt: skip
    return pl.DataFrame(rows, schema=schema).select(COLUMNS).sort(["signal_ns", "symbol"])


def _ns(when: Any) -> int:
    """An aware datetime as ns since the epoch (exact to the microsecond)."""
    delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
