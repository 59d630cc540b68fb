"""The look-ahead check: leaky strategies are caught at the exact first bar, causal ones pass."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from barlab import Signals, Strategy, StrategyError
from barlab.errors import UsageError
from barlab.research.lookahead import check_lookahead, first_difference, plan_cutoffs
from barlab.strategy import available, load_strategy
from tests.conftest import make_bars


class PeekNext(Strategy):
    """Long when the next bar closes higher: the textbook leak (close shifted by -1)."""

    def signals(self, bars):
        c = bars.close
        target = np.full(c.shape, np.nan)
        target[:-1] = np.where(c[1:] > c[:-1], 1.0, 0.0)
        return Signals(target=target)


class CentredMean(Strategy):
    """Long above a centred moving average of 2 * half + 1 bars (it reaches half bars ahead)."""

    half: int = 3

    def signals(self, bars):
        c, h = bars.close, self.half
        mean = np.full(c.shape, np.nan)
        csum = np.vstack([np.zeros((1, c.shape[1])), np.cumsum(c, axis=0)])
        w = 2 * h + 1
        mean[h : len(c) - h] = (csum[w:] - csum[:-w]) / w
        target = np.where(c > mean, 1.0, 0.0)
        target[np.isnan(mean)] = np.nan
        return Signals(target=target)


class FullSampleMax(Strategy):
    """Sized by the close over the whole sample's highest close."""

    def signals(self, bars):
        return Signals(target=bars.close / np.nanmax(bars.close, axis=0), size_type="weight")


class OvernightPeek(Strategy):
    """At each session's last bar, long when the next session opens higher: exposed only by a
    prefix ending exactly at a session's end."""

    def signals(self, bars):
        from barlab.engine.backtest import session_ids

        sid = session_ids(bars.ts_ns)
        last = np.flatnonzero(sid[:-1] != sid[1:])  # last bars of sessions with a next one
        target = np.full(bars.close.shape, np.nan)
        target[last] = np.where(bars.open[last + 1] > bars.close[last], 1.0, 0.0)
        return Signals(target=target)


class LeakFrom(Strategy):
    """Causal (the close itself) before bar ``start``; from it on, the close ``lag`` bars ahead
    in column ``column`` (NaN past the end)."""

    start: int = 10
    lag: int = 1
    column: int = 0

    def signals(self, bars):
        target = bars.close.copy()
        ahead = np.full(len(target), np.nan)
        if len(target) > self.lag:
            ahead[: len(target) - self.lag] = bars.close[self.lag :, self.column]
        target[self.start :, self.column] = ahead[self.start :]
        return Signals(target=target)


def test_a_shifted_close_is_caught_at_the_first_bar():
    bars = make_bars(2000, 2)
    report = check_lookahead(PeekNext(), bars)
    assert not report.clean and report.mode == "full"
    f = report.first
    assert (f.bar, f.symbol, f.field, f.prefix_bars) == (0, "S0", "target", 1)
    assert f.full_value == (1.0 if bars.close[1, 0] > bars.close[0, 0] else 0.0)
    assert np.isnan(f.prefix_value)
    assert f.ts_ns == bars.ts_ns[0] and f.time == "2023-01-03T14:30:00Z"
    text = str(report)
    assert "look-ahead in PeekNext(): bar 0 (2023-01-03T14:30:00Z) S0 target is" in text
    assert "but NaN with the first 1:" in text


def test_a_centred_window_is_caught_where_it_first_reaches_past_the_prefix():
    report = check_lookahead(CentredMean(half=3), make_bars(3000, 2, seed=3))
    f = report.first
    assert (f.bar, f.prefix_bars, f.field, f.symbol) == (3, 4, "target", "S0")
    assert f.full_value in (0.0, 1.0) and np.isnan(f.prefix_value)


def test_a_full_sample_statistic_is_caught():
    bars = make_bars(1000, 3, seed=1)
    first_moved = next(j for j in range(3) if bars.close[0, j] != bars.close[:, j].max())
    f = check_lookahead(FullSampleMax(), bars).first
    assert (f.bar, f.prefix_bars, f.symbol) == (0, 1, bars.symbols[first_moved])
    assert f.prefix_value == 1.0 and f.full_value < 1.0


def test_a_peek_across_the_night_is_caught_at_a_session_boundary():
    bars = make_bars(390 * 6, 2, seed=2)
    f = check_lookahead(OvernightPeek(), bars).first
    assert (f.bar, f.prefix_bars, f.symbol, f.field) == (389, 390, "S0", "target")
    assert f.time == "2023-01-03T20:59:00Z" and np.isnan(f.prefix_value)


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(20, 600),
    m=st.integers(1, 3),
    start_frac=st.floats(0, 1),
    lag=st.integers(1, 40),
    column_frac=st.floats(0, 0.99),
    seed=st.integers(0, 3),
)
def test_a_leak_from_bar_j_is_reported_at_j(n, m, start_frac, lag, column_frac, seed):
    bars = make_bars(n, m, seed=seed)
    lag = min(lag, n - 1)
    start = int(start_frac * (n - lag - 1))  # the leak shows only before the last `lag` bars
    column = int(column_frac * m)
    report = check_lookahead(LeakFrom(start=start, lag=lag, column=column), bars, seed=seed)
    f = report.first
    assert f is not None, report
    assert (f.bar, f.prefix_bars, f.symbol, f.field) == (start, start + 1, f"S{column}", "target")
    assert f.full_value == bars.close[start + lag, column] and np.isnan(f.prefix_value)


def _examples():
    names = sorted(available())
    variants = {
        "sma_crossover": [{}, {"fast": 3, "slow": 12, "allow_short": True}],
        "rsi_mean_reversion": [{}, {"n": 5, "allow_short": True}],
        "momentum_rotation": [{}, {"lookback": 60, "rebalance_bars": 45, "top_k": 1}],
        "donchian_breakout": [{}, {"entry_n": 10, "exit_n": 5, "atr_n": 5, "atr_mult": 1.0}],
    }
    return [(name, params) for name in names for params in variants.get(name, [{}])]


@pytest.mark.parametrize(("name", "params"), _examples())
def test_every_example_strategy_is_clean(name, params):
    bars = make_bars(2400, 4, seed=5)
    for field in ("open", "high", "low", "close"):
        getattr(bars, field)[300:340, 1] = np.nan  # a symbol with missing bars
    report = check_lookahead(load_strategy(name)(**params), bars)
    assert report.clean, str(report)
    assert report.n_checked > 50
    assert str(report).startswith(f"no look-ahead found in {report.n_checked} prefixes")


def test_the_sampled_check_is_deterministic_by_seed():
    bars = make_bars(3900, 2)
    a = plan_cutoffs(bars, n_samples=4, seed=7)
    assert np.array_equal(a, plan_cutoffs(bars, n_samples=4, seed=7))
    assert not np.array_equal(a, plan_cutoffs(bars, n_samples=4, seed=8))
    assert a.max() < 3900 and a.min() >= 1
    assert len(a) < len(plan_cutoffs(bars))  # far fewer than the full check
    one = check_lookahead(LeakFrom(start=2500, lag=5), bars, n_samples=4, seed=7).to_dict()
    two = check_lookahead(LeakFrom(start=2500, lag=5), bars, n_samples=4, seed=7).to_dict()
    one.pop("elapsed_s"), two.pop("elapsed_s")
    assert one == two and one["mode"] == "sampled" and one["seed"] == 7


def test_the_report_is_json_ready():
    doc = check_lookahead(PeekNext(), make_bars(500, 1), n_samples=2).to_dict()
    text = json.dumps(doc, allow_nan=False)
    back = json.loads(text)
    assert back["clean"] is False and back["first"]["prefix_value"] is None
    assert back["first"]["time"] == "2023-01-03T14:30:00Z" and back["first"]["bar"] == 0
    clean = check_lookahead(load_strategy("sma_crossover")(), make_bars(500, 1), n_samples=2)
    assert clean.to_dict()["first"] is None and clean.to_dict()["clean"] is True


def test_explicit_cutoffs_and_bad_options():
    bars = make_bars(300, 1)
    report = check_lookahead(CentredMean(half=2), bars, cutoffs=[50, 100])
    assert report.mode == "cutoffs" and report.first.bar == 2  # bisected down from 50
    with pytest.raises(UsageError, match="from 1 to 299"):
        check_lookahead(PeekNext(), bars, cutoffs=[0])
    with pytest.raises(UsageError, match="not both"):
        check_lookahead(PeekNext(), bars, cutoffs=[5], n_samples=2)
    with pytest.raises(UsageError, match="n_samples must be a positive"):
        check_lookahead(PeekNext(), bars, n_samples=0)
    with pytest.raises(StrategyError, match="Strategy instance"):
        check_lookahead(PeekNext, bars)


def test_a_strategy_failing_on_a_short_prefix_is_named():
    class NeedsHistory(Strategy):
        def signals(self, bars):
            if bars.n_bars < 100:
                raise ValueError("too few bars")
            return Signals(target=np.zeros(bars.close.shape))

    with pytest.raises(StrategyError, match=r"failed on the first 1 of 500 bars \(ValueError"):
        check_lookahead(NeedsHistory(), make_bars(500, 1))


def test_first_difference_compares_every_field_nan_equal_to_nan():
    full = Signals(
        entries=np.array([[False], [True], [False]]), limit_price=np.array([[np.nan]] * 3)
    )
    same = Signals(entries=np.array([[False], [True]]), limit_price=np.array([[np.nan]] * 2))
    assert first_difference(full, same, 2) is None
    moved = Signals(entries=np.array([[False], [False]]), limit_price=np.array([[np.nan]] * 2))
    assert first_difference(full, moved, 2) == (1, 0, "entries")
    priced = Signals(entries=np.array([[False], [True]]), limit_price=np.array([[9.0], [np.nan]]))
    assert first_difference(full, priced, 2) == (0, 0, "limit_price")
    assert first_difference(full, Signals(entries=np.zeros((2, 1), bool)), 2) == (
        0,
        0,
        "limit_price",
    )
    assert first_difference(full, Signals(target=np.zeros((2, 1))), 2)[2] == "entries"
