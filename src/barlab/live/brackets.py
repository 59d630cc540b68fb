"""Bracket, OTO and OCO orders of the paper exchange (api/alpaca-trading.md §2.1, §2.3): the
exit legs an entry carries, ``held`` until the entry fills completely, then working; a leg
that fills cancels its sibling. Functions over a :class:`~barlab.live.exchange.PaperExchange`.

The legs of one position are worked together after the bar's other orders (and in the bar
their entry filled in, right after that fill), by :func:`~barlab.live.fills.exit_pair_fill`
when there are two: the kernel's attached exits, with its pessimistic fill policy.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from barlab.live.fills import BarPrices, exit_pair_fill, fill_in_bar
from barlab.live.paper_orders import PaperOrder, check_exit_sides

if TYPE_CHECKING:
    from barlab.live.exchange import PaperExchange
    from barlab.live.paper_orders import OrderRequest


def check(ex: PaperExchange, req: OrderRequest, col: int) -> None:
    """The side rules of a bracket's, OTO's or OCO's exits (422 when broken)."""
    if req.order_class in ("bracket", "oto", "oco"):
        base = req.limit_price if req.type in ("limit", "stop_limit") else ex.ref_price(col)
        check_exit_sides(req, float(base) if base is not None else float("nan"))


def attach(ex: PaperExchange, order: PaperOrder, req: OrderRequest) -> list[PaperOrder]:
    """Create the exit legs of ``order`` (none for a simple order). A bracket's and an OTO's
    legs close what the entry opens and wait ``held``; an OCO is itself the take-profit, and
    its stop leg works at once."""
    if req.order_class not in ("bracket", "oto", "oco"):
        return []
    order.order_class = req.order_class
    side = -order.side if req.order_class != "oco" else order.side
    legs = []
    if req.take_profit is not None and req.order_class != "oco":
        legs.append(_leg(ex, order, side, "limit", limit_price=req.take_profit))
    if req.stop_loss is not None:
        kind = "stop" if req.stop_loss_limit is None else "stop_limit"
        legs.append(
            _leg(ex, order, side, kind, stop_price=req.stop_loss, limit_price=req.stop_loss_limit)
        )
    order.legs = tuple(leg.id for leg in legs)
    family = [order, *legs] if req.order_class == "oco" else legs
    if len(family) == 2:
        family[0].oco, family[1].oco = (family[1].id,), (family[0].id,)
    return legs


def _leg(ex: PaperExchange, parent: PaperOrder, side: int, kind: str, **prices: float | None):
    """A leg: ``held`` until its parent fills (an OCO's: until its parent reaches the market)."""
    return dataclasses.replace(
        parent, id=ex._uuid(), client_order_id=ex._uuid(), side=side, type=kind,
        limit_price=prices.get("limit_price"), stop_price=prices.get("stop_price"),
        trail_price=None, trail_percent=None, hwm=None, status="held", legs=(),
        parent_id=parent.id, oco=(), filled_qty=0.0, filled_value=0.0,
    )  # fmt: skip


def activate(ex: PaperExchange, parent: PaperOrder) -> None:
    """The parent filled completely (an OCO: reached the market): its held legs start
    working (``new``)."""
    for leg_id in parent.legs:
        leg = ex.orders[leg_id]
        if leg.status == "held":
            leg.created_ns = ex.now_ns
            ex._update(leg, "new", "new")


def cancel_siblings(ex: PaperExchange, order: PaperOrder) -> None:
    """``order`` filled: the other order of its OCO pair is canceled."""
    for other_id in order.oco:
        other = ex.orders[other_id]
        if other.is_live:
            other.canceled_ns = ex.now_ns
            ex._update(other, "canceled", "canceled")


def cancel_legs(ex: PaperExchange, parent: PaperOrder) -> None:
    """The parent was canceled or expired unfilled: its held legs go with it."""
    for leg_id in parent.legs:
        leg = ex.orders[leg_id]
        if leg.status == "held":
            leg.canceled_ns = ex.now_ns
            ex._update(leg, "canceled", "canceled")


def is_exit(order: PaperOrder) -> bool:
    """A leg, or an OCO order: worked with its sibling after the bar's other orders."""
    return order.parent_id is not None or order.order_class == "oco"


def work_exits(
    ex: PaperExchange, bar_of: dict[int, BarPrices], *, only: set[str] | None = None
) -> None:
    """Work the open exit orders in the bar open now (``bar_of``: its prices per column, for
    the columns that traded; ``only``: these orders), a pair at a time."""
    done: set[str] = set()
    for order in [o for o in ex.orders.values() if o.is_open and is_exit(o)]:
        if order.id in done or order.col not in bar_of or (only and order.id not in only):
            continue
        pair = [order, *(ex.orders[k] for k in order.oco if ex.orders[k].is_open)]
        done.update(o.id for o in pair)
        _work_pair(ex, pair, bar_of[order.col])


def _work_pair(ex: PaperExchange, pair: list[PaperOrder], bar: BarPrices) -> None:
    stops = [o for o in pair if o.type == "stop"]
    targets = [o for o in pair if o.type == "limit"]
    if len(pair) == 2 and stops and targets:
        which, fill = exit_pair_fill(stops[0], targets[0], bar)
        if which:
            ex.execute(stops[0] if which == "stop" else targets[0], fill)
        return
    for order in pair:  # one leg, or a stop-limit stop leg: each by its own rule
        if order.is_open:
            fill = fill_in_bar(order, bar)
            if fill.triggered:
                order.triggered = True
            if fill.price is not None:
                ex.execute(order, fill)


def nested(ex: PaperExchange, order: PaperOrder) -> list[dict] | None:
    """The legs of ``order`` as Order objects (for ``nested=true`` and the submit answer)."""
    return [ex.orders[k].to_json() for k in order.legs] if order.legs else None
