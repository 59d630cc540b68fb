"""AlpacaBroker against the paper emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import logging
import time

import pytest

from barlab.errors import (
    BrokerAuthError,
    BrokerRateLimitError,
    BrokerUnavailableError,
    ConfigError,
    DuplicateOrderError,
    InsufficientBuyingPowerError,
    NotFoundError,
    OrderRejectedError,
)
from barlab.live.broker import AlpacaBroker
from tests.live.conftest import KEY_ID, SECRET


def make_broker(server, **options) -> AlpacaBroker:
    defaults = {"requests_per_minute": 100_000, "backoff_base_s": 0.01, "timeout_s": 5}
    return AlpacaBroker(server.url, KEY_ID, SECRET, **{**defaults, **options})


@pytest.fixture
def broker(server) -> AlpacaBroker:
    return make_broker(server)


def test_market_order_round_trip(server, broker):
    order = broker.submit_order("AAPL", 10, side="buy", client_order_id="rt-1")
    assert (order.status, order.qty, order.filled_qty, order.filled_avg_price) == (
        "new", 10.0, 0.0, None,
    )  # fmt: skip
    assert order.created_at == dt.datetime(2024, 3, 5, 14, 30, tzinfo=dt.UTC)
    server.advance()
    filled = broker.get_order(order.id)
    assert (filled.status, filled.filled_qty, filled.filled_avg_price) == ("filled", 10.0, 100.0)
    assert isinstance(filled.filled_at, dt.datetime) and not filled.is_open
    assert broker.get_order_by_client_id("rt-1").id == order.id
    position = broker.get_position("AAPL")
    assert position is not None and (position.qty, position.avg_entry_price) == (10.0, 100.0)
    assert position.current_price == 100.01 and position.side == "long"
    assert [p.symbol for p in broker.list_positions()] == ["AAPL"]
    account = broker.get_account()
    assert account.cash == 99_000.0 and account.equity == pytest.approx(100_000.1)
    clock = broker.get_clock()
    assert clock.is_open and clock.next_close.hour == 16 and clock.next_close.utcoffset()


def test_every_order_type_is_sent_with_its_prices(server, broker):
    limit = broker.submit_order("AAPL", 1, side="buy", type="limit", limit_price=99.5,
                                time_in_force="gtc")  # fmt: skip
    stop = broker.submit_order("MSFT", 2, side="buy", type="stop", stop_price=250.0)
    stop_limit = broker.submit_order("MSFT", 1, side="buy", type="stop_limit", stop_price=250.0,
                                     limit_price=251.0)  # fmt: skip
    broker.submit_order("AAPL", 5, side="buy")
    server.advance()
    trailing = broker.submit_order("AAPL", 5, side="sell", type="trailing_stop", trail_percent=1.0)
    assert (limit.type, limit.limit_price, limit.time_in_force) == ("limit", 99.5, "gtc")
    assert (stop.stop_price, stop_limit.limit_price, stop_limit.stop_price) == (250, 251, 250)
    assert trailing.trail_percent == 1.0 and trailing.hwm == 100.01
    assert trailing.stop_price == pytest.approx(100.01 * 0.99, abs=1e-4)
    opened = broker.list_orders("open", symbols=["MSFT"])
    assert {o.id for o in opened} == {stop.id, stop_limit.id}
    assert len(broker.list_orders("all")) == 5
    closed = broker.list_orders("closed")
    assert [o.status for o in closed] == ["filled"]
    after = broker.list_orders("all", after=dt.datetime(2024, 3, 5, 14, 30, 30, tzinfo=dt.UTC))
    assert [o.id for o in after] == [trailing.id]
    ascending = broker.list_orders("all", direction="asc", limit=2)
    assert [o.id for o in ascending] == [limit.id, stop.id]


def test_replace_and_cancel(server, broker):
    order = broker.submit_order("AAPL", 10, side="buy", type="limit", limit_price=90.0)
    new = broker.replace_order(order.id, limit_price=91.0, qty=5)
    assert new.id != order.id and new.replaces == order.id and new.limit_price == 91.0
    old = broker.get_order(order.id)
    assert old.status == "replaced" and old.replaced_by == new.id
    broker.cancel_order(new.id)
    assert broker.get_order(new.id).status == "canceled"
    broker.cancel_order(new.id)  # already canceled: done, not an error
    other = broker.submit_order("AAPL", 1, side="buy", type="limit", limit_price=90.0)
    server.inject_5xx(1, after_processing=True)  # canceled, answer lost, retried: still fine
    broker.cancel_order(other.id)
    assert broker.stats.retries == 1
    assert broker.get_order(other.id).status == "canceled"
    filled = broker.submit_order("AAPL", 1, side="buy")
    server.advance()
    with pytest.raises(OrderRejectedError, match="filled") as info:
        broker.cancel_order(filled.id)
    assert info.value.status == 422 and info.value.code == 42210000
    with pytest.raises(NotFoundError) as info:
        broker.cancel_order("00000000-0000-4000-8000-000000000000")
    assert info.value.status == 404


def test_cancel_all_and_close_positions(server, broker):
    broker.submit_order("AAPL", 10, side="buy")
    broker.submit_order("MSFT", 3, side="buy")
    server.advance()
    resting = broker.submit_order("AAPL", 1, side="buy", type="limit", limit_price=50.0)
    results = broker.cancel_all_orders()
    assert [(r.key, r.status, r.order.status) for r in results] == [(resting.id, 200, "canceled")]
    partial = broker.close_position("AAPL", qty=4)
    assert (partial.side, partial.qty, partial.type) == ("sell", 4.0, "market")
    server.advance()
    assert broker.get_position("AAPL").qty == 6.0
    closing = broker.close_all_positions(cancel_orders=True)
    assert sorted((r.key, r.status) for r in closing) == [("AAPL", 200), ("MSFT", 200)]
    server.advance()
    assert broker.list_positions() == [] and broker.get_position("AAPL") is None
    with pytest.raises(NotFoundError, match="position does not exist"):
        broker.close_position("AAPL")


def test_rejections_map_to_the_error_tree(server, broker):
    with pytest.raises(InsufficientBuyingPowerError) as info:
        broker.submit_order("AAPL", 2_000, side="buy")
    assert (info.value.status, info.value.code) == (403, 40310000)
    assert info.value.broker_message == "insufficient buying power"
    broker.submit_order("AAPL", 1, side="buy", client_order_id="once")
    with pytest.raises(DuplicateOrderError) as info:
        broker.submit_order("AAPL", 1, side="buy", client_order_id="once")
    assert (info.value.status, info.value.code) == (422, 40010001)
    with pytest.raises(OrderRejectedError, match="limit_price is required"):
        broker.submit_order("AAPL", 1, side="buy", type="limit")
    with pytest.raises(OrderRejectedError, match="sub-penny"):
        broker.submit_order("AAPL", 1, side="buy", type="limit", limit_price=99.123)
    with pytest.raises(NotFoundError):
        broker.get_order("nope")
    assert len(broker.list_orders("all")) == 1  # no rejected order was created


def test_bad_keys_are_an_auth_error_without_the_keys(server, caplog):
    caplog.set_level(logging.DEBUG)
    bad = AlpacaBroker(server.url, "PKWRONGKEY00000000", "wrong-secret-value-123",
                       requests_per_minute=100_000)  # fmt: skip
    with pytest.raises(BrokerAuthError) as info:
        bad.get_account()
    assert info.value.status == 401 and "APCA_API_KEY_ID" in str(info.value)
    text = str(info.value) + repr(info.value) + repr(bad) + caplog.text
    assert "wrong-secret-value-123" not in text and "PKWRONGKEY00000000" not in text


def test_keys_never_in_logs_reprs_or_errors(server, broker, caplog):
    caplog.set_level(logging.DEBUG)
    broker.submit_order("AAPL", 1, side="buy")
    with pytest.raises(OrderRejectedError) as info:
        broker.submit_order("AAPL", -1, side="buy")
    server.inject_5xx(20)
    with pytest.raises(BrokerUnavailableError) as unavailable:
        make_broker(server, max_retries=1).get_account()
    text = "".join(str(e) + repr(e) for e in (info.value, unavailable.value))
    text += repr(broker) + caplog.text
    assert KEY_ID not in text and SECRET not in text
    assert "alpaca" in caplog.text  # there are log lines, and they are clean


def test_429_storm_is_retried_until_success(server, broker):
    server.inject_429(4)
    assert broker.get_account().cash == 100_000.0
    assert broker.stats.rate_limited == 4 and broker.stats.retries == 4
    server.inject_429(3)
    order = broker.submit_order("AAPL", 1, side="buy", client_order_id="after-429")
    assert order.client_order_id == "after-429"
    assert len(broker.list_orders("all")) == 1


def test_429_that_never_ends_is_a_rate_limit_error(server):
    server.inject_429(50)
    with pytest.raises(BrokerRateLimitError) as info:
        make_broker(server, max_retries=2).get_clock()
    assert info.value.status == 429


def test_5xx_on_reads_is_retried(server, broker):
    server.inject_5xx(2)
    assert broker.get_clock().is_open
    assert broker.stats.retries == 2


def test_ambiguous_submit_is_not_duplicated(server, broker):
    """The order lands but its answer is lost (500): the broker finds it by client_order_id
    instead of placing it again."""
    server.inject_5xx(1, after_processing=True)
    order = broker.submit_order("AAPL", 3, side="buy", client_order_id="ambiguous-1")
    assert order.client_order_id == "ambiguous-1" and order.qty == 3.0
    assert [o.client_order_id for o in broker.list_orders("all")] == ["ambiguous-1"]


def test_submit_that_did_not_land_is_resubmitted_once(server, broker):
    server.inject_5xx(1)  # refused before it took effect
    order = broker.submit_order("AAPL", 2, side="buy", client_order_id="retry-1")
    assert order.status == "new"
    assert [o.client_order_id for o in broker.list_orders("all")] == ["retry-1"]


def test_no_server_is_unavailable():
    broker = AlpacaBroker("http://127.0.0.1:9", KEY_ID, SECRET, max_retries=1,
                          backoff_base_s=0.01, timeout_s=1)  # fmt: skip
    with pytest.raises(BrokerUnavailableError) as info:
        broker.get_account()
    assert info.value.status is None and SECRET not in str(info.value)


def test_live_host_needs_allow_live():
    with pytest.raises(ConfigError, match="allow_live=True"):
        AlpacaBroker("https://api.alpaca.markets", "AKLIVE", "secret")
    with pytest.raises(ConfigError, match="paper key"):
        AlpacaBroker("https://api.alpaca.markets", "PKPAPER", "secret", allow_live=True)
    assert AlpacaBroker("https://api.alpaca.markets", "AKLIVE", "s", allow_live=True)
    assert "paper-api" in repr(AlpacaBroker("https://paper-api.alpaca.markets", "PK1", "s"))


def test_live_config_section(monkeypatch, tmp_path):
    from barlab.config import load_config, show

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("APCA_API_BASE_URL", "http://127.0.0.1:8765")
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    config = load_config()
    assert config.live.trading_base_url == "http://127.0.0.1:8765"
    assert (config.live.feed, config.live.on_shutdown) == ("iex", "cancel")
    assert config.live.market_data_retention == 1000
    assert SECRET not in show(config) and "APCA_API_SECRET_KEY = ****" in show(config)
    (tmp_path / "backtest.toml").write_text('[live]\non_shutdown = "flatten"\n')
    with pytest.raises(ConfigError, match="on_shutdown must be cancel or keep"):
        load_config()
    (tmp_path / "backtest.toml").write_text("[live]\nmarket_data_retention = 0\n")
    with pytest.raises(ConfigError, match="trades kept per symbol"):
        load_config()


def test_429_waits_until_x_ratelimit_reset(server, broker):
    server.inject_429(1, reset_in_s=2)
    started = time.monotonic()
    assert broker.get_clock().is_open
    assert time.monotonic() - started > 0.9 and broker.stats.waited_s > 0.9


def test_short_position_and_what_open_orders_hold(server, broker):
    broker.submit_order("AAPL", 5, side="sell")
    server.advance()
    short = broker.get_position("AAPL")
    assert (short.qty, short.side, short.market_value) == (-5.0, "short", -500.05)
    broker.submit_order("AAPL", 2, side="buy", type="limit", limit_price=50.0)
    assert broker.get_position("AAPL").qty_available == -3.0


def test_notional_trailing_price_and_extended_hours_orders(bars):
    from barlab.live.emulator import EmulatorServer
    from barlab.live.exchange import PaperExchange

    with EmulatorServer(PaperExchange(bars, fractional=True), rate_limit_per_min=None) as srv:
        broker = make_broker(srv)
        notional = broker.submit_order("AAPL", notional=250.0, side="buy")
        assert (notional.qty, notional.notional) == (None, 250.0)
        late = broker.submit_order("MSFT", 1, side="buy", type="limit", limit_price=150.0,
                                   extended_hours=True)  # fmt: skip
        assert late.extended_hours
        srv.advance()
        assert broker.get_order(notional.id).filled_qty == 2.5
        trailing = broker.submit_order("AAPL", 1, side="sell", type="trailing_stop",
                                       trail_price=0.5, time_in_force="gtc")  # fmt: skip
        assert (trailing.trail_price, trailing.stop_price) == (0.5, 99.51)


def test_connect_reads_the_live_section_and_the_keys(server, monkeypatch, tmp_path):
    from barlab.config import load_config
    from barlab.live.broker import connect

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("APCA_API_BASE_URL", server.url)
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="APCA_API_KEY_ID and APCA_API_SECRET_KEY"):
        connect(load_config())
    (tmp_path / ".env").write_text(f"APCA_API_KEY_ID={KEY_ID}\nAPCA_API_SECRET_KEY={SECRET}\n")
    broker = connect(load_config(), requests_per_minute=100_000)
    assert broker.base_url == server.url and broker.get_clock().is_open
