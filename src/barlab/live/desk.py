"""The bridge's order desk: sends its order intents to the broker and keeps track of the orders
that are still working, so that a newer instruction replaces them as the engine does.

- A new instruction for a symbol replaces the order still working there (a resting limit,
  stop or trailing stop, a market order its symbol had no bar for yet, or the remainder of a
  partially filled order): it is canceled first (the kernel logs it ``cancelled``), and the
  bridge reads the positions it sizes the new order from only once the broker confirmed the
  cancel, so a part that filled meanwhile is counted, never added on top. While a cancel is
  not confirmed the symbol gets no new order at that bar (``refused``, saying so).
- An order that changes a position cancels the exit legs of the bracket that opened it first
  (they would close shares that are no longer there, and Alpaca holds the shares for them: a
  second sell is refused). Two cases then differ from the backtest, which keeps its exits
  working on the whole position: a position resized without being closed has no exits left,
  and a resting exit order (a limit or stop sell of a long) replaces the exits while it
  waits. Run attached exits with strategies that enter and exit whole positions at market.
- The opening half of a flip (``OrderIntent.after``) waits for its closing half to fill
  completely (a ``partial_fill`` is not enough: Alpaca refuses an order through zero): sent
  from the closing order's ``fill`` event, or, when that event was missed (a dropped stream, a
  restart), as soon as the broker reports the closing order filled. A closing order that ends
  unfilled or partly filled (canceled, expired) drops its opening half. A closing order filled
  in parts may complete bars after the opening half was sized, when other orders have used
  buying power meanwhile: the opening half goes through ``fit`` first (the bridge cuts it to
  what the account has now, so the broker does not refuse it).

Everything is journalled (``intent``, ``submit``, ``deferred``, ``refused``, ``cancel``), so a
restart knows which orders are working, which legs belong to which position, and which
opening halves are still to be sent: it sends only the missing one.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from barlab.errors import BrokerError, DuplicateOrderError
from barlab.live.journal import Journal, JournalState
from barlab.live.orders import OrderIntent

log = logging.getLogger(__name__)

CANCEL_CONFIRM_S = 5.0
"""Seconds to wait for the broker to confirm a cancel (Alpaca cancels asynchronously)."""


class OrderDesk:
    """Sends intents for one bridge (see the module docstring).

    Parameters
    ----------
    broker : AlpacaBroker
        Or anything with its order methods.
    journal : Journal
    dry_run : bool
        Journal (``dry_run``) and log what would be sent; send and cancel nothing.
    stats : dict
        The bridge's counters (``orders``, ``refused``, ``errors``, ``skipped``), updated here.
    metrics : BridgeMetrics, optional
    fit : callable, optional
        ``fit(intent) -> intent``: an opening half as it may go now that its closing half
        filled (e.g. cut to the buying power left); None: as planned.
    """

    def __init__(
        self,
        broker: Any,
        journal: Journal,
        *,
        dry_run: bool,
        stats: dict,
        metrics: Any = None,
        fit: Callable[[OrderIntent], OrderIntent] | None = None,
    ) -> None:
        self.broker = broker
        self.fit = fit
        self.journal = journal
        self.dry_run = dry_run
        self.stats = stats
        self.metrics = metrics
        self.lock = threading.RLock()
        """Held while a bar is acted on and while a fill sends an opening half."""
        self.known: set[str] = set()
        """Client order ids the broker has (never sent again)."""
        self.working: dict[str, tuple[str, int]] = {}
        """Symbol -> broker id and signal bar time of the last order sent for it (not a leg)."""
        self.legs: dict[str, list[str]] = {}
        """Symbol -> broker ids of the exit legs of the bracket that opened its position."""
        self.deferred: dict[str, OrderIntent] = {}
        """Closing order's client order id -> the opening half waiting for its fill."""
        self.ended: set[str] = set()
        """Broker ids the trade updates reported filled or ended (no need to ask again)."""
        self.blocked: set[str] = set()
        """Symbols whose replaced order's cancel is not confirmed: no new order this bar."""

    # -- restart -------------------------------------------------------------------------------
    def restore(self, state: JournalState) -> None:
        """Take up the journal's working orders, legs and opening halves still to be sent."""
        self.known |= state.submitted
        for coid, order_id in state.order_ids.items():
            intent = state.intents.get(coid)
            if intent is not None:
                self.working[intent["symbol"]] = (order_id, int(intent["bar_ts_ns"]))
                if state.legs.get(coid):
                    self.legs[intent["symbol"]] = list(state.legs[coid])
        for coid, record in state.deferred.items():
            if coid not in state.intents and coid not in state.refused:
                self.deferred[record["after"]] = OrderIntent.from_json(record)

    # -- a bar's orders ------------------------------------------------------------------------
    def replace(self, symbols: Iterable[str], bar_ts_ns: int) -> None:
        """New instructions for ``symbols`` at bar ``bar_ts_ns``: the orders of earlier bars
        still working there, and opening halves still waiting, are replaced (canceled,
        dropped). Those of this bar (a restart redoing it) stay. A symbol whose cancel the
        broker did not confirm is ``blocked`` until the next bar."""
        self.blocked = set()
        for symbol in symbols:
            for close, waiting in list(self.deferred.items()):
                if waiting.symbol == symbol and waiting.bar_ts_ns < bar_ts_ns:
                    self._drop(close, "replaced by a newer instruction")
            order_id, ts = self.working.get(symbol, (None, bar_ts_ns))
            if order_id is None or ts >= bar_ts_ns:
                continue
            del self.working[symbol]
            if order_id in self.ended:
                self.ended.discard(order_id)
            elif not self._cancel(order_id, symbol, "replaced by a newer instruction"):
                self.blocked.add(symbol)

    def send_all(self, intents: list[OrderIntent], held: dict[str, float]) -> None:
        """Send ``intents`` in order (``held``: shares per symbol at the broker); an opening
        half is kept until its closing half fills."""
        for intent in intents:
            if intent.symbol in self.blocked and intent.qty > 0:
                intent = dataclasses.replace(
                    intent, qty=0.0, reason="its earlier order's cancel is not confirmed"
                )
            if intent.after is not None and not self.dry_run and intent.qty > 0:
                self.deferred[intent.after] = intent
                self.journal.append("deferred", **intent.to_json())
                continue
            if intent.qty > 0 and held.get(intent.symbol, 0.0) != 0.0:
                for leg in self.legs.pop(intent.symbol, []):
                    self._cancel(leg, intent.symbol, "its position changes")
            self.send(intent)

    def forget(self) -> None:
        """Every order was canceled (the kill switch): nothing is working or waiting."""
        for close in list(self.deferred):
            self._drop(close, "the daily loss limit canceled every order")
        self.working.clear()
        self.legs.clear()
        self.blocked.clear()

    # -- flips ---------------------------------------------------------------------------------
    def on_update(self, event: str, client_order_id: str | None, order_id: str | None) -> None:
        """A trade update: a closing half's fill sends its opening half; its end unfilled
        drops it."""
        if event in ("fill", "canceled", "expired", "rejected", "replaced") and order_id:
            self.ended.add(order_id)
        if client_order_id not in self.deferred:
            return
        with self.lock:  # the bar's own thread may have dropped it meanwhile
            if client_order_id not in self.deferred:
                return
            if event == "fill":
                self._open(client_order_id)
            elif event in ("canceled", "expired", "rejected", "replaced"):
                self._drop(client_order_id, f"its closing order was {event}")

    def settle(self) -> None:
        """Opening halves whose closing half the broker reports filled (or ended) while no
        event said so: sent (or dropped)."""
        for close in list(self.deferred):
            try:
                order = self.broker.get_order_by_client_id(close)
            except BrokerError:
                continue  # not placed (yet): it keeps waiting
            if order.status == "filled":
                self._open(close)
            elif not order.is_open:
                self._drop(close, f"its closing order was {order.status}")

    # -- the broker ----------------------------------------------------------------------------
    def send(self, intent: OrderIntent) -> None:
        """Submit one intent (journalled before and after); a refusal is journalled, never
        raised."""
        coid = intent.client_order_id
        if intent.qty <= 0.0:
            self.stats["refused"] += 1
            self.journal.append("refused", **intent.to_json())
            log.info("bridge: %s %s refused (%s)", intent.side, intent.symbol, intent.reason)
            return
        if coid in self.known:
            self.stats["skipped"] += 1
            log.info("bridge: order %s already sent; not sending it again", coid)
            return
        if self.dry_run:
            self.journal.append("dry_run", **intent.to_json())
            log.info("DRY RUN: would %s %g %s %s (%s)", intent.side, intent.qty, intent.symbol,
                     intent.type, coid)  # fmt: skip
            return
        self.journal.append("intent", **intent.to_json())
        sent = time.monotonic()
        try:
            order = self.broker.submit_order(intent.symbol, intent.qty, **_order_args(intent))
        except DuplicateOrderError:
            self.known.add(coid)
            self.journal.append("submit", client_order_id=coid, status="duplicate")
            return
        except BrokerError as e:  # refused or unreachable: journalled, never fatal
            self.stats["errors"] += 1
            log.warning("bridge: order %s %s %g refused: %s", intent.symbol, intent.side,
                        intent.qty, e)  # fmt: skip
            self.journal.append(
                "submit", client_order_id=coid, error=str(e), status=getattr(e, "status", None)
            )
            if self.metrics is not None:
                self.metrics.order_submitted(time.monotonic() - sent, "rejected")
            return
        self.known.add(coid)
        self.stats["orders"] += 1
        self.working[intent.symbol] = (order.id, intent.bar_ts_ns)
        legs = [leg.id for leg in order.legs or ()]
        if legs:
            self.legs[intent.symbol] = legs
        if self.metrics is not None:
            self.metrics.order_submitted(time.monotonic() - sent, order.status)
        self.journal.append(
            "submit", client_order_id=coid, order_id=order.id, status=order.status, legs=legs
        )

    def _cancel(self, order_id: str, symbol: str, why: str) -> bool:
        """Cancel ``order_id`` if it is still working, and wait for the broker to confirm;
        journalled with the shares it had filled. True once the order is known to have ended
        (canceled, or filled or ended before)."""
        if self.dry_run:
            return True
        try:
            order = self.broker.get_order(order_id)
            if not order.is_open:
                return True
            self.broker.cancel_order(order_id)
            deadline = time.monotonic() + CANCEL_CONFIRM_S
            while order.is_open and time.monotonic() < deadline:
                order = self.broker.get_order(order_id)
                if order.is_open:
                    time.sleep(0.05)
        except BrokerError as e:  # it filled or ended meanwhile, or the broker is away
            log.warning("bridge: canceling %s order %s failed: %s", symbol, order_id, e)
            self.journal.append("error", where="cancel", order_id=order_id, error=str(e))
            return self._ended(order_id)
        log.info("bridge: canceled %s order %s (%s): %s", symbol, order_id, why, order.status)
        self.journal.append("cancel", symbol=symbol, order_id=order_id, why=why,
                            status=order.status, qty=getattr(order, "qty", None),
                            filled_qty=getattr(order, "filled_qty", None))  # fmt: skip
        return not order.is_open

    def _ended(self, order_id: str) -> bool:
        """Whether the broker reports ``order_id`` ended (False when it cannot be asked)."""
        try:
            return not self.broker.get_order(order_id).is_open
        except BrokerError:
            return False

    def _open(self, close: str) -> None:
        """Send the opening half waiting for ``close``, which filled completely."""
        intent = self.deferred.pop(close)
        self.send(intent if self.fit is None else self.fit(intent))

    def _drop(self, close: str, why: str) -> None:
        intent = self.deferred.pop(close)
        self.stats["refused"] += 1
        log.info("bridge: %s %s not opened: %s", intent.side, intent.symbol, why)
        self.journal.append("refused", **{**intent.to_json(), "reason": why})


def _order_args(intent: OrderIntent) -> dict[str, Any]:
    """The broker's ``submit_order`` keywords for ``intent``."""
    args: dict[str, Any] = {
        "side": intent.side, "type": intent.type, "time_in_force": intent.time_in_force,
        "client_order_id": intent.client_order_id,
    }  # fmt: skip
    for name in ("limit_price", "stop_price", "trail_percent", "take_profit", "stop_loss"):
        if getattr(intent, name) is not None:
            args[name] = getattr(intent, name)
    if intent.order_class:
        args["order_class"] = intent.order_class
    return args
