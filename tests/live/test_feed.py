"""The live streams (live/feed.py, live/trade_updates.py, live/stream.py, live/marketdata.py):
message parsing, the store, and the feeds over loopback against the emulator's streams."""

from __future__ import annotations

import logging
import math
import queue
import time
from typing import Any

import pytest
import requests

from barlab.errors import AuthError, ConfigError, ProviderError
from barlab.live.emulator_data import stream_hub
from barlab.live.feed import (
    Bar,
    FeedClosed,
    MarketDataFeed,
    MarketDataStore,
    StreamOptions,
    TradeUpdatesStream,
    alpaca_backfill,
)
from barlab.live.marketdata import Control, Quote, Trade, format_ts, parse_message, parse_ts_ns
from tests.live.conftest import KEY_ID, SECRET

pytestmark = pytest.mark.timeout(30)

FAST = StreamOptions(backoff_base_s=0.02, backoff_cap_s=0.1, reply_timeout_s=5, seed=1)
N_BARS = 20


@pytest.fixture
def srv(server: Any) -> Any:
    """The full emulator (conftest's ``server``: two sessions of AAPL and MSFT from 09:30)."""
    return server


def advance(server: Any, n: int = 1) -> None:
    for _ in range(n):
        server.advance()


def feed_of(srv: Any, **options: Any) -> MarketDataFeed:
    kwargs: dict[str, Any] = {
        "key_id": KEY_ID, "secret_key": SECRET, "symbols": ("AAPL", "MSFT"), "options": FAST,
        "clock_ns": lambda: srv.exchange.now_ns,
    }  # fmt: skip
    return MarketDataFeed(srv.ws_url, **{**kwargs, **options})


def take(events: queue.Queue, n: int, timeout_s: float = 10.0) -> list[Any]:
    out = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n:
        out.append(events.get(timeout=max(0.01, deadline - time.monotonic())))
    return out


def wait_until(predicate: Any, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)
    return bool(predicate())


def bar_keys(events: list[Any]) -> list[tuple[str, str]]:
    return [(e.symbol, format_ts(e.ts_ns)[11:16]) for e in events if isinstance(e, Bar)]


def expected_keys(rows: range) -> list[tuple[str, str]]:
    return [
        (s, f"{14 + (30 + i) // 60:02d}:{(30 + i) % 60:02d}")
        for i in rows
        for s in ("AAPL", "MSFT")
    ]


def backfill_of(srv: Any) -> Any:
    from barlab.data.providers.alpaca import AlpacaProvider

    provider = AlpacaProvider(
        key_id=KEY_ID, secret_key=SECRET, base_url=srv.url, requests_per_minute=60_000
    )
    return alpaca_backfill(provider)


# -- messages -----------------------------------------------------------------------------------


def test_parse_every_message_type():
    bar = {"T": "b", "S": "AAPL", "o": 1.5, "h": 2, "l": 1, "c": 1.75, "v": 300,
           "t": "2021-02-22T19:15:00Z", "n": 12, "vw": 1.6}  # fmt: skip
    assert parse_message(bar) == Bar(
        symbol="AAPL", ts_ns=parse_ts_ns("2021-02-22T19:15:00Z"), open=1.5, high=2.0,
        low=1.0, close=1.75, volume=300.0, trade_count=12, vwap=1.6,
    )  # fmt: skip
    assert parse_message({**bar, "T": "u"}).kind == "updated"
    assert parse_message({**bar, "T": "d"}).kind == "daily"
    trade = parse_message({"T": "t", "S": "AMD", "i": 96921, "x": "D", "p": 126.55, "s": 1,
                           "t": "2021-02-22T15:51:44.208Z", "c": ["@", "I"], "z": "C"})  # fmt: skip
    assert trade == Trade(
        symbol="AMD", ts_ns=1614009104208000000, price=126.55, size=1.0, trade_id=96921,
        exchange="D", conditions=("@", "I"), tape="C",
    )  # fmt: skip
    quote = parse_message({"T": "q", "S": "AMD", "bx": "U", "bp": 87.66, "bs": 1, "ax": "Q",
                           "ap": 87.68, "as": 4, "t": "2021-02-22T15:51:45.335689322Z",
                           "c": ["R"], "z": "C"})  # fmt: skip
    assert isinstance(quote, Quote) and quote.ts_ns % 10**9 == 335689322 and quote.ask_size == 4
    connected = Control(type="success", msg="connected")
    assert parse_message({"T": "success", "msg": "connected"}) == connected
    assert parse_message({"T": "error", "code": 406, "msg": "connection limit"}).code == 406
    sub = parse_message({"T": "subscription", "trades": ["AAPL"], "bars": ["*"], "lulds": []})
    assert sub.subscriptions == {"trades": ("AAPL",), "bars": ("*",)}
    assert parse_message({"T": "s", "S": "AAPL", "sc": "H"}) is None
    with pytest.raises(ProviderError, match="'b' is malformed"):
        parse_message({"T": "b", "S": "AAPL", "t": "2021-02-22T19:15:00Z"})


def test_timestamps_exact_to_the_nanosecond():
    assert parse_ts_ns("2021-02-22T19:15:00Z") == 1614021300 * 10**9
    assert parse_ts_ns("2021-02-22T15:51:45.335689322Z") == 1614009105335689322
    assert parse_ts_ns("2021-02-22T14:15:00-05:00") == 1614021300 * 10**9
    assert format_ts(1614009105335689322) == "2021-02-22T15:51:45.335689322Z"
    assert format_ts(1614021300 * 10**9) == "2021-02-22T19:15:00Z"
    for bad in ("2021-02-22", "2021-02-22T19:15:00", "2021-02-22T19:15:00.1234567891Z"):
        with pytest.raises(ValueError):
            parse_ts_ns(bad)


def test_store_keeps_latest_quote_last_trades_latest_bar():
    store = MarketDataStore(retention=3)
    for k in range(5):
        store.update(Trade(symbol="AAPL", ts_ns=k, price=100.0 + k, size=1))
    assert [t.price for t in store.trades("AAPL")] == [102.0, 103.0, 104.0]
    store.update(Quote(symbol="AAPL", ts_ns=1, bid_price=1, bid_size=1, ask_price=2, ask_size=1))
    store.update(Quote(symbol="AAPL", ts_ns=2, bid_price=3, bid_size=1, ask_price=4, ask_size=1))
    assert store.latest_quote("AAPL").bid_price == 3 and store.latest_quote("MSFT") is None
    minute = 60 * 10**9
    new = Bar(symbol="AAPL", ts_ns=minute, open=1, high=1, low=1, close=99.0, volume=1)
    store.update(new)
    store.update(Bar(symbol="AAPL", ts_ns=0, open=1, high=1, low=1, close=1, volume=1))
    assert store.latest_bar("AAPL") is new and store.last_price("AAPL") == 99.0
    store.update(Trade(symbol="AAPL", ts_ns=minute + 5, price=98.5, size=1))
    assert store.last_price("AAPL") == 98.5 and store.trades("ZZZ") == ()
    assert store.symbols() == ("AAPL",)
    with pytest.raises(ValueError, match="market_data_retention"):
        MarketDataStore(retention=0)


def test_feed_rejects_bad_options(srv):
    with pytest.raises(ConfigError, match="channels"):
        feed_of(srv, channels=("candles",))
    with pytest.raises(ConfigError, match="feed"):
        feed_of(srv, feed="crypto")
    with pytest.raises(AuthError, match="empty"):
        feed_of(srv, secret_key="")
    with pytest.raises(ConfigError, match="symbols"):
        feed_of(srv, symbols="AAPL")
    with pytest.raises(ConfigError, match="ws://"):
        MarketDataFeed("http://x", key_id="a", secret_key="b", symbols=("A",))


# -- the market-data feed over loopback ---------------------------------------------------------


def test_every_bar_of_a_replay_in_order(srv):
    store = MarketDataStore(retention=5)
    last_end = int(srv.exchange.bars.ts_ns[N_BARS - 1]) + 60 * 10**9
    clock = lambda: last_end + 10**9  # noqa: E731  (every bar received 1 s after the last ends)
    channels = ("bars", "trades", "quotes")
    with feed_of(srv, channels=channels, store=store, clock_ns=clock) as feed:
        feed.wait_connected(5)
        advance(srv, N_BARS)
        events = take(feed.events, 6 * N_BARS)
        assert bar_keys(events) == expected_keys(range(N_BARS))
        assert sum(isinstance(e, Trade) for e in events) == 2 * N_BARS
        stats = feed.stats
        assert (stats.bars, stats.trades, stats.quotes, stats.duplicates) == (40, 40, 40, 0)
        assert stats.latency_last_s == 1.0 and stats.latency_max_s == (N_BARS - 1) * 60 + 1
    assert isinstance(feed.events.get(timeout=5), FeedClosed) and feed.error is None
    assert store.latest_bar("MSFT").close == 200.2 and len(store.trades("AAPL")) == 5
    assert store.latest_quote("AAPL").ask_price == 100.21


def test_mid_day_disconnect_reconnects_and_backfills_each_bar_once(srv):
    with feed_of(srv, backfill=backfill_of(srv)) as feed:
        feed.wait_connected(5)
        advance(srv, 5)
        first = take(feed.events, 10)
        stream_hub(srv.app).drop("market_data", refuse_s=math.inf)
        advance(srv, 6)  # published while nobody listens
        stream_hub(srv.app).allow()
        rest = take(feed.events, 12)
        assert wait_until(lambda: feed.stats.connections == 2) and feed.stats.backfilled == 12
        advance(srv, N_BARS - 11)
        rest += take(feed.events, 2 * (N_BARS - 11))
        assert bar_keys(first + rest) == expected_keys(range(N_BARS))
        assert feed.events.empty() and feed.stats.duplicates == 0


def test_backfill_overlapping_live_bars_is_deduplicated(srv):
    def backfill(symbols, start_ns, end_ns):  # also returns bars already delivered
        return [
            Bar(symbol=s, ts_ns=int(t), open=1, high=1, low=1, close=1, volume=1)
            for t in srv.exchange.bars.ts_ns[:3] for s in symbols
        ]  # fmt: skip

    with feed_of(srv, backfill=backfill) as feed:
        feed.wait_connected(5)
        advance(srv, 2)
        take(feed.events, 4)
        stream_hub(srv.app).drop("market_data")
        deadline = time.monotonic() + 5
        while feed.stats.connections < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        advance(srv, 1)
        events = take(feed.events, 2)
        assert bar_keys(events) == expected_keys(range(2, 3))
        assert events[0].close == 1  # the backfilled copy came first, the live one was dropped
        deadline = time.monotonic() + 5
        while feed.stats.duplicates < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        # rows 0-1 of the backfill were seen before the drop, row 2 live came after it
        assert feed.stats.duplicates == 6 and feed.events.empty()


def test_start_ns_backfills_from_a_warm_up_on_first_connect(srv):
    advance(srv, 4)
    start = int(srv.exchange.bars.ts_ns[2])
    with feed_of(srv, backfill=backfill_of(srv), start_ns=start) as feed:
        feed.wait_connected(5)
        advance(srv, 1)
        assert bar_keys(take(feed.events, 6)) == expected_keys(range(2, 5))


def test_bad_keys_stop_with_a_clear_error_and_no_retry(srv, caplog):
    caplog.set_level(logging.DEBUG)
    feed = feed_of(srv, secret_key="wrong-secret-XYZ123")
    with feed:
        with pytest.raises(AuthError, match=r"refused the keys.*APCA_API_SECRET_KEY"):
            feed.wait_connected(5)
        closed = feed.events.get(timeout=5)
    assert isinstance(closed, FeedClosed) and isinstance(closed.error, AuthError)
    assert stream_hub(srv.app).connects["market_data"] == 1 and feed.stats.errors == {402: 1}
    assert not feed.running
    for text in (str(closed.error), repr(feed), caplog.text, repr(feed.stats)):
        assert "wrong-secret-XYZ123" not in text and SECRET not in text


def test_connection_limit_backs_off_until_the_other_leaves(srv):
    with feed_of(srv) as first:
        first.wait_connected(5)
        second = feed_of(srv).start()
        try:
            deadline = time.monotonic() + 5
            while (second.stats.errors or {}).get(406, 0) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert second.stats.errors[406] >= 2 and not second.connected
        finally:
            first.stop()
        second.wait_connected(5)
        second.stop()
    assert second.error is None


def test_gives_up_after_max_attempts():
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = StreamOptions(backoff_base_s=0.01, backoff_cap_s=0.02, max_attempts=2)
    feed = MarketDataFeed(
        f"ws://127.0.0.1:{port}", key_id=KEY_ID, secret_key=SECRET, symbols=("AAPL",),
        options=options,
    )  # fmt: skip
    with feed, pytest.raises(ProviderError, match="after 2 attempts"):
        feed.wait_connected(5)


def test_reconnects_by_itself_after_a_timed_outage(srv):
    with feed_of(srv) as feed:
        feed.wait_connected(5)
        started = time.monotonic()
        stream_hub(srv.app).drop("market_data", refuse_s=0.3)
        while feed.stats.connections < 2 and time.monotonic() - started < 5:
            time.sleep(0.01)
        assert feed.stats.connections == 2 and time.monotonic() - started >= 0.3


def test_stop_joins_while_reconnecting(srv):
    feed = feed_of(srv).start()
    feed.wait_connected(5)
    stream_hub(srv.app).drop("market_data", refuse_s=math.inf)
    time.sleep(0.05)
    started = time.monotonic()
    feed.stop()
    assert time.monotonic() - started < 2 and not feed.running


# -- trade_updates ------------------------------------------------------------------------------


def test_trade_updates_events_and_reconnect_hook(srv):
    updates: queue.Queue = queue.Queue()
    reconnects: queue.Queue = queue.Queue()
    stream = TradeUpdatesStream(
        srv.ws_url, key_id=KEY_ID, secret_key=SECRET, on_update=updates.put,
        on_reconnect=lambda: reconnects.put(1), options=FAST,
    )  # fmt: skip
    with stream:
        stream.wait_connected(5)
        advance(srv)
        body = {"symbol": "MSFT", "qty": "2", "side": "buy", "type": "market",
                "time_in_force": "day", "client_order_id": "feed-1"}  # fmt: skip
        headers = {"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": SECRET}
        reply = requests.post(f"{srv.url}/v2/orders", json=body, headers=headers, timeout=5)
        assert reply.status_code == 200
        advance(srv)
        new, fill = take(updates, 2)
        assert (new.event, fill.event) == ("new", "fill")
        assert fill.client_order_id == "feed-1" and fill.order["status"] == "filled"
        assert str(fill.qty) == "2" and str(fill.position_qty) == "2" and fill.price > 0
        assert fill.order_id == new.order_id and fill.timestamp_ns is not None
        stream_hub(srv.app).drop("trade_updates")
        assert reconnects.get(timeout=5) == 1
        assert wait_until(lambda: stream.connections == 2)


def test_a_failing_consumer_does_not_end_the_streams(srv, caplog):
    def broken(event):
        raise RuntimeError("consumer bug")

    stream = TradeUpdatesStream(
        srv.ws_url, key_id=KEY_ID, secret_key=SECRET, on_update=broken, options=FAST
    )
    with feed_of(srv, on_event=broken) as feed, stream:
        feed.wait_connected(5)
        stream.wait_connected(5)
        advance(srv, 2)
        body = {"symbol": "MSFT", "qty": "1", "side": "buy", "type": "market",
                "time_in_force": "day"}  # fmt: skip
        headers = {"APCA-API-KEY-ID": KEY_ID, "APCA-API-SECRET-KEY": SECRET}
        assert requests.post(f"{srv.url}/v2/orders", json=body, headers=headers, timeout=5).ok
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (
            "on_update raised on new" not in caplog.text or feed.stats.bars < 4
        ):
            time.sleep(0.01)
        assert feed.connected and stream.connected and feed.stats.bars == 4
        assert "on_update raised on new" in caplog.text


def test_trade_updates_bad_keys(srv, caplog):
    caplog.set_level(logging.DEBUG)
    closed: queue.Queue = queue.Queue()
    stream = TradeUpdatesStream(
        srv.ws_url, key_id=KEY_ID, secret_key="bad-secret-9876", on_update=print,
        on_closed=closed.put, options=FAST,
    )  # fmt: skip
    with stream, pytest.raises(AuthError, match="refused the keys"):
        stream.wait_connected(5)
    error = closed.get(timeout=5)
    assert isinstance(error, AuthError) and "bad-secret-9876" not in str(error)
    assert stream_hub(srv.app).connects["trade_updates"] == 1
    assert "bad-secret" not in repr(stream) and "bad-secret" not in caplog.text
    assert "an auth frame, not shown" in caplog.text
