"""The paper exchange's bracket, OTO and OCO orders, trailing stops and the bar's two halves:
legs held until the entry fills, worked in its fill bar, a sibling canceled, both levels in one
bar resolved as the stop, gaps at the open; validation by api/alpaca-trading.md §2.1."""

from __future__ import annotations

import pytest

from barlab.engine.orders import trailing_level_nb
from barlab.live.exchange import PaperExchange
from barlab.live.wire import ExchangeRejection
from tests.live.conftest import session_bars, with_bar
from tests.live.test_exchange import events, order, recording


def bracket(side="buy", tp="101", sl="99", tif="gtc", **extra):
    return order(side=side, tif=tif, order_class="bracket", take_profit={"limit_price": tp},
                 stop_loss={"stop_price": sl}, **extra)  # fmt: skip


def legs(ex: PaperExchange, placed: dict) -> dict[str, dict]:
    """The legs of a placed order by type (limit: take-profit, stop: stop-loss)."""
    nested = ex.get_order(placed["id"], nested=True)["legs"]
    return {leg["type"]: leg for leg in nested}


def test_bracket_legs_are_held_until_the_entry_fills_then_one_cancels_the_other(bars):
    ex = PaperExchange(with_bar(bars, 2, 0, low=98.9))
    seen = recording(ex)
    placed = ex.submit_order(bracket(client_order_id="entry"))
    assert placed["order_class"] == "bracket" and len(placed["legs"]) == 2
    assert {leg["status"] for leg in placed["legs"]} == {"held"}
    assert {leg["side"] for leg in placed["legs"]} == {"sell"}
    assert len(ex.list_orders(status="open")) == 3  # held legs are listed as open
    assert [o["id"] for o in ex.list_orders(status="open", nested="true")] == [placed["id"]]
    ex.advance()  # the entry fills at 100; the legs work from then on, 99 and 101 untouched
    got = legs(ex, placed)
    assert ex.get_order(placed["id"])["status"] == "filled"
    assert got["stop"]["status"] == got["limit"]["status"] == "new"
    assert ex.get_position("AAPL")["qty_available"] == "0"  # the pair holds the 10 shares once
    ex.advance()
    ex.advance()  # bar 2 trades down to 98.90: the stop fills at 99, the take-profit goes
    got = legs(ex, placed)
    assert got["stop"]["status"] == "filled" and got["stop"]["filled_avg_price"] == "99"
    assert got["limit"]["status"] == "canceled"
    assert ex.list_positions() == []
    assert events(seen) == [
        ("new", "new"), ("fill", "filled"), ("new", "new"), ("new", "new"),  # entry, then legs
        ("fill", "filled"), ("canceled", "canceled"),  # the stop, and its sibling
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("prices", "kind", "price"),
    [
        ({"high": 101.5, "low": 98.5}, "stop", "99"),  # both in range: the stop (pessimistic)
        ({"open": 101.2, "high": 101.3, "low": 98.0}, "limit", "101.2"),  # gap through target
        ({"open": 98.7, "high": 101.5, "low": 98.6}, "stop", "98.7"),  # gap through the stop
        ({"high": 101.5, "low": 100.0}, "limit", "101"),  # the target only
    ],
)
def test_exit_pair_fills_like_the_kernels_attached_exits(bars, prices, kind, price):
    ex = PaperExchange(with_bar(bars, 2, 0, **prices))
    placed = ex.submit_order(bracket())
    for _ in range(3):
        ex.advance()
    got = legs(ex, placed)
    other = "limit" if kind == "stop" else "stop"
    assert got[kind]["status"] == "filled" and got[kind]["filled_avg_price"] == price
    assert got[other]["status"] == "canceled"


def test_legs_work_in_the_bar_the_entry_fills_in_and_stops_are_slipped(bars):
    # the entry fills at bar 0's open (100), which then trades down to 98.5: stopped out at
    # the stop, slipped 10 bps; the take-profit, a limit, is never slipped
    ex = PaperExchange(with_bar(bars, 0, 0, low=98.5), slippage_bps=10.0)
    placed = ex.submit_order(bracket())
    ex.advance()
    got = legs(ex, placed)
    assert got["stop"]["status"] == "filled"
    assert float(got["stop"]["filled_avg_price"]) == pytest.approx(99 * (1 - 10e-4))
    assert ex.list_positions() == []


def test_short_bracket_and_oto_mirror(bars):
    ex = PaperExchange(with_bar(bars, 1, 0, high=101.5))
    short = ex.submit_order(bracket(side="sell", tp="99", sl="101"))
    assert {leg["side"] for leg in short["legs"]} == {"buy"}
    ex.advance()
    ex.advance()  # bar 1 trades up to 101.5: the short is stopped out at 101
    assert legs(ex, short)["stop"]["filled_avg_price"] == "101"
    oto = ex.submit_order(
        order(symbol="MSFT", tif="gtc", order_class="oto", take_profit={"limit_price": "200.05"})
    )
    assert [leg["type"] for leg in oto["legs"]] == ["limit"]
    for _ in range(6):
        ex.advance()  # MSFT climbs a cent a bar from 200.02: the take-profit fills at 200.05
    assert legs(ex, oto)["limit"]["status"] == "filled"


def test_an_oco_closes_a_held_position_and_canceling_a_parent_takes_its_legs(bars):
    ex = PaperExchange(with_bar(bars, 3, 0, high=102.0))
    ex.submit_order(order())
    ex.advance()
    oco = ex.submit_order(
        order(side="sell", type="limit", tif="gtc", order_class="oco",
              take_profit={"limit_price": "101.5"}, stop_loss={"stop_price": "99"})
    )  # fmt: skip
    assert oco["limit_price"] == "101.5" and legs(ex, oco)["stop"]["status"] == "new"
    assert ex.get_position("AAPL")["qty_available"] == "0"
    for _ in range(3):
        ex.advance()
    assert ex.get_order(oco["id"])["status"] == "filled"
    assert legs(ex, oco)["stop"]["status"] == "canceled"
    waiting = ex.submit_order(bracket(tp="110", sl="90"))
    ex.cancel_order(waiting["id"])
    assert {leg["status"] for leg in legs(ex, waiting).values()} == {"canceled"}
    assert ex.list_orders(status="open") == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (bracket(sl=None) | {"stop_loss": None}, "need take_profit.limit_price and stop_loss"),
        (bracket(tp="98"), "take_profit.limit_price must be above stop_loss.stop_price"),
        (bracket(sl="99.995"), "sub-penny"),
        (bracket(tif="ioc"), "must be DAY or GTC"),
        (order(order_class="oto", take_profit={"limit_price": "101"},
               stop_loss={"stop_price": "99"}), "exactly one of take_profit or stop_loss"),
        (order(order_class="oco", take_profit={"limit_price": "101"},
               stop_loss={"stop_price": "99"}), "oco orders must be limit orders"),
        (order(take_profit={"limit_price": "101"}), "need order_class bracket, oco or oto"),
        (order(order_class="mleg"), "invalid order_class"),
    ],
)  # fmt: skip
def test_order_classes_are_validated_as_alpaca_does(bars, body, message):
    ex = PaperExchange(bars)
    with pytest.raises(ExchangeRejection, match=message) as caught:
        ex.submit_order(body)
    assert caught.value.status == 422 and ex.orders == {}


def test_stop_loss_must_be_a_cent_below_the_base_price(bars):
    ex = PaperExchange(bars)
    with pytest.raises(ExchangeRejection, match=r"at least 0\.01 below the base price 100"):
        ex.submit_order(bracket(sl="100"))
    with pytest.raises(ExchangeRejection, match=r"take_profit\.limit_price must be above the base"):
        ex.submit_order(bracket(tp="99.5", sl="99"))


def test_trailing_stop_starts_at_the_last_close_and_trails_the_bars_it_did_not_fill_in(bars):
    # bar 2 reaches 100.96: above the stop of a 1 % trail from bar 1's low (99.96 x 1.01)
    ex = PaperExchange(with_bar(bars, 2, 0, high=100.96))
    ex.advance()  # closes at 100.01
    placed = ex.submit_order(order(type="trailing_stop", trail_percent="1", tif="gtc"))
    assert float(placed["hwm"]) == 100.01  # Alpaca's hwm: the price at submit
    assert ex.orders[placed["id"]].stop_price == trailing_level_nb(1, 100.01, 100.01, 0.01)
    ex.advance()  # bar 1 (low 99.96) does not reach 101.0101: the watermark follows its low
    assert float(ex.get_order(placed["id"])["hwm"]) == 99.96
    ex.advance()
    done = ex.get_order(placed["id"])
    stop = trailing_level_nb(1, 99.96, 99.96, 0.01)  # the kernel's level, to the bit
    assert done["status"] == "filled" and float(done["filled_avg_price"]) == pytest.approx(stop)
    assert float(done["filled_avg_price"]) == max(100.02, stop)


def test_an_order_sent_between_a_bars_open_and_close_fills_at_that_open():
    bars = session_bars(minutes=3)
    ex = PaperExchange(bars)
    assert ex.open_bar() == 0
    placed = ex.submit_order(order())
    assert placed["status"] == "new"  # the answer comes before the fill event
    assert ex.get_order(placed["id"])["filled_avg_price"] == "100"
    with pytest.raises(RuntimeError, match="close_bar"):
        ex.open_bar()
    assert ex.close_bar() == 0 and ex.index == 0
    later = ex.submit_order(order())
    assert ex.get_order(later["id"])["status"] == "new"  # after the close: the next open
    assert ex.advance() == 1 and ex.get_order(later["id"])["filled_avg_price"] == "100.01"
