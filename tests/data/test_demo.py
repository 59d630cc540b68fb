from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from barlab.data import calendar
from barlab.data.providers import demo
from barlab.data.schema import SCHEMA, validate
from barlab.data.store import content_hash
from barlab.errors import DataError

YEAR = (dt.date(2023, 1, 1), dt.date(2023, 12, 31))


@pytest.fixture(scope="module")
def year() -> pl.DataFrame:
    """A year of AAPL minute bars with the New York date and minute of the session."""
    df = demo.fetch("AAPL", *YEAR)
    local = pl.col("ts").dt.convert_time_zone("America/New_York")
    return df.with_columns(day=local.dt.date(), minute=pl.int_range(pl.len()).over(local.dt.date()))


def test_the_module_says_the_bars_are_synthetic():
    assert "SYNTHETIC" in (demo.__doc__ or "").splitlines()[0]
    assert "SYNTHETIC" in (demo.fetch.__doc__ or "")


def test_universe_holds_the_sp100_and_the_usual_etfs():
    assert 100 <= len(demo.SYMBOLS) <= 110
    assert len(set(demo.SYMBOLS)) == len(demo.SYMBOLS)
    for sym in ("AAPL", "MSFT", "TSLA", "GOOGL", "GOOG", "NVDA", "AMZN", "META", "SPY", "QQQ"):
        assert sym in demo.SYMBOLS


def test_unknown_symbol_names_the_universe_and_the_way_to_real_data():
    with pytest.raises(DataError) as e:
        demo.fetch("XYZ", dt.date(2023, 1, 3), dt.date(2023, 1, 3))
    msg = str(e.value)
    assert "unknown symbol 'XYZ' for the demo market" in msg
    assert f"simulates {len(demo.SYMBOLS)} tickers: AAPL, " in msg
    assert "use real data with --source polygon" in msg
    with pytest.raises(DataError, match="did you mean 'AAPL'"):
        demo.fetch("AAPLE", dt.date(2023, 1, 3), dt.date(2023, 1, 3))


def test_a_small_day_has_a_fixed_checksum():
    # Pins the generator: any change to it must bump demo.VERSION (cached demo bars go stale).
    day = demo.fetch("AAPL", dt.date(2023, 3, 15), dt.date(2023, 3, 15))
    assert content_hash(day) == "e08933f188b2d9edc0a45f7de5b825e39de943467b45e3ed9c155d52cb36c5c5"
    early = demo.fetch("SPY", dt.date(2023, 11, 24), dt.date(2023, 11, 24))
    assert content_hash(early) == "37ac76b75cb5d4aa5765600a38112a909a7c216cae83747a448d49783822b84b"


def test_overlapping_requests_agree_on_the_overlap():
    a = demo.fetch("MSFT", dt.date(2023, 1, 1), dt.date(2023, 3, 31))
    b = demo.fetch("MSFT", dt.date(2023, 2, 15), dt.date(2023, 6, 30))
    lo, hi = b["ts"][0], a["ts"][-1]
    assert a.filter(pl.col("ts") >= lo).equals(b.filter(pl.col("ts") <= hi))
    one_day = demo.fetch("MSFT", dt.date(2023, 3, 1), dt.date(2023, 3, 1))
    assert a.filter(pl.col("ts").is_in(one_day["ts"].implode())).equals(one_day)


def test_symbols_differ():
    day = (dt.date(2023, 3, 15), dt.date(2023, 3, 15))
    assert not demo.fetch("AAPL", *day)["close"].equals(demo.fetch("MSFT", *day)["close"])


def test_bars_are_valid_on_sessions_in_regular_hours_only(year):
    validate(year.select(SCHEMA.names()), symbol="AAPL", source="demo")
    sessions = calendar.sessions(*YEAR)
    per_day = year.group_by("day").len().sort("day")
    assert per_day["day"].to_list() == sessions.dates.astype(object).tolist()
    assert per_day["len"].to_list() == sessions.minutes.tolist()  # 390, or 210 on early closes
    first = year.group_by("day").agg(pl.col("ts").min())["ts"].dt.epoch("ns").sort()
    assert first.to_list() == sessions.open_ns.tolist()
    assert year.height == 248 * 390 + 2 * 210


def test_ohlc_is_consistent_and_in_whole_cents(year):
    o, h, lo, c = (year[k].to_numpy() for k in ("open", "high", "low", "close"))
    assert np.all(h >= np.maximum(o, c)) and np.all(lo <= np.minimum(o, c))
    assert np.all(lo > 0)
    assert np.all(h > lo - 1e-9) and np.any(h > np.maximum(o, c))
    assert np.allclose(c * 100, np.rint(c * 100), atol=1e-6)
    vwap = year["vwap"].to_numpy()
    assert np.all((vwap >= lo) & (vwap <= h))
    assert np.all(year["volume"].to_numpy() >= 1) and np.all(year["n_trades"].to_numpy() >= 1)


def test_volume_is_u_shaped(year):
    full = year.filter(pl.len().over("day") == 390)
    by_minute = full.group_by("minute").agg(pl.col("volume").mean()).sort("minute")["volume"]
    v = by_minute.to_numpy()
    open_, midday, close = v[:30].mean(), v[150:240].mean(), v[-30:].mean()
    assert open_ > 2.5 * midday and close > 2.5 * midday


@pytest.mark.parametrize("symbol", ["AAPL", "TSLA", "SPY", "BRK.B"])
def test_per_minute_volatility_is_about_a_tenth_of_a_percent(symbol):
    df = demo.fetch(symbol, dt.date(2023, 1, 1), dt.date(2023, 6, 30))
    day = pl.col("ts").dt.convert_time_zone("America/New_York").dt.date()
    ret = df.select((pl.col("close").log().diff().over(day)).alias("r"))["r"].drop_nulls()
    assert 0.0004 < ret.std() < 0.002


def test_there_are_overnight_gaps(year):
    days = year.group_by("day").agg(pl.col("open").first(), pl.col("close").last()).sort("day")
    gaps = days["open"].to_numpy()[1:] / days["close"].to_numpy()[:-1] - 1
    assert np.mean(gaps != 0) > 0.9
    assert 0.001 < np.std(gaps) < 0.03


@pytest.mark.slow
def test_prices_stay_realistic_over_the_whole_calendar():
    for sym in ("AAPL", "TSLA", "QQQ", "F"):
        close = demo.fetch(sym, dt.date(2000, 1, 1), dt.date(2025, 12, 31), timeframe="1d")["close"]
        assert close.len() > 6000
        assert close.min() > 1.0 and close.max() < 5000.0


def test_other_timeframes_are_resampled_minutes():
    d = (dt.date(2023, 3, 13), dt.date(2023, 3, 17))
    days = demo.fetch("AAPL", *d, timeframe="1d")
    minutes = demo.fetch("AAPL", *d)
    assert days.height == 5
    assert days["close"][-1] == minutes["close"][-1]
    assert days["volume"].sum() == minutes["volume"].sum()
    assert demo.fetch("AAPL", *d, timeframe="1h").height == 5 * 7


def test_a_range_without_sessions_is_empty():
    df = demo.fetch("AAPL", dt.date(2023, 12, 23), dt.date(2023, 12, 25))
    assert df.height == 0 and df.schema == SCHEMA


def test_workload_is_390_bars_a_day_for_252_days():
    bars = demo.workload(3)
    assert bars.close.shape == (98_280, 3)
    assert bars.symbols == ("AAPL", "ABBV", "ABT")
    assert bars.synthetic and bars.periods_per_year == 98_280
    assert not np.isnan(bars.close).any()
