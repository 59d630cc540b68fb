"""The parity report's comparison, the bridge's order planning and its journal, without a
server: missed, extra and mismatched orders; deterministic client order ids; the same sizing
and buying-power rule as the kernel; a torn journal line."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from barlab.engine.backtest import BacktestOptions
from barlab.live.bridge import bridge_options
from barlab.live.journal import Journal, JournalState, read_journal, wait_for
from barlab.live.marketdata import Bar
from barlab.live.orders import AccountView, Planner, client_order_id
from barlab.live.parity import COLUMNS, compare, save
from barlab.live.window import BarAssembler, BarWindow, default_window
from barlab.strategies.sma_crossover import SmaCrossover


def frame(rows: list[tuple]) -> pl.DataFrame:
    schema = dict(zip(COLUMNS, (pl.String, pl.Int64, pl.String, pl.Float64, pl.Int64,
                                pl.Float64), strict=True))  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row")


def backtest_side(rows: list[tuple], final: dict[str, float]) -> pl.DataFrame:
    return frame(rows).with_columns(pl.lit(json.dumps(final)).alias("final_positions"))


A = ("AAPL", 1, "buy", 10.0, 2, 100.0)
B = ("MSFT", 1, "buy", 5.0, 2, 50.0)
C = ("AAPL", 3, "sell", 10.0, 4, 101.0)


def test_identical_sides_are_exact():
    report = compare(backtest_side([A, B, C], {"AAPL": 0, "MSFT": 5}), frame([A, B, C]),
                     bridge_positions={"AAPL": 0.0, "MSFT": 5.0})  # fmt: skip
    assert report.exact and report.score == 1.0 and report.matched == 3
    assert "EXACT" in report.summary()


def test_missed_extra_and_mismatched_orders_lower_the_score():
    late = ("AAPL", 1, "buy", 10.0, 3, 100.5)
    extra = ("TSLA", 2, "buy", 1.0, 3, 200.0)
    report = compare(backtest_side([A, B, C], {"AAPL": 0, "MSFT": 5}), frame([late, extra]),
                     bridge_positions={"AAPL": 10.0, "TSLA": 1.0})  # fmt: skip
    assert not report.exact and report.score == 0.0
    assert [m["symbol"] for m in report.missed] == ["MSFT", "AAPL"]
    assert [m["symbol"] for m in report.extra] == ["TSLA"]
    assert report.mismatched[0]["bridge"]["fill_ns"] == 3
    assert report.max_price_diff == pytest.approx(0.5) and report.max_fill_delay_s == 1e-9
    assert report.position_drift == {"AAPL": 10.0, "MSFT": -5.0, "TSLA": 1.0}
    assert "NOT exact" in report.summary()


def test_the_report_is_saved_with_both_sides(tmp_path: Path):
    report = compare(backtest_side([A], {"AAPL": 10}), frame([A]), bridge_positions={"AAPL": 10})
    save(report, tmp_path, backtest=backtest_side([A], {}), bridge=frame([A]),
         info={"strategy": "sma_crossover", "params": {"fast": 10}})  # fmt: skip
    doc = json.loads((tmp_path / "parity.json").read_text())
    assert doc["exact"] is True and doc["strategy"] == "sma_crossover"
    assert (tmp_path / "bridge_orders.csv").read_text().startswith(",".join(COLUMNS))


def test_client_order_ids_are_deterministic_and_distinct():
    args = {"strategy": "sma_crossover", "params": {"fast": 10, "slow": 50}, "symbol": "AAPL",
            "bar_ts_ns": 1_709_564_400_000_000_000, "intent": "target:1.0"}  # fmt: skip
    first = client_order_id(**args)
    assert first == client_order_id(**args) and len(first) <= 128
    for change in ({"symbol": "MSFT"}, {"bar_ts_ns": 1}, {"intent": "flatten"},
                   {"params": {"fast": 11, "slow": 50}}):  # fmt: skip
        assert client_order_id(**{**args, **change}) != first


def test_planner_sizes_at_the_close_and_checks_buying_power_like_the_kernel():
    options = bridge_options(BacktestOptions.from_kwargs(slippage_bps=0.0))
    planner = Planner(strategy="s", params={}, symbols=("A", "B"), options=options)
    view = AccountView(positions=np.zeros(2), closes=np.array([100.0, 50.0]), cash=100_000.0,
                       buying_power=100_000.0)  # fmt: skip
    intents = planner.plan(np.array([1.0, 1.0]), view, bar_ts_ns=0)
    assert (intents[0].symbol, intents[0].side, intents[0].qty) == ("A", "buy", 500.0)
    # 500 x 103 spent of the power: B gets what is left at 50 x 1.03, not its 1,000 shares
    b = intents[1]
    assert b.qty == int((100_000.0 - 500 * 103.0) / 51.5) < b.requested_qty == 1000.0
    assert b.reason == "insufficient_cash"
    # a held position and a zero target: a sell, sent before any buy
    held = AccountView(positions=np.array([0.0, 20.0]), closes=np.array([100.0, 50.0]),
                       cash=99_000.0, buying_power=99_000.0)  # fmt: skip
    out = planner.plan(np.array([1.0, 0.0]), held, bar_ts_ns=0)
    assert [(i.symbol, i.side) for i in out] == [("B", "sell"), ("A", "buy")]


def test_planner_refuses_what_adds_exposure_once_halted():
    options = bridge_options(BacktestOptions.from_kwargs(daily_loss_limit=100.0))
    planner = Planner(strategy="s", params={}, symbols=("A",), options=options)
    view = AccountView(positions=np.zeros(1), closes=np.array([10.0]), cash=1_000.0,
                       buying_power=1_000.0, halted=True)  # fmt: skip
    (intent,) = planner.plan(np.array([1.0]), view, bar_ts_ns=0)
    assert intent.qty == 0.0 and intent.reason == "daily_loss_limit"
    flat = planner.flatten(
        AccountView(positions=np.array([-3.0]), closes=np.array([10.0]), cash=0, buying_power=0),
        bar_ts_ns=5,
    )
    assert [(i.side, i.qty, i.reason) for i in flat] == [("buy", 3.0, "daily_loss_limit")]


def test_journal_survives_a_torn_last_line(tmp_path: Path):
    path = tmp_path / "j.jsonl"
    with Journal(path) as journal:
        journal.append("bar", ts_ns=60, equity=1.0)
        journal.append("intent", client_order_id="x", bar_ts_ns=60)
    with open(path, "a") as f:
        f.write('{"kind": "submit", "client_ord')  # the crash
    with Journal(path) as journal:
        journal.append("bar", ts_ns=120, equity=2.0)
    assert [r["kind"] for r in read_journal(path)] == ["bar", "intent", "bar"]
    state = JournalState.load(path)
    assert state.bars == {60, 120} and set(state.intents) == {"x"} and not state.submitted
    assert wait_for(path, "bar", ts_ns=120, timeout_s=1) == path.stat().st_size
    with pytest.raises(TimeoutError, match="bar at 180"):
        wait_for(path, "bar", ts_ns=180, timeout_s=0.05)


def test_window_and_assembler():
    def bar(symbol: str, ts: int, close: float) -> Bar:
        return Bar(symbol=symbol, ts_ns=ts, open=close, high=close, low=close, close=close,
                   volume=1.0)  # fmt: skip

    assembler = BarAssembler(("A", "B"))
    assert assembler.add(bar("A", 60, 1.0)) == []
    ((ts, group),) = assembler.add(bar("B", 60, 2.0))
    assert ts == 60 and len(group) == 2
    assert assembler.add(bar("A", 120, 3.0)) == []
    assert [t for t, _ in assembler.add(bar("A", 180, 4.0))] == [120]  # B did not trade at 120
    assert assembler.add(bar("B", 60, 9.0)) == []  # late copies are ignored
    window = BarWindow(("A", "B"), timeframe="1m", size=2, source="demo")
    for t, close in ((60, 1.0), (120, 2.0), (180, 3.0)):
        window.push(t, [bar("A", t, close)])
    bars = window.bars()
    assert bars.ts_ns.tolist() == [120, 180] and bars.close[:, 0].tolist() == [2.0, 3.0]
    assert np.isnan(bars.close[:, 1]).all() and bars.synthetic
    assert default_window(SmaCrossover()) == 200
    assert default_window(SmaCrossover(fast=20, slow=100)) == 400

    class Declared(SmaCrossover):
        lookback = 60

    assert default_window(Declared()) == 61


def test_session_clock_knows_regular_hours_and_last_bars():
    from barlab.data.calendar import NEW_YORK
    from barlab.live.window import SessionClock

    def ns(day: str, hhmm: str) -> int:
        when = dt.datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=NEW_YORK)
        return int(when.timestamp()) * 10**9

    clock = SessionClock("1m")
    assert clock.regular(ns("2024-03-05", "09:30")) and not clock.regular(ns("2024-03-05", "09:29"))
    assert not clock.regular(ns("2024-03-05", "16:00")) and not clock.regular(
        ns("2024-03-09", "10:00")
    )
    assert clock.last_of_session(ns("2024-03-05", "15:59"))
    assert not clock.last_of_session(ns("2024-03-05", "15:58"))
    assert clock.last_of_session(ns("2023-11-24", "12:59"))  # an early close
