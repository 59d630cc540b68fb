from __future__ import annotations

import datetime as dt
import os

import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from barlab.data import schema
from barlab.data import store as store_mod
from barlab.data.calendar import day_start_ns
from barlab.data.schema import SCHEMA
from barlab.data.store import Gap, Store, content_hash, months
from barlab.errors import CacheError, DataError

from .conftest import NS_PER_MIN, make_frame

MARCH = {"coverage_start": dt.date(2023, 3, 1), "coverage_end": dt.date(2023, 3, 31)}
KEY = {"source": "demo", "timeframe": "1m", "symbol": "AAPL"}


def write_march(store: Store, df: pl.DataFrame, **kw) -> store_mod.MonthFile:
    return store.write_month(df, **{**KEY, "month": "2023-03", **MARCH, **kw})


def files_in(folder) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_layout_puts_source_timeframe_symbol_and_month_in_the_path(store):
    path = store.path(**KEY, month="2023-03")
    assert path == store.root / "bars/source=demo/timeframe=1m/symbol=AAPL/2023-03.parquet"


def test_round_trip_and_metadata(store):
    df = make_frame(30)
    info = write_march(store, df, provider_version="1")
    back = store.read(**KEY, start=dt.date(2023, 3, 1), end=dt.date(2023, 3, 31))
    assert back.schema == SCHEMA
    assert back.equals(df)
    assert info.path.exists()
    assert (info.source, info.symbol, info.timeframe, info.month) == (
        "demo",
        "AAPL",
        "1m",
        "2023-03",
    )
    assert (info.coverage_start, info.coverage_end) == (
        MARCH["coverage_start"],
        MARCH["coverage_end"],
    )
    assert info.content_hash == content_hash(df)
    assert info.schema_version == schema.SCHEMA_VERSION
    assert info.provider_version == "1"
    assert info.n_bars == 30
    assert dt.datetime.fromisoformat(info.fetched_at).tzinfo is not None
    raw = pq.read_metadata(info.path).metadata
    for key in (
        "source",
        "symbol",
        "timeframe",
        "coverage_start",
        "coverage_end",
        "fetched_at",
        "content_hash",
        "schema_version",
    ):
        assert f"barlab.{key}".encode() in raw


prices = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def bar_frames(draw) -> pl.DataFrame:
    """Valid bars at random minutes of March 2023 (New York), nulls and extremes included."""
    march_ns = day_start_ns(dt.date(2023, 3, 1))
    last_minute = (day_start_ns(dt.date(2023, 4, 1)) - march_ns) // NS_PER_MIN - 1  # DST: 31d - 1h
    n = draw(st.integers(min_value=0, max_value=40))
    minutes = sorted(draw(st.sets(st.integers(0, last_minute), min_size=n, max_size=n)))
    rows = []
    for minute in minutes:
        o, c, a, b = (draw(prices) for _ in range(4))
        rows.append(
            {
                "ts": march_ns + minute * NS_PER_MIN,
                "open": o,
                "high": max(o, c, a),
                "low": min(o, c, b),
                "close": c,
                "volume": draw(st.floats(0, 1e12, allow_nan=False)),
                "vwap": draw(st.none() | prices),
                "n_trades": draw(st.none() | st.integers(0, 2**62)),
            }
        )
    df = pl.DataFrame(rows, schema={**SCHEMA, "ts": pl.Int64})
    return df.with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(df=bar_frames())
def test_random_bars_round_trip_exactly(store, df):
    info = write_march(store, df)
    back = store.read(**KEY, start=dt.date(2023, 3, 1), end=dt.date(2023, 3, 31))
    assert back.equals(df)
    assert content_hash(back) == info.content_hash
    assert store.verify(**KEY) == 1


def test_read_filters_to_new_york_dates(store):
    df = make_frame(3)  # 2023-03-15 13:30 UTC
    write_march(store, df)
    assert store.read(**KEY, start=dt.date(2023, 3, 15), end=dt.date(2023, 3, 15)).height == 3
    assert store.read(**KEY, start=dt.date(2023, 3, 16), end=dt.date(2023, 3, 20)).height == 0
    assert store.read(**KEY, start=dt.date(2023, 3, 1), end=dt.date(2023, 3, 14)).height == 0
    cols = store.read(**KEY, start=dt.date(2023, 3, 1), end=dt.date(2023, 3, 31), columns=["close"])
    assert cols.columns == ["close"]


def test_read_of_nothing_cached_is_empty_in_the_schema(store):
    df = store.read(**KEY, start=dt.date(2023, 1, 1), end=dt.date(2023, 2, 1))
    assert df.height == 0 and df.schema == SCHEMA


def test_coverage_tells_missing_partial_and_stale_months(store):
    jan_to_apr = {"start": dt.date(2023, 1, 10), "end": dt.date(2023, 4, 5)}
    store.write_month(
        SCHEMA.to_frame(),
        **KEY,
        month="2023-01",  # empty but covered
        coverage_start=dt.date(2023, 1, 1),
        coverage_end=dt.date(2023, 1, 31),
    )
    store.write_month(
        SCHEMA.to_frame(),
        **KEY,
        month="2023-02",
        coverage_start=dt.date(2023, 2, 1),
        coverage_end=dt.date(2023, 2, 14),
    )
    write_march(store, make_frame(3), provider_version="0")
    gaps = store.coverage(**KEY, **jan_to_apr)
    assert gaps == [
        Gap(
            "2023-02",
            dt.date(2023, 2, 1),
            dt.date(2023, 2, 28),
            "covers only 2023-02-01 to 2023-02-14",
        ),
        Gap("2023-04", dt.date(2023, 4, 1), dt.date(2023, 4, 5), "missing"),
    ]
    stale = store.coverage(**KEY, **jan_to_apr, provider_version="1")
    assert [g.month for g in stale] == ["2023-01", "2023-02", "2023-03", "2023-04"]
    assert "provider version '0'" in stale[2].reason
    assert store.coverage(**KEY, start=dt.date(2023, 2, 1), end=dt.date(2023, 2, 14)) == []


def test_files_of_another_schema_version_are_stale(store, monkeypatch):
    write_march(store, make_frame(3))
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", schema.SCHEMA_VERSION + 1)
    gaps = store.coverage(**KEY, start=dt.date(2023, 3, 1), end=dt.date(2023, 3, 31))
    assert len(gaps) == 1 and "schema version" in gaps[0].reason


def test_write_rejects_invalid_bars_and_bars_outside_coverage(store):
    bad = make_frame(3).with_columns(volume=pl.Series([1.0, -1.0, 1.0]))
    with pytest.raises(DataError, match="volume is negative"):
        write_march(store, bad)
    with pytest.raises(DataError, match="outside the covered dates"):
        write_march(store, make_frame(3), coverage_start=dt.date(2023, 3, 16))
    with pytest.raises(DataError, match="within month 2023-03"):
        write_march(store, make_frame(3), coverage_end=dt.date(2023, 4, 1))
    with pytest.raises(DataError, match="not YYYY-MM"):
        store.write_month(make_frame(3), **KEY, month="2023-3", **MARCH)
    with pytest.raises(DataError, match="upper-case ticker"):
        store.path(source="demo", timeframe="1m", symbol="../x", month="2023-03")
    assert not store.root.exists() or not any(store.root.rglob("*.parquet"))


def test_failed_write_leaves_no_file_and_keeps_the_old_one(store, monkeypatch):
    info = write_march(store, make_frame(3))
    before = info.path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store_mod.os, "replace", boom)
    with pytest.raises(CacheError, match=r"cannot write cache file .*2023-03.parquet: disk full"):
        write_march(store, make_frame(5))
    assert files_in(info.path.parent) == ["2023-03.parquet"]
    assert info.path.read_bytes() == before


def test_failed_write_mid_file_leaves_nothing(store, monkeypatch):
    def half_then_fail(table, where, **kwargs):
        where.write(b"PAR1 half a file")
        raise KeyboardInterrupt  # even an interrupt cleans up

    monkeypatch.setattr(store_mod.pq, "write_table", half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        write_march(store, make_frame(3))
    assert files_in(store.path(**KEY, month="2023-03").parent) == []


def test_stray_temp_files_are_ignored_on_read_and_removed_on_write(store):
    write_march(store, make_frame(3))
    folder = store.path(**KEY, month="2023-03").parent
    dead = folder / ".2023-04.parquet.99999999.deadbeef.tmp"  # no such process
    live = folder / f".2023-05.parquet.{os.getpid()}.cafebabe.tmp"  # a writer still at work
    dead.write_bytes(b"half")
    live.write_bytes(b"half")
    assert store.read(**KEY, start=dt.date(2023, 3, 1), end=dt.date(2023, 5, 31)).height == 3
    assert [
        g.month for g in store.coverage(**KEY, start=dt.date(2023, 4, 1), end=dt.date(2023, 4, 30))
    ] == ["2023-04"]
    write_march(store, make_frame(4))
    assert not dead.exists()
    assert live.exists()


def test_corrupt_file_raises_cache_error_naming_it_and_the_fix(store):
    info = write_march(store, make_frame(3))
    info.path.write_bytes(info.path.read_bytes()[:-20])  # truncated
    fresh = Store(store.root)
    with pytest.raises(CacheError) as e:
        fresh.read(**KEY, start=dt.date(2023, 3, 1), end=dt.date(2023, 3, 31))
    assert str(info.path) in str(e.value)
    assert "delete it and run again" in str(e.value)


def test_flipped_bytes_in_the_data_are_caught(store):
    info = write_march(store, make_frame(300))
    data = bytearray(info.path.read_bytes())
    data[200] ^= 0xFF  # inside the first column chunk's pages
    info.path.write_bytes(bytes(data))
    with pytest.raises(CacheError, match=r"2023-03\.parquet"):
        Store(store.root).read(**KEY, start=dt.date(2023, 3, 1), end=dt.date(2023, 3, 31))


def test_a_foreign_parquet_file_is_a_cache_error(store):
    path = store.path(**KEY, month="2023-03")
    path.parent.mkdir(parents=True)
    pq.write_table(make_frame(3).to_arrow(), path)  # no barlab metadata
    with pytest.raises(CacheError, match="lacks barlab's metadata"):
        store.coverage(**KEY, start=dt.date(2023, 3, 1), end=dt.date(2023, 3, 31))


def test_a_file_under_the_wrong_key_is_refused(store):
    info = write_march(store, make_frame(3))
    polygon = store.path(source="polygon", timeframe="1m", symbol="AAPL", month="2023-03")
    polygon.parent.mkdir(parents=True)
    polygon.write_bytes(info.path.read_bytes())  # synthetic bars copied under a real source
    with pytest.raises(CacheError, match="holds demo 1m bars of AAPL"):
        store.read(
            source="polygon",
            timeframe="1m",
            symbol="AAPL",
            start=dt.date(2023, 3, 1),
            end=dt.date(2023, 3, 31),
        )
    with pytest.raises(CacheError):
        store.coverage(
            source="polygon",
            timeframe="1m",
            symbol="AAPL",
            start=dt.date(2023, 3, 1),
            end=dt.date(2023, 3, 31),
        )


def test_verify_catches_bars_changed_behind_the_hash(store):
    info = write_march(store, make_frame(5))
    table = pq.read_table(info.path)
    tampered = table.set_column(4, "close", pq.read_table(info.path)["open"])
    pq.write_table(tampered.replace_schema_metadata(table.schema.metadata), info.path)
    with pytest.raises(CacheError, match="does not match its recorded hash"):
        Store(store.root).verify(**KEY)


def test_version_is_stable_and_follows_contents_and_range(store):
    write_march(store, make_frame(5))
    rng = {"start": dt.date(2023, 3, 1), "end": dt.date(2023, 3, 31)}
    v1 = store.version(source="demo", timeframe="1m", symbols=["AAPL"], **rng)
    assert len(v1) == 16
    assert Store(store.root).version(source="demo", timeframe="1m", symbols=["AAPL"], **rng) == v1
    assert (
        store.version(
            source="demo",
            timeframe="1m",
            symbols=["AAPL"],
            start=dt.date(2023, 3, 2),
            end=dt.date(2023, 3, 31),
        )
        != v1
    )
    write_march(store, make_frame(5))  # same bars again: same version
    assert Store(store.root).version(source="demo", timeframe="1m", symbols=["AAPL"], **rng) == v1
    write_march(store, make_frame(6))
    assert Store(store.root).version(source="demo", timeframe="1m", symbols=["AAPL"], **rng) != v1


def test_timestamps_key_is_equal_for_equal_timestamps(store):
    write_march(store, make_frame(5, price=10.0))
    store.write_month(
        make_frame(5, price=20.0),
        source="demo",
        timeframe="1m",
        symbol="MSFT",
        month="2023-03",
        **MARCH,
    )
    store.write_month(
        make_frame(4, price=20.0),
        source="demo",
        timeframe="1m",
        symbol="TSLA",
        month="2023-03",
        **MARCH,
    )
    rng = {
        "source": "demo",
        "timeframe": "1m",
        "start": dt.date(2023, 3, 1),
        "end": dt.date(2023, 3, 31),
    }
    keys = [store.timestamps_key(symbol=s, **rng) for s in ("AAPL", "MSFT", "TSLA")]
    assert keys[0] == keys[1] != keys[2]


def test_months_spans_year_ends():
    assert months(dt.date(2022, 11, 30), dt.date(2023, 2, 1)) == [
        "2022-11",
        "2022-12",
        "2023-01",
        "2023-02",
    ]
