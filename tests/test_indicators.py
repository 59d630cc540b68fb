"""Indicators against plain references, published worked examples, and their contracts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from barlab.engine.backtest import session_ids
from barlab.errors import StrategyError
from barlab.indicators import (
    atr,
    bollinger,
    crossed_above,
    crossed_below,
    donchian,
    ema,
    ffill,
    macd,
    rolling_std,
    rsi,
    sma,
    vwap,
    wma,
    zscore,
)
from tests.conftest import make_bars

# -- plain references: one column at a time, over the list of present values ------------------


def columns(x: np.ndarray):
    """(j, rows, values) per column: where its bars are present and their values."""
    for j in range(x.shape[1]):
        rows = [t for t in range(x.shape[0]) if not np.isnan(x[t, j])]
        yield j, rows, [float(x[t, j]) for t in rows]


def naive_sma(x: np.ndarray, window: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    for j in range(x.shape[1]):
        seen: list[float] = []
        for t in range(x.shape[0]):
            if np.isnan(x[t, j]):
                continue
            seen.append(x[t, j])
            if len(seen) >= window:
                out[t, j] = sum(seen[-window:]) / window
    return out


def naive_ema(x: np.ndarray, window: int, seed_at: int | None = None) -> np.ndarray:
    seed_at = seed_at or window
    alpha = 2 / (window + 1)
    out = np.full(x.shape, np.nan)
    for j, rows, vals in columns(x):
        state = 0.0
        for k, t in enumerate(rows, start=1):
            if k == seed_at:
                state = sum(vals[k - window : k]) / window
            elif k > seed_at:
                state = state + alpha * (vals[k - 1] - state)
            if k >= seed_at:
                out[t, j] = state
    return out


def naive_wma(x: np.ndarray, window: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    weights = np.arange(1, window + 1)
    for j, rows, vals in columns(x):
        for k in range(window, len(vals) + 1):
            out[rows[k - 1], j] = np.dot(weights, vals[k - window : k]) / weights.sum()
    return out


def wilder(values: list[float], window: int) -> list[float]:
    """Wilder's smoothing: the mean of the first ``window`` values, then (a*(n-1) + v)/n."""
    out = []
    for k in range(window, len(values) + 1):
        if k == window:
            avg = sum(values[:window]) / window
        else:
            avg = (avg * (window - 1) + values[k - 1]) / window
        out.append(avg)
    return out


def naive_rsi(x: np.ndarray, window: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    for j, rows, vals in columns(x):
        changes = np.diff(vals)
        gains = wilder([max(c, 0.0) for c in changes], window)
        losses = wilder([max(-c, 0.0) for c in changes], window)
        for i, (g, lo) in enumerate(zip(gains, losses, strict=True)):
            out[rows[window + i], j] = 100 * g / (g + lo) if g + lo > 0 else 0.0
    return out


def naive_atr(high, low, close, window):
    out = np.full(close.shape, np.nan)
    present = ~(np.isnan(high) | np.isnan(low) | np.isnan(close))
    for j in range(close.shape[1]):
        rows = np.flatnonzero(present[:, j])
        tr = [
            max(high[t, j] - low[t, j], abs(high[t, j] - close[p, j]), abs(low[t, j] - close[p, j]))
            for p, t in itertools.pairwise(rows)
        ]
        for i, v in enumerate(wilder(tr, window)):
            out[rows[window + i], j] = v
    return out


def naive_moments(x, window, ddof):
    mean, std = np.full(x.shape, np.nan), np.full(x.shape, np.nan)
    for j, rows, vals in columns(x):
        for k in range(window, len(vals) + 1):
            mean[rows[k - 1], j] = np.mean(vals[k - window : k])
            std[rows[k - 1], j] = np.std(vals[k - window : k], ddof=ddof)
    return mean, std


def naive_zscore(x, window, ddof):
    out = np.full(x.shape, np.nan)
    for j, rows, vals in columns(x):
        for k in range(window, len(vals) + 1):
            win = vals[k - window : k]
            if len(set(win)) > 1:
                out[rows[k - 1], j] = (win[-1] - np.mean(win)) / np.std(win, ddof=ddof)
    return out


def naive_extreme(x, window, pick):
    out = np.full(x.shape, np.nan)
    for j, rows, vals in columns(x):
        for k in range(window, len(vals) + 1):
            out[rows[k - 1], j] = pick(vals[k - window : k])
    return out


def naive_vwap(price, volume, session):
    out = np.full(price.shape, np.nan)
    for j in range(price.shape[1]):
        dollars = shares = 0.0
        for t in range(price.shape[0]):
            if t > 0 and session[t] != session[t - 1]:
                dollars = shares = 0.0
            if np.isnan(price[t, j]) or np.isnan(volume[t, j]):
                continue
            dollars += price[t, j] * volume[t, j]
            shares += volume[t, j]
            if shares > 0:
                out[t, j] = dollars / shares
    return out


# -- random inputs: prices in cents (repeats and flat stretches included) and missing bars -----

PRICES = st.one_of(
    st.integers(100, 100_000).map(lambda cents: cents / 100),
    st.sampled_from([50.0, 50.01]),
    st.just(np.nan),
)
SHAPES = st.tuples(st.integers(0, 50), st.integers(1, 12))
WINDOWS = st.integers(1, 12)
SETTINGS = settings(max_examples=60, deadline=None)


def close_to(got, want, rtol=1e-9, atol=1e-9):
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(0, 60), st.integers(1, 12)),
           elements=st.one_of(st.floats(1, 1000), st.just(np.nan))),
    st.integers(1, 12),
)  # fmt: skip
def test_sma_matches_naive(x, window):
    np.testing.assert_allclose(sma(x, window), naive_sma(x, window), rtol=1e-9, equal_nan=True)


@SETTINGS
@given(arrays(np.float64, SHAPES, elements=PRICES), WINDOWS)
def test_averages_and_rsi_match_naive(x, window):
    close_to(ema(x, window), naive_ema(x, window))
    close_to(wma(x, window), naive_wma(x, window))
    close_to(rsi(x, window), naive_rsi(x, window))


@SETTINGS
@given(arrays(np.float64, SHAPES, elements=PRICES), WINDOWS, st.sampled_from([0, 1]))
def test_std_zscore_bollinger_match_naive(x, window, ddof):
    window = max(window, 1 + ddof)
    mean, std = naive_moments(x, window, ddof)
    close_to(rolling_std(x, window, ddof=ddof), std, rtol=1e-7)
    close_to(zscore(x, window, ddof=ddof), naive_zscore(x, window, ddof), rtol=1e-6, atol=1e-6)
    if ddof == 0:
        mid, upper, lower = bollinger(x, window, k=1.5)
        close_to(mid, mean)
        close_to(upper, mean + 1.5 * std, rtol=1e-7)
        close_to(lower, mean - 1.5 * std, rtol=1e-7)


@SETTINGS
@given(arrays(np.float64, st.tuples(st.integers(0, 50), st.integers(1, 12), st.just(3)),
              elements=PRICES), WINDOWS)  # fmt: skip
def test_atr_and_donchian_match_naive(hlc, window):
    high, low, close = (np.ascontiguousarray(hlc[..., i]) for i in range(3))
    close_to(atr(high, low, close, window), naive_atr(high, low, close, window))
    upper, lower = donchian(high, low, window)
    close_to(upper, naive_extreme(high, window, max), rtol=0, atol=0)
    close_to(lower, naive_extreme(low, window, min), rtol=0, atol=0)


@SETTINGS
@given(arrays(np.float64, SHAPES, elements=PRICES), st.integers(1, 6), st.integers(1, 6),
       st.integers(1, 6))  # fmt: skip
def test_macd_matches_naive(x, fast, extra, signal):
    slow = fast + extra
    line = naive_ema(x, fast, seed_at=slow) - naive_ema(x, slow)
    sig = naive_ema(line, signal)
    got = macd(x, fast, slow, signal)
    close_to(got.macd, line)
    close_to(got.signal, sig)
    close_to(got.hist, line - sig)


@SETTINGS
@given(arrays(np.float64, st.tuples(st.integers(0, 50), st.integers(1, 12), st.just(2)),
              elements=PRICES), st.lists(st.integers(0, 3), min_size=50, max_size=50))  # fmt: skip
def test_vwap_matches_naive(pv, steps):
    price, volume = np.ascontiguousarray(pv[..., 0]), np.ascontiguousarray(pv[..., 1] - 1.0)
    session = np.cumsum(steps[: len(price)]).astype(np.int64)
    close_to(vwap(price, volume, session_id=session), naive_vwap(price, volume, session))


ALL = {
    "sma": lambda h, lo, c: sma(c, 5),
    "ema": lambda h, lo, c: ema(c, 5),
    "wma": lambda h, lo, c: wma(c, 5),
    "rsi": lambda h, lo, c: rsi(c, 5),
    "atr": lambda h, lo, c: atr(h, lo, c, 5),
    "rolling_std": lambda h, lo, c: rolling_std(c, 5),
    "zscore": lambda h, lo, c: zscore(c, 5),
    "bollinger": lambda h, lo, c: np.stack(bollinger(c, 5)),
    "macd": lambda h, lo, c: np.stack(macd(c, 3, 6, 4)),
    "donchian": lambda h, lo, c: np.stack(donchian(h, lo, 5)),
    "vwap": lambda h, lo, c: vwap(c, h, session_id=np.arange(len(c)) // 7),
    "ffill": lambda h, lo, c: ffill(c),
}


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("m", [1, 12])
def test_indicators_are_causal_and_take_1d(name, m):
    """Row t never changes when later bars are added; a 1-D input is one symbol."""
    bars = make_bars(200, m, seed=3)
    close = bars.close.copy()
    close[::7, 0] = np.nan
    full = ALL[name](bars.high, bars.low, close)
    part = ALL[name](bars.high[:120], bars.low[:120], close[:120])
    np.testing.assert_array_equal(full[..., :120, :], part)
    one = ALL[name](bars.high[:, 0], bars.low[:, 0], close[:, 0])
    np.testing.assert_array_equal(one, full[..., 0])
    assert np.isfinite(full[..., -1, :]).all()


# -- published worked examples: StockCharts ChartSchool spreadsheets ----------------------------
# https://chartschool.stockcharts.com/table-of-contents/technical-indicators-and-overlays/
#   technical-indicators/relative-strength-index-rsi (cs-rsi.xls, QQQQ daily closes)

RSI_CLOSE = [
    44.3389, 44.0902, 44.1497, 43.6124, 44.3278, 44.8264, 45.0955, 45.4245, 45.8433, 46.0826,
    45.8931, 46.0328, 45.6140, 46.2820, 46.2820, 46.0028, 46.0328, 46.4116, 46.2222, 45.6439,
    46.2122, 46.2521, 45.7137, 46.4515, 45.7835, 45.3548, 44.0288, 44.1783, 44.2181, 44.5672,
    43.4205, 42.6628, 43.1314,
]  # fmt: skip
RSI_14 = [
    70.5328, 66.3186, 66.5498, 69.4063, 66.3552, 57.9749, 62.9296, 63.2571, 56.0593, 62.3771,
    54.7076, 50.4228, 39.9898, 41.4605, 41.8689, 45.4632, 37.3040, 33.0795, 37.7730,
]  # fmt: skip


def test_rsi_reproduces_the_chartschool_example():
    got = rsi(np.array(RSI_CLOSE), 14)
    assert np.isnan(got[:14]).all()
    np.testing.assert_allclose(got[14:], RSI_14, atol=1e-4)


# .../technical-indicators/average-true-range-atr (cs-atr.xls, QQQQ daily bars)
ATR_HIGH = [
    48.70, 48.72, 48.90, 48.87, 48.82, 49.05, 49.20, 49.35, 49.92, 50.19, 50.12, 49.66, 49.88,
    50.19, 50.36, 50.57, 50.65, 50.43, 49.63, 50.33, 50.29, 50.17, 49.32, 48.50, 48.3201, 46.80,
    47.80, 48.39, 48.66, 48.79,
]  # fmt: skip
ATR_LOW = [
    47.79, 48.14, 48.39, 48.37, 48.24, 48.635, 48.94, 48.86, 49.50, 49.87, 49.20, 48.90, 49.43,
    49.725, 49.26, 50.09, 50.30, 49.21, 48.98, 49.61, 49.20, 49.43, 48.08, 47.64, 41.55, 44.2833,
    47.31, 47.20, 47.90, 47.7301,
]  # fmt: skip
ATR_CLOSE = [
    48.16, 48.61, 48.75, 48.63, 48.74, 49.03, 49.07, 49.32, 49.91, 50.13, 49.53, 49.50, 49.75,
    50.03, 50.31, 50.52, 50.41, 49.34, 49.37, 50.23, 49.2375, 49.93, 48.43, 48.18, 46.57, 45.41,
    47.77, 47.72, 48.62, 47.85,
]  # fmt: skip
ATR_14 = [
    0.555, 0.593929, 0.585791, 0.568949, 0.615452, 0.61792, 0.642354, 0.674329, 0.69277,
    0.775429, 0.78147, 1.209229, 1.30262, 1.38029, 1.366698, 1.336219, 1.316482,
]  # fmt: skip


def test_atr_reproduces_the_chartschool_example():
    """ChartSchool counts the first bar's high - low as a true range, where TA-Lib (and barlab)
    start at the second bar; a bar in front whose close lies inside the first bar's range makes
    the two agree, one row later."""
    high, low, close = ([a[0], *a] for a in (ATR_HIGH, ATR_LOW, ATR_CLOSE))
    got = atr(np.array(high), np.array(low), np.array(close), 14)
    assert np.isnan(got[:14]).all()
    np.testing.assert_allclose(got[14:], ATR_14, atol=1e-6)


# .../technical-overlays/bollinger-bands (cs-bbands.xls, SPY daily closes, 20 days, 2 std)
BB_CLOSE = [
    86.1557, 89.0867, 88.7829, 90.3228, 89.0671, 91.1453, 89.4397, 89.1750, 86.9302, 87.6752,
    86.9596, 89.4299, 89.3221, 88.7241, 87.4497, 87.2634, 89.4985, 87.9006, 89.1260, 90.7043,
    92.9001, 92.9784, 91.8021, 92.6647, 92.6843, 92.3021, 92.7725, 92.5373, 92.9490, 93.2039,
    91.0669, 89.8318, 89.7435, 90.3994, 90.7387, 88.0177, 88.0867, 88.8439, 90.7781, 90.5416,
    91.3894, 90.6500,
]  # fmt: skip
BB_MID = [
    88.70794, 89.04516, 89.239745, 89.390705, 89.5078, 89.68866, 89.7465, 89.91314, 90.081255,
    90.382195, 90.65863, 90.863995, 90.88409, 90.90516, 90.988925, 91.153375, 91.19109,
    91.1205, 91.167665, 91.25027, 91.242135, 91.1666, 91.05018,
]  # fmt: skip
BB_UPPER = [
    91.291862, 91.949268, 92.612595, 92.9342, 93.31195, 93.72845, 93.899592, 94.266255,
    94.565096, 94.786912, 95.043001, 94.907605, 94.902912, 94.89532, 94.861013, 94.673629,
    94.556593, 94.678752, 94.575786, 94.534271, 94.532306, 94.369251, 94.148503,
]  # fmt: skip
BB_LOWER = [
    86.124018, 86.141052, 85.866895, 85.84721, 85.70365, 85.64887, 85.593408, 85.560025,
    85.597414, 85.977478, 86.274259, 86.820385, 86.865268, 86.915, 87.116837, 87.633121,
    87.825587, 87.562248, 87.759544, 87.966269, 87.951964, 87.963949, 87.951857,
]  # fmt: skip


def test_bollinger_reproduces_the_chartschool_example():
    mid, upper, lower = bollinger(np.array(BB_CLOSE), 20, k=2.0)
    assert np.isnan(mid[:19]).all()
    for got, want in ((mid, BB_MID), (upper, BB_UPPER), (lower, BB_LOWER)):
        np.testing.assert_allclose(got[19:], want, atol=1e-5)


# -- contracts ----------------------------------------------------------------------------------


def test_known_small_cases():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_allclose(ema(x, 3), [np.nan, np.nan, 2.0, 3.0, 4.0])  # alpha 1/2
    np.testing.assert_allclose(wma(x, 3), [np.nan, np.nan, 14 / 6, 20 / 6, 26 / 6])
    np.testing.assert_allclose(rsi(x, 2), [np.nan, np.nan, 100.0, 100.0, 100.0])
    assert rsi(np.full(5, 7.0), 2)[-1] == 0.0  # flat: TA-Lib's 0
    np.testing.assert_allclose(donchian(x, x, 2).upper, [np.nan, 2, 3, 4, 5])  # current bar in
    np.testing.assert_array_equal(rolling_std(np.full(6, 0.1), 3)[2:], 0.0)  # exactly flat
    assert np.isnan(zscore(np.full(6, 0.1), 3)).all()


def test_rolling_std_survives_a_huge_value_leaving_the_window():
    x = np.array([1e9, 1.0, 1.01, 1.0, 1.01, 1.0, 1.01])
    np.testing.assert_allclose(rolling_std(x, 4)[4:], [np.std([1.0, 1.01, 1.0, 1.01])] * 3)


def test_vwap_restarts_each_new_york_session():
    bars = make_bars(390 * 2 + 10, 2)  # two full days and the start of a third
    typical = (bars.high + bars.low + bars.close) / 3
    sid = session_ids(bars.ts_ns)
    got = vwap(typical, bars.volume, session_id=sid)
    for start in (0, 390, 780):
        np.testing.assert_allclose(got[start], typical[start])
    day2 = slice(390, 780)
    np.testing.assert_allclose(got[779], typical[day2].mean(axis=0))  # equal volumes


def test_missing_bars_are_skipped():
    x = np.array([1.0, np.nan, 2.0, 3.0, np.nan])
    np.testing.assert_array_equal(np.isnan(ema(x, 2)), [True, True, False, False, True])
    assert ema(x, 2)[2] == 1.5
    np.testing.assert_array_equal(ffill(x), [1.0, 1.0, 2.0, 3.0, 3.0])


def test_crossings_take_a_level():
    r = np.array([[40.0], [25.0], [35.0], [np.nan], [20.0]])
    assert crossed_below(r, 30.0)[:, 0].tolist() == [False, True, False, False, False]
    assert crossed_above(r, 30.0)[:, 0].tolist() == [False, False, True, False, False]
    # over the missing bar only once it is carried forward
    assert crossed_below(ffill(r), 30.0)[:, 0].tolist() == [False, True, False, False, True]


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda x: sma(x, 0), ["sma window must be a whole number >= 1", "window=20", "got 0"]),
        (lambda x: ema(x, 2.5), ["ema window", "2.5"]),
        (lambda x: wma(x, "5"), ["wma window", "'5'"]),
        (lambda x: rsi(x, None), ["rsi window", "window=14"]),
        (lambda x: rsi(x, True), ["rsi window"]),
        (lambda x: rolling_std(x, 1, ddof=1), ["window must be a whole number >= 2"]),
        (lambda x: zscore(x, 5, ddof=2), ["ddof must be 0 (population) or 1 (sample)"]),
        (lambda x: bollinger(x, 20, k=-1.0), ["bollinger k", "k=2.0"]),
        (lambda x: macd(x, 26, 12), ["fast (26) must be smaller than slow (12)"]),
        (lambda x: macd(x, signal=0), ["macd signal", "signal=9"]),
        (lambda x: atr(x, x[:-1], x), ["atr needs arrays of one shape", "low (9, 2)"]),
        (lambda x: donchian(x[..., None], x[..., None]), ["(n_bars, n_symbols)", "(10, 2, 1)"]),
        (lambda x: ema("abc", 3), ["ema takes a float array for x"]),
        (lambda x: vwap(x, x, session_id=np.zeros(3, int)), ["session_id", "session_ids"]),
        (lambda x: vwap(x, x, session_id=np.zeros(10)), ["integer array of shape (10,)"]),
    ],
)
def test_bad_inputs_are_named(call, words):
    with pytest.raises(StrategyError) as err:
        call(np.ones((10, 2)))
    for word in words:
        assert word in str(err.value)


def test_crossed_above_is_strict():
    a = np.array([[1.0], [2.0], [2.0], [3.0], [1.0], [3.0]])
    b = np.array([[2.0], [2.0], [2.0], [2.0], [2.0], [2.0]])
    # 1<2 then 2==2 is a touch, not a cross; 2==2 then 3>2 is not strict either
    assert crossed_above(a, b)[:, 0].tolist() == [False, False, False, False, False, True]


@given(
    st.lists(st.tuples(*[st.sampled_from([1.0, 2.0, 3.0, np.nan])] * 2), min_size=0, max_size=30)
)
def test_crossed_above_of_one_column_follows_the_rule(pairs):
    """One column takes a numba pass, several take numpy: both follow the plain rule."""
    a = np.array([p[0] for p in pairs], dtype=np.float64)
    b = np.array([p[1] for p in pairs], dtype=np.float64)
    expected = [t > 0 and a[t - 1] < b[t - 1] and a[t] > b[t] for t in range(len(a))]
    assert crossed_above(a, b).tolist() == expected
    assert crossed_above(a[:, None], b[:, None])[:, 0].tolist() == expected
    assert crossed_above(np.c_[a, b], np.c_[b, a])[:, 0].tolist() == expected
    assert crossed_below(b, a).tolist() == expected


@settings(max_examples=200)
@given(
    st.lists(st.integers(1_000, 99_999), min_size=2, max_size=120),
    st.integers(1, 30),
    st.integers(0, 60),
)
def test_sma_of_a_window_does_not_depend_on_where_the_series_starts(cents, window, start):
    """The live bridge computes on a rolling window, the backtest from the first bar: each
    average is the window's exact sum rounded once (math.fsum), in both."""
    import math

    x = np.array(cents, dtype=np.float64) / 100.0  # prices in whole cents tie often
    start = min(start, len(x) - 1)
    whole, tail = sma(x, window), sma(x[start:], window)
    for t in range(start + window - 1, len(x)):
        assert whole[t] == tail[t - start] == math.fsum(x[t - window + 1 : t + 1]) / window
    wide = sma(np.ascontiguousarray(np.repeat(x[:, None], 9, axis=1)), window)  # row-wise
    assert np.array_equal(wide[:, 4], whole, equal_nan=True)
