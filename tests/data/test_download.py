"""Filling the cache from a provider: only what is missing, bad bars quarantined, extended
hours flagged, failover to the next source."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from barlab.data import calendar, download
from barlab.data.store import Store
from barlab.errors import AuthError, ProviderError
from tests.emulators.base import vendor_bars

MARCH = (dt.date(2024, 3, 1), dt.date(2024, 3, 31))
BAD_DAY = dt.date(2024, 3, 12)
TODAY = dt.date(2024, 6, 1)


class FakeVendor:
    """A provider answering from tests.emulators.base.vendor_bars, counting its calls."""

    VERSION = "fake-1"

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple[str, dt.date, dt.date]] = []
        self.fail = fail

    def fetch(self, symbol, start, end, *, timeframe="1m"):
        self.calls.append((symbol, start, end))
        if self.fail:
            raise self.fail
        return vendor_bars(symbol, start, end, bad_days=frozenset({BAD_DAY}))


def test_fill_quarantines_bad_bars_and_flags_extended_hours(tmp_path):
    store, vendor = Store(tmp_path), FakeVendor()
    report = download.fill(
        store, vendor, "AAPL", source="polygon", timeframe="1m", start=MARCH[0], end=MARCH[1],
        today=TODAY,
    )  # fmt: skip
    assert report.quarantined == 2 and [c.month for c in report.chunks] == ["2024-03"]
    bad = store.read_quarantine(source="polygon", timeframe="1m", symbol="AAPL")
    assert sorted(bad["reason"]) == ["high is below max(open, close)", "volume is negative"]
    everything = store.read(source="polygon", timeframe="1m", symbol="AAPL", start=MARCH[0],
                            end=MARCH[1])  # fmt: skip
    regular = store.read(source="polygon", timeframe="1m", symbol="AAPL", start=MARCH[0],
                         end=MARCH[1], session="rth")  # fmt: skip
    assert everything.height == report.bars and regular.height < everything.height
    ny = regular["ts"].dt.convert_time_zone("America/New_York")
    minutes = ny.dt.hour().cast(pl.Int32) * 60 + ny.dt.minute().cast(pl.Int32)
    assert minutes.min() >= 9 * 60 + 30 and minutes.max() < 16 * 60
    extended = everything.filter(pl.col("extended"))
    assert extended.height > 0
    assert bad.height + everything.height == vendor_bars("AAPL", *MARCH).height


def test_a_finished_download_makes_no_requests_and_the_current_month_is_refreshed(tmp_path):
    store, vendor = Store(tmp_path), FakeVendor()
    key = {"source": "polygon", "timeframe": "1m", "start": dt.date(2024, 4, 1)}
    download.fill(store, vendor, "MSFT", **key, end=dt.date(2024, 5, 31), today=TODAY)
    assert len(vendor.calls) == 2
    vendor.calls.clear()
    download.fill(store, vendor, "MSFT", **key, end=dt.date(2024, 5, 31), today=TODAY)
    assert vendor.calls == []
    # during June the month is asked for up to yesterday, and again on a later day
    june = {**key, "start": dt.date(2024, 6, 1), "end": dt.date(2024, 6, 30)}
    download.fill(store, vendor, "MSFT", **june, today=dt.date(2024, 6, 12))
    assert vendor.calls == [("MSFT", dt.date(2024, 6, 1), dt.date(2024, 6, 11))]
    download.fill(store, vendor, "MSFT", **june, today=dt.date(2024, 6, 12))
    assert len(vendor.calls) == 1
    download.fill(store, vendor, "MSFT", **june, today=dt.date(2024, 6, 20))
    assert vendor.calls[-1] == ("MSFT", dt.date(2024, 6, 1), dt.date(2024, 6, 19))


def test_failover_fills_the_whole_symbol_from_the_next_source(tmp_path):
    store = Store(tmp_path)
    broken, working = FakeVendor(fail=ProviderError("polygon is down")), FakeVendor()
    report = download.fill_with_failover(
        store, [("polygon", lambda: broken), ("alpaca", lambda: working)], "AAPL",
        timeframe="1m", start=MARCH[0], end=MARCH[1], today=TODAY,
    )  # fmt: skip
    assert report.source == "alpaca" and "polygon is down" in report.error
    assert store.coverage(source="polygon", timeframe="1m", symbol="AAPL", start=MARCH[0],
                          end=MARCH[1])  # nothing of polygon's  # fmt: skip
    assert not store.coverage(source="alpaca", timeframe="1m", symbol="AAPL", start=MARCH[0],
                              end=MARCH[1])  # fmt: skip
    nobody = download.fill_with_failover(
        store, [("polygon", lambda: FakeVendor(fail=AuthError("no key")))], "MSFT",
        timeframe="1m", start=MARCH[0], end=MARCH[1], today=TODAY,
    )  # fmt: skip
    assert nobody.source == "" and "no key" in nobody.error


def test_extended_hours_follow_the_calendar():
    def ny(y, m, d, hh, mm):
        return int(dt.datetime(y, m, d, hh, mm, tzinfo=calendar.NEW_YORK).timestamp()) * 10**9

    ts = np.array(
        [
            ny(2023, 11, 24, 9, 29),  # pre-market
            ny(2023, 11, 24, 9, 30),  # open
            ny(2023, 11, 24, 12, 59),  # last minute of an early close
            ny(2023, 11, 24, 13, 0),  # after the early close
            ny(2023, 11, 23, 10, 0),  # Thanksgiving: closed
            ny(2023, 7, 5, 15, 59),  # summer time (July 3 closed early)
        ],
        dtype=np.int64,
    )
    assert calendar.extended_hours(ts, "1m").tolist() == [True, False, False, True, True, False]
    hour = np.array([ny(2023, 3, 15, 9, 0), ny(2023, 3, 15, 8, 0)], dtype=np.int64)
    assert calendar.extended_hours(hour, "1h").tolist() == [False, True]  # 09:00 holds 09:30
    assert not calendar.extended_hours(hour, "1d").any()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_import_csv_and_parquet(tmp_path, suffix):
    from barlab.data.importer import import_file

    frame = pl.DataFrame(
        {
            "Date": ["2023-01-03", "2023-01-04", "2023-02-01", "2023-02-02"],
            "Open": [10.0, 10.5, 11.0, 11.2],
            "High": [11.0, 11.0, 11.5, 11.1],  # the last: high below the open
            "Low": [9.0, 10.0, 10.8, 10.9],
            "Close": [10.5, 10.8, 11.2, 11.0],
            "Volume": [1000, 1200, 900, 800],
        }
    )
    path = tmp_path / f"goog{suffix}"
    frame.write_csv(path) if suffix == ".csv" else frame.write_parquet(path)
    store = Store(tmp_path / "cache")
    report = import_file(path, symbol="GOOG", timeframe="1d", store=store)
    assert (report.bars, report.quarantined, report.months) == (3, 1, 2)
    bars = store.read(source="import", timeframe="1d", symbol="GOOG", start=dt.date(2023, 1, 1),
                      end=dt.date(2023, 2, 28))  # fmt: skip
    first = bars["ts"][0].astimezone(calendar.NEW_YORK)
    assert (first.date(), first.hour) == (dt.date(2023, 1, 3), 0)
    assert bars["close"].to_list() == [10.5, 10.8, 11.2]


def test_import_names_the_bad_line_and_column(tmp_path):
    from barlab.data.importer import import_file
    from barlab.errors import DataError

    path = tmp_path / "bad.csv"
    path.write_text("timestamp,o,h,l,c,v\n2023-01-03T09:30:00-05:00,1,2,1,2,5\nnope,1,2,1,2,5\n")
    with pytest.raises(DataError, match=r"bad.csv line 3, column 'timestamp': 'nope'"):
        import_file(path, symbol="X", timeframe="1m", store=Store(tmp_path))
    path.write_text("when,o,h,l,c\n2023-01-03,1,2,1,2\n")
    with pytest.raises(DataError, match="no ts column"):
        import_file(path, symbol="X", timeframe="1d", store=Store(tmp_path))


def test_asking_differently_refetches(tmp_path):
    store, first, second = Store(tmp_path), FakeVendor(), FakeVendor()
    first.provenance = {"adjusted": "true"}
    second.provenance = {"adjusted": "false"}
    key = {"source": "polygon", "timeframe": "1m", "start": MARCH[0], "end": MARCH[1]}
    download.fill(store, first, "AAPL", **key, today=TODAY)
    download.fill(store, first, "AAPL", **key, today=TODAY)
    assert len(first.calls) == 1
    download.fill(store, second, "AAPL", **key, today=TODAY)
    assert len(second.calls) == 1
    info = store.info(source="polygon", timeframe="1m", symbol="AAPL", month="2024-03")
    assert info.provenance == {"adjusted": "false"}
