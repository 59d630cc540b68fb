"""What every vendor provider does alike, each against its emulator over HTTP on 127.0.0.1
(test_<vendor>.py hold what only one vendor does)."""

from __future__ import annotations

import datetime as dt
import logging

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from barlab.data.calendar import NEW_YORK
from barlab.data.schema import SCHEMA
from barlab.errors import AuthError, DataError
from tests.data.providers.vendors import MONDAY, VENDORS, WEDNESDAY, Vendor


def vendors(*which: Vendor) -> pytest.MarkDecorator:
    """Run the test once per vendor (all of them by default)."""
    chosen = which or VENDORS
    return pytest.mark.parametrize("vendor", chosen, ids=[v.name for v in chosen], indirect=True)


@pytest.fixture
def vendor(request: pytest.FixtureRequest) -> Vendor:
    return request.param


@vendors()
@pytest.mark.parametrize("timeframe", ["5m", "15m", "1h", "1d"])
def test_coarser_bars_are_the_vendors_aggregates(serve, vendor, timeframe):
    emulator = serve()
    got = vendor.provider(emulator).fetch("SPY", MONDAY, dt.date(2024, 3, 15), timeframe=timeframe)

    want = vendor.expected("SPY", MONDAY, dt.date(2024, 3, 15), timeframe)
    assert_frame_equal(got.select(vendor.columns), want, **vendor.tolerance)
    if timeframe == "1d":
        assert got.height == 10
        assert set(got["ts"].dt.convert_time_zone(str(NEW_YORK)).dt.hour()) == {0}


@vendors()
@pytest.mark.parametrize(
    ("symbol", "first", "last"),
    [("AAPL", dt.date(2024, 3, 9), dt.date(2024, 3, 10)), ("NOPE", MONDAY, WEDNESDAY)],
    ids=["weekend", "unknown-symbol"],
)
def test_no_bars_is_an_empty_frame(serve, vendor, symbol, first, last):
    emulator = serve()
    got = vendor.provider(emulator).fetch(symbol, first, last)

    assert got.height == 0 and got.schema == SCHEMA
    assert len(emulator.requests) == 1


@vendors()
def test_bad_bars_come_through_for_the_caller_to_quarantine(serve, vendor):
    emulator = serve(bad_days=frozenset({MONDAY}))
    got = vendor.provider(emulator).fetch("AAPL", MONDAY, dt.date(2024, 3, 5))

    bad = got.filter((pl.col("volume") < 0) | (pl.col("high") < pl.col("close")))
    assert bad.height == 2
    assert set(bad["ts"].dt.convert_time_zone(str(NEW_YORK)).dt.date()) == {MONDAY}


@vendors()
def test_a_wrong_key_is_an_auth_error_naming_the_variable(serve, vendor):
    emulator = serve()
    with pytest.raises(AuthError) as raised:
        vendor.provider(emulator, **vendor.wrong_key).fetch("AAPL", MONDAY, MONDAY)

    message = str(raised.value)
    assert all(word in message for word in vendor.wrong_key_words)
    assert not any(word in message for word in vendor.wrong_key_absent)
    assert not any(key in message for key in vendor.wrong_key.values())
    assert len(emulator.requests) == 1  # never retried


@vendors()
def test_a_429_burst_is_retried_with_backoff_then_succeeds(serve, vendor):
    emulator = serve(**vendor.throttle(3))
    p = vendor.provider(emulator)
    got = p.fetch("AAPL", MONDAY, MONDAY)

    assert_frame_equal(got.select(vendor.columns), vendor.expected("AAPL", MONDAY, MONDAY))
    assert (p.stats.requests, p.stats.retries, p.stats.rate_limited) == (4, 3, 3)
    assert p.stats.waited_s > 0


@vendors(*(v for v in VENDORS if v.leak_scenarios))
def test_keys_never_reach_logs_errors_or_urls(serve, vendor, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    texts, queries = [], []
    for options, provider_options, error in vendor.leak_scenarios:
        emulator = serve(**options)
        p = vendor.provider(emulator, **provider_options)
        texts.append(repr(p))
        if error is None:
            p.fetch("AAPL", MONDAY, MONDAY)
        else:
            with pytest.raises(error) as raised:
                p.fetch("AAPL", MONDAY, MONDAY)
            texts += [str(raised.value), repr(raised.value), str(raised.value.__cause__)]
        queries += [str(r.query) for r in emulator.requests]
    texts.append(caplog.text)

    assert "Starting new HTTP connection" in caplog.text  # urllib3's DEBUG lines were captured
    assert f"{vendor.name} GET http://127.0.0.1" in caplog.text  # and barlab's INFO line
    for secret in vendor.secrets:
        assert not any(secret in text for text in texts + queries)


@vendors()
def test_an_end_before_the_start_is_refused_or_empty_without_a_request(serve, vendor):
    emulator = serve()
    p = vendor.provider(emulator)
    if vendor.reversed_range_error is None:
        got = p.fetch("AAPL", WEDNESDAY, MONDAY)
        assert got.height == 0 and got.schema == SCHEMA
    else:
        with pytest.raises(vendor.reversed_range_error, match="is before start"):
            p.fetch("AAPL", WEDNESDAY, MONDAY)
    assert emulator.requests == []


@vendors()
@pytest.mark.parametrize("timeframe", ["2m", "30m"])
def test_an_unknown_timeframe_is_refused_before_any_request(serve, vendor, timeframe):
    emulator = serve()
    with pytest.raises(DataError, match=f"unknown timeframe '{timeframe}'"):
        vendor.provider(emulator).fetch("AAPL", MONDAY, MONDAY, timeframe=timeframe)
    assert emulator.requests == []
