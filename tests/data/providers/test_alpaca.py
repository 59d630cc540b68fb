"""The Alpaca provider end to end against the Alpaca emulator over HTTP on 127.0.0.1 (what
every vendor does alike is in test_vendors.py); and the emulator's own fidelity to the
documented API."""

from __future__ import annotations

import base64
import datetime as dt
import math

import pytest
import requests
from polars.testing import assert_frame_equal

from barlab.config import AlpacaConfig, Config
from barlab.data.providers import alpaca
from barlab.data.schema import SCHEMA
from barlab.errors import AuthError, RateLimitError
from tests.data.providers.vendors import ALPACA, MONDAY, WEDNESDAY, Vendor
from tests.emulators.alpaca import KEY_ID, SECRET_KEY
from tests.emulators.base import Emulator, Reply

VENDOR_COLUMNS = ALPACA.columns
provider, expected = ALPACA.provider, ALPACA.expected


@pytest.fixture(scope="module")
def vendor() -> Vendor:
    return ALPACA


def test_months_of_minute_bars_are_the_emulators(serve):
    emulator = serve()
    first, last = dt.date(2024, 10, 1), dt.date(2024, 11, 30)  # DST ends on November 3
    got = provider(emulator).fetch("AAPL", first, last)

    assert got.schema == SCHEMA
    assert_frame_equal(got.select(VENDOR_COLUMNS), expected("AAPL", first, last))
    assert len(emulator.requests) == math.ceil(got.height / alpaca.MAX_LIMIT) == 3
    assert emulator.requests[0].path == "/v2/stocks/bars"
    assert emulator.requests[0].query == {
        "symbols": "AAPL",
        "timeframe": "1Min",
        "start": "2024-10-01T04:00:00Z",  # 00:00 New York, EDT
        "end": "2024-12-01T04:59:59Z",  # 23:59:59 New York, EST
        "limit": "10000",
        "feed": "iex",
        "adjustment": "split",
        "sort": "asc",
    }
    assert [r.query.get("page_token") is None for r in emulator.requests] == [True, False, False]
    assert emulator.requests[0].headers["apca-api-key-id"] == KEY_ID


def test_pages_follow_next_page_token_to_the_last(serve):
    emulator = serve()
    got = provider(emulator, page_limit=500).fetch("MSFT", MONDAY, WEDNESDAY)

    assert_frame_equal(got.select(VENDOR_COLUMNS), expected("MSFT", MONDAY, WEDNESDAY))
    assert len(emulator.requests) == math.ceil(got.height / 500) >= 3
    tokens = [r.query.get("page_token") for r in emulator.requests]
    assert tokens[0] is None and len(set(tokens[1:])) == len(tokens) - 1


@pytest.mark.parametrize("bars", [None, [], "one"], ids=["null", "empty-list", "list"])
def test_bars_as_a_list_or_null_are_read(serve, bars):
    bar = {"t": "2024-03-04T14:30:00Z", "o": 1, "h": 2.5, "l": 0.5, "c": 2, "v": 7, "n": 3}
    body = {"bars": [bar] if bars == "one" else bars, "symbol": "AAPL", "next_page_token": None}
    emulator = serve(lambda request: Reply(200, body))
    got = provider(emulator).fetch("AAPL", MONDAY, MONDAY)

    assert got.schema == SCHEMA
    if bars == "one":
        assert got.select(VENDOR_COLUMNS).row(0, named=True) == {
            "ts": dt.datetime(2024, 3, 4, 14, 30, tzinfo=dt.UTC), "open": 1.0, "high": 2.5,
            "low": 0.5, "close": 2.0, "volume": 7.0, "vwap": None, "n_trades": 3,
        }  # fmt: skip
    else:
        assert got.height == 0


def test_recent_sip_on_a_free_plan_says_to_use_iex(serve):
    now = dt.datetime(2024, 3, 15, 15, 0, tzinfo=dt.UTC)
    emulator = serve(now=now)
    with pytest.raises(AuthError) as raised:
        provider(emulator, feed="sip").fetch("AAPL", dt.date(2024, 3, 14), dt.date(2024, 3, 15))

    message = str(raised.value)
    assert 'feed = "iex"' in message and "paid plan" in message and "15 minutes" in message
    assert "APCA_API_KEY_ID" not in message  # the keys are fine; the plan is not
    older = provider(emulator, feed="sip").fetch("AAPL", MONDAY, MONDAY)
    iex = provider(emulator, feed="iex").fetch("AAPL", dt.date(2024, 3, 15), dt.date(2024, 3, 15))
    assert older.height > 0 and iex.height > 0


def test_a_429_that_persists_is_a_rate_limit_error(serve):
    emulator = serve(per_minute=2)
    with pytest.raises(RateLimitError) as raised:
        provider(emulator, page_limit=500, max_retries=2).fetch("AAPL", MONDAY, WEDNESDAY)

    assert "rate limit exceeded" in str(raised.value) and "429" in str(raised.value)
    assert len(emulator.requests) == 2 + 3  # two pages, then the third page tried 3 times


def test_connect_reads_the_keys_from_env_or_dotenv(serve, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    emulator = serve()
    config = Config(alpaca=AlpacaConfig(data_base_url=emulator.url, requests_per_minute=600))
    with pytest.raises(AuthError) as raised:
        alpaca.connect(config)
    assert "APCA_API_KEY_ID and APCA_API_SECRET_KEY" in str(raised.value)
    assert "export them or put them in ./.env" in str(raised.value)

    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    with pytest.raises(AuthError, match="needs APCA_API_SECRET_KEY:"):
        alpaca.connect(config)

    (tmp_path / ".env").write_text(f"APCA_API_SECRET_KEY={SECRET_KEY}\n")
    p = alpaca.connect(config)
    assert p.VERSION == "alpaca-1"
    assert p.fetch("AAPL", MONDAY, MONDAY).height > 0


# -- the emulator itself --------------------------------------------------------------------


def get(emulator: Emulator, path: str = "/v2/stocks/bars", *, headers=None, **query):
    """GET from the emulator with requests: (status, JSON body, headers)."""
    auth = {"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": SECRET_KEY}
    monday = {"timeframe": "1Min", "start": "2024-03-04T05:00:00Z", "end": "2024-03-05T04:59:59Z"}
    response = requests.get(
        emulator.url + path,
        params=monday | query,
        headers=auth if headers is None else headers,
        timeout=5,
    )
    return response.status_code, response.json(), response.headers


@pytest.mark.parametrize(
    "headers",
    [{}, {"APCA-API-KEY-ID": KEY_ID}, {"APCA-API-SECRET-KEY": SECRET_KEY}],
    ids=["none", "id-only", "secret-only"],
)
def test_emulator_needs_both_headers(serve, headers):
    assert get(serve(), symbols="AAPL", headers=headers)[:2] == (403, {"message": "forbidden."})


@pytest.mark.parametrize("limit", ["0", "10001", "x"])
def test_emulator_refuses_a_bad_limit(serve, limit):
    status, body, _ = get(serve(), symbols="AAPL", limit=limit)
    assert status == 422 and "invalid limit" in body["message"]


def test_emulator_pages_count_across_symbols_sorted_by_symbol_then_time(serve):
    emulator = serve()
    three_days = {"symbols": "MSFT,AAPL", "end": "2024-03-07T04:59:59Z"}
    pages, token = [], ""
    while token is not None:
        status, body, _ = get(emulator, **three_days, page_token=token)  # default limit: 1000
        assert status == 200
        pages.append(body["bars"])
        token = body["next_page_token"]

    assert list(pages[0]) == ["AAPL"]  # page 1 holds the first symbol only
    assert [sum(len(bars) for bars in page.values()) for page in pages[:-1]] == [1000, 1000]
    assert [list(page) for page in pages[1:]] == [["AAPL", "MSFT"], ["MSFT"]]
    for symbol in ("AAPL", "MSFT"):
        ts = [bar["t"] for page in pages for bar in page.get(symbol, [])]
        assert ts == sorted(ts) and len(ts) == expected(symbol, MONDAY, WEDNESDAY).height


def test_emulator_tokens_are_opaque_base64(serve):
    body = get(serve(), symbols="AAPL", limit="10")[1]
    assert base64.b64decode(body["next_page_token"]).decode().startswith("AAPL|M|2024-03-04T")
    assert get(serve(), symbols="AAPL", page_token="not a token")[0] == 422


def test_emulator_answers_no_bars_with_an_empty_dict_and_null_token(serve):
    weekend = {"start": "2024-03-09T05:00:00Z", "end": "2024-03-11T03:59:59Z"}
    status, body, _ = get(serve(), symbols="AAPL", **weekend)
    assert (status, body) == (200, {"bars": {}, "next_page_token": None})


def test_emulator_single_endpoint_lists_bars(serve):
    status, body, _ = get(serve(), "/v2/stocks/AAPL/bars", limit="5")
    assert status == 200 and body["symbol"] == "AAPL" and len(body["bars"]) == 5
    assert set(body["bars"][0]) == {"t", "o", "h", "l", "c", "v", "n", "vw"}
    assert body["bars"][0]["t"] < "2024-03-04T14:30:00Z"  # pre-market included


def test_emulator_rate_limit_and_recent_sip(serve):
    clock = [0.0]
    now = dt.datetime(2024, 3, 4, 21, 0, tzinfo=dt.UTC)
    emulator = serve(per_minute=2, clock=lambda: clock[0], now=now)
    assert get(emulator, symbols="AAPL")[0] == 200
    status, body, _ = get(emulator, symbols="AAPL", feed="sip")  # end 00:00 Z: 3 h in the future
    assert (status, body["message"]) == (
        403,
        "subscription does not permit querying recent SIP data",
    )
    status, body, headers = get(emulator, symbols="AAPL")
    assert (status, body["message"]) == (429, "rate limit exceeded")
    assert "Retry-After" not in headers
    clock[0] = 60.0
    assert get(emulator, symbols="AAPL", feed="sip", end="2024-03-04T20:44:00Z")[0] == 200
    paid = serve(plan="paid", now=now)
    assert get(paid, symbols="AAPL", feed="sip")[0] == 200
