"""Bars missed while the bridge was down: stopped mid-day, restarted 59 bars later, the bridge
steps the missed bars through its entries/exits strategy's state without sending orders for
them, so that its state and its orders are those of an uninterrupted run."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import polars as pl

from barlab.engine.backtest import BacktestOptions
from barlab.live.bridge import BridgeConfig, bridge_options
from barlab.live.journal import read_journal, wait_for
from barlab.live.replay import bridge_orders, drive, make_server, replay, replay_options
from tests.live.conftest import KEY_ID, SECRET, session_bars
from tests.live.strategies import Schedule

# AAPL: in at minute 10, out at 200. MSFT: its entry at 20 is refused (one position at a time),
# so its exit at 60 changes its state but sends nothing; its entry at 250 then buys. A bridge
# down from minute 41 to 99 that did not step minute 60 would still think MSFT long at 250
# and not buy.
STRATEGY = Schedule(entries="10;20,250", exits="200;60")


def config() -> BridgeConfig:
    opts = BacktestOptions.from_kwargs(size_pct=0.5, max_open_positions=1)
    return BridgeConfig(options=bridge_options(replay_options(opts)), window_bars=60)


def session(server: Any, journal: Path) -> tuple[threading.Thread, threading.Event, dict]:
    """A bridge session against ``server`` in a thread; set the event to stop it."""
    from barlab.live.runner import Endpoints, SessionOptions, run_session

    endpoints = Endpoints(
        trading_url=server.url, stream_url=server.ws_url, data_url=server.url, key_id=KEY_ID,
        secret_key=SECRET, requests_per_minute=600_000.0,
    )  # fmt: skip
    stop, box = threading.Event(), {}
    bars = server.exchange.bars

    def run() -> None:
        try:
            box["bridge"] = run_session(
                STRATEGY, endpoints=endpoints, symbols=bars.symbols, timeframe=bars.timeframe,
                config=config(), journal_path=journal, stop=stop,
                options=SessionOptions(grace_s=None, source=bars.source, on_shutdown="keep",
                                       reconnect_base_s=0.05),
            )  # fmt: skip
        except BaseException as e:
            box["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, stop, box


def bar_states(journal: Path) -> dict[int, list[int]]:
    return {r["ts_ns"]: r["signal_state"] for r in read_journal(journal) if r["kind"] == "bar"}


def test_bars_missed_while_down_are_stepped_through_the_strategy_state(tmp_path: Path):
    bars = session_bars(("2024-03-05",))
    whole = replay(STRATEGY, bars, config=config(), journal_path=tmp_path / "whole.jsonl",
                   timeout_s=30)  # fmt: skip
    assert whole.report.exact, whole.report.summary()
    assert [(r["symbol"], r["side"]) for r in whole.bridge.to_dicts()] == [
        ("AAPL", "buy"), ("AAPL", "sell"), ("MSFT", "buy"),
    ]  # fmt: skip

    journal = tmp_path / "journal.jsonl"
    server = make_server(bars, config().options, key_id=KEY_ID, secret_key=SECRET)
    with server:
        thread, stop, box = session(server, journal)
        wait_for(journal, "ready", timeout_s=60, alive=thread.is_alive)
        drive(server, journal, bars=41, alive=thread.is_alive)  # minutes 0 to 40
        stop.set()
        thread.join(30)
        assert "error" not in box, box.get("error")
        for _ in range(59):  # minutes 41 to 99 close with no bridge running
            server.advance()
        offset = journal.stat().st_size
        thread, stop, box = session(server, journal)
        wait_for(journal, "ready", offset=offset, timeout_s=60, alive=thread.is_alive)
        drive(server, journal, alive=thread.is_alive)
        stop.set()
        thread.join(30)
        assert "error" not in box, box.get("error")
        from barlab.live.broker import AlpacaBroker

        broker = AlpacaBroker(server.url, KEY_ID, SECRET, requests_per_minute=600_000.0)
        orders = bridge_orders(broker, journal)

    # the orders are the uninterrupted run's, MSFT's buy at minute 251 included
    assert orders.equals(whole.bridge.select(orders.columns)), pl.concat(
        [orders, whole.bridge]
    )  # fmt: skip
    # the state at every bar is the uninterrupted run's, the missed bars' too
    assert bar_states(journal) == bar_states(tmp_path / "whole.jsonl")
    missed = [r for r in read_journal(journal) if r["kind"] == "bar" and r.get("missed")]
    minute = {int(t): k for k, t in enumerate(bars.ts_ns)}
    # minute 99 closed just before the restart: still actionable, so acted on, not missed
    assert [minute[r["ts_ns"]] for r in missed] == list(range(41, 99))
    assert [r["signal_state"] for r in missed if minute[r["ts_ns"]] == 60] == [[1, 0]]
    # nothing was sent for the missed bars
    sent = {r["bar_ts_ns"] for r in read_journal(journal) if r["kind"] == "intent"}
    assert not sent & {r["ts_ns"] for r in missed}
