from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from barlab.data.schema import SCHEMA, normalize, resample, validate
from barlab.errors import DataError

from .conftest import NS_PER_MIN, OPEN_2023_03_15_NS, make_frame


def test_normalize_casts_selects_and_sorts():
    raw = pl.DataFrame(
        {
            "extra": ["x", "y"],
            "close": [2, 1],
            "ts": [dt.datetime(2023, 3, 15, 13, 31), dt.datetime(2023, 3, 15, 13, 30)],  # naive
            "open": [1, 1],
            "high": [2, 1],
            "low": [1, 1],
            "volume": [10, 20],
        }
    )
    df = normalize(raw)
    assert df.schema == SCHEMA
    assert df["close"].to_list() == [1.0, 2.0]  # sorted by ts
    assert df["ts"][0] == dt.datetime(2023, 3, 15, 13, 30, tzinfo=dt.UTC)
    assert df["vwap"].null_count() == 2
    assert df["n_trades"].null_count() == 2


def test_normalize_converts_other_time_zones_and_integer_nanoseconds():
    ny = pl.DataFrame(
        {
            "ts": [dt.datetime(2023, 3, 15, 9, 30)],
            "open": [1.0],
            "high": [1.0],
            "low": [1.0],
            "close": [1.0],
            "volume": [1.0],
        }
    ).with_columns(pl.col("ts").dt.replace_time_zone("America/New_York"))
    assert normalize(ny)["ts"].dt.epoch("ns")[0] == OPEN_2023_03_15_NS
    as_int = ny.with_columns(ts=pl.lit(OPEN_2023_03_15_NS, dtype=pl.Int64))
    assert normalize(as_int)["ts"].dt.epoch("ns")[0] == OPEN_2023_03_15_NS


def test_normalize_names_missing_columns():
    with pytest.raises(DataError, match=r"lack column.*volume"):
        normalize(make_frame().drop("volume"))


def test_normalize_rejects_uncastable_prices():
    bad = make_frame().with_columns(pl.col("close").cast(pl.String) + "x")
    with pytest.raises(DataError, match="cannot be cast"):
        normalize(bad)


def test_valid_frames_pass():
    validate(make_frame(50), symbol="AAPL", source="demo")
    validate(SCHEMA.to_frame(), symbol="AAPL", source="demo")


def _set(df: pl.DataFrame, row: int, **values: object) -> pl.DataFrame:
    out = df.to_dict(as_series=False)
    for k, v in values.items():
        out[k][row] = v
    return pl.DataFrame(out, schema=SCHEMA)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"close": None}, "close is null"),
        ({"open": float("nan")}, "open is not finite"),
        ({"volume": float("inf")}, "volume is not finite"),
        ({"low": 0.0}, "low is not positive"),
        ({"open": -1.0, "low": -2.0}, "open is not positive"),
        ({"high": 100.0}, "high is below max(open, close)"),
        ({"low": 200.0}, "low is above min(open, close)"),
        ({"volume": -5.0}, "volume is negative"),
    ],
)
def test_validate_names_symbol_source_time_and_problem(change, problem):
    df = _set(make_frame(10), 3, **change)
    with pytest.raises(DataError) as e:
        validate(df, symbol="AAPL", source="polygon")
    msg = str(e.value)
    assert "polygon bars for AAPL" in msg
    assert "2023-03-15 13:33:00" in msg  # the bad row's time
    assert "row 3" in msg
    assert problem in msg


def test_validate_catches_duplicate_and_unsorted_timestamps():
    df = make_frame(5)
    dup = pl.concat([df.head(3), df.slice(2, 3)])
    with pytest.raises(DataError, match=r"1 bad bar.*row 3.*duplicate"):
        validate(dup, symbol="MSFT", source="alpaca")
    unsorted = pl.concat([df.slice(2, 3), df.head(2)])
    with pytest.raises(DataError, match=r"row 3.*unsorted"):
        validate(unsorted, symbol="MSFT", source="alpaca")


def test_validate_counts_bad_bars_and_reports_the_first():
    df = _set(_set(make_frame(10), 7, volume=-1.0), 2, volume=-1.0)
    with pytest.raises(DataError, match=r"2 bad bar\(s\), the first at 2023-03-15 13:32"):
        validate(df, symbol="AAPL", source="demo")


def test_validate_requires_the_canonical_schema():
    with pytest.raises(DataError, match="normalize first"):
        validate(make_frame().drop("vwap"), symbol="AAPL", source="demo")


def test_resample_5m_aggregates_first_max_min_last_sum_and_weighted_vwap():
    df = make_frame(10).with_columns(
        volume=pl.Series([1.0, 2, 3, 4, 5, 1, 1, 1, 1, 1]),
        vwap=pl.Series([10.0, 20, 30, 40, 50, 1, 1, 1, 1, None]),
    )
    out = resample(df, "5m")
    assert out.schema == SCHEMA
    assert out.height == 2
    first = out.row(0, named=True)
    assert first["ts"] == df["ts"][0]
    assert first["open"] == df["open"][0]
    assert first["close"] == df["close"][4]
    assert first["high"] == df["high"].head(5).max()
    assert first["low"] == df["low"].head(5).min()
    assert first["volume"] == 15.0
    assert first["n_trades"] == 50
    assert first["vwap"] == pytest.approx((10 + 40 + 90 + 160 + 250) / 15)
    assert out.row(1, named=True)["vwap"] == pytest.approx(1.0)  # null vwap left out


def test_resample_hour_bars_start_on_the_hour_and_day_bars_at_new_york_midnight():
    df = make_frame(390)  # 2023-03-15 09:30 to 15:59 New York
    hours = resample(df, "1h")
    ny = hours["ts"].dt.convert_time_zone("America/New_York").dt.hour().to_list()
    assert ny == [9, 10, 11, 12, 13, 14, 15]
    assert hours["volume"].to_list() == [30_000.0] + [60_000.0] * 6
    day = resample(df, "1d")
    assert day.height == 1
    assert day["ts"][0] == dt.datetime(2023, 3, 15, 4, 0, tzinfo=dt.UTC)  # 00:00 EDT
    assert day["close"][0] == df["close"][-1]


def test_resample_1m_is_identity_and_unknown_timeframe_is_an_error():
    df = make_frame(3)
    assert resample(df, "1m").equals(df)
    with pytest.raises(DataError, match="unknown timeframe '7m'"):
        resample(df, "7m")


def test_resample_leaves_gaps_without_bars():
    df = make_frame(20)
    gappy = pl.concat([df.head(5), df.slice(15, 5)])
    out = resample(gappy, "5m")
    assert out["ts"].dt.epoch("ns").to_list() == [
        OPEN_2023_03_15_NS,
        OPEN_2023_03_15_NS + 15 * NS_PER_MIN,
    ]
    assert np.all(out["volume"].to_numpy() == 5000.0)
