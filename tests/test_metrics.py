"""barlab.metrics against slow references, empyrical's own expected values, and edge cases."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from barlab import metrics as m
from tests.reference import naive_metrics as naive

NAN, INF = math.nan, math.inf


def assert_same(got: float, want: float, *, rel: float = 1e-9, abs_: float = 1e-9) -> None:
    assert isinstance(got, float | int)
    if math.isnan(want):
        assert math.isnan(got), f"expected NaN, got {got!r}"
    elif math.isinf(want):
        assert got == want, f"expected {want!r}, got {got!r}"
    else:
        assert math.isclose(got, want, rel_tol=rel, abs_tol=abs_), f"{got!r} != {want!r}"


def arr(*percent: float) -> np.ndarray:
    return np.array(percent, dtype=np.float64) / 100


# --- empyrical's own expectations ------------------------------------------------------------
# Series and expected values copied from quantopian/empyrical 0.5.5,
# empyrical/tests/test_stats.py (TestStats); "DAILY" there means annualization 252,
# "WEEKLY" 52, "MONTHLY" 12.

MIXED = arr(NAN, 1, 10, -4, 2, 3, 2, 1, -10)
PERIODIC = arr(0, 1, 10, -4, 2, 3, 2, 1, -10)  # their weekly_returns / monthly_returns
POSITIVE = arr(1, 2, 1, 1, 1, 1, 1, 1, 1)
NEGATIVE = arr(0, -6, -7, -1, -9, -2, -6, -8, -5)
SIMPLE_BENCHMARK = arr(0, 1, 0, 1, 0, 1, 0, 1, 0)
FLAT_1 = arr(*[1] * 9)
FLAT_1_LONG = np.full(1000, 0.01)
ONE = arr(1)
EMPTY = np.array([], dtype=np.float64)


@pytest.mark.parametrize(
    ("func", "returns", "kwargs", "expected"),
    [
        (m.cagr, MIXED, {"periods_per_year": 252}, 1.9135925373194231),  # test_annual_ret
        (m.cagr, PERIODIC, {"periods_per_year": 52}, 0.24690830513998208),
        (m.cagr, PERIODIC, {"periods_per_year": 12}, 0.052242061386048144),
        (m.cagr, ONE, {"periods_per_year": 252}, 11.274002099240244),  # test_cagr
        (m.cagr, FLAT_1_LONG, {"periods_per_year": 252}, 11.274002099240256),
        (m.cagr, arr(3, 3, 3), {"periods_per_year": 1}, 0.03),
        (m.cagr, EMPTY, {"periods_per_year": 252}, NAN),
        (m.annual_volatility, MIXED, {"periods_per_year": 252}, 0.9136465399704637),
        (m.annual_volatility, PERIODIC, {"periods_per_year": 52}, 0.38851569394870583),
        (m.annual_volatility, PERIODIC, {"periods_per_year": 12}, 0.18663690238892558),
        (m.annual_volatility, FLAT_1_LONG, {"periods_per_year": 252}, 0.0),
        (m.calmar, MIXED, {"periods_per_year": 252}, 19.135925373194233),  # test_calmar
        (m.calmar, PERIODIC, {"periods_per_year": 52}, 2.4690830513998208),
        (m.calmar, PERIODIC, {"periods_per_year": 12}, 0.52242061386048144),
        (m.calmar, ONE, {"periods_per_year": 252}, NAN),
        (m.calmar, EMPTY, {"periods_per_year": 252}, NAN),
        (m.sharpe, MIXED, {"periods_per_year": 252}, 1.7238613961706866),  # test_sharpe_ratio
        (m.sharpe, POSITIVE, {"periods_per_year": 252}, 52.915026221291804),
        (m.sharpe, NEGATIVE, {"periods_per_year": 252}, -24.406808633910085),
        (m.sharpe, FLAT_1, {"periods_per_year": 252}, INF),
        (m.sharpe, ONE, {"periods_per_year": 252}, NAN),
        (m.sharpe, EMPTY, {"periods_per_year": 252}, NAN),
        (m.sortino, MIXED, {"periods_per_year": 252}, 2.605531251673693),  # test_sortino
        (m.sortino, POSITIVE, {"periods_per_year": 252}, INF),
        (m.sortino, NEGATIVE, {"periods_per_year": 252}, -13.532743075043401),
        (m.sortino, SIMPLE_BENCHMARK, {"periods_per_year": 252}, INF),
        (m.sortino, PERIODIC, {"periods_per_year": 52}, 1.1158901056866439),
        (m.sortino, PERIODIC, {"periods_per_year": 12}, 0.53605626741889756),
        (m.sortino, ONE, {"periods_per_year": 252}, NAN),
        (m.sortino, EMPTY, {"periods_per_year": 252}, NAN),
        (m.max_drawdown, MIXED, {}, -0.1),  # test_max_drawdown
        (m.max_drawdown, POSITIVE, {}, 0.0),
        (m.max_drawdown, SIMPLE_BENCHMARK, {}, 0.0),
        (m.max_drawdown, ONE, {}, 0.0),
        (m.max_drawdown, arr(10, -10, 10), {}, -0.10),
        (m.max_drawdown, EMPTY, {}, NAN),
        (m.omega, MIXED, {"periods_per_year": 252, "required_return": 10.0}, 0.83354263497557934),
        (m.omega, MIXED, {"periods_per_year": 252, "required_return": -10.0}, NAN),
        (m.omega, POSITIVE, {"periods_per_year": 252, "risk_free": 0.01}, NAN),
        (m.omega, POSITIVE, {"periods_per_year": 252, "risk_free": 0.011}, 1.125),
        (m.omega, POSITIVE, {"periods_per_year": 252, "risk_free": 0.02}, 0.0),
        (m.omega, NEGATIVE, {"periods_per_year": 252, "risk_free": 0.01}, 0.0),
        (m.omega, ONE, {"periods_per_year": 252}, NAN),
        (m.omega, EMPTY, {"periods_per_year": 252}, NAN),
        (m.stability, MIXED, {}, 0.1529973665111273),  # test_stability_of_timeseries
        (m.stability, FLAT_1_LONG, {}, 1.0),
        (m.stability, ONE, {}, NAN),
        (m.stability, EMPTY, {}, NAN),
        # test_tail_ratio expects 0.947 to 1 decimal (computed when NaN still counted as 0);
        # by hand without the NaN: p95 = 3 + 7 * 0.65 = 7.55, p5 = -10 + 6 * 0.35 = -7.9.
        (m.tail_ratio, MIXED, {}, 7.55 / 7.9),
        (m.tail_ratio, ONE, {}, 1.0),
        (m.tail_ratio, EMPTY, {}, NAN),
        (m.value_at_risk, np.array([1.0, 2.0]), {"cutoff": 0.0}, 1.0),  # test_value_at_risk
        (m.value_at_risk, np.array([1.0, 2.0]), {"cutoff": 0.3}, 1.3),
        (m.value_at_risk, np.array([1.0, 2.0]), {"cutoff": 1.0}, 2.0),
        (m.value_at_risk, np.array([1.0, 81, 82, 83, 84, 85]), {"cutoff": 0.1}, 41.0),
        (m.value_at_risk, np.array([1.0, 81, 82, 83, 84, 85]), {"cutoff": 0.2}, 81.0),
        (m.value_at_risk, np.array([1.0, 81, 82, 83, 84, 85]), {"cutoff": 0.3}, 81.5),
    ],
)
def test_matches_empyrical_expectations(func, returns, kwargs, expected):
    assert_same(func(returns, **kwargs), expected, rel=1e-8, abs_=1e-8)


def test_empyrical_cum_returns_final_and_drawdown_of_losses():
    # test_cum_returns_final: mixed -> 0.03893, negative -> -0.36590 (5 decimals there);
    # test_max_drawdown: for all-negative returns the drawdown is the total return.
    assert m.total_return(MIXED) == pytest.approx(0.03893, abs=1e-5)
    assert m.total_return(NEGATIVE) == pytest.approx(-0.36590, abs=1e-5)
    assert_same(m.max_drawdown(NEGATIVE), m.total_return(NEGATIVE))
    all_negative = arr(-2, -6, -7, -1, -9, -2, -6, -8, -5)
    assert_same(m.max_drawdown(all_negative), m.total_return(all_negative))


def test_empyrical_tail_ratio_of_symmetric_noise_is_one():
    returns = np.random.default_rng(1337).standard_normal(100_000)
    assert m.tail_ratio(returns) == pytest.approx(1.0, abs=0.05)


# --- against the slow reference --------------------------------------------------------------

# Returns in whole basis points (no subnormal noise) with zeros and NaNs mixed in.
basis_point = st.integers(-5000, 5000).map(lambda bp: bp / 10_000)
element = st.one_of(basis_point, st.just(0.0), st.just(NAN), st.just(0.0123))
returns_lists = st.lists(element, max_size=120)
periods = st.sampled_from([1.0, 12.0, 52.0, 252.0])
small_rate = st.integers(-20, 20).map(lambda bp: bp / 10_000)

PLAIN = ["total_return", "max_drawdown", "tail_ratio", "value_at_risk", "stability"]
PLAIN += ["win_rate", "profit_factor", "best_period", "worst_period"]
ANNUALISED = ["cagr", "annual_volatility", "calmar"]


@pytest.mark.parametrize("name", PLAIN)
@settings(deadline=None)
@given(returns=returns_lists)
def test_plain_statistics_match_reference(name, returns):
    got = getattr(m, name)(np.array(returns, dtype=np.float64))
    assert_same(got, getattr(naive, name)(returns))


@pytest.mark.parametrize("name", ANNUALISED)
@settings(deadline=None)
@given(returns=returns_lists, ppy=periods)
def test_annualised_statistics_match_reference(name, returns, ppy):
    got = getattr(m, name)(np.array(returns, dtype=np.float64), periods_per_year=ppy)
    assert_same(got, getattr(naive, name)(returns, ppy))


@settings(deadline=None)
@given(returns=returns_lists, ppy=periods, rf=small_rate)
def test_sharpe_sortino_omega_match_reference(returns, ppy, rf):
    r = np.array(returns, dtype=np.float64)
    assert_same(m.sharpe(r, periods_per_year=ppy, risk_free=rf), naive.sharpe(returns, ppy, rf))
    assert_same(
        m.sortino(r, periods_per_year=ppy, required_return=rf), naive.sortino(returns, ppy, rf)
    )
    assert_same(
        m.omega(r, periods_per_year=ppy, risk_free=rf, required_return=rf * 100),
        naive.omega(returns, ppy, rf, rf * 100),
    )


@settings(deadline=None)
@given(returns=returns_lists)
def test_drawdown_duration_matches_reference_and_drawdown_is_never_positive(returns):
    r = np.array(returns, dtype=np.float64)
    duration = m.max_drawdown_duration(r)
    assert duration == naive.max_drawdown_duration(returns)
    assert isinstance(duration, int)
    assert 0 <= duration <= len(returns)
    if returns:
        assert m.max_drawdown(r) <= 0
        assert (duration == 0) == (m.max_drawdown(r) == 0)


@settings(deadline=None)
@given(
    pnl=st.lists(st.integers(-10_000, 10_000).map(lambda c: c / 100), max_size=60),
    hold=st.integers(0, 500),
)
def test_trade_stats_match_reference(pnl, hold):
    p = np.array(pnl, dtype=np.float64)
    got = m.trade_stats(p, holding_bars=np.full(p.size, hold))
    want = naive.trade_stats(pnl)
    assert got.count == want["count"]
    for key, value in want.items():
        assert_same(getattr(got, key), value)
    assert_same(got.avg_holding_bars, float(hold) if pnl else NAN)


# --- edge cases and invariants ---------------------------------------------------------------

NEEDS_PERIODS = {*ANNUALISED, "sharpe", "sortino", "omega"}
ALL = [*PLAIN, *sorted(NEEDS_PERIODS), "max_drawdown_duration"]


def call(name: str, returns: np.ndarray) -> float:
    kwargs = {"periods_per_year": 252.0} if name in NEEDS_PERIODS else {}
    return getattr(m, name)(returns, **kwargs)


@pytest.mark.parametrize("name", ALL)
def test_empty_input_is_nan_without_warnings(name):
    want = 0 if name == "max_drawdown_duration" else NAN
    assert_same(call(name, EMPTY), want)


def test_all_zero_returns():
    zeros = np.zeros(500)
    want = {
        "total_return": 0.0, "cagr": 0.0, "annual_volatility": 0.0, "sharpe": NAN,
        "sortino": NAN, "calmar": NAN, "max_drawdown": 0.0, "max_drawdown_duration": 0,
        "omega": NAN, "tail_ratio": NAN, "value_at_risk": 0.0, "stability": NAN,
        "win_rate": NAN, "profit_factor": NAN, "best_period": 0.0, "worst_period": 0.0,
    }  # fmt: skip
    for name, value in want.items():
        assert_same(call(name, zeros), value)


def test_all_nan_returns():
    nans = np.full(5, NAN)
    for name in ALL:
        want = {"total_return": 0.0, "cagr": 0.0, "max_drawdown": 0.0}.get(name, NAN)
        assert_same(call(name, nans), 0 if name == "max_drawdown_duration" else want)


def test_constant_positive_returns():
    r = np.full(100, 0.001)
    assert m.sharpe(r, periods_per_year=252) == INF
    assert m.sortino(r, periods_per_year=252) == INF
    assert m.annual_volatility(r, periods_per_year=252) == 0.0
    assert m.max_drawdown(r) == 0.0
    assert m.max_drawdown_duration(r) == 0
    assert math.isnan(m.calmar(r, periods_per_year=252))
    assert math.isnan(m.omega(r, periods_per_year=252))
    assert m.profit_factor(r) == INF
    assert m.win_rate(r) == 1.0
    assert m.stability(r) == pytest.approx(1.0)
    assert m.value_at_risk(r) == pytest.approx(0.001)


def test_drawdown_duration_counts_periods_below_the_peak():
    # Wealth 1, 1.1, 0.99, 1.0395, 1.14345: two periods below the 1.1 peak.
    assert m.max_drawdown_duration(np.array([0.10, -0.10, 0.05, 0.10])) == 2
    # A drawdown still open at the end counts to the end; the first period can start one.
    assert m.max_drawdown_duration(np.array([-0.01, 0.005, 0.002, 0.02, -0.01, 0.0])) == 3


def test_minute_bar_annualisation_is_finite_for_a_realistic_series():
    rng = np.random.default_rng(7)
    r = rng.normal(2e-6, 5e-4, 98_280)
    assert 0.05 < m.annual_volatility(r, periods_per_year=98_280) < 0.25
    assert math.isfinite(m.cagr(r, periods_per_year=98_280))


@pytest.mark.parametrize(
    ("call_it", "words"),
    [
        (lambda: m.sharpe(np.zeros((3, 2)), periods_per_year=252), "1-D"),
        (lambda: m.cagr(np.zeros(3), periods_per_year=0), "periods_per_year"),
        (lambda: m.value_at_risk(np.zeros(3), cutoff=5), "cutoff"),
        (lambda: m.trade_stats(np.array([1.0, NAN])), "finite"),
        (lambda: m.trade_stats(np.ones(2), holding_bars=np.ones(3)), "holding_bars"),
        (lambda: m.exposure(np.ones(3)), "bool"),
    ],
)
def test_bad_arguments_are_named(call_it, words):
    with pytest.raises(ValueError, match=words):
        call_it()


def test_trade_stats_edges():
    empty = m.trade_stats(EMPTY)
    assert empty.count == 0 and math.isnan(empty.win_rate) and math.isnan(empty.expectancy)
    winners = m.trade_stats(np.array([5.0, 10.0]))
    assert winners.profit_factor == INF and winners.expectancy == INF
    flat = m.trade_stats(np.zeros(3))
    assert flat.win_rate == 0.0 and math.isnan(flat.profit_factor)
    assert math.isnan(flat.expectancy)


def test_exposure():
    assert m.exposure(np.array([True, False, False, True])) == 0.5
    assert math.isnan(m.exposure(np.array([], dtype=bool)))


# --- compute_metrics and the Metrics record ---------------------------------------------------


def _metrics(equity: np.ndarray, **overrides) -> m.Metrics:
    kwargs = {
        "periods_per_year": 252.0,
        "initial_cash": 100.0,
        "trade_pnl": np.array([3.0, -1.0, 2.0]),
        "position_mask": np.arange(equity.size) % 2 == 0,
        "fees": 1.5,
    }
    return m.compute_metrics(equity, **{**kwargs, **overrides})


def test_compute_metrics_is_the_functions_over_equity_returns():
    equity = np.array([101.0, 99.0, 102.0, 102.0, 104.0])
    got = _metrics(equity)
    r = np.array([0.01, 99 / 101 - 1, 102 / 99 - 1, 0.0, 104 / 102 - 1])
    assert_same(got.total_return, 0.04)
    assert_same(got.sharpe, m.sharpe(r, periods_per_year=252))
    assert_same(got.max_drawdown, 99 / 101 - 1)
    assert got.max_drawdown_duration == 1
    assert_same(got.stability, m.stability(r))
    assert (got.n_trades, got.trade_win_rate, got.trade_profit_factor) == (3, 2 / 3, 5.0)
    assert (got.exposure, got.fees, got.final_equity) == (0.6, 1.5, 104.0)


def test_compute_metrics_without_bars_or_mask():
    got = _metrics(EMPTY, position_mask=None, trade_pnl=EMPTY)
    assert got.final_equity == 100.0 and got.n_trades == 0 and got.max_drawdown_duration == 0
    assert math.isnan(got.exposure) and math.isnan(got.total_return)


def test_compute_metrics_rejects_bad_inputs():
    with pytest.raises(ValueError, match="equity must be finite"):
        _metrics(np.array([100.0, NAN]))
    with pytest.raises(ValueError, match="initial_cash"):
        _metrics(np.array([100.0]), initial_cash=0.0)
    with pytest.raises(ValueError, match="position_mask"):
        _metrics(np.array([100.0, 101.0]), position_mask=np.array([True]))


def test_metrics_dict_round_trip_keeps_nan_and_inf():
    got = _metrics(np.array([101.0, 102.0, 103.0]))  # no drawdown: calmar NaN, sortino inf
    d = got.to_dict()
    assert list(d) == [f.name for f in dataclasses.fields(m.Metrics)]
    assert all(type(v) is float for v in d.values())
    assert math.isnan(d["calmar"]) and d["sortino"] == INF
    back = m.Metrics.from_dict(d)
    assert isinstance(back.n_trades, int) and isinstance(back.max_drawdown_duration, int)
    assert back.to_dict().keys() == d.keys()
    for key, value in d.items():
        assert_same(getattr(back, key), value, rel=0, abs_=0)


def test_metrics_from_dict_rejects_wrong_keys_and_is_frozen():
    d = _metrics(np.array([101.0])).to_dict()
    with pytest.raises(ValueError, match="unknown \\['extra'\\]"):
        m.Metrics.from_dict({**d, "extra": 1.0})
    with pytest.raises(ValueError, match="missing \\['fees'\\]"):
        m.Metrics.from_dict({k: v for k, v in d.items() if k != "fees"})
    with pytest.raises(ValueError, match="whole number"):
        m.Metrics.from_dict({**d, "n_trades": 1.5})
    with pytest.raises(dataclasses.FrozenInstanceError):
        _metrics(np.array([101.0])).sharpe = 1.0  # type: ignore[misc]


# --- over time, turnover, slippage ----------------------------------------------------------


@settings(deadline=None)
@given(returns=returns_lists, cuts=st.lists(st.integers(0, 40), max_size=6))
def test_aggregated_returns_compound_to_the_total(returns, cuts):
    r = np.array(returns, dtype=np.float64)
    groups = np.searchsorted(np.sort(cuts), np.arange(r.size), side="right")
    keys, agg = m.aggregate_returns(r, groups)
    assert keys.tolist() == sorted(set(groups.tolist()))
    if r.size:
        assert_same(float(np.prod(1 + agg) - 1), m.total_return(r), rel=1e-9, abs_=1e-12)
        for k, value in zip(keys, agg, strict=True):
            assert_same(float(value), m.total_return(r[groups == k]), rel=1e-9, abs_=1e-12)


def test_rolling_statistics_are_the_statistics_over_trailing_groups():
    r = np.random.default_rng(5).normal(0, 0.01, 50)
    days = np.repeat(np.arange(10), 5)
    got = m.rolling_sharpe(r, days, window=3, periods_per_year=252)
    vol = m.rolling_volatility(r, days, window=3, periods_per_year=252)
    assert got.shape == vol.shape == (10,)
    assert np.isnan(got[:2]).all() and np.isnan(vol[:2]).all()
    for i in range(2, 10):
        chunk = r[(i - 2) * 5 : (i + 1) * 5]
        assert_same(float(got[i]), m.sharpe(chunk, periods_per_year=252))
        assert_same(float(vol[i]), m.annual_volatility(chunk, periods_per_year=252))
    whole = m.rolling_sharpe(r, days, window=10, periods_per_year=252)
    assert_same(float(whole[-1]), m.sharpe(r, periods_per_year=252))
    with pytest.raises(ValueError, match="window"):
        m.rolling_sharpe(r, days, window=0, periods_per_year=252)
    with pytest.raises(ValueError, match="non-decreasing"):
        m.rolling_volatility(r, days[::-1], window=2, periods_per_year=252)


@settings(deadline=None)
@given(returns=returns_lists)
def test_drawdown_periods_agree_with_max_drawdown_and_its_duration(returns):
    r = np.array(returns, dtype=np.float64)
    periods = m.drawdown_periods(r)
    if not periods:
        assert m.max_drawdown_duration(r) == 0
        return
    assert_same(periods[0].depth, m.max_drawdown(r))
    assert max(p.length for p in periods) == m.max_drawdown_duration(r)
    assert [p.depth for p in periods] == sorted(p.depth for p in periods)
    for p in periods:
        assert 0 <= p.start <= p.trough < r.size and p.depth < 0
        assert p.end == -1 or p.trough < p.end == p.start + p.length
    assert sum(p.end == -1 for p in periods) <= 1
    assert m.drawdown_periods(r, top=2) == periods[:2]


def test_turnover_and_slippage():
    equity = np.full(252, 100_000.0)
    assert m.turnover(200_000.0, equity, periods_per_year=252) == 2.0
    assert m.turnover(100_000.0, equity[:126], periods_per_year=252) == 2.0
    assert math.isnan(m.turnover(0.0, EMPTY, periods_per_year=252))
    # a buy filled at 100.01 (1 bp over 100) and a sell at 99.99: one cent a share each
    cost = m.slippage_cost(np.array([100.01, 99.99]) * 100, np.array([1.0, -1.0]), slippage_bps=1)
    assert_same(cost, 2.0, rel=1e-12)
    assert m.slippage_cost(np.array([1e4]), np.array([1.0]), slippage_bps=0) == 0.0
    with pytest.raises(ValueError, match="side"):
        m.slippage_cost(np.array([1.0]), np.array([0.0]), slippage_bps=1)
    with pytest.raises(ValueError, match="traded_value"):
        m.turnover(-1.0, equity, periods_per_year=252)


@settings(max_examples=60, deadline=None)
@given(
    n=st.sampled_from([1, 2, 7, 500, 16_385, 40_000]),
    zeros=st.floats(0.0, 0.95),
    decimals=st.sampled_from([None, 1, 3]),
    q=st.floats(0.0, 100.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_percentiles_by_selection_equal_numpys_exactly(n, zeros, decimals, q, seed):
    # selection with a sampled bracket (large inputs) or quickselect (small), on inputs full of
    # ties (flat periods return exactly 0): bit for bit numpy's linear interpolation
    from barlab.order_stats_nb import percentile_nb

    rng = np.random.default_rng(seed)
    v = np.where(rng.random(n) < zeros, 0.0, rng.normal(0, 0.01, n))
    if decimals is not None:
        v = np.round(v, decimals)
    for quantile in (q, 5.0, 95.0, 0.0, 100.0):
        assert percentile_nb(v, quantile) == np.percentile(v, quantile)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.0, 0.25, 1.0, 3.0]), min_size=1,
                    max_size=120),
    data=st.data(),
)  # fmt: skip
def test_select_puts_the_kth_smallest_at_k_and_splits_around_it(values, data):
    # the contract the percentiles rely on, on inputs made of ties (runs of equal values)
    from barlab.order_stats_nb import select_nb

    a = np.array(values)
    k = data.draw(st.integers(0, a.size - 1))
    select_nb(a, k)
    assert sorted(a) == sorted(values)
    assert a[k] == sorted(values)[k]
    assert (a[:k] <= a[k]).all() and (a[k + 1 :] >= a[k]).all()


# --- compute_metrics in one fused kernel: the same numbers as each function -------------------

RETURN_STATS = {
    "total_return": lambda r, ppy: m.total_return(r),
    "cagr": lambda r, ppy: m.cagr(r, periods_per_year=ppy),
    "annual_volatility": lambda r, ppy: m.annual_volatility(r, periods_per_year=ppy),
    "sharpe": lambda r, ppy: m.sharpe(r, periods_per_year=ppy),
    "sortino": lambda r, ppy: m.sortino(r, periods_per_year=ppy),
    "calmar": lambda r, ppy: m.calmar(r, periods_per_year=ppy),
    "max_drawdown": lambda r, ppy: m.max_drawdown(r),
    "max_drawdown_duration": lambda r, ppy: m.max_drawdown_duration(r),
    "omega": lambda r, ppy: m.omega(r, periods_per_year=ppy),
    "tail_ratio": lambda r, ppy: m.tail_ratio(r),
    "value_at_risk": lambda r, ppy: m.value_at_risk(r),
    "stability": lambda r, ppy: m.stability(r),
    "win_rate": lambda r, ppy: m.win_rate(r),
    "profit_factor": lambda r, ppy: m.profit_factor(r),
    "best_period": lambda r, ppy: m.best_period(r),
    "worst_period": lambda r, ppy: m.worst_period(r),
}


def _bitwise(got: float, want: float) -> bool:
    return got == want or (math.isnan(got) and math.isnan(want))


def test_the_fused_row_has_every_metrics_field_in_order():
    from barlab.metrics_nb import METRIC_FIELDS

    names = tuple(f.name for f in dataclasses.fields(m.Metrics))
    assert names == METRIC_FIELDS
    trade_fields = ("n_trades", "trade_win_rate", "avg_trade", "expectancy")
    other_fields = ("trade_profit_factor", "exposure", "fees", "final_equity")
    assert (*RETURN_STATS, *trade_fields, *other_fields) == names


@settings(max_examples=80, deadline=None)
@given(
    n=st.sampled_from([0, 1, 2, 3, 9, 500, 16_385, 40_000]),
    flat=st.floats(0.0, 0.99),
    scale=st.sampled_from([1e-4, 1e-3, 0.02, 0.2]),
    decimals=st.sampled_from([None, 2, 4]),
    ruin=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_compute_metrics_equals_each_function_bit_for_bit(n, flat, scale, decimals, ruin, seed):
    # the fused kernel restates each statistic's sums in their order: equal, not just close,
    # on flat stretches (ties at 0), rounded equity (ties elsewhere), large moves (log1p by the
    # C library), long series (percentiles by sampled brackets) and equity that reaches 0
    rng = np.random.default_rng(seed)
    r = np.where(rng.random(n) < flat, 0.0, rng.normal(0, scale, n))
    equity = 100_000 * np.cumprod(1 + r)
    if decimals is not None:
        equity = np.round(equity, decimals)
    if ruin and n > 4:
        equity[n // 2 : n // 2 + 3] = 0.0  # returns -100 %, then NaN (0/0), then inf
    pnl = np.round(rng.normal(0, 50, rng.integers(0, 40)), 2)
    mask = rng.random(n) < 0.5
    got = m.compute_metrics(
        equity, periods_per_year=252.0, initial_cash=100_000.0, trade_pnl=pnl,
        position_mask=mask, fees=12.5,
    )  # fmt: skip
    returns = m.returns_from_equity(equity, initial_cash=100_000.0)
    for name, stat in RETURN_STATS.items():
        assert _bitwise(getattr(got, name), stat(returns, 252.0)), name
    trades = m.trade_stats(pnl)
    assert got.n_trades == trades.count
    assert _bitwise(got.trade_win_rate, trades.win_rate)
    assert _bitwise(got.avg_trade, trades.avg_trade)
    assert _bitwise(got.expectancy, trades.expectancy)
    assert _bitwise(got.trade_profit_factor, trades.profit_factor)
    assert _bitwise(got.exposure, m.exposure(mask))
    assert got.fees == 12.5 and got.final_equity == (equity[-1] if n else 100_000.0)


def test_percentile_brackets_from_a_misleading_sample_are_still_exact():
    # every 9th return (the strided sample of 40,000) is a large gain: the sampled brackets
    # miss both tails, and selection over all the returns takes over
    rng = np.random.default_rng(7)
    r = rng.normal(0, 1e-3, 40_000)
    r[:: 40_000 // 4096] = 0.05 + rng.random(r[:: 40_000 // 4096].size) * 1e-3
    equity = 100_000 * np.cumprod(1 + r)
    got = _metrics(equity, initial_cash=100_000.0, position_mask=None)
    returns = m.returns_from_equity(equity, initial_cash=100_000.0)
    assert got.value_at_risk == np.percentile(returns, 5)
    assert got.tail_ratio == abs(np.percentile(returns, 95)) / abs(np.percentile(returns, 5))


def test_log1p_is_within_an_ulp_of_the_c_librarys():
    from barlab.metrics_nb import log1p_into_nb

    rng = np.random.default_rng(3)
    x = np.concatenate([
        rng.normal(0, 1e-3, 10_000), rng.uniform(-1 / 32, 1 / 32, 10_000),
        rng.uniform(-0.99, 5.0, 1_000), [0.0, -0.0, 1e-300, -1e-300, 5e-324, 1 / 32, -1 / 32],
        [-1.0, np.inf, np.nan, 1e300],
    ])  # fmt: skip
    got = np.empty_like(x)
    log1p_into_nb(x, got)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.log1p(x)
    special = ~np.isfinite(want)
    assert np.array_equal(got[special], want[special], equal_nan=True)
    ulps = np.abs(got[~special] - want[~special]) / np.spacing(np.abs(want[~special]))
    assert ulps.max() <= 1.0
