"""The emulator's streams and bars endpoint (live/emulator_data.py, live/emulator_bars.py),
spoken to with a plain WebSocket client and requests, as Alpaca documents them."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from barlab.live.emulator_data import stream_hub
from tests.live.conftest import KEY_ID, SECRET

pytestmark = pytest.mark.timeout(30)

HEADERS = {"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": SECRET}


def advance(server: Any, n: int = 1) -> None:
    for _ in range(n):
        server.advance()


@pytest.fixture
def data_server(server: Any) -> Any:
    """The full emulator (conftest's ``server``: two sessions of AAPL and MSFT from 09:30)."""
    return server


def ws_connect(url: str) -> Any:
    from websockets.sync.client import connect

    # entered at once: websockets >= 17.1 warns when a connection is used outside ``with``
    return connect(url, open_timeout=5, proxy=None).__enter__()


def recv(ws: Any) -> Any:
    raw = ws.recv(timeout=5)
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def md_login(srv: Any, feed: str = "iex") -> Any:
    ws = ws_connect(f"{srv.ws_url}/v2/{feed}")
    assert recv(ws) == [{"T": "success", "msg": "connected"}]
    ws.send(json.dumps({"action": "auth", "key": KEY_ID, "secret": SECRET}))
    assert recv(ws) == [{"T": "success", "msg": "authenticated"}]
    return ws


# -- market data WebSocket ----------------------------------------------------------------------


def test_market_data_handshake_subscribe_and_batched_bars(data_server):
    with md_login(data_server) as ws:
        ws.send(json.dumps({"action": "subscribe", "bars": ["AAPL", "MSFT"], "quotes": ["AAPL"]}))
        (reply,) = recv(ws)
        assert reply["T"] == "subscription"
        assert reply["bars"] == ["AAPL", "MSFT"] and reply["quotes"] == ["AAPL"]
        assert reply["trades"] == [] and "updatedBars" in reply and "lulds" in reply
        advance(data_server)
        batch = recv(ws)
        kinds = sorted((m["T"], m["S"]) for m in batch)
        assert kinds == [("b", "AAPL"), ("b", "MSFT"), ("q", "AAPL")]
        bar = next(m for m in batch if m["T"] == "b" and m["S"] == "AAPL")
        assert bar["t"] == "2024-03-05T14:30:00Z" and bar["o"] == 100.0 and bar["c"] == 100.01
        assert set(bar) == {"T", "S", "o", "h", "l", "c", "v", "t", "n", "vw"}
        quote = next(m for m in batch if m["T"] == "q")
        assert quote["bp"] < bar["c"] < quote["ap"]
        ws.send(json.dumps({"action": "unsubscribe", "bars": ["MSFT"], "quotes": ["AAPL"]}))
        (reply,) = recv(ws)
        assert reply["bars"] == ["AAPL"] and reply["quotes"] == []
        advance(data_server)
        assert [(m["T"], m["S"]) for m in recv(ws)] == [("b", "AAPL")]


def test_market_data_wildcard_and_trades(data_server):
    with md_login(data_server, "test") as ws:
        ws.send(json.dumps({"action": "subscribe", "bars": ["*"], "trades": ["MSFT"]}))
        assert recv(ws)[0]["bars"] == ["*"]
        advance(data_server)
        batch = recv(ws)
        assert sorted((m["T"], m["S"]) for m in batch) == [
            ("b", "AAPL"),
            ("b", "MSFT"),
            ("t", "MSFT"),
        ]
        trade = next(m for m in batch if m["T"] == "t")
        assert trade["p"] == 200.01 and trade["t"].startswith("2024-03-05T14:30:59.999")


@pytest.mark.parametrize(
    ("first", "reply"),
    [
        ({"action": "auth", "key": KEY_ID, "secret": "wrong"}, [402, "auth failed"]),
        ({"action": "subscribe", "bars": ["AAPL"]}, [401, "not authenticated"]),
        ({"action": "dance"}, [400, "invalid syntax"]),
    ],
)
def test_market_data_errors(data_server, first, reply):
    with ws_connect(f"{data_server.ws_url}/v2/iex") as ws:
        recv(ws)
        ws.send(json.dumps(first))
        assert recv(ws) == [{"T": "error", "code": reply[0], "msg": reply[1]}]


def test_market_data_not_json_and_bad_subscribe_are_400(data_server):
    with md_login(data_server) as ws:
        ws.send("{not json")
        assert recv(ws)[0]["code"] == 400
        ws.send(json.dumps({"action": "subscribe", "bars": "AAPL"}))
        assert recv(ws)[0]["code"] == 400
        ws.send(json.dumps({"action": "auth", "key": KEY_ID, "secret": SECRET}))
        assert recv(ws) == [{"T": "error", "code": 403, "msg": "already authenticated"}]


def test_market_data_auth_failure_closes(data_server):
    from websockets.exceptions import ConnectionClosed

    with ws_connect(f"{data_server.ws_url}/v2/iex") as ws:
        recv(ws)
        ws.send(json.dumps({"action": "auth", "key": "nope", "secret": "nope"}))
        assert recv(ws)[0]["code"] == 402
        with pytest.raises(ConnectionClosed):
            recv(ws)


def test_market_data_auth_timeout_404(data_server):
    stream_hub(data_server.app).auth_timeout_s = 0.2
    with ws_connect(f"{data_server.ws_url}/v2/iex") as ws:
        recv(ws)
        assert recv(ws) == [{"T": "error", "code": 404, "msg": "auth timeout"}]


def test_market_data_one_connection_per_key_406(data_server):
    with md_login(data_server), ws_connect(f"{data_server.ws_url}/v2/sip") as second:
        recv(second)
        second.send(json.dumps({"action": "auth", "key": KEY_ID, "secret": SECRET}))
        assert recv(second) == [{"T": "error", "code": 406, "msg": "connection limit exceeded"}]
    md_login(data_server).close()  # the first one gone, a new one is welcome


def test_market_data_symbol_limit_405_leaves_subscriptions(data_server):
    stream_hub(data_server.app).max_symbols = 1
    with md_login(data_server) as ws:
        ws.send(json.dumps({"action": "subscribe", "trades": ["AAPL"]}))
        assert recv(ws)[0]["trades"] == ["AAPL"]
        ws.send(json.dumps({"action": "subscribe", "quotes": ["MSFT"], "bars": ["MSFT"]}))
        assert recv(ws) == [{"T": "error", "code": 405, "msg": "symbol limit exceeded"}]
        ws.send(json.dumps({"action": "subscribe", "bars": ["MSFT"]}))
        reply = recv(ws)[0]
        assert reply["trades"] == ["AAPL"] and reply["quotes"] == [] and reply["bars"] == ["MSFT"]


def test_market_data_feed_outside_plan_409(data_server):
    stream_hub(data_server.app).feeds = ("iex",)
    with ws_connect(f"{data_server.ws_url}/v2/sip") as ws:
        recv(ws)
        ws.send(json.dumps({"action": "auth", "key": KEY_ID, "secret": SECRET}))
        assert recv(ws)[0]["code"] == 409


def test_market_data_header_auth(data_server):
    from websockets.sync.client import connect

    headers = {"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": SECRET}
    url = f"{data_server.ws_url}/v2/iex"
    with connect(url, additional_headers=headers, proxy=None) as ws:
        assert recv(ws) == [{"T": "success", "msg": "connected"}]
        assert recv(ws) == [{"T": "success", "msg": "authenticated"}]


def test_drop_and_refuse(data_server):
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    with md_login(data_server) as ws:
        assert stream_hub(data_server.app).drop("market_data", refuse_s=float("inf")) == 1
        with pytest.raises(ConnectionClosed):
            recv(ws)
    with pytest.raises(InvalidStatus) as caught:
        ws_connect(f"{data_server.ws_url}/v2/iex")
    assert caught.value.response.status_code == 503
    stream_hub(data_server.app).allow()
    md_login(data_server).close()


# -- trade_updates WebSocket --------------------------------------------------------------------


def tu_login(srv: Any) -> Any:
    ws = ws_connect(f"{srv.ws_url}/stream")
    auth = {"action": "authenticate", "data": {"key_id": KEY_ID, "secret_key": SECRET}}
    ws.send(json.dumps(auth))
    raw = ws.recv(timeout=5)
    assert isinstance(raw, bytes)  # binary frames, as Alpaca's paper server sends
    assert json.loads(raw) == {
        "stream": "authorization",
        "data": {"action": "authenticate", "status": "authorized"},
    }
    ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
    assert recv(ws) == {"stream": "listening", "data": {"streams": ["trade_updates"]}}
    return ws


def test_trade_updates_events_of_an_order(data_server):
    with tu_login(data_server) as ws:
        advance(data_server)
        body = {"symbol": "AAPL", "qty": "3", "side": "buy", "type": "market",
                "time_in_force": "day", "client_order_id": "t-1"}  # fmt: skip
        reply = requests.post(f"{data_server.url}/v2/orders", json=body, headers=HEADERS, timeout=5)
        assert reply.status_code == 200
        new = recv(ws)
        assert new["stream"] == "trade_updates" and new["data"]["event"] == "new"
        assert new["data"]["order"]["client_order_id"] == "t-1"
        advance(data_server)
        fill = recv(ws)["data"]
        assert fill["event"] == "fill" and fill["qty"] == "3" and fill["position_qty"] == "3"
        assert fill["order"]["status"] == "filled" and "timestamp" in fill


def test_trade_updates_legacy_auth_text_frames_and_refusals(data_server):
    stream_hub(data_server.app).binary_frames = False
    with ws_connect(f"{data_server.ws_url}/stream") as ws:
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        assert recv(ws)["data"] == {"action": "listen", "status": "unauthorized"}
        ws.send(json.dumps({"action": "auth", "key": KEY_ID, "secret": SECRET}))
        raw = ws.recv(timeout=5)
        assert isinstance(raw, str) and json.loads(raw)["data"]["status"] == "authorized"
    with ws_connect(f"{data_server.ws_url}/stream") as ws:
        bad = {"action": "authenticate", "data": {"key_id": KEY_ID, "secret_key": "x"}}
        ws.send(json.dumps(bad))
        assert recv(ws)["data"] == {"action": "authenticate", "status": "unauthorized"}


# -- REST bars ----------------------------------------------------------------------------------


def test_rest_bars_pagination_and_format(data_server):
    advance(data_server, 5)
    url = f"{data_server.url}/v2/stocks/bars"
    params = {"symbols": "MSFT,AAPL", "timeframe": "1Min", "limit": "3"}
    pages = []
    while True:
        body = requests.get(url, params=params, headers=HEADERS, timeout=5).json()
        pages.append(body["bars"])
        if body["next_page_token"] is None:
            break
        params["page_token"] = body["next_page_token"]
    assert [{s: len(v) for s, v in p.items()} for p in pages] == [
        {"AAPL": 3}, {"AAPL": 2, "MSFT": 1}, {"MSFT": 3}, {"MSFT": 1},
    ]  # fmt: skip
    first = pages[0]["AAPL"][0]
    assert first == {"t": "2024-03-05T14:30:00Z", "o": 100.0, "h": 100.06, "l": 99.95,
                     "c": 100.01, "v": 1000, "n": 10, "vw": 100.0067}  # fmt: skip


def test_rest_bars_single_range_and_errors(data_server):
    advance(data_server, 5)
    url = f"{data_server.url}/v2/stocks/AAPL/bars"
    params = {"timeframe": "1Min", "start": "2024-03-05T14:31:00Z", "end": "2024-03-05T14:32:00Z"}
    body = requests.get(url, params=params, headers=HEADERS, timeout=5).json()
    assert body["symbol"] == "AAPL" and body["next_page_token"] is None
    assert [b["t"] for b in body["bars"]] == ["2024-03-05T14:31:00Z", "2024-03-05T14:32:00Z"]
    params["sort"] = "desc"
    body = requests.get(url, params=params, headers=HEADERS, timeout=5).json()
    assert [b["t"][14:16] for b in body["bars"]] == ["32", "31"]
    empty = requests.get(
        f"{data_server.url}/v2/stocks/bars",
        params={"symbols": "ZZZZ", "timeframe": "1Min"}, headers=HEADERS, timeout=5,
    )  # fmt: skip
    assert empty.json() == {"bars": {}, "next_page_token": None}
    forbidden = requests.get(url, params=params, timeout=5)
    assert forbidden.status_code == 403 and forbidden.json() == {"message": "forbidden."}
    for bad in ({"timeframe": "1Day"}, {"timeframe": "1Min", "limit": "0"},
                {"timeframe": "1Min", "page_token": "bm9wZQ=="}):  # fmt: skip
        reply = requests.get(url, params=bad, headers=HEADERS, timeout=5)
        assert reply.status_code == 422 and "message" in reply.json()


def test_rest_bars_read_by_the_alpaca_provider(data_server):
    import datetime as dt

    from barlab.data.providers.alpaca import AlpacaProvider

    advance(data_server, 12)
    provider = AlpacaProvider(
        key_id=KEY_ID,
        secret_key=SECRET,
        base_url=data_server.url,
        page_limit=5,
        requests_per_minute=60_000,
    )
    frame = provider.fetch("MSFT", dt.date(2024, 3, 5), dt.date(2024, 3, 5))
    assert frame.height == 12 and provider.stats.requests == 3
    assert frame["close"][0] == 200.01 and frame["n_trades"][0] == 10
    assert str(frame["ts"][-1]) == "2024-03-05 14:41:00+00:00"


def test_rest_bars_read_by_alpaca_py(data_server):
    """The official SDK reads the emulator's bars: proof of the format, beyond barlab's client."""
    import datetime as dt
    import warnings

    with warnings.catch_warnings():  # alpaca.data imports websockets.legacy (deprecated)
        warnings.simplefilter("ignore", DeprecationWarning)
        historical = pytest.importorskip("alpaca.data.historical")
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame

    advance(data_server, 3)
    client = historical.StockHistoricalDataClient(KEY_ID, SECRET, url_override=data_server.url)
    request = StockBarsRequest(
        symbol_or_symbols=["AAPL", "MSFT"], timeframe=TimeFrame.Minute,
        start=dt.datetime(2024, 3, 5, tzinfo=dt.UTC),
    )  # fmt: skip
    bars = client.get_stock_bars(request).data
    assert [b.close for b in bars["MSFT"]] == [200.01, 200.02, 200.03]
    assert bars["AAPL"][0].timestamp == dt.datetime(2024, 3, 5, 14, 30, tzinfo=dt.UTC)


def test_trade_updates_malformed_requests_are_answered(data_server):
    with tu_login(data_server) as ws:
        ws.send(json.dumps({"action": "listen", "data": ["trade_updates"]}))
        assert recv(ws)["data"]["error"] == "invalid syntax"
        ws.send("not json")
        assert recv(ws) == {"stream": "error", "data": {"code": 400, "message": "invalid syntax"}}
