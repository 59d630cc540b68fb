from __future__ import annotations

import datetime as dt
import logging
import re
import sys
import types

import numpy as np
import polars as pl
import pytest

from barlab.data import calendar, panel
from barlab.data.panel import PROVIDERS, load_bars
from barlab.data.providers import demo
from barlab.data.store import Store
from barlab.errors import CacheError, DataError, UsageError

from .conftest import NS_PER_MIN, OPEN_2023_03_15_NS, make_frame

WEEK = (dt.date(2023, 3, 13), dt.date(2023, 3, 17))
MARCH = {"coverage_start": dt.date(2023, 3, 1), "coverage_end": dt.date(2023, 3, 31)}


@pytest.fixture
def fetch_calls(monkeypatch) -> list[tuple[str, dt.date, dt.date]]:
    """Record every call to the demo provider."""
    calls: list[tuple[str, dt.date, dt.date]] = []
    real = demo.fetch

    def spy(symbol, start, end, *, timeframe="1m"):
        calls.append((symbol, start, end))
        return real(symbol, start, end, timeframe=timeframe)

    monkeypatch.setattr(demo, "fetch", spy)
    return calls


def test_loads_demo_bars_aligned_and_labelled(tmp_path):
    bars = load_bars(["AAPL", "MSFT"], *WEEK, data_dir=tmp_path)
    assert bars.symbols == ("AAPL", "MSFT")
    assert bars.n_bars == 5 * 390
    assert bars.close.shape == (5 * 390, 2) and bars.close.flags.c_contiguous
    assert bars.close.dtype == np.float64 and not np.isnan(bars.close).any()
    assert bars.source == "demo" and bars.synthetic and "SYNTHETIC" in repr(bars)
    assert bars.timeframe == "1m" and bars.periods_per_year == 98_280
    assert bars.ts_ns[0] == calendar.sessions(*WEEK).open_ns[0]
    direct = demo.fetch("MSFT", *WEEK)
    assert np.array_equal(bars.close[:, 1], direct["close"].to_numpy())
    assert np.array_equal(bars.volume[:, 1], direct["volume"].to_numpy())


def test_second_load_reads_the_cache_without_the_provider(tmp_path, fetch_calls):
    first = load_bars(["AAPL", "SPY"], *WEEK, data_dir=tmp_path)
    assert sorted(c[0] for c in fetch_calls) == ["AAPL", "SPY"]
    assert fetch_calls[0][1:] == (dt.date(2023, 3, 1), dt.date(2023, 3, 31))  # whole months
    fetch_calls.clear()
    again = load_bars(["AAPL", "SPY"], dt.date(2023, 3, 2), dt.date(2023, 3, 30), data_dir=tmp_path)
    assert fetch_calls == []
    assert again.version != first.version  # another range
    assert load_bars(["AAPL", "SPY"], *WEEK, data_dir=tmp_path).version == first.version
    load_bars(["AAPL"], dt.date(2023, 3, 1), dt.date(2023, 5, 10), data_dir=tmp_path)
    assert fetch_calls == [  # one fetch per missing month, so a kill loses at most one
        ("AAPL", dt.date(2023, 4, 1), dt.date(2023, 4, 30)),
        ("AAPL", dt.date(2023, 5, 1), dt.date(2023, 5, 31)),
    ]


def test_one_info_line_per_cache_fill(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="barlab.data.download"):
        load_bars(["AAPL", "MSFT"], *WEEK, data_dir=tmp_path)
        load_bars(["AAPL", "MSFT"], *WEEK, data_dir=tmp_path)
    fills = [r.getMessage() for r in caplog.records if r.name == "barlab.data.download"]
    assert len(fills) == 2
    assert all(m.startswith("cache fill: demo 1m ") for m in fills)


def test_bars_stay_within_the_new_york_dates(tmp_path):
    bars = load_bars(["AAPL"], dt.date(2023, 3, 15), dt.date(2023, 3, 15), data_dir=tmp_path)
    assert bars.n_bars == 390
    assert bars.ts_ns[0] == OPEN_2023_03_15_NS
    assert bars.ts_ns[-1] == OPEN_2023_03_15_NS + 389 * NS_PER_MIN


def test_coarser_timeframes_are_cached_on_their_own(tmp_path):
    bars = load_bars(["AAPL", "QQQ"], *WEEK, timeframe="1h", data_dir=tmp_path)
    assert bars.n_bars == 5 * 7 and bars.periods_per_year == 7 * 252
    daily = load_bars(["AAPL"], *WEEK, timeframe="1d", data_dir=tmp_path)
    assert daily.n_bars == 5
    assert (tmp_path / "bars/source=demo/timeframe=1h/symbol=QQQ/2023-03.parquet").exists()


def _cache_polygon(store: Store, symbol: str, df: pl.DataFrame) -> None:
    store.write_month(
        df, source="polygon", timeframe="1m", symbol=symbol, month="2023-03",
        provider_version="polygon-1", **MARCH,
    )  # fmt: skip


def test_symbols_are_aligned_on_the_union_with_nan_gaps(tmp_path):
    store = Store(tmp_path)
    bars = make_frame(6)
    _cache_polygon(store, "AAPL", bars[[0, 1, 2, 4]])
    _cache_polygon(store, "MSFT", bars[[1, 3, 4, 5]])
    _cache_polygon(store, "TSLA", bars.head(0))  # covered, but no bars
    got = load_bars(["AAPL", "MSFT", "TSLA"], *WEEK, source="polygon", data_dir=tmp_path)
    assert got.ts_ns.tolist() == (OPEN_2023_03_15_NS + np.arange(6) * NS_PER_MIN).tolist()
    close = bars["close"].to_numpy()
    nan = np.nan
    expected_aapl = [close[0], close[1], close[2], nan, close[4], nan]
    expected_msft = [nan, close[1], nan, close[3], close[4], close[5]]
    np.testing.assert_array_equal(got.close[:, 0], expected_aapl)
    np.testing.assert_array_equal(got.close[:, 1], expected_msft)
    assert np.isnan(got.close[:, 2]).all() and np.isnan(got.volume[:, 2]).all()
    assert not got.synthetic


def test_a_source_without_a_provider_names_what_is_missing(tmp_path):
    store = Store(tmp_path)
    store.write_month(
        make_frame(3), source="import", timeframe="1m", symbol="AAPL", month="2023-03",
        coverage_start=dt.date(2023, 3, 1), coverage_end=dt.date(2023, 3, 31),
    )  # fmt: skip
    with pytest.raises(DataError) as e:
        load_bars(
            ["AAPL"], dt.date(2023, 3, 1), dt.date(2023, 4, 30), source="import", data_dir=tmp_path
        )
    msg = str(e.value)
    assert "import 1m bars for AAPL are not cached for 2023-04" in msg
    assert "barlab cannot download from 'import'" in msg
    assert "backtest data import" in msg


def test_providers_plug_in_through_the_registry(tmp_path, monkeypatch):
    vendor = types.ModuleType("fake_vendor")
    vendor.VERSION = "7"
    vendor.fetch = lambda symbol, start, end, *, timeframe="1m": demo.fetch(
        "AAPL", start, end, timeframe=timeframe
    )
    monkeypatch.setitem(sys.modules, "fake_vendor", vendor)
    monkeypatch.setitem(PROVIDERS, "vendor", "fake_vendor")
    bars = load_bars(["ZZZ"], *WEEK, source="vendor", data_dir=tmp_path)
    assert bars.n_bars == 5 * 390 and bars.source == "vendor" and not bars.synthetic
    info = Store(tmp_path).info(source="vendor", timeframe="1m", symbol="ZZZ", month="2023-03")
    assert info is not None and info.provider_version == "7"


def test_demo_bars_of_an_older_generator_are_regenerated(tmp_path, monkeypatch, fetch_calls):
    load_bars(["AAPL"], *WEEK, data_dir=tmp_path)
    monkeypatch.setattr(demo, "VERSION", "next")
    load_bars(["AAPL"], *WEEK, data_dir=tmp_path)
    assert len(fetch_calls) == 2


def test_no_trading_days_is_a_data_error_naming_the_range(tmp_path):
    with pytest.raises(DataError, match="no trading days between 2023-12-23 and 2023-12-25") as e:
        load_bars(["AAPL"], dt.date(2023, 12, 23), dt.date(2023, 12, 25), data_dir=tmp_path)
    assert e.value.exit_code == 2  # the request must change, as for a usage error


def test_unknown_demo_symbol(tmp_path):
    with pytest.raises(DataError, match="unknown symbol 'XYZ' for the demo market") as e:
        load_bars(["AAPL", "XYZ"], *WEEK, data_dir=tmp_path)
    assert e.value.exit_code == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"symbols": ["aapl"]}, UsageError, "write it as 'AAPL'"),
        ({"symbols": []}, UsageError, "none given"),
        ({"symbols": ["AAPL", "AAPL"]}, UsageError, "AAPL listed more than once"),
        ({"start": dt.date(2023, 3, 18)}, UsageError, "start 2023-03-18 is after end 2023-03-17"),
        ({"start": "2023-03-13"}, UsageError, "start: '2023-03-13' is not a datetime.date"),
        ({"timeframe": "2m"}, UsageError, "timeframe '2m' is not supported"),
        ({"source": "Polygon!"}, UsageError, "not a source name"),
        ({"start": dt.date(1999, 1, 4)}, DataError, "outside the NYSE calendar"),
    ],
)
def test_bad_requests_name_the_input_and_the_fix(tmp_path, kwargs, error, words):
    args = {"symbols": ["AAPL"], "start": WEEK[0], "end": WEEK[1], **kwargs}
    with pytest.raises(error, match=re.escape(words)):
        load_bars(
            args.pop("symbols"), args.pop("start"), args.pop("end"), data_dir=tmp_path, **args
        )


def test_a_single_symbol_string_is_accepted(tmp_path):
    assert load_bars("AAPL", *WEEK, data_dir=tmp_path).symbols == ("AAPL",)


def test_a_corrupt_cache_file_stops_the_load_naming_it(tmp_path):
    load_bars(["AAPL"], *WEEK, data_dir=tmp_path)
    path = Store(tmp_path).path(source="demo", timeframe="1m", symbol="AAPL", month="2023-03")
    path.write_bytes(b"not parquet")
    with pytest.raises(CacheError, match=r"2023-03\.parquet is unreadable or corrupt"):
        load_bars(["AAPL"], *WEEK, data_dir=tmp_path)


def test_a_file_replaced_between_the_two_passes_stops_the_load(tmp_path, monkeypatch):
    load_bars(["AAPL"], *WEEK, data_dir=tmp_path)
    real_read = Store.read

    def read_then_refetch(self, **kw):
        df = real_read(self, **kw)
        if "ts" not in kw["columns"]:  # the values pass: another process rewrites the month
            self.write_month(make_frame(7), source="demo", timeframe="1m", symbol="AAPL",
                             month="2023-03", **MARCH)  # fmt: skip
        return df

    monkeypatch.setattr(Store, "read", read_then_refetch)
    with pytest.raises(CacheError, match=r"AAPL .*changed while it was being read"):
        load_bars(["AAPL"], *WEEK, data_dir=tmp_path)


def test_union_without_the_minute_grid_falls_back_to_sorting():
    a = np.array([1, 5, 9], dtype=np.int64)
    b = np.array([5, 7], dtype=np.int64)
    union, rows = panel._union([a, b])
    assert union.tolist() == [1, 5, 7, 9]
    assert rows[0].tolist() == [0, 1, 3] and rows[1].tolist() == [1, 2]
    m = NS_PER_MIN
    union, rows = panel._union([np.array([0, 2 * m]), np.array([m, 2 * m]), np.array([], np.int64)])
    assert union.tolist() == [0, m, 2 * m]
    assert rows[0].tolist() == [0, 2] and rows[1].tolist() == [1, 2] and rows[2].tolist() == []


def test_each_missing_month_is_one_fetch(tmp_path, fetch_calls):
    load_bars(["AAPL"], dt.date(2023, 1, 3), dt.date(2023, 1, 6), data_dir=tmp_path)
    load_bars(["AAPL"], dt.date(2023, 3, 1), dt.date(2023, 3, 3), data_dir=tmp_path)
    fetch_calls.clear()
    load_bars(["AAPL"], dt.date(2023, 1, 3), dt.date(2023, 5, 5), data_dir=tmp_path)
    assert fetch_calls == [
        ("AAPL", dt.date(2023, 2, 1), dt.date(2023, 2, 28)),
        ("AAPL", dt.date(2023, 4, 1), dt.date(2023, 4, 30)),
        ("AAPL", dt.date(2023, 5, 1), dt.date(2023, 5, 31)),
    ]


def test_a_cache_of_an_older_schema_is_refetched_not_an_error(tmp_path):
    import pyarrow.parquet as pq

    load_bars(["AAPL"], *WEEK, data_dir=tmp_path)
    path = Store(tmp_path).path(source="demo", timeframe="1m", symbol="AAPL", month="2023-03")
    table = pq.read_table(path)
    meta = {**table.schema.metadata, b"barlab.schema_version": b"1"}
    pq.write_table(table.drop(["extended"]).replace_schema_metadata(meta), path)
    again = load_bars(["AAPL"], *WEEK, data_dir=tmp_path)
    assert again.n_bars == 5 * 390
    assert "extended" in pq.read_schema(path).names
