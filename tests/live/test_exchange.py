"""PaperExchange, the emulator's pure state machine: lifecycle, fill prices, account rules."""

from __future__ import annotations

import pytest

from barlab.live.exchange import PaperExchange
from barlab.live.wire import ExchangeRejection
from tests.live.conftest import session_bars, with_bar


def order(symbol="AAPL", qty="10", side="buy", type="market", tif="day", **extra):
    return {"symbol": symbol, "qty": qty, "side": side, "type": type, "time_in_force": tif,
            **extra}  # fmt: skip


def recording(ex: PaperExchange) -> list[tuple[str, dict]]:
    seen: list[tuple[str, dict]] = []
    ex.add_listener(lambda kind, payload: seen.append((kind, payload)))
    return seen


def events(seen) -> list[tuple[str, str]]:
    return [(p["event"], p["order"]["status"]) for k, p in seen if k == "trade_update"]


def test_market_order_fills_at_the_next_bars_open_with_events(bars):
    ex = PaperExchange(bars)
    seen = recording(ex)
    placed = ex.submit_order(order(client_order_id="a"))
    assert placed["status"] == "new" and placed["filled_qty"] == "0"
    assert placed["filled_avg_price"] is None and placed["order_class"] == ""
    assert ex.advance() == 0
    filled = ex.get_order(placed["id"])
    assert filled["status"] == "filled" and filled["filled_avg_price"] == "100"
    assert filled["filled_at"] == "2024-03-05T14:30:00.000000Z"
    assert events(seen) == [("new", "new"), ("fill", "filled")]
    fill = [p for k, p in seen if k == "trade_update"][1]
    assert (fill["price"], fill["qty"], fill["position_qty"]) == ("100", "10", "10")
    assert fill["execution_id"] and fill["timestamp"] == "2024-03-05T14:30:00.000000Z"
    assert ex.portfolio.cash == 100_000.0 - 1000.0


def test_bar_messages_follow_each_closed_bar(bars):
    ex = PaperExchange(bars)
    seen = recording(ex)
    ex.advance()
    bar_msgs = [p for k, p in seen if k == "bar"]
    assert [m["S"] for m in bar_msgs] == ["AAPL", "MSFT"]
    assert bar_msgs[0] == {"T": "b", "S": "AAPL", "o": 100.0, "h": 100.06, "l": 99.95,
                           "c": 100.01, "v": 1000, "t": "2024-03-05T14:30:00Z", "n": 10,
                           "vw": bar_msgs[0]["vw"]}  # fmt: skip
    assert ex.now_ns == int(bars.ts_ns[0]) + 60 * 10**9
    assert ex.bars_until_now().n_bars == 1


def test_whole_replay_ends_with_none(bars):
    ex = PaperExchange(bars.slice(0, 3))
    assert [ex.advance() for _ in range(4)] == [0, 1, 2, None]


@pytest.mark.parametrize(
    ("side", "limit", "bar", "price"),
    [
        ("buy", "99.9", {"open": 100.0, "low": 99.8}, "99.9"),  # trades through: the limit
        ("buy", "99.9", {"open": 99.5, "low": 99.4}, "99.5"),  # gaps below: the open
        ("buy", "99.9", {"open": 100.0, "low": 99.95}, None),  # never reaches it
        ("sell", "100.5", {"open": 100.0, "high": 100.6}, "100.5"),
        ("sell", "100.5", {"open": 101.0, "high": 101.2}, "101"),
    ],
)
def test_limit_fill_prices(bars, side, limit, bar, price):
    ex = PaperExchange(with_bar(bars, 1, 0, **bar))
    if side == "sell":
        ex.submit_order(order(qty="10"))
        ex.advance()
    else:
        ex.advance()
    placed = ex.submit_order(order(side=side, type="limit", limit_price=limit))
    ex.advance()
    assert ex.get_order(placed["id"])["filled_avg_price"] == price


@pytest.mark.parametrize(
    ("side", "stop", "bar", "price"),
    [
        ("buy", "100.5", {"open": 100.0, "high": 100.7}, "100.5"),  # trades through: the stop
        ("buy", "100.5", {"open": 101.0, "high": 101.1}, "101"),  # gaps over: the open
        ("buy", "100.5", {"open": 100.0, "high": 100.4}, None),
        ("sell", "99.5", {"open": 100.0, "low": 99.4}, "99.5"),
        ("sell", "99.5", {"open": 99.0, "low": 98.9}, "99"),
    ],
)
def test_stop_fill_prices(bars, side, stop, bar, price):
    ex = PaperExchange(with_bar(bars, 1, 0, **bar))
    if side == "sell":
        ex.submit_order(order(qty="10"))
    ex.advance()
    placed = ex.submit_order(order(side=side, type="stop", stop_price=stop))
    ex.advance()
    assert ex.get_order(placed["id"])["filled_avg_price"] == price


def test_stop_limit_triggers_then_rests_as_a_limit(bars):
    gapped = with_bar(bars, 1, 0, open=101.0, high=101.2, low=100.9)
    ex = PaperExchange(with_bar(gapped, 2, 0, open=100.6, low=100.4))
    ex.advance()
    placed = ex.submit_order(order(type="stop_limit", stop_price="100.5", limit_price="100.5"))
    ex.advance()  # gaps to 101 > limit: triggered, not filled
    assert ex.get_order(placed["id"])["status"] == "new"
    ex.advance()  # now a limit at 100.5: the bar trades down through it
    assert ex.get_order(placed["id"])["filled_avg_price"] == "100.5"


def test_trailing_stop_follows_the_high_and_fills_at_its_stop(bars):
    ex = PaperExchange(bars)
    ex.submit_order(order())
    ex.advance()
    trail = ex.submit_order(order(side="sell", type="trailing_stop", trail_price="1"))
    assert (trail["hwm"], trail["stop_price"]) == ("100.01", "99.01")
    for _ in range(5):
        ex.advance()
    moved = ex.get_order(trail["id"])
    assert float(moved["hwm"]) == pytest.approx(100.06 + 0.05) and moved["status"] == "new"
    drop = with_bar(bars, 7, 0, open=100.2, low=98.0)
    ex2 = PaperExchange(drop)
    ex2.submit_order(order())
    ex2.advance()
    t2 = ex2.submit_order(order(side="sell", type="trailing_stop", trail_price="1"))
    for _ in range(7):
        ex2.advance()
    done = ex2.get_order(t2["id"])
    assert done["status"] == "filled"
    assert float(done["filled_avg_price"]) == pytest.approx(float(done["hwm"]) - 1)


def test_buying_power_is_checked_at_submit_and_reserved_by_open_orders(bars):
    ex = PaperExchange(bars, cash=10_000.0)
    with pytest.raises(ExchangeRejection) as info:
        ex.submit_order(order(qty="100"))  # 100 x 100 x 1.03 > 10,000
    assert (info.value.status, info.value.code) == (403, 40310000)
    assert info.value.body()["message"] == "insufficient buying power"
    assert info.value.extra["buying_power"] == "10000"
    ex.submit_order(order(type="limit", limit_price="90", qty="100"))  # reserves 9,000
    assert ex.account()["buying_power"] == "1000"
    with pytest.raises(ExchangeRejection, match="insufficient buying power"):
        ex.submit_order(order(type="limit", limit_price="90", qty="12"))
    assert len(ex.orders) == 1


def test_duplicate_client_order_id_is_refused_even_after_cancel(bars):
    ex = PaperExchange(bars)
    first = ex.submit_order(order(client_order_id="x"))
    ex.cancel_order(first["id"])
    with pytest.raises(ExchangeRejection) as info:
        ex.submit_order(order(client_order_id="x"))
    assert info.value.body() == {"code": 40010001, "message": "client_order_id must be unique"}
    assert info.value.status == 422 and len(ex.orders) == 1


def test_day_orders_expire_at_the_close_and_gtc_orders_do_not(bars):
    ex = PaperExchange(bars)
    seen = recording(ex)
    day = ex.submit_order(order(type="limit", limit_price="50"))
    gtc = ex.submit_order(order(type="limit", limit_price="50", tif="gtc"))
    assert day["expires_at"] == "2024-03-05T21:00:00.000000Z"
    for _ in range(389):
        ex.advance()
    assert ex.get_order(day["id"])["status"] == "new"
    ex.advance()  # the 15:59 bar closes at 16:00
    expired = ex.get_order(day["id"])
    assert expired["status"] == "expired" and expired["expired_at"] == "2024-03-05T21:00:00.000000Z"
    assert ex.get_order(gtc["id"])["status"] == "new"
    assert ("expired", "expired") in events(seen)
    assert not ex.clock_json()["is_open"]


def test_orders_sent_while_closed_wait_as_accepted_until_the_open(bars):
    ex = PaperExchange(bars)
    for _ in range(390):
        ex.advance()
    seen = recording(ex)
    placed = ex.submit_order(order())
    assert placed["status"] == "accepted" and placed["expires_at"] == "2024-03-06T21:00:00.000000Z"
    resting = ex.submit_order(order(type="limit", limit_price="1", tif="gtc"))
    with pytest.raises(ExchangeRejection, match="unable to replace order in current state"):
        ex.replace_order(resting["id"], {"qty": "1"})
    assert events(seen) == []
    ex.advance()
    assert events(seen) == [("new", "new"), ("new", "new"), ("fill", "filled")]
    assert ex.get_order(placed["id"])["filled_avg_price"] == "103.9"  # the next session's open
    assert ex.get_order(resting["id"])["status"] == "new"


def test_partial_fills_under_a_participation_cap(bars):
    ex = PaperExchange(bars, max_participation=0.1)  # 100 shares of a 1,000-share bar
    seen = recording(ex)
    placed = ex.submit_order(order(qty="250"))
    ex.advance()
    assert ex.get_order(placed["id"])["status"] == "partially_filled"
    ex.advance()
    ex.advance()
    done = ex.get_order(placed["id"])
    assert done["status"] == "filled" and done["filled_qty"] == "250"
    assert float(done["filled_avg_price"]) == pytest.approx(
        (100 * 100 + 100 * 100.01 + 50 * 100.02) / 250
    )
    assert events(seen) == [("new", "new"), ("partial_fill", "partially_filled"),
                            ("partial_fill", "partially_filled"), ("fill", "filled")]  # fmt: skip
    qtys = [p["qty"] for k, p in seen if k == "trade_update" and "qty" in p]
    assert qtys == ["100", "100", "50"]


def test_ioc_and_fok(bars):
    ex = PaperExchange(bars, max_participation=0.1)
    ioc = ex.submit_order(order(qty="250", tif="ioc"))
    fok = ex.submit_order(order(qty="250", tif="fok"))
    ex.advance()
    assert (ex.get_order(ioc["id"])["status"], ex.get_order(ioc["id"])["filled_qty"]) == (
        "canceled", "100",
    )  # fmt: skip
    assert (ex.get_order(fok["id"])["status"], ex.get_order(fok["id"])["filled_qty"]) == (
        "canceled", "0",
    )  # fmt: skip


def test_opg_and_cls_fill_in_the_auctions(bars):
    ex = PaperExchange(bars)
    ex.advance()
    opg = ex.submit_order(order(tif="opg"))
    cls = ex.submit_order(order(tif="cls"))
    for _ in range(389):
        ex.advance()
    assert ex.get_order(opg["id"])["status"] == "new"
    assert ex.get_order(cls["id"])["filled_avg_price"] == "103.9"  # the 15:59 bar's close
    ex.advance()
    assert ex.get_order(opg["id"])["filled_avg_price"] == "103.9"  # the next session's open


def test_sells_fill_before_buys_in_a_bar(bars):
    ex = PaperExchange(bars, cash=1_100.0, market_buffer=0.0)
    ex.submit_order(order(qty="10"))
    ex.advance()
    ex.submit_order(order(symbol="AAPL", side="sell", qty="10"))
    with pytest.raises(ExchangeRejection):  # buying power frees only when the sell fills
        ex.submit_order(order(symbol="MSFT", qty="5"))
    ex.advance()
    assert ex.list_positions() == []


def test_shorting_rules(bars):
    ex = PaperExchange(bars, shortable=frozenset({"AAPL"}))
    short = ex.submit_order(order(side="sell", qty="5"))
    ex.advance()
    assert ex.get_position("AAPL")["qty"] == "-5" and ex.get_position("AAPL")["side"] == "short"
    assert ex.get_order(short["id"])["status"] == "filled"
    with pytest.raises(ExchangeRejection, match='asset "MSFT" cannot be sold short'):
        ex.submit_order(order(symbol="MSFT", side="sell", qty="1"))
    ex.submit_order(order(symbol="MSFT", qty="3"))
    ex.advance()
    with pytest.raises(ExchangeRejection, match="insufficient qty available") as info:
        ex.submit_order(order(symbol="MSFT", side="sell", qty="4"))  # would flip long to short
    assert info.value.extra["existing_qty"] == "3" and info.value.status == 403
    no_short = PaperExchange(bars, shorting=False)
    with pytest.raises(ExchangeRejection, match="not allowed to short"):
        no_short.submit_order(order(side="sell", qty="1"))


def test_validation_errors_name_the_field(bars):
    ex = PaperExchange(bars)
    cases = [
        ({"qty": None}, "exactly one of qty or notional"),
        ({"qty": "1.5"}, "not fractionable"),
        ({"type": "limit"}, "limit_price is required"),
        ({"type": "limit", "limit_price": "100.001"}, "sub-penny"),
        ({"tif": "week"}, "invalid time_in_force"),
        ({"symbol": "ZZZZ"}, 'asset "ZZZZ" is not tradable'),
        ({"type": "trailing_stop"}, "exactly one of trail_price or trail_percent"),
    ]
    for change, words in cases:
        with pytest.raises(ExchangeRejection, match=words) as info:
            ex.submit_order(order(**change))
        assert info.value.status == 422
    with pytest.raises(ExchangeRejection) as info:
        ex.submit_order("not an object")
    assert (info.value.status, info.value.code) == (400, 40010000)


def test_fractional_and_notional_orders(bars):
    ex = PaperExchange(bars, fractional=True)
    frac = ex.submit_order(order(qty="1.5"))
    notional = ex.submit_order({"symbol": "AAPL", "notional": "250", "side": "buy",
                                "type": "market", "time_in_force": "day"})  # fmt: skip
    assert notional["qty"] is None and notional["notional"] == "250"
    ex.advance()
    assert ex.get_order(frac["id"])["filled_qty"] == "1.5"
    assert ex.get_order(notional["id"])["filled_qty"] == "2.5"
    assert ex.get_position("AAPL")["qty"] == "4"


def test_replace_links_both_orders_and_cancel_rules(bars):
    ex = PaperExchange(bars)
    seen = recording(ex)
    old = ex.submit_order(order(type="limit", limit_price="90", client_order_id="v1"))
    new = ex.replace_order(old["id"], {"limit_price": "95", "client_order_id": "v2"})
    assert new["replaces"] == old["id"] and new["client_order_id"] == "v2"
    assert new["limit_price"] == "95" and new["qty"] == "10"
    assert ex.get_order(old["id"])["replaced_by"] == new["id"]
    assert events(seen)[-2:] == [("replaced", "replaced"), ("new", "new")]
    with pytest.raises(ExchangeRejection, match='already in "replaced" state'):
        ex.cancel_order(old["id"])
    with pytest.raises(ExchangeRejection) as info:
        ex.get_order("missing")
    assert info.value.status == 404


def test_replays_are_deterministic():
    def run() -> list:
        ex = PaperExchange(session_bars(("2024-03-05",), minutes=30), max_participation=0.05)
        seen = recording(ex)
        ex.submit_order(order(qty="120"))
        for _ in range(5):
            ex.advance()
        return seen

    assert run() == run()


def test_wash_trade_guard(bars):
    ex = PaperExchange(bars, wash_trade_guard=True)
    ex.submit_order(order(type="limit", limit_price="90", tif="gtc"))
    with pytest.raises(ExchangeRejection, match="potential wash trade detected") as info:
        ex.submit_order(order(side="sell", type="limit", limit_price="120", qty="1"))
    assert info.value.status == 403
    PaperExchange(bars).submit_order(order(side="sell", qty="1"))  # off by default


def test_random_partial_fills_are_seeded():
    def fills(seed: int) -> list[str]:
        ex = PaperExchange(session_bars(("2024-03-05",), minutes=40), partial_fill_rate=0.5,
                           seed=seed)  # fmt: skip
        seen = recording(ex)
        for _ in range(10):
            ex.submit_order(order(qty="50"))
        for _ in range(30):
            ex.advance()
        assert all(o.status == "filled" for o in ex.orders.values())
        return [e for e, _ in events(seen) if e.endswith("fill")]

    first = fills(1)
    assert first == fills(1) and "partial_fill" in first
    assert fills(1) != fills(2)
    plain = PaperExchange(session_bars(("2024-03-05",), minutes=3))
    seen = recording(plain)
    plain.submit_order(order(qty="50"))
    plain.advance()
    assert events(seen)[-1] == ("fill", "filled")
