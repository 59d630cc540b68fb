"""The Polygon provider end to end against the Polygon emulator over HTTP on 127.0.0.1 (what
every vendor does alike is in test_vendors.py); and the emulator's own fidelity to the
documented API (market-data.md sections 1 and 5)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging

import pytest
import requests
from polars.testing import assert_frame_equal

from barlab.config import Config, PolygonConfig, load_config
from barlab.data.calendar import NEW_YORK, day_start_ns
from barlab.data.providers import polygon
from barlab.data.providers.polygon import PolygonProvider
from barlab.data.schema import SCHEMA
from barlab.errors import AuthError, ProviderError, RateLimitError
from tests.data.providers.vendors import MONDAY, POLYGON, WEDNESDAY, Vendor
from tests.data.providers.vendors import POLYGON_FREE_KEY as FREE_KEY
from tests.data.providers.vendors import POLYGON_KEY as KEY
from tests.data.providers.vendors import POLYGON_TODAY as TODAY
from tests.emulators.base import Reply, Request
from tests.emulators.polygon import (
    COLUMNS,
    MISSING_KEY,
    PLAN_TIMEFRAME,
    RATE_LIMITED,
    UNKNOWN_KEY,
    PolygonApp,
    minute_bars,
)

provider, held = POLYGON.provider, POLYGON.expected


@pytest.fixture(scope="module")
def vendor() -> Vendor:
    return POLYGON


def app(**options: object) -> PolygonApp:
    """An emulator's app to call directly (no server, no HTTP), for its raw answers."""
    return POLYGON.app(**options)


def ask(emulator: PolygonApp, path: str, *, key: str = KEY, **query: str) -> Reply:
    """One request straight to the emulator's app, as from host ``127.0.0.1:1``."""
    request = Request("GET", path, {"apiKey": key, **query}, {"host": "127.0.0.1:1"})
    return emulator(request)


def window_of(request: Request) -> tuple[str, str]:
    """``from`` and ``to`` of an aggregates path."""
    *_, frm, to = request.path.split("/")
    return frm, to


def ny(ms: str) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(ms) / 1000, tz=NEW_YORK)


# -- the provider -----------------------------------------------------------------------------


def test_a_month_of_minute_bars_is_the_emulators(serve):
    emulator = serve()
    got = provider(emulator).fetch("AAPL", dt.date(2024, 3, 1), dt.date(2024, 3, 31))

    assert got.schema == SCHEMA
    assert_frame_equal(got.select(COLUMNS), held("AAPL", dt.date(2024, 3, 1), dt.date(2024, 3, 31)))
    minutes = got["ts"].dt.convert_time_zone(str(NEW_YORK)).dt.time()
    assert minutes.min() < dt.time(9, 30) and minutes.max() >= dt.time(16, 0)  # extended hours
    (request,) = emulator.requests
    assert request.path == (  # 00:00 New York on March 1 (EST) to 23:59:59.999 on March 31 (EDT)
        f"/v2/aggs/ticker/AAPL/range/1/minute/{1709269200000}/{1711943999999}"
    )
    assert request.query == {"adjusted": "true", "sort": "asc", "limit": "50000"}
    assert request.headers["authorization"] == f"Bearer {KEY}"


def test_pages_follow_next_url_and_authenticate_on_each(serve):
    emulator = serve(max_limit=500)
    got = provider(emulator).fetch("MSFT", MONDAY, WEDNESDAY)

    assert_frame_equal(got.select(COLUMNS), held("MSFT", MONDAY, WEDNESDAY))
    rest = emulator.requests[1:]
    assert len(rest) >= 2
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in emulator.requests)
    assert all(set(r.query) == {"cursor"} for r in rest)  # the cursor carries limit and sort
    starts = [int(window_of(r)[0]) for r in rest]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_query_auth_adds_the_key_to_every_page(serve):
    emulator = serve(max_limit=500)
    got = provider(emulator, auth="query").fetch("MSFT", MONDAY, WEDNESDAY)

    assert_frame_equal(got.select(COLUMNS), held("MSFT", MONDAY, WEDNESDAY))
    assert len(emulator.requests) >= 3
    assert all(r.query["apiKey"] == KEY for r in emulator.requests)
    assert all("authorization" not in r.headers for r in emulator.requests)


def test_next_url_never_carries_the_key():
    emulator = app(max_limit=500)
    body = ask(emulator, "/v2/aggs/ticker/MSFT/range/1/minute/2024-03-04/2024-03-06").body

    next_url = body["next_url"]
    assert next_url.startswith("http://127.0.0.1:1/v2/aggs/ticker/MSFT/range/1/minute/")
    assert KEY not in next_url and "apiKey" not in next_url
    following = minute_bars("MSFT", MONDAY, WEDNESDAY)["ts"].dt.epoch("ms")[500]
    assert window_of(Request("GET", next_url.split("?")[0], {}, {}))[0] == str(following)
    cursor = next_url.split("cursor=")[1]
    assert base64.urlsafe_b64decode(cursor + "==").decode().startswith("limit=500&sort=asc")


@pytest.mark.parametrize("timeframe", ["5m", "15m", "1h", "1d"])
def test_coarser_bars_are_asked_of_polygon_in_its_timespans(serve, timeframe):
    emulator = serve()
    provider(emulator).fetch("SPY", MONDAY, dt.date(2024, 3, 15), timeframe=timeframe)

    multiplier, timespan = polygon._TIMESPANS[timeframe]
    assert f"/range/{multiplier}/{timespan}/" in emulator.requests[0].path
    if timeframe == "1d":
        assert emulator.requests[0].path.endswith("/2024-03-04/2024-03-15")


def test_bars_are_cut_to_new_york_days_and_read_loosely(serve):
    def bar(hour: int, **extra: object) -> dict:
        t = int(dt.datetime(2024, 3, 4, hour, tzinfo=NEW_YORK).timestamp() * 1000)
        return {"t": t, "o": 10, "h": 11.5, "l": 9.5, "c": 11, "v": 1200, **extra}

    results = [bar(8, vw=10.5, n=7), bar(23), {**bar(0), "t": day_start_ns(MONDAY) // 10**6 - 1}]
    body = {"ticker": "AAPL", "resultsCount": 3, "status": "DELAYED", "results": results}
    emulator = serve(lambda request: Reply(200, body))
    got = provider(emulator).fetch("AAPL", MONDAY, MONDAY)

    assert got.schema == SCHEMA
    assert got["ts"].to_list() == [
        dt.datetime(2024, 3, 4, 8, tzinfo=NEW_YORK),
        dt.datetime(2024, 3, 4, 23, tzinfo=NEW_YORK),
    ]  # the bar a millisecond before Monday 00:00 is dropped
    assert got["volume"].to_list() == [1200.0, 1200.0]
    assert got["vwap"].to_list() == [10.5, None] and got["n_trades"].to_list() == [7, None]


def test_a_200_with_status_error_is_a_provider_error(serve):
    body = {"status": "ERROR", "request_id": "x", "error": "something broke"}
    emulator = serve(lambda request: Reply(200, body))
    with pytest.raises(ProviderError, match="something broke"):
        provider(emulator).fetch("AAPL", MONDAY, MONDAY)


def test_a_bar_without_a_price_is_a_provider_error(serve):
    body = {"status": "OK", "results": [{"t": 1709560800000, "o": 1, "h": 1, "l": 1, "v": 1}]}
    emulator = serve(lambda request: Reply(200, body))
    with pytest.raises(ProviderError, match="lacks field 'c'"):
        provider(emulator).fetch("AAPL", MONDAY, MONDAY)


def test_minute_requests_are_one_calendar_month_at_most(serve):
    emulator = serve()
    got = provider(emulator).fetch("AAPL", dt.date(2024, 1, 15), dt.date(2024, 4, 10))

    assert len(emulator.requests) == 4
    for request in emulator.requests:
        frm, to = (ny(ms) for ms in window_of(request))
        assert (frm.year, frm.month) == (to.year, to.month)
    spans = [(ny(a).date(), ny(b).date()) for a, b in map(window_of, emulator.requests)]
    assert spans[0] == (dt.date(2024, 1, 15), dt.date(2024, 1, 31))
    assert spans[-1] == (dt.date(2024, 4, 1), dt.date(2024, 4, 10))
    assert_frame_equal(
        got.select(COLUMNS), held("AAPL", dt.date(2024, 1, 15), dt.date(2024, 4, 10))
    )


def test_the_token_bucket_spaces_requests_without_real_sleeping(serve):
    now = [1000.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    emulator = serve()
    p = provider(emulator, requests_per_minute=2, clock=lambda: now[0], sleep=sleep)
    p.fetch("NOPE", dt.date(2024, 1, 15), dt.date(2024, 4, 10))  # 4 months: 4 requests

    assert len(emulator.requests) == 4
    assert slept == pytest.approx([30.0, 30.0, 30.0])
    assert p.stats.waited_s == pytest.approx(90.0)


# -- errors -----------------------------------------------------------------------------------


def test_connect_needs_the_key(serve, monkeypatch, tmp_path):
    emulator = serve()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    config = Config(polygon=PolygonConfig(base_url=emulator.url, requests_per_minute=600))
    with pytest.raises(AuthError) as e:
        polygon.connect(config)
    assert str(e.value) == (
        "POLYGON_API_KEY is not set; export it or put it in ./.env "
        "(get a key at polygon.io/massive.com)"
    )
    with pytest.raises(AuthError, match="POLYGON_API_KEY is not set"):
        PolygonProvider(api_key="", base_url=emulator.url, requests_per_minute=5)

    (tmp_path / ".env").write_text(f"POLYGON_API_KEY={KEY}\n")
    got = polygon.connect(config).fetch("AAPL", MONDAY, MONDAY)
    assert got.height > 0 and polygon.connect(config).VERSION == "polygon-1"


def test_connect_takes_the_url_and_rate_from_the_environment(serve, monkeypatch, tmp_path):
    emulator = serve()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BARLAB_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("POLYGON_API_KEY", KEY)
    monkeypatch.setenv("POLYGON_BASE_URL", emulator.url)
    monkeypatch.setenv("POLYGON_REQUESTS_PER_MINUTE", "600")
    p = polygon.connect(load_config())

    assert p.fetch("AAPL", MONDAY, MONDAY).height > 0
    assert p._http.bucket.per_minute == 600
    assert KEY not in repr(p)


@pytest.mark.parametrize(
    ("first", "last"),
    [(dt.date(2021, 3, 1), dt.date(2021, 3, 5)), (TODAY, TODAY)],
    ids=["older-than-2-years", "today"],
)
def test_the_free_plan_outside_its_window_is_an_auth_error_about_the_plan(serve, first, last):
    emulator = serve()
    with pytest.raises(AuthError) as e:
        provider(emulator, api_key=FREE_KEY).fetch("AAPL", first, last)
    assert "your Polygon plan does not cover this data" in str(e.value)
    assert "about 2 years of history and no same-day minute bars" in str(e.value)
    assert PLAN_TIMEFRAME in str(e.value) and "POLYGON_API_KEY" in str(e.value)
    assert provider(emulator).fetch("AAPL", first, last).height > 0  # a paid key gets them


def test_the_free_plan_inside_its_window_gets_bars(serve):
    emulator = serve()
    got = provider(emulator, api_key=FREE_KEY).fetch("AAPL", MONDAY, MONDAY)
    assert_frame_equal(got.select(COLUMNS), held("AAPL", MONDAY, MONDAY))


def test_429s_that_persist_are_a_rate_limit_error(serve):
    emulator = serve(burst_429=100)
    p = provider(emulator, max_retries=2)
    with pytest.raises(RateLimitError, match="requests per minute"):
        p.fetch("AAPL", MONDAY, MONDAY)
    assert len(emulator.requests) == 3


def test_500s_are_retried(serve):
    emulator = serve(burst_500=2)
    p = provider(emulator)
    assert p.fetch("AAPL", MONDAY, MONDAY).height > 0
    assert p.stats.retries == 2 and p.stats.rate_limited == 0


def test_the_key_never_shows_in_logs_or_errors(serve, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    caplog.set_level(logging.DEBUG, logger="barlab")
    errors: list[str] = []
    secret = "wrong-key-77c1d0e5aa"
    for auth in ("query", "header"):
        emulator = serve(keys={KEY: "paid", FREE_KEY: "free"}, max_limit=500, burst_429=1)
        provider(emulator, auth=auth).fetch("MSFT", MONDAY, WEDNESDAY)
        for key, first in ((secret, MONDAY), (FREE_KEY, dt.date(2021, 3, 1))):
            with pytest.raises(AuthError) as e:
                provider(emulator, api_key=key, auth=auth).fetch("MSFT", first, first)
            errors.append(str(e.value))

    assert "apiKey=***" in caplog.text  # urllib3's DEBUG lines, scrubbed
    assert "Starting new HTTP connection" in caplog.text
    for text in (caplog.text, *errors, *(r.getMessage() for r in caplog.records)):
        assert KEY not in text and secret not in text and FREE_KEY not in text


# -- the emulator -----------------------------------------------------------------------------


def test_the_emulator_answers_401_without_or_with_an_unknown_key(serve):
    emulator = serve()
    url = f"{emulator.url}/v2/aggs/ticker/AAPL/range/1/day/2024-03-04/2024-03-04"

    missing = requests.get(url, timeout=5)
    unknown = requests.get(url, headers={"Authorization": "Bearer nope-nope"}, timeout=5)
    header = requests.get(url, headers={"Authorization": f"Bearer {KEY}"}, timeout=5)
    query = requests.get(url, params={"apiKey": KEY}, timeout=5)

    assert missing.status_code == unknown.status_code == 401
    assert missing.json()["error"] == MISSING_KEY and missing.json()["status"] == "ERROR"
    assert unknown.json()["error"] == UNKNOWN_KEY and len(unknown.json()["request_id"]) == 32
    assert header.status_code == query.status_code == 200


def test_the_emulator_rate_limits_each_key_per_sliding_minute():
    now = [0.0]
    emulator = app(clock=lambda: now[0])
    path = "/v2/aggs/ticker/NOPE/range/1/day/2024-03-04/2024-03-04"

    statuses = [ask(emulator, path, key=FREE_KEY).status for _ in range(6)]
    reply = ask(emulator, path, key=FREE_KEY)
    assert statuses == [200] * 5 + [429]
    assert reply.body["error"] == RATE_LIMITED and reply.headers == {}  # no Retry-After
    assert ask(emulator, path, key=KEY).status == 200  # paid: unlimited; budgets are per key
    now[0] = 60.0
    assert ask(emulator, path, key=FREE_KEY).status == 200


def test_the_emulators_empty_answer_has_no_results():
    emulator = app()
    reply = ask(emulator, "/v2/aggs/ticker/AAPL/range/1/minute/2024-03-09/2024-03-10")

    assert reply.status == 200
    assert set(reply.body) == {
        "ticker", "queryCount", "resultsCount", "adjusted", "status", "request_id"
    }  # fmt: skip
    assert reply.body["resultsCount"] == reply.body["queryCount"] == 0


def test_the_emulator_takes_dates_or_ms_and_sorts_either_way():
    emulator = app()
    by_date = ask(emulator, "/v2/aggs/ticker/AAPL/range/1/minute/2024-03-04/2024-03-04").body
    lo, hi = day_start_ns(MONDAY) // 10**6, day_start_ns(dt.date(2024, 3, 5)) // 10**6 - 1
    by_ms = ask(emulator, f"/v2/aggs/ticker/AAPL/range/1/minute/{lo}/{hi}").body
    desc = ask(emulator, f"/v2/aggs/ticker/AAPL/range/1/minute/{lo}/{hi}", sort="desc").body

    assert by_date["results"] == by_ms["results"] == desc["results"][::-1]
    assert by_date["resultsCount"] == len(minute_bars("AAPL", MONDAY, MONDAY)) <= 5000
    days = ask(emulator, "/v2/aggs/ticker/AAPL/range/1/day/2024-03-04/2024-03-06").body
    assert [ny(str(r["t"])).date() for r in days["results"]] == [
        MONDAY,
        dt.date(2024, 3, 5),
        WEDNESDAY,
    ]  # both ends inclusive, stamped 00:00 New York
    assert {ny(str(r["t"])).time() for r in days["results"]} == {dt.time(0)}


def test_the_emulator_pages_descending_too():
    emulator = app(max_limit=400)
    path = "/v2/aggs/ticker/AAPL/range/5/minute/2024-03-04/2024-03-05"
    bars: list[dict] = []
    body = ask(emulator, path, sort="desc").body
    while True:
        bars += body["results"]
        if "next_url" not in body:
            break
        page = body["next_url"].removeprefix("http://127.0.0.1:1")
        path, _, cursor = page.partition("?cursor=")
        body = ask(emulator, path, cursor=cursor).body

    assert [b["t"] for b in bars] == sorted((b["t"] for b in bars), reverse=True)
    whole = ask(app(), "/v2/aggs/ticker/AAPL/range/5/minute/2024-03-04/2024-03-05").body
    assert bars == whole["results"][::-1]  # pages cut between bars, never inside one


def test_the_emulator_sends_volumes_as_floats(serve):
    emulator = serve()
    text = requests.get(
        f"{emulator.url}/v2/aggs/ticker/AAPL/range/1/minute/2024-03-04/2024-03-04",
        params={"apiKey": KEY, "limit": "3"},
        timeout=5,
    ).text
    body = json.loads(text)
    assert '"v": 120.0' in text  # the first bars are pre-market ones of 120 shares
    assert len(body["results"]) == 3 and "next_url" in body
