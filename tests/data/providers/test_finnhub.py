"""The Finnhub provider end to end against the Finnhub emulator over HTTP on 127.0.0.1 (what
every vendor does alike is in test_vendors.py); and the emulator's own fidelity to the
documented API."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from polars.testing import assert_frame_equal

from barlab.config import Config, FinnhubConfig
from barlab.data.calendar import day_start_ns, sessions
from barlab.data.providers import finnhub
from barlab.data.schema import SCHEMA
from barlab.errors import AuthError, RateLimitError
from tests.data.providers.vendors import FINNHUB, MONDAY, Vendor
from tests.emulators.base import Emulator
from tests.emulators.finnhub import FREE_KEY, PATH, PREMIUM_KEY

VENDOR_COLUMNS = FINNHUB.columns
DAY_S = 86_400
provider, expected = FINNHUB.provider, FINNHUB.expected


@pytest.fixture(scope="module")
def vendor() -> Vendor:
    return FINNHUB


def spans(emulator: Emulator) -> list[tuple[int, int]]:
    return [(int(r.query["from"]), int(r.query["to"])) for r in emulator.requests]


def test_a_month_of_minute_bars_is_the_emulators_in_one_request(serve):
    emulator = serve()
    first, last = dt.date(2024, 3, 1), dt.date(2024, 3, 31)
    got = provider(emulator).fetch("AAPL", first, last)

    assert got.schema == SCHEMA
    assert_frame_equal(got.select(VENDOR_COLUMNS), expected("AAPL", first, last))
    assert got["vwap"].null_count() == got["n_trades"].null_count() == got.height
    (request,) = emulator.requests
    assert request.path == PATH
    assert request.query == {
        "symbol": "AAPL",
        "resolution": "1",
        "from": "1709269200",  # 2024-03-01 00:00 New York (EST)
        "to": "1711943999",  # 2024-03-31 23:59:59 New York (EDT)
    }
    assert request.headers["x-finnhub-token"] == PREMIUM_KEY  # in a header, not the URL


def test_intraday_ranges_are_fetched_a_month_at_a_time(serve):
    emulator = serve()
    first, last = dt.date(2024, 1, 15), dt.date(2024, 4, 10)
    got = provider(emulator).fetch("MSFT", first, last, timeframe="5m")

    assert_frame_equal(got.select(VENDOR_COLUMNS), expected("MSFT", first, last, "5m"))
    parts = spans(emulator)
    assert len(parts) == 4  # Jan 15-31, February, March, Apr 1-10
    assert all(0 < to - start < 31 * DAY_S for start, to in parts)
    assert [start for start, _ in parts[1:]] == [to + 1 for _, to in parts[:-1]]  # no gap
    assert parts[0][0] == day_start_ns(first) // 10**9
    assert parts[-1][1] == day_start_ns(last + dt.timedelta(days=1)) // 10**9 - 1


def test_the_emulator_caps_intraday_requests_at_a_month(serve):
    emulator = serve()
    start = day_start_ns(dt.date(2024, 1, 2)) // 10**9
    body = get(emulator, **{"from": str(start), "to": str(start + 90 * DAY_S)})[1]
    assert body["s"] == "ok" and max(body["t"]) < start + 31 * DAY_S
    daily = get(emulator, resolution="D", **{"from": str(start), "to": str(start + 90 * DAY_S)})
    assert max(daily[1]["t"]) > start + 80 * DAY_S  # daily candles are not capped


def test_daily_bars_of_many_months_are_one_request(serve):
    emulator = serve()
    first, last = dt.date(2023, 7, 1), dt.date(2024, 6, 30)
    got = provider(emulator).fetch("AAPL", first, last, timeframe="1d")
    assert got.height == len(sessions(first, last)) and len(emulator.requests) == 1
    assert emulator.requests[0].query["resolution"] == "D"


def test_a_free_key_is_told_candles_need_a_premium_plan(serve):
    emulator = serve()
    with pytest.raises(AuthError) as raised:
        provider(emulator, api_key=FREE_KEY).fetch("AAPL", MONDAY, MONDAY)

    message = str(raised.value)
    assert "need a premium plan (free keys get 403)" in message
    assert "use --source polygon or alpaca" in message
    assert FREE_KEY not in message
    assert len(emulator.requests) == 1  # not retried


def test_a_429_that_persists_is_a_rate_limit_error(serve):
    emulator = serve(per_minute=1)
    with pytest.raises(RateLimitError) as raised:
        provider(emulator, max_retries=2).fetch("AAPL", dt.date(2024, 2, 26), MONDAY)

    assert "API limit reached" in str(raised.value) and "429" in str(raised.value)
    assert len(emulator.requests) == 1 + 3  # February, then March tried 3 times


def test_connect_reads_the_key_from_env_or_dotenv(serve, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FINNHUB_API_KEY", raising=False)
    emulator = serve()
    config = Config(finnhub=FinnhubConfig(base_url=emulator.url + "/api/v1"))
    with pytest.raises(AuthError) as raised:
        finnhub.connect(config)
    assert "FINNHUB_API_KEY" in str(raised.value)
    assert "export it or put it in ./.env" in str(raised.value)

    (tmp_path / ".env").write_text(f"FINNHUB_API_KEY={PREMIUM_KEY}\n")
    p = finnhub.connect(config)
    assert p.VERSION == "finnhub-1"
    assert p.fetch("AAPL", MONDAY, MONDAY).height > 0


# -- the emulator itself --------------------------------------------------------------------


def get(emulator: Emulator, *, headers=None, **query):
    """GET candles from the emulator with requests: (status, JSON body, headers)."""
    monday = {
        "symbol": "AAPL",
        "resolution": "1",
        "from": str(day_start_ns(MONDAY) // 10**9),
        "to": str(day_start_ns(MONDAY) // 10**9 + DAY_S - 1),
    }
    response = requests.get(
        emulator.url + PATH,
        params=monday | query,
        headers={"X-Finnhub-Token": PREMIUM_KEY} if headers is None else headers,
        timeout=5,
    )
    return response.status_code, response.json(), response.headers


def test_emulator_takes_the_token_as_a_query_parameter_or_a_header(serve):
    emulator = serve()
    by_query = get(emulator, headers={}, token=PREMIUM_KEY)
    by_header = get(emulator)
    assert by_query[0] == by_header[0] == 200 and by_query[1] == by_header[1]
    body = by_query[1]
    assert body["s"] == "ok" and len({len(body[k]) for k in "ohlcvt"}) == 1
    assert set(body) == {"o", "h", "l", "c", "v", "t", "s"}


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 429, "API limit reached. Please sign up for a free account."),
        ({"X-Finnhub-Token": "unknown"}, 401, "Invalid API key."),
        ({"X-Finnhub-Token": FREE_KEY}, 403, "You don't have access to this resource."),
    ],
    ids=["missing", "invalid", "not-premium"],
)
def test_emulator_auth_failures(serve, headers, status, error):
    assert get(serve(), headers=headers)[:2] == (status, {"error": error})


def test_emulator_answers_no_data_for_a_weekend(serve):
    saturday = day_start_ns(dt.date(2024, 3, 9)) // 10**9
    weekend = {"from": str(saturday), "to": str(saturday + 2 * DAY_S - 1)}
    assert get(serve(), **weekend)[:2] == (200, {"s": "no_data"})


def test_emulator_limits_a_key_to_30_a_second_and_60_a_minute(serve):
    clock = [0.0]
    emulator = serve(clock=lambda: clock[0])
    limited = (429, {"error": "API limit reached. Please try again later. Remaining Limit: 0"})
    assert all(get(emulator, resolution="D")[0] == 200 for _ in range(30))
    status, body, headers = get(emulator, resolution="D")
    assert (status, body) == limited and "Retry-After" not in headers
    clock[0] = 1.0
    assert all(get(emulator, resolution="D")[0] == 200 for _ in range(30))
    clock[0] = 2.0
    assert get(emulator, resolution="D")[:2] == limited  # 60 in the last minute
    clock[0] = 60.0
    assert get(emulator, resolution="D")[0] == 200
