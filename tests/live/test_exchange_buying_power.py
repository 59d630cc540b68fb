"""The emulator's buying power is Alpaca's, and the backtest's (engine/sizing.py): multiplier x
equity less the gross exposure, less what open orders reserve; a short position takes power
like a long one, and its proceeds, though in cash, are not spendable."""

from __future__ import annotations

import math

import numpy as np
import pytest

from barlab.engine.sizing import buying_power_nb, check_price_nb, gross_nb
from barlab.live.exchange import PaperExchange
from barlab.live.wire import ExchangeRejection
from tests.live.conftest import session_bars


def order(symbol="AAPL", qty="10", side="buy", type="market", **extra):
    return {"symbol": symbol, "qty": qty, "side": side, "type": type, "time_in_force": "day",
            **extra}  # fmt: skip


def short_aapl(**rules) -> PaperExchange:
    """10,000 cash, then 50 AAPL sold short at 100.00; AAPL closes at 100.01, MSFT at 200.01."""
    ex = PaperExchange(session_bars(), cash=10_000.0, **rules)
    ex.submit_order(order(side="sell", qty="50"))
    ex.advance()
    assert ex.portfolio.qty(0) == -50.0 and ex.portfolio.cash == 15_000.0
    return ex


def test_a_short_position_uses_buying_power_and_its_proceeds_are_not_spendable():
    ex = short_aapl(market_buffer=0.0)
    account = ex.account()
    # equity 15,000 - 50 x 100.01 = 9,999.50; buying power 9,999.50 - 5,000.50 = 4,999
    assert float(account["cash"]) == 15_000.0 and float(account["equity"]) == 9_999.5
    assert float(account["buying_power"]) == pytest.approx(4_999.0)
    ex.submit_order(order(symbol="MSFT", qty="24", client_order_id="fits"))  # 4,800.24
    assert ex.get_order_by_client_id("fits")["status"] == "new"
    ex.cancel_order(ex.get_order_by_client_id("fits")["id"])
    with pytest.raises(ExchangeRejection, match="insufficient buying power") as info:
        ex.submit_order(order(symbol="MSFT", qty="25"))  # 5,000.25: the cash would cover it
    assert float(info.value.extra["buying_power"]) == pytest.approx(4_999.0)
    assert float(info.value.extra["cost_basis"]) == pytest.approx(5_000.25)
    # a short sale is checked alike
    with pytest.raises(ExchangeRejection, match="insufficient buying power"):
        ex.submit_order(order(symbol="MSFT", side="sell", qty="25"))
    ex.submit_order(order(symbol="MSFT", side="sell", qty="24"))


def test_open_orders_reserve_and_closing_orders_free_only_when_filled():
    ex = short_aapl(market_buffer=0.0)
    ex.submit_order(order(symbol="MSFT", qty="20"))  # reserves 4,000.20 of 4,999
    assert float(ex.account()["buying_power"]) == pytest.approx(998.8)
    with pytest.raises(ExchangeRejection, match="insufficient buying power"):
        ex.submit_order(order(symbol="MSFT", qty="5"))
    ex.submit_order(order(side="buy", qty="50"))  # covering the short needs no power ...
    with pytest.raises(ExchangeRejection, match="insufficient buying power"):
        ex.submit_order(order(symbol="MSFT", qty="5"))  # ... and frees none until it fills
    ex.advance()
    assert ex.portfolio.qty(0) == 0.0 and ex.portfolio.qty(1) == 20.0
    ex.submit_order(order(symbol="MSFT", qty="5"))


def test_a_short_limit_sale_reserves_its_limit_or_the_price_plus_the_buffer():
    # Alpaca: "MAX(order's limit price, 3% above the current ask price) x qty"
    ex = short_aapl()  # buffer 0.03: MSFT checked at 200.01 x 1.03 = 206.01
    ex.submit_order(order(symbol="MSFT", side="sell", type="limit", limit_price="215", qty="23"))
    assert float(ex.account()["buying_power"]) == pytest.approx(4_999.0 - 215 * 23)
    with pytest.raises(ExchangeRejection, match="insufficient buying power"):
        ex.submit_order(order(symbol="MSFT", qty="1"))  # 206.01 > the 54 left
    # a limit buy reserves its limit
    ex2 = short_aapl()
    ex2.submit_order(order(symbol="MSFT", type="limit", limit_price="190", qty="26"))  # 4,940
    assert float(ex2.account()["buying_power"]) == pytest.approx(4_999.0 - 190 * 26)


@pytest.mark.parametrize("multiplier", [1.0, 2.0, 4.0])
def test_the_account_buying_power_is_the_backtests_rule(multiplier: float):
    ex = PaperExchange(session_bars(), cash=10_000.0, multiplier=multiplier)
    ex.submit_order(order(side="sell", qty="30"))
    ex.submit_order(order(symbol="MSFT", qty="10"))
    ex.advance()
    pos = np.array([ex.portfolio.qty(0), ex.portfolio.qty(1)])
    closes = ex.portfolio.last_price.copy()
    equity = ex.portfolio.cash + float(pos @ closes)
    want = buying_power_nb(equity, gross_nb(pos, closes), multiplier)
    assert float(ex.account()["buying_power"]) == pytest.approx(want, abs=1e-9)
    # an order reserves what the backtest checks it at
    ex.submit_order(order(symbol="MSFT", qty="3"))
    reserved = 3 * check_price_nb(1, closes[1], math.nan, math.nan, 0.03)
    assert float(ex.account()["buying_power"]) == pytest.approx(want - reserved, abs=1e-9)
