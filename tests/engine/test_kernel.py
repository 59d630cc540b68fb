"""The kernel against the slow reference simulator, and the account's invariants."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from barlab.bars import Bars
from barlab.engine.backtest import BacktestOptions, simulate, to_target
from barlab.engine.costs import Costs
from barlab.engine.risk import RiskRules
from barlab.errors import ConfigError
from barlab.indicators import atr
from barlab.result import orders_frame, trades_frame
from barlab.strategy import Signals
from tests.reference import simulator as ref

HOUR_NS = 3600 * 10**9


@st.composite
def scenarios(draw):
    n = draw(st.integers(2, 40))
    m = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.03, (n, m)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, (n, m)))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.02, (n, m))))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.02, (n, m))))
    missing = rng.random((n, m)) < draw(st.sampled_from([0.0, 0.2]))
    volume = rng.integers(0, 400, (n, m)).astype(float)
    for arr in (open_, high, low, close, volume):
        arr[missing] = np.nan
    choices = np.array([np.nan, 1.0, -1.0, 0.0, 0.5, -0.25])
    density = draw(st.sampled_from([0.05, 0.2, 0.5]))
    target = np.where(rng.random((n, m)) < density, choices[rng.integers(1, 6, (n, m))], np.nan)
    if draw(st.booleans()):
        target = np.abs(target)  # long only
    # bars three hours apart: sessions change every few bars (daily loss limit resets)
    ts = (1_672_756_200 * 10**9 + np.arange(n) * 3 * HOUR_NS).astype(np.int64)
    bars = Bars(
        ts_ns=ts, open=np.ascontiguousarray(open_), high=np.ascontiguousarray(high),
        low=np.ascontiguousarray(low), close=np.ascontiguousarray(close),
        volume=np.ascontiguousarray(volume), symbols=tuple(f"S{j}" for j in range(m)),
        timeframe="1m",
        source="demo", periods_per_year=98_280,
    )  # fmt: skip
    opt = st.one_of(st.none(), st.floats(50, 5_000))
    position_cap = draw(opt)
    lowest = max(500.0, position_cap or 0.0)  # a position cap above the book cap is an error
    portfolio_cap = draw(st.one_of(st.none(), st.floats(lowest, max(lowest, 12_000.0))))
    exits = {}
    for name in ("stop_loss", "take_profit", "trailing_stop"):
        # each exit: off, a fraction of the entry price, or a multiple of the ATR
        how = draw(st.sampled_from(["off", "fraction", "fraction", "atr"]))
        if how == "fraction":
            exits[name] = draw(st.sampled_from([0.01, 0.03, 0.08]))
        elif how == "atr":
            exits[f"{name}_atr"] = draw(st.sampled_from([0.5, 1.5, 3.0]))
    options = BacktestOptions(
        **exits,
        atr_window=draw(st.sampled_from([1, 3, 14])),
        margin=draw(st.sampled_from([1.0, 1.0, 2.0, 4.0])),
        fill_policy=draw(st.sampled_from(["pessimistic", "optimistic"])),
        cash=draw(st.sampled_from([1_000.0, 10_000.0])),
        allow_short=draw(st.sampled_from([True, True, False])),
        size_pct=draw(st.sampled_from([1.0, 0.5])),
        size_on=draw(st.sampled_from(["fill", "signal"])),
        buying_power_buffer=draw(st.sampled_from([0.0, 0.03])),
        fractional=draw(st.booleans()),
        costs=Costs(
            commission_rate=draw(st.sampled_from([0.0, 0.001, 0.01])),
            commission_per_share=draw(st.sampled_from([0.0, 0.005])),
            commission_per_order=draw(st.sampled_from([0.0, 0.0, 1.5])),
            commission_min=draw(st.sampled_from([0.0, 1.0])),
            commission_max=draw(st.sampled_from([None, 2.0, 20.0])),
            slippage_bps=draw(st.sampled_from([0.0, 1.0, 25.0])),
            price_impact=draw(st.sampled_from([0.0, 0.1])),
            max_participation=draw(st.sampled_from([None, 0.5, 0.05])),
        ),
        risk=RiskRules(
            max_position_size=position_cap, max_portfolio_value=portfolio_cap,
            daily_loss_limit=draw(st.one_of(st.none(), st.floats(10, 500))),
            daily_loss_flatten=draw(st.booleans()),
            max_position_size_per_symbol=draw(st.sampled_from([{}, {"S0": 300.0}])),
            max_open_positions=draw(st.sampled_from([None, 1, 2])),
            max_drawdown=draw(st.sampled_from([None, 0.05, 0.2])),
        ),
    )  # fmt: skip
    size_type = draw(st.sampled_from(["equal", "equal", "weight", "notional", "shares"]))
    scale = {"equal": 1.0, "weight": 0.5, "notional": 2_000.0, "shares": 20.0}[size_type]
    # some instructions rest as limit, stop or stop-limit orders around the last close
    orders = {"size_type": size_type, "time_in_force": draw(st.sampled_from(["gtc", "day"]))}
    has = ~np.isnan(target)
    for name, share in (("limit_price", draw(st.sampled_from([0.0, 0.5]))),
                        ("stop_price", draw(st.sampled_from([0.0, 0.3])))):  # fmt: skip
        if share:
            away = close * np.exp(rng.normal(0, 0.03, (n, m)))
            orders[name] = np.where(has & (rng.random((n, m)) < share), away, np.nan)
    if draw(st.booleans()):  # some others rest as trailing stop orders
        free = has.copy()
        for name in ("limit_price", "stop_price"):
            if name in orders:
                free &= np.isnan(orders[name])
        trail = rng.uniform(0.002, 0.05, (n, m))
        orders["trail_stop"] = np.where(free & (rng.random((n, m)) < 0.5), trail, np.nan)
    return bars, target * scale, options, orders


def run_reference(bars, target, o: BacktestOptions, orders):
    r = o.risk
    return ref.simulate(
        bars.ts_ns.tolist(), bars.open.tolist(), bars.close.tolist(), target.tolist(),
        cash=o.cash, size_pct=o.size_pct, fractional=o.fractional,
        commission_rate=o.costs.commission_rate, commission_per_share=o.costs.commission_per_share,
        commission_min=o.costs.commission_min, slippage_bps=o.costs.slippage_bps,
        max_position_size=r.max_position_size or math.inf,
        max_portfolio_value=r.max_portfolio_value or math.inf,
        daily_loss_limit=r.daily_loss_limit or math.inf,
        max_position_size_per_symbol={
            bars.symbols.index(s): v for s, v in r.max_position_size_per_symbol.items()
        },
        max_open_positions=r.max_open_positions,
        daily_loss_flatten=r.daily_loss_flatten, allow_short=o.allow_short,
        max_drawdown=r.max_drawdown or math.inf,
        high=bars.high.tolist(), low=bars.low.tolist(),
        stop_loss=o.stop_loss or math.inf, take_profit=o.take_profit or math.inf,
        trailing_stop=o.trailing_stop or math.inf, optimistic=o.fill_policy == "optimistic",
        sizing=orders["size_type"], commission_max=o.costs.commission_max or math.inf,
        limit=orders["limit_price"].tolist() if "limit_price" in orders else None,
        stop=orders["stop_price"].tolist() if "stop_price" in orders else None,
        day_orders=orders["time_in_force"] == "day",
        commission_per_order=o.costs.commission_per_order,
        price_impact=o.costs.price_impact, max_participation=o.costs.max_participation,
        volume=bars.volume.tolist(), size_on=o.size_on,
        buying_power_buffer=o.buying_power_buffer, margin=o.margin,
        trail=orders["trail_stop"].tolist() if "trail_stop" in orders else None,
        atr=atr(bars.high, bars.low, bars.close, o.atr_window).tolist(),
        stop_loss_atr=o.stop_loss_atr or math.inf, take_profit_atr=o.take_profit_atr or math.inf,
        trailing_stop_atr=o.trailing_stop_atr or math.inf,
    )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_kernel_matches_reference(case):
    bars, target, options, orders = case
    sim = simulate(bars, target, options, **orders)
    want = run_reference(bars, target, options, orders)

    orders = orders_frame(sim, bars.ts_ns, list(bars.symbols)).to_dicts()
    assert len(orders) == len(want.orders)
    for got, exp in zip(orders, want.orders, strict=True):
        assert got["created_bar"] == exp.created_bar
        assert got["fill_bar"] == exp.fill_bar
        assert got["symbol"] == bars.symbols[exp.symbol]
        assert (got["side"], got["status"], got["reason"]) == (exp.side, exp.status, exp.reason)
        assert got["kind"] == exp.kind
        assert got["requested_qty"] == exp.requested_qty
        assert got["qty"] == exp.qty
        # (a trailing order given before its symbol's first close has no stop yet: NaN)
        assert got["price"] == exp.price or (math.isnan(got["price"]) and math.isnan(exp.price))
        assert got["fee"] == pytest.approx(exp.fee, rel=1e-12, abs=1e-12)

    trades = trades_frame(sim, bars.ts_ns, list(bars.symbols)).to_dicts()
    assert len(trades) == len(want.trades)
    for got, exp in zip(trades, want.trades, strict=True):
        assert got["symbol"] == bars.symbols[exp.symbol]
        assert got["direction"] == ("long" if exp.direction > 0 else "short")
        assert (got["entry_bar"], got["exit_bar"]) == (exp.entry_bar, exp.exit_bar)
        assert got["is_open"] == exp.is_open
        assert got["ambiguous"] == exp.ambiguous
        assert got["size"] == exp.size
        assert got["bars_held"] == exp.exit_bar - exp.entry_bar
        for key in ("entry_price", "exit_price", "pnl", "fees", "mae", "mfe"):
            assert got[key] == pytest.approx(getattr(exp, key), rel=1e-9, abs=1e-9)

    np.testing.assert_allclose(sim.equity, want.equity, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sim.cash, want.cash, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(sim.positions, np.array(want.positions))


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_account_invariants(case):
    bars, target, options, orders = case
    sim = simulate(bars, target, options, **orders)
    # equity is cash plus positions marked at the last known close
    last = np.copy(bars.close)
    for t in range(1, len(last)):
        gap = np.isnan(last[t])
        last[t, gap] = last[t - 1, gap]
    held = np.where(sim.positions != 0.0, sim.positions * np.nan_to_num(last), 0.0)
    np.testing.assert_allclose(sim.equity, sim.cash + held.sum(axis=1), rtol=1e-9, atol=1e-6)
    orders = orders_frame(sim, bars.ts_ns, list(bars.symbols))
    filled = orders.filter(orders["qty"] > 0)
    # a fill never exceeds the position cap, and never spends cash the account lacks
    # every fill trades inside its bar's range (once the slippage is taken off) and after the
    # order exists
    slip = options.costs.slippage_bps * 1e-4
    for row in filled.iter_rows(named=True):
        j, t = bars.symbols.index(row["symbol"]), row["fill_bar"]
        d = 1 if row["side"] == "buy" else -1
        protected = row["kind"] in (
            "limit",
            "stop_limit",
            "take_profit",
        )  # a limit takes no slippage
        raw = row["price"] if protected else row["price"] / (1 + d * slip)
        impacted = (
            row["kind"] in ("market", "stop", "trailing_stop_order")
            and options.costs.price_impact > 0
        )
        if impacted:
            # volume-share impact moves the price further against the order, never for it
            assert d * (raw - bars.open[t, j]) >= -1e-9 * bars.open[t, j]
        else:
            assert bars.low[t, j] * (1 - 1e-12) <= raw <= bars.high[t, j] * (1 + 1e-12)
        assert row["created_bar"] <= t
        # attached exits fill whole
        entry_kinds = ("market", "limit", "stop", "stop_limit", "trailing_stop_order")
        if options.costs.max_participation is not None and row["kind"] in entry_kinds:
            assert row["qty"] <= options.costs.max_participation * bars.volume[t, j] + 1e-9
    if not options.allow_short:
        assert np.all(sim.positions >= 0)
    # a trade's exit lies between its worst and best excursion
    trades = trades_frame(sim, bars.ts_ns, list(bars.symbols))
    for tr in trades.iter_rows(named=True):
        d = 1 if tr["direction"] == "long" else -1
        move = d * (tr["exit_price"] / tr["entry_price"] - 1)
        assert tr["mae"] - 1e-9 <= move <= tr["mfe"] + 1e-9
        assert tr["mae"] <= 1e-9 or tr["mfe"] >= -1e-9
    # a fill that adds exposure never exceeds the symbol's cap, nor the open-positions limit
    caps = options.risk.position_caps(bars.symbols)
    limit = options.risk.max_open_positions or len(bars.symbols)
    for row in filled.iter_rows(named=True):
        j, t = bars.symbols.index(row["symbol"]), row["fill_bar"]
        # caps are measured at the price before any volume-share impact
        d = 1 if row["side"] == "buy" else -1
        price = bars.open[t, j] * (1 + d * slip) if row["kind"] == "market" else row["price"]
        after = abs(sim.positions[t, j]) * price
        before = abs(sim.positions[t - 1, j]) * price if t else 0
        stop_impact = (
            row["kind"] in ("stop", "trailing_stop_order") and options.costs.price_impact > 0
        )
        if after > before and not stop_impact:
            assert after <= caps[j] + 1e-6
        assert np.count_nonzero(sim.positions[t]) <= limit
    # after the drawdown halt, exposure never grows again
    dd = options.risk.max_drawdown
    if dd is not None:
        peak = np.maximum.accumulate(np.maximum(sim.equity, options.cash))
        hit = np.flatnonzero(sim.equity <= peak * (1 - dd))
        if len(hit):
            later = orders.filter(pl.col("created_bar") > hit[0])
            adds = later.filter(pl.col("qty") > 0)
            for row in adds.iter_rows(named=True):
                j, t = bars.symbols.index(row["symbol"]), row["fill_bar"]
                assert abs(sim.positions[t, j]) < abs(sim.positions[t - 1, j]) + 1e-12
    flat_fees = options.costs.commission_min > 0 or options.costs.commission_per_order > 0
    if not np.any(target < 0) and not flat_fees:
        # long only, buys capped by cash (with margin: by cash plus (margin - 1) times the
        # equity at the bar's open), sells raise more than they cost (a minimum or per-order
        # commission on a tiny rebalancing sell may cost more than it raises)
        held_before = np.vstack([np.zeros((1, bars.n_symbols)), sim.positions[:-1]])
        cash_before = np.concatenate([[options.cash], sim.cash[:-1]])
        marks = np.where(np.isfinite(bars.open), bars.open, np.vstack([last[:1] * 0, last[:-1]]))
        at_open = cash_before + np.where(held_before != 0, held_before * marks, 0.0).sum(axis=1)
        floor = -(options.margin - 1.0) * np.maximum(at_open, 0.0)
        bought = filled.filter(pl.col("side") == "buy")["fill_bar"].unique().to_numpy()
        slack = 1e-9 * np.maximum(at_open[bought], 1.0)
        assert np.all(sim.cash[bought] >= floor[bought] - slack)
        if options.margin == 1.0:
            assert np.all(sim.cash >= -1e-9)


def test_no_signals_no_trades(bars: Bars):
    target = np.full(bars.close.shape, np.nan)
    sim = simulate(bars, target, BacktestOptions())
    assert len(sim.orders_i) == 0 and len(sim.trades_i) == 0
    assert np.all(sim.equity == 100_000.0)


def test_signal_fills_at_next_open_with_slippage(bars: Bars):
    target = np.full(bars.close.shape, np.nan)
    target[10, 0] = 1.0
    target[20, 0] = 0.0
    sim = simulate(bars, target, BacktestOptions(costs=Costs(slippage_bps=10.0)))
    orders = orders_frame(sim, bars.ts_ns, list(bars.symbols))
    assert orders["fill_bar"].to_list() == [11, 21]
    buy_px = bars.open[11, 0] * 1.001
    assert orders["price"][0] == pytest.approx(buy_px)
    # half the equity for each of the two symbols, whole shares
    assert orders["qty"][0] == math.floor(50_000 / buy_px)
    assert orders["price"][1] == pytest.approx(bars.open[21, 0] * 0.999)


def test_entries_exits_become_targets():
    shape = (6, 1)
    entries = np.zeros(shape, bool)
    exits = np.zeros(shape, bool)
    entries[[1, 2], 0] = True  # the second entry while long changes nothing
    exits[[0, 4], 0] = True  # an exit while flat changes nothing
    target = to_target(Signals(entries=entries, exits=exits), shape)
    np.testing.assert_array_equal(np.isnan(target[:, 0]), [True, False, True, True, False, True])
    assert target[1, 0] == 1.0 and target[4, 0] == 0.0


def test_short_exit_does_not_close_long():
    shape = (4, 1)
    z = np.zeros(shape, bool)
    entries, short_exits = z.copy(), z.copy()
    entries[0, 0] = True
    short_exits[2, 0] = True
    target = to_target(Signals(entries=entries, exits=z, short_exits=short_exits), shape)
    assert target[0, 0] == 1.0 and np.isnan(target[2, 0])


def test_session_ids_follow_new_york_dates():
    import datetime as dt
    from zoneinfo import ZoneInfo

    from barlab.engine.backtest import session_ids

    # minute bars around both 2023 DST changes and across New York midnight
    starts = [dt.datetime(2023, 3, 10, 18, 0), dt.datetime(2023, 11, 3, 18, 0)]
    ts = np.concatenate(
        [
            np.arange(4 * 24 * 60) * 60 * 10**9
            + int(s.replace(tzinfo=ZoneInfo("America/New_York")).timestamp()) * 10**9
            for s in starts
        ]
    ).astype(np.int64)
    want = [
        (dt.datetime.fromtimestamp(t / 1e9, ZoneInfo("America/New_York")).date()
         - dt.date(1970, 1, 1)).days
        for t in ts
    ]  # fmt: skip
    np.testing.assert_array_equal(session_ids(ts), want)


@pytest.mark.parametrize(
    ("size_type", "value", "shares"),
    [
        ("weight", 0.25, 250),  # a quarter of 100,000 at $100
        ("notional", 12_345.0, 123),
        ("shares", 42.0, 42),
        ("equal", 1.0, 500),  # half the equity for each of the two symbols
    ],
)
def test_size_types(size_type, value, shares):
    n, m = 5, 2
    flat = np.full((n, m), 100.0)
    ts = (1_672_756_200 * 10**9 + np.arange(n) * 60 * 10**9).astype(np.int64)
    bars = Bars(
        ts_ns=ts, open=flat, high=flat, low=flat, close=flat, volume=flat, symbols=("A", "B"),
        timeframe="1m", source="demo", periods_per_year=98_280,
    )  # fmt: skip
    target = np.full((n, m), np.nan)
    target[0, 0] = value
    sim = simulate(bars, target, BacktestOptions(costs=Costs(slippage_bps=0)), size_type=size_type)
    assert sim.positions[1, 0] == shares and sim.positions[1, 1] == 0


def test_partial_fills_continue_on_later_bars_and_the_log_grows():
    n = 200
    flat = np.full((n, 1), 100.0)
    ts = (1_672_756_200 * 10**9 + np.arange(n) * 60 * 10**9).astype(np.int64)
    bars = Bars(
        ts_ns=ts, open=flat, high=flat, low=flat, close=flat, volume=np.full((n, 1), 10.0),
        symbols=("A",), timeframe="1m", source="demo", periods_per_year=98_280,
    )  # fmt: skip
    target = np.full((n, 1), np.nan)
    target[0, 0] = 30.0  # shares, 20 % of each bar's volume: two shares a bar
    options = BacktestOptions(costs=Costs(slippage_bps=0, max_participation=0.2))
    sim = simulate(bars, target, options, size_type="shares")
    orders = orders_frame(sim, bars.ts_ns, ["A"])
    assert orders.height == 15 > 2 * 1 + 1  # more orders than the first log had room for
    assert orders["status"].to_list() == ["partially_filled"] * 14 + ["filled"]
    assert orders["qty"].to_list() == [2.0] * 15
    assert sim.positions[15, 0] == 30.0 and sim.positions[14, 0] == 28.0


def _ohlc_bars(rows, *, minutes_apart=60):
    """One symbol with explicit (open, high, low, close) rows, 24 hours apart by default."""
    arr = np.array(rows, dtype=float)
    n = len(arr)
    ts = (1_672_756_200 * 10**9 + np.arange(n) * minutes_apart * 60 * 10**9).astype(np.int64)
    col = [np.ascontiguousarray(arr[:, k : k + 1]) for k in range(4)]
    return Bars(
        ts_ns=ts, open=col[0], high=col[1], low=col[2], close=col[3],
        volume=np.full((n, 1), 1e6), symbols=("A",), timeframe="1m", source="demo",
        periods_per_year=98_280,
    )  # fmt: skip


def _one(bars, *, limit=np.nan, stop=np.nan, tif="gtc", target=10.0):
    tg = np.full((bars.n_bars, 1), np.nan)
    tg[0, 0] = target
    lim = np.full_like(tg, np.nan)
    lim[0, 0] = limit
    stp = np.full_like(tg, np.nan)
    stp[0, 0] = stop
    sim = simulate(bars, tg, BacktestOptions(costs=Costs(slippage_bps=10)), size_type="shares",
                   limit_price=lim, stop_price=stp, time_in_force=tif)  # fmt: skip
    return orders_frame(sim, bars.ts_ns, ["A"])


ROWS = [(100, 101, 99, 100), (100, 101, 99.5, 100), (98, 99, 97, 98), (103, 104, 102, 103)]


def test_buy_limit_rests_then_fills_at_the_limit_or_a_better_open():
    bars = _ohlc_bars(ROWS)
    touched = _one(bars, limit=99.0)  # bar 1 low 99.5: no; bar 2 opens at 98: fills at the open
    assert touched.select("kind", "fill_bar", "price", "status").row(0) == (
        "limit",
        2,
        98.0,
        "filled",
    )
    inside = _one(_ohlc_bars([ROWS[0], (100, 101, 98.9, 100), *ROWS[2:]]), limit=99.0)
    assert inside.select("fill_bar", "price").row(0) == (1, 99.0)  # no slippage past a limit


def test_buy_stop_fills_at_the_worse_of_open_and_stop():
    bars = _ohlc_bars(ROWS)
    orders = _one(bars, stop=102.5)  # bars 1 and 2 stay below; bar 3 opens at 103 above it
    assert orders.select("kind", "fill_bar").row(0) == ("stop", 3)
    assert orders["price"][0] == pytest.approx(103.0 * 1.001)


def test_day_orders_expire_and_replaced_orders_are_cancelled():
    day = _one(_ohlc_bars(ROWS, minutes_apart=24 * 60), limit=90.0, tif="day")
    assert day.select("kind", "status", "fill_bar").row(0) == ("limit", "expired", 2)
    bars = _ohlc_bars(ROWS)
    tg = np.full((4, 1), np.nan)
    tg[0, 0], tg[2, 0] = 10.0, 10.0
    lim = np.full_like(tg, np.nan)
    lim[0, 0] = 90.0  # rests, never touched; replaced at bar 2 by a market order
    sim = simulate(bars, tg, BacktestOptions(), size_type="shares", limit_price=lim)
    orders = orders_frame(sim, bars.ts_ns, ["A"])
    assert orders.select("kind", "status").rows() == [("limit", "cancelled"), ("market", "filled")]


def test_size_on_signal_sizes_at_the_signal_close(bars: Bars):
    """size_on="signal": shares from the equity and the close of the signal bar, not the fill
    bar's open; size_on="fill" sizes at the open the order fills at."""
    target = np.full(bars.close.shape, np.nan)
    target[3] = 1.0
    costs = Costs(slippage_bps=0.0)
    on_fill = simulate(bars, target, BacktestOptions(costs=costs, size_on="fill"))
    on_signal = simulate(
        bars, target, BacktestOptions(costs=costs, size_on="signal", buying_power_buffer=0.0)
    )
    m = bars.n_symbols
    for j in range(m):
        assert on_signal.orders_f[j, 1] == int(100_000.0 / m / bars.close[3, j])
        assert on_fill.orders_f[j, 1] == int(100_000.0 / m / bars.open[4, j])
        assert on_signal.orders_i[j, 1] == 4


def test_size_on_is_validated():
    with pytest.raises(ConfigError, match="size_on must be fill or signal"):
        BacktestOptions(size_on="close")


def test_size_on_signal_checks_buying_power_at_the_signal(bars: Bars):
    """Like a broker at submit: with a 3 % buffer the second buy of an all-in rebalance no
    longer fits in the cash at the close, so it asks for fewer shares (insufficient_cash)."""
    target = np.full(bars.close.shape, np.nan)
    target[3] = 1.0
    options = BacktestOptions(costs=Costs(slippage_bps=0.0), size_on="signal")
    sim = simulate(bars, target, options)
    frame = orders_frame(sim, bars.ts_ns, list(bars.symbols)).to_dicts()
    c = bars.close[3]
    first = int(100_000.0 / 2 / c[0])
    assert frame[0]["qty"] == first and frame[0]["reason"] == ""
    left = 100_000.0 - first * c[0] * 1.03
    assert frame[1]["qty"] == int(left / (c[1] * 1.03)) < int(50_000.0 / c[1])
    assert frame[1]["reason"] == "insufficient_cash"


def test_size_on_signal_a_short_takes_buying_power_like_a_long():
    """Alpaca's rule: buying power is margin x equity less the gross exposure. 10,000 cash, 50
    shares of A sold short at 100: cash 15,000, equity 10,000, buying power 5,000; the short
    sale's proceeds are not spendable, so a buy of B, and a short sale of B, are cut to it."""
    flat = np.full((4, 2), 100.0)
    flat[:, 1] = 200.0
    bars = Bars(
        ts_ns=(1_672_756_200 * 10**9 + np.arange(4) * 60 * 10**9).astype(np.int64),
        open=flat.copy(), high=flat.copy(), low=flat.copy(), close=flat.copy(),
        volume=np.full((4, 2), 1e6), symbols=("A", "B"), timeframe="1m", source="demo",
        periods_per_year=98_280,
    )  # fmt: skip
    options = BacktestOptions(
        cash=10_000.0, costs=Costs(slippage_bps=0.0), size_on="signal", buying_power_buffer=0.0
    )
    for side in (1.0, -1.0):
        target = np.full((4, 2), np.nan)
        target[0, 0] = -50.0
        target[1, 1] = side * 40.0  # 8,000 of B: the cash would cover it
        sim = simulate(bars, target, options, size_type="shares")
        frame = orders_frame(sim, bars.ts_ns, ["A", "B"]).to_dicts()
        assert [(o["symbol"], o["qty"]) for o in frame] == [("A", 50.0), ("B", 25.0)]
        assert frame[1]["reason"] == "insufficient_cash"
        # Reg T: 2 x 10,000 - 5,000 = 15,000 of power, the whole order fits
        reg_t = dataclasses.replace(options, margin=2.0)
        assert simulate(bars, target, reg_t, size_type="shares").orders_f[1, 1] == 40.0
