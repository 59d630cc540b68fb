"""The order desk without a server: what a newer instruction cancels, the legs an order that
changes a position cancels first, the opening half of a flip held until its closing half
fills, and all of it taken up again from the journal after a restart."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from barlab.errors import NotFoundError
from barlab.live.desk import OrderDesk
from barlab.live.journal import Journal, JournalState, read_journal
from barlab.live.orders import OrderIntent


class FakeBroker:
    """Orders by id with a status; records submits and cancels."""

    def __init__(self) -> None:
        self.orders: dict[str, SimpleNamespace] = {}
        self.calls: list[tuple[str, str]] = []

    def submit_order(self, symbol, qty, **kw):
        n = len(self.orders)
        legs = ()
        if kw.get("order_class"):
            legs = tuple(self._new(f"leg{n}-{k}", symbol, "held") for k in (0, 1))
        order = self._new(f"o{n}", symbol, "new", legs=legs, coid=kw["client_order_id"])
        self.calls.append(("submit", kw["client_order_id"]))
        return order

    def _new(self, oid, symbol, status, legs=(), coid=None):
        order = SimpleNamespace(id=oid, symbol=symbol, status=status, legs=legs,
                                client_order_id=coid or oid)  # fmt: skip
        order.is_open = status in ("new", "held")
        self.orders[oid] = order
        return order

    def set(self, oid: str, status: str) -> None:
        self.orders[oid].status = status
        self.orders[oid].is_open = status in ("new", "held")

    def get_order(self, oid, nested=False):
        return self.orders[oid]

    def get_order_by_client_id(self, coid):
        for order in self.orders.values():
            if order.client_order_id == coid:
                return order
        raise NotFoundError("order not found")

    def cancel_order(self, oid):
        self.calls.append(("cancel", oid))
        self.set(oid, "canceled")


def intent(coid: str, symbol="AAPL", side="buy", ts=1, **kw) -> OrderIntent:
    return OrderIntent(client_order_id=coid, symbol=symbol, side=side, qty=10.0, bar_ts_ns=ts,
                       target=1.0, requested_qty=10.0, **kw)  # fmt: skip


OPENED: list[Journal] = []


@pytest.fixture(autouse=True)
def _close_journals():
    yield
    while OPENED:
        OPENED.pop().close()


def desk(tmp_path: Path, broker: FakeBroker) -> OrderDesk:
    stats = {"orders": 0, "refused": 0, "errors": 0, "skipped": 0}
    OPENED.append(Journal(tmp_path / "j.jsonl"))
    return OrderDesk(broker, OPENED[-1], dry_run=False, stats=stats)


def test_newer_instructions_replace_working_orders_and_positions_lose_their_legs(tmp_path):
    broker = FakeBroker()
    d = desk(tmp_path, broker)
    d.send_all([intent("entry", type="limit", limit_price=99.0, order_class="bracket",
                       take_profit=101.0, stop_loss=98.0)], {"AAPL": 0.0})  # fmt: skip
    d.replace(["AAPL"], 1)  # the same bar (a restart redoing it): the order stays
    assert ("cancel", "o0") not in broker.calls
    d.replace(["AAPL"], 2)  # a newer instruction: the resting entry is canceled
    assert ("cancel", "o0") in broker.calls
    broker.set("o0", "filled")  # say it had filled: its legs now guard the position
    for leg in broker.orders["o0"].legs:
        broker.set(leg.id, "new")
    d.legs["AAPL"] = [leg.id for leg in broker.orders["o0"].legs]
    d.send_all([intent("exit", side="sell", ts=3)], {"AAPL": 10.0})
    assert [c for c in broker.calls if c[0] == "cancel"][-2:] == [
        ("cancel", "leg0-0"), ("cancel", "leg0-1"),
    ]  # fmt: skip
    assert broker.calls[-1] == ("submit", "exit")


def test_an_opening_half_waits_for_its_closing_half_across_a_restart(tmp_path):
    broker = FakeBroker()
    d = desk(tmp_path, broker)
    close, opening = intent("close", side="sell"), intent("open", side="sell", after="close")
    d.send_all([close, opening], {"AAPL": 10.0})
    assert broker.calls == [("submit", "close")] and "close" in d.deferred
    d.journal.close()
    # a restart: the journal knows the close went out and the open still waits
    again = desk(tmp_path, broker)
    again.restore(JournalState.load(tmp_path / "j.jsonl"))
    assert again.known == {"close"} and again.deferred["close"] == opening
    assert again.working == {"AAPL": ("o0", 1)}
    again.settle()  # not filled yet: it keeps waiting
    assert broker.calls == [("submit", "close")]
    broker.set("o0", "filled")
    again.settle()  # filled while no event said so: the open goes now, once
    again.on_update("fill", "close", "o0")
    assert broker.calls == [("submit", "close"), ("submit", "open")]
    kinds = [r["kind"] for r in read_journal(tmp_path / "j.jsonl")]
    assert kinds == ["intent", "submit", "deferred", "intent", "submit"]


def test_a_closing_half_that_ends_unfilled_drops_its_opening_half(tmp_path):
    broker = FakeBroker()
    d = desk(tmp_path, broker)
    d.send_all([intent("close", side="sell"), intent("open", side="sell", after="close")],
               {"AAPL": 10.0})  # fmt: skip
    d.on_update("canceled", "close", "o0")
    assert d.deferred == {} and broker.calls == [("submit", "close")]
    (dropped,) = [r for r in read_journal(tmp_path / "j.jsonl") if r["kind"] == "refused"]
    assert dropped["client_order_id"] == "open" and "canceled" in dropped["reason"]
