"""Alpaca's own SDK (alpaca-py) against the emulator: proof that it speaks Alpaca."""

from __future__ import annotations

import pytest

from tests.live.conftest import KEY_ID, SECRET

trading = pytest.importorskip("alpaca.trading")


def test_official_trading_client_places_reads_and_cancels(server):
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
    from alpaca.trading.requests import (
        GetOrdersRequest,
        LimitOrderRequest,
        MarketOrderRequest,
        ReplaceOrderRequest,
    )

    client = TradingClient(KEY_ID, SECRET, paper=True, url_override=server.url)
    market = client.submit_order(
        MarketOrderRequest(
            symbol="AAPL", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
            client_order_id="sdk-market-1",
        )
    )  # fmt: skip
    limit = client.submit_order(
        LimitOrderRequest(
            symbol="MSFT", qty=5, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
            limit_price=150.0,
        )
    )  # fmt: skip
    assert market.status == OrderStatus.NEW and float(limit.limit_price) == 150.0
    server.advance()

    filled = client.get_order_by_id(market.id)
    assert filled.status == OrderStatus.FILLED
    assert (
        float(filled.filled_qty) == 10 and float(filled.filled_avg_price) == 100.0
    )  # the next bar's open
    assert client.get_order_by_client_id("sdk-market-1").id == market.id
    open_orders = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))
    assert [o.id for o in open_orders] == [limit.id]

    positions = client.get_all_positions()
    assert [(p.symbol, p.qty, p.avg_entry_price) for p in positions] == [("AAPL", "10", "100")]
    assert client.get_open_position("AAPL").qty == "10"
    account = client.get_account()
    assert float(account.cash) == 100_000.0 - 1000.0
    assert float(account.equity) == pytest.approx(100_000.0 + 10 * 0.01)
    clock = client.get_clock()
    assert clock.is_open

    replaced = client.replace_order_by_id(limit.id, ReplaceOrderRequest(limit_price=149.5))
    assert replaced.replaces == limit.id and float(replaced.limit_price) == 149.5
    client.cancel_order_by_id(replaced.id)
    assert client.get_order_by_id(replaced.id).status == OrderStatus.CANCELED
    assert client.get_order_by_id(limit.id).status == OrderStatus.REPLACED
    closing = client.close_position("AAPL")
    assert closing.side == OrderSide.SELL and float(closing.qty) == 10
    server.advance()
    assert client.get_all_positions() == []
    assert client.cancel_orders() == []


def test_official_client_bulk_answers_and_errors(server):
    from alpaca.common.exceptions import APIError
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

    client = TradingClient(KEY_ID, SECRET, paper=True, url_override=server.url)
    for symbol in ("AAPL", "MSFT"):
        client.submit_order(
            MarketOrderRequest(symbol=symbol, qty=2, side=OrderSide.BUY,
                               time_in_force=TimeInForce.DAY)
        )  # fmt: skip
    server.advance()
    resting = client.submit_order(
        LimitOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY,
                          time_in_force=TimeInForce.GTC, limit_price=10.0)
    )  # fmt: skip
    cancelled = client.cancel_orders()
    assert [(str(c.id), c.status) for c in cancelled] == [(str(resting.id), 200)]
    closed = client.close_all_positions(cancel_orders=True)
    assert sorted((c.symbol, c.status) for c in closed) == [("AAPL", 200), ("MSFT", 200)]
    with pytest.raises(APIError) as info:
        client.submit_order(
            MarketOrderRequest(symbol="AAPL", qty=100_000, side=OrderSide.BUY,
                               time_in_force=TimeInForce.DAY)
        )  # fmt: skip
    assert info.value.status_code == 403 and info.value.code == 40310000
