"""The live bridge against the local paper emulator over loopback (real HTTP and WebSockets):
exact parity with the backtest, a dropped feed, a 429 storm, buying power, the kill switch,
dry runs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from barlab.bars import Bars
from barlab.engine.backtest import BacktestOptions
from barlab.live.bridge import BridgeConfig, bridge_options
from barlab.live.emulator_data import stream_hub
from barlab.live.journal import read_journal
from barlab.live.replay import ReplayResult, replay, replay_options
from barlab.strategies.sma_crossover import SmaCrossover
from tests.live.conftest import demo_bars

SYMBOLS = ["AAPL", "MSFT", "TSLA"]


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Bars:
    """Five sessions (2024-03-04 to 03-08) of 1-minute demo bars on three symbols."""
    data = tmp_path_factory.mktemp("data")
    return demo_bars(data, "2024-03-04", "2024-03-08")


def day(bars: Bars, k: int = 0) -> Bars:
    return bars.slice(390 * k, 390 * (k + 1))


def config(**options: Any) -> BridgeConfig:
    dry_run = options.pop("dry_run", False)
    opts = bridge_options(replay_options(BacktestOptions.from_kwargs(**options)))
    return BridgeConfig(options=opts, window_bars=200, dry_run=dry_run)


def run(bars: Bars, tmp_path: Path, cfg: BridgeConfig | None = None, **kw: Any) -> ReplayResult:
    strategy = SmaCrossover()
    return replay(
        strategy, bars, config=cfg or config(), journal_path=tmp_path / "journal.jsonl",
        timeout_s=30, **kw,
    )  # fmt: skip


def kinds(tmp_path: Path) -> Counter:
    return Counter(r["kind"] for r in read_journal(tmp_path / "journal.jsonl"))


def bar_records(tmp_path: Path) -> list[int]:
    return [r["ts_ns"] for r in read_journal(tmp_path / "journal.jsonl") if r["kind"] == "bar"]


def test_a_week_of_minute_bars_replays_with_exact_parity(week: Bars, tmp_path: Path):
    result = run(week, tmp_path)
    report = result.report
    assert report.exact, report.summary()
    assert report.score == 1.0 and report.matched == report.n_backtest == report.n_bridge
    assert report.n_backtest >= 50  # enough orders, on every symbol, to mean something
    assert set(result.backtest["symbol"]) == set(SYMBOLS)
    # prices travel as 9-decimal strings: the only difference is that rounding
    assert report.max_price_diff < 1e-9 and not report.missed and not report.extra
    # every bar acted on exactly once, in order; every order sent was answered
    assert bar_records(tmp_path) == week.ts_ns.tolist()
    counts = kinds(tmp_path)
    assert counts["intent"] == counts["submit"] >= report.n_bridge
    assert counts["fill"] >= report.n_bridge - len(SYMBOLS)  # the last fills may still be in flight


def test_dry_run_sends_nothing(week: Bars, tmp_path: Path):
    seen: dict[str, Any] = {}
    result = run(
        day(week), tmp_path, config(dry_run=True), before_bar=lambda s, _: seen.update(s=s)
    )
    assert seen["s"].exchange.orders == {}
    assert result.report.n_bridge == 0 and result.report.n_backtest > 0
    counts = kinds(tmp_path)
    assert counts["dry_run"] > 0 and counts["intent"] == 0 and counts["submit"] == 0


def test_feed_dropped_mid_day_recovers_without_missing_a_bar(week: Bars, tmp_path: Path):
    dropped: list[int] = []

    def drop(server: Any, row: int) -> None:
        if row in (120, 121, 260):
            dropped.append(stream_hub(server.app).drop("market_data", refuse_s=0.3))

    result = run(day(week, 1), tmp_path, before_bar=drop)
    assert sum(dropped) >= 2  # the connection was really closed, twice
    assert bar_records(tmp_path) == day(week, 1).ts_ns.tolist()
    assert result.report.exact, result.report.summary()


def test_a_429_storm_is_survived(week: Bars, tmp_path: Path):
    def storm(server: Any, row: int) -> None:
        if row in (50, 51, 200):
            server.inject_429(20)

    result = run(day(week, 2), tmp_path, before_bar=storm)
    assert bar_records(tmp_path) == day(week, 2).ts_ns.tolist()
    assert result.report.exact, result.report.summary()
    assert kinds(tmp_path)["error"] >= 1  # the storm was felt (and journalled)


def test_answers_lost_after_the_order_landed_never_place_it_twice(week: Bars, tmp_path: Path):
    seen: dict[str, Any] = {"lost": 0}

    def lose_answers(server: Any, row: int) -> None:
        if "server" in seen:
            return
        seen["server"] = ex = server.exchange
        place = ex.submit_order

        def submit_then_fail(body: Any) -> Any:
            order = place(body)  # the order is on the book ...
            if seen["lost"] % 2 == 0:
                seen["lost"] += 1
                raise RuntimeError("connection reset")  # ... and its answer a 500
            seen["lost"] += 1
            return order

        ex.submit_order = submit_then_fail

    result = run(day(week, 3), tmp_path, before_bar=lose_answers)
    assert seen["lost"] >= 10  # half of the submits lost their answer
    orders = list(seen["server"].orders.values())
    assert max(Counter((o.symbol, o.created_ns) for o in orders).values()) == 1
    assert result.report.exact, result.report.summary()


def test_buys_are_resized_to_the_buying_power_like_the_backtest(week: Bars, tmp_path: Path):
    result = run(week.slice(0, 780), tmp_path, config(size_pct=1.0))
    cut = [
        r for r in read_journal(tmp_path / "journal.jsonl")
        if r["kind"] == "intent" and r["reason"] == "insufficient_cash"
    ]  # fmt: skip
    assert cut and all(0 < r["qty"] < r["requested_qty"] for r in cut)
    assert result.report.exact, result.report.summary()


def test_orders_the_broker_refuses_are_journalled_never_fatal(week: Bars, tmp_path: Path):
    # the emulator checks buying power 10 % above the last price, the bridge plans with 3 %
    result = run(day(week), tmp_path, config(size_pct=1.0), exchange_rules={"market_buffer": 0.1})
    refused = [
        r for r in read_journal(tmp_path / "journal.jsonl")
        if r["kind"] == "submit" and "buying power" in (r.get("error") or "")
    ]  # fmt: skip
    assert refused and result.stats["errors"] == len(refused)
    assert bar_records(tmp_path) == day(week).ts_ns.tolist()
    assert not result.report.exact  # the refused orders are missing, and the report says so
    assert len(result.report.missed) >= len(refused)


def test_daily_loss_kill_switch_cancels_flattens_and_halts(week: Bars, tmp_path: Path):
    cfg = config(size_pct=1.0, daily_loss_limit=150.0)
    result = run(week.slice(0, 780), tmp_path, cfg)
    records = list(read_journal(tmp_path / "journal.jsonl"))
    kills = [i for i, r in enumerate(records) if r["kind"] == "kill_switch"]
    assert kills, "the limit was never hit: make it smaller"
    sessions = [r for r in records if r["kind"] == "bar"]
    for i in kills:
        kill = records[i]
        assert kill["equity"] <= kill["session_start_equity"] - 150.0
        flat = [r for r in records[i:] if r["kind"] == "intent" and r["bar_ts_ns"] == kill["ts_ns"]]
        assert all(r["reason"] == "daily_loss_limit" and r["target"] == 0.0 for r in flat[:1])
        # halted for the rest of that session: nothing that adds exposure is sent
        session = next(r["session"] for r in sessions if r["ts_ns"] == kill["ts_ns"])
        later = {
            r["ts_ns"] for r in sessions if r["session"] == session and r["ts_ns"] > kill["ts_ns"]
        }
        buys = [r for r in records if r["kind"] == "intent" and r["bar_ts_ns"] in later
                and r["side"] == "buy"]  # fmt: skip
        assert buys == []
        after = [r for r in sessions if r["ts_ns"] in later]
        if after:  # flat from the next bar on
            assert all(q == 0.0 for q in after[0]["positions"])
    assert result.report.exact, result.report.summary()


def test_bridge_options_refuse_what_the_bridge_does_not_run():
    from barlab.errors import ConfigError

    for name in ("trailing_stop", "trailing_stop_atr"):
        with pytest.raises(ConfigError, match=f"cannot attach {name}.*Signals.trail_stop"):
            bridge_options(BacktestOptions(**{name: 0.02}))
    with pytest.raises(ConfigError, match="fill_policy='pessimistic'"):
        bridge_options(BacktestOptions(stop_loss=0.02, fill_policy="optimistic"))
    assert bridge_options(BacktestOptions(stop_loss=0.02, take_profit_atr=3.0)).stop_loss == 0.02
    opts = bridge_options(BacktestOptions.from_kwargs(daily_loss_limit=100.0))
    assert opts.size_on == "signal" and opts.risk.daily_loss_flatten
    with pytest.raises(ConfigError, match="bridge_options"):
        BridgeConfig(options=BacktestOptions(), window_bars=100)


class StreamingSma(SmaCrossover):
    market_data = ("trades", "quotes")


def test_a_strategy_asking_for_trades_and_quotes_gets_them_kept(week: Bars, tmp_path: Path):
    result = replay(
        StreamingSma(), day(week), config=config(), journal_path=tmp_path / "journal.jsonl",
        timeout_s=30,
    )  # fmt: skip
    assert result.report.exact, result.report.summary()  # the extra streams change nothing
    store = result.market_data
    for symbol in SYMBOLS:
        quote, trades = store.latest_quote(symbol), store.trades(symbol)
        assert quote is not None and quote.bid_price < quote.ask_price
        assert 0 < len(trades) <= store.retention
