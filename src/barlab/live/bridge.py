"""LiveBridge: the same Strategy and the same RiskRules, bar by bar, against a broker.

On each closed bar time the bridge extends its rolling window (:mod:`barlab.live.window`),
calls ``strategy.signals(window)``, takes the last row, sizes and limits it by the engine's
rules (:mod:`barlab.live.orders`) on the account the broker reports, and sends its orders
(market, limit, stop, stop_limit, trailing_stop; entries with their attached exits as bracket
or OTO orders; flips as a closing then an opening order) with deterministic client order ids
through its order desk (:mod:`barlab.live.desk`), which also cancels what a newer instruction
replaces; everything it sees and does goes to an append-only journal
(:mod:`barlab.live.journal`). No strategy logic lives here.

The rules it shares with the backtest (``size_on="signal"``, see
:func:`bridge_options`): an instruction decided at bar t's close is sized on the equity
marked at that close (cash from the broker, positions from the broker, marked at the window's
closes) and the close as the price, and fills at bar t+1's open; once equity at a close is
``daily_loss_limit`` below the session's start (the broker's ``last_equity``), the kill switch
cancels every open order, closes every position at the next open and refuses any order that
adds exposure for the rest of the session (the backtest's ``daily_loss_flatten``).

Restarts: a bar time with a ``bar`` record was fully handled and is never redone; an intent
whose client order id the journal or the broker already knows is never sent again. Bars that
closed after the journal's last bar while the bridge was down are stepped through the
strategy's entry/exit state (:meth:`LiveBridge.process` with ``trade=False``) without sending
orders for them, so the state is the uninterrupted run's at the next live bar.

Several strategies on one account (:func:`barlab.combine`): each child's target lasts until
that child changes it, which may be longer ago than the window reaches, so the bridge carries
the children's targets itself (:class:`~barlab.combined.LiveState`, stepped by
:meth:`~barlab.combined.Combined.step` on each bar and journalled with it), as it carries an
entries/exits strategy's side.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from barlab.combined import Combined, LiveState
from barlab.engine.backtest import BacktestOptions, session_ids
from barlab.engine.risk import REASON_CASH, REASON_NAMES
from barlab.errors import (
    BrokerError,
    BrokerRateLimitError,
    BrokerUnavailableError,
    ConfigError,
)
from barlab.live.desk import CANCEL_CONFIRM_S, OrderDesk
from barlab.live.exits import RunningAtr, check_live_exits
from barlab.live.journal import Journal, JournalState
from barlab.live.marketdata import Bar, MarketDataStore
from barlab.live.orders import AccountView, OrderIntent, Planner, Row, last_row
from barlab.live.window import BarAssembler, BarWindow, SessionClock
from barlab.strategy import Strategy

log = logging.getLogger(__name__)

ACCOUNT_ATTEMPTS = 12
"""Tries to read the account at a bar (about a minute of backoff in all) before giving up."""


def bridge_options(options: BacktestOptions) -> BacktestOptions:
    """The options the bridge and its parity backtest share: sized on the signal bar's close,
    and a daily loss limit that flattens (the kill switch). Stop-loss and take-profit exits
    (fractions or ATR multiples) go out as bracket legs; a trailing exit, the optimistic fill
    policy and volume participation cannot be run live as backtested: a ConfigError."""
    check_live_exits(options)
    if options.costs.max_participation is not None:
        raise ConfigError("the live bridge sends whole orders; unset max_participation")
    risk = dataclasses.replace(options.risk, daily_loss_flatten=True)
    return dataclasses.replace(options, size_on="signal", risk=risk)


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeConfig:
    """How the bridge trades.

    Attributes
    ----------
    options : BacktestOptions
        Sizing, costs and risk rules, as :func:`bridge_options` returns them.
    window_bars : int
        Bar times the rolling window keeps, e.g. 200 (see :mod:`barlab.live.window`).
    dry_run : bool
        Journal and log the orders it would send; send none, cancel none.
    time_in_force : str
        Of market orders: ``"day"`` (an order sent after the close works the next session).
        Limit, stop and trailing stop orders take the strategy's ``Signals.time_in_force``;
        entries with attached exits go out ``gtc``, as the exits outlive a session.
    regular_hours_only : bool
        Bars outside regular NYSE sessions (pre-market, after hours) are ignored, as a
        backtest over regular-hours bars never sees them.
    """

    options: BacktestOptions
    window_bars: int
    dry_run: bool = False
    time_in_force: str = "day"
    regular_hours_only: bool = True

    def __post_init__(self) -> None:
        if self.options.size_on != "signal":
            raise ConfigError("BridgeConfig.options must come from bridge_options(options)")
        if self.window_bars < 2:
            raise ConfigError(f"window_bars must be at least 2, got {self.window_bars}")


class LiveBridge:
    """Runs ``strategy`` on closed bars against ``broker``, journalling to ``journal``.

    Parameters
    ----------
    strategy : Strategy
        e.g. ``SmaCrossover(fast=10, slow=50)``.
    broker : AlpacaBroker
        Or anything with its methods (get_account, list_positions, list_orders, submit_order,
        cancel_all_orders, get_order_by_client_id).
    symbols : tuple of str
    timeframe : str
        e.g. ``"1m"``.
    journal : Journal
    config : BridgeConfig
    source : str
        Labels the window's Bars (``"demo"`` in a replay of the demo market).
    metrics : BridgeMetrics, optional
        :class:`barlab.live.ops.BridgeMetrics` (or anything with its methods): equity, daily
        P&L, positions, halt, order submits and statuses are reported to it.
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        broker: Any,
        symbols: tuple[str, ...],
        timeframe: str,
        journal: Journal,
        config: BridgeConfig,
        source: str = "alpaca",
        metrics: Any = None,
    ) -> None:
        self.strategy = strategy
        self.metrics = metrics
        self.broker = broker
        self.symbols = tuple(symbols)
        self.journal = journal
        self.config = config
        self.window = BarWindow(
            self.symbols, timeframe=timeframe, size=config.window_bars, source=source
        )
        self.assembler = BarAssembler(self.symbols)
        self.clock = SessionClock(timeframe)
        self.planner = Planner(
            strategy=strategy.label(), params=strategy.get_params(), symbols=self.symbols,
            options=config.options, market_tif=config.time_in_force,
        )  # fmt: skip
        self.signal_state = np.zeros(len(self.symbols), dtype=np.int64)
        self.combined_state: LiveState | None = (
            strategy.live_state(len(self.symbols)) if isinstance(strategy, Combined) else None
        )
        """A combination's children's targets after the last bar (None for one strategy)."""
        self.session = -1
        self.halted = False
        self.stopped = False
        self.peak = -math.inf
        self.done: set[int] = set()
        self.resumed_at: int | None = None
        """The journal's last bar time on a restart: later bars missed are stepped through."""
        self.market_data: MarketDataStore | None = None
        """Each symbol's latest quote, last trades and bar while a session runs (the streams of
        ``strategy.market_data``); None outside a session."""
        self.stats = {"bars": 0, "orders": 0, "refused": 0, "errors": 0, "skipped": 0,
                      "missed": 0}  # fmt: skip
        self.desk = OrderDesk(
            broker, journal, dry_run=config.dry_run, stats=self.stats, metrics=metrics,
            fit=self._fit_opening,
        )  # fmt: skip
        exits = self.planner.exits
        self.atr = (
            RunningAtr(len(self.symbols), exits.atr_window)
            if exits is not None and exits.needs_atr
            else None
        )
        """The ATR of ATR exits, over every bar the bridge saw."""

    @property
    def known(self) -> set[str]:
        """Client order ids the broker has: never sent again."""
        return self.desk.known

    # -- start ---------------------------------------------------------------------------------
    def resume(self, state: JournalState) -> None:
        """Take up where an earlier run's journal stopped: bars done, intents decided, the
        signal state and halt flags of its last bar."""
        self.done = set(state.bars)
        self.desk.restore(state)
        last = state.last_bar
        if last is not None:
            self.resumed_at = int(last["ts_ns"])
            self.signal_state = np.array(last["signal_state"], dtype=np.int64)
            if self.combined_state is not None and last.get("combined_state"):
                self.combined_state = LiveState.from_json(last["combined_state"])
            self.session = int(last["session"])
            self.halted, self.stopped = bool(last["halted"]), bool(last["stopped"])
            self.peak = float(last["peak"])
        self._check_unconfirmed(state)

    def _check_unconfirmed(self, state: JournalState) -> None:
        """Intents journalled without a broker answer (a crash mid-submit): known when the
        broker has them, else free to be sent again if their bar is redone."""
        for coid in set(state.intents) - state.answered:
            if state.intents[coid]["kind"] == "dry_run":
                continue
            try:
                order = self.broker.get_order_by_client_id(coid)
            except BrokerError:
                continue
            if order.order_class in ("bracket", "oto"):  # its legs come with nested=true
                order = self.broker.get_order(order.id, nested=True)
            self.known.add(coid)
            intent = state.intents[coid]
            self.desk.working[intent["symbol"]] = (order.id, int(intent["bar_ts_ns"]))
            legs = [leg.id for leg in order.legs or ()]
            if legs:
                self.desk.legs[intent["symbol"]] = legs
            self.journal.append(
                "submit", client_order_id=coid, order_id=order.id, status=order.status,
                found_on="reconcile", legs=legs,
            )  # fmt: skip

    def reconcile(self) -> dict[str, Any]:
        """Read positions and open orders from the broker and journal them; the open orders'
        client order ids count as sent."""
        positions = {p.symbol: p.qty for p in self.broker.list_positions()}
        orders = self.broker.list_orders(status="open", limit=500)
        self.known.update(o.client_order_id for o in orders)
        record = self.journal.append(
            "reconcile", positions=positions,
            open_orders=[{"client_order_id": o.client_order_id, "symbol": o.symbol,
                          "side": o.side, "qty": o.qty, "status": o.status} for o in orders],
        )  # fmt: skip
        log.info("bridge reconciled: %d positions, %d open orders", len(positions), len(orders))
        return record

    # -- bars ----------------------------------------------------------------------------------
    def on_bar(self, bar: Bar) -> None:
        """One bar from the feed: acts on every bar time it completes."""
        for ts, bars in self.assembler.add(bar):
            self.process(ts, bars)

    def flush(self, before_ns: int) -> None:
        """Act on the incomplete bar times that start before ``before_ns`` (a symbol that did
        not trade sends no bar)."""
        for ts, bars in self.assembler.flush(before_ns):
            self.process(ts, bars)

    def warm(self, bars: list[Bar]) -> None:
        """History before the stream: into the window, no orders."""
        for bar in sorted(bars, key=lambda b: b.ts_ns):
            for ts, group in self.assembler.add(bar):
                self.process(ts, group, trade=False)
        for ts, group in self.assembler.flush(2**62):
            self.process(ts, group, trade=False)

    def process(self, ts: int, bars: list[Bar], *, trade: bool = True) -> None:
        """Bar time ``ts`` closed with ``bars``: extend the window, then (unless the journal
        says it was done) act on it and journal it."""
        if self.window.last_ts is not None and ts <= self.window.last_ts:
            return
        if self.config.regular_hours_only and not self.clock.regular(ts):
            return
        self.window.push(ts, bars)
        if self.atr is not None:
            _, high, low, close, _ = self.window.last_row
            self.atr.update(high, low, close)
        if ts in self.done:
            return
        if trade:
            self._act(ts)
        elif self.resumed_at is not None and ts > self.resumed_at:
            self._step_missed(ts)

    def _step_missed(self, ts: int) -> None:
        """A bar that closed while the bridge was down: the strategy's state steps through it;
        no order is sent for it (its time is past)."""
        self._last_row()
        self.journal.append(
            "bar", ts_ns=ts, missed=True, equity=None, positions=None,
            signal_state=self.signal_state.tolist(), halted=self.halted, stopped=self.stopped,
            peak=self.peak, session=self.session, **self._carried(),
        )  # fmt: skip
        self.done.add(ts)
        self.stats["missed"] += 1

    def _account(self) -> tuple[Any, dict[str, float]]:
        """The broker's account and positions; a rate limit or an outage is waited out (with
        backoff, journalled) rather than skipping the bar. Auth and other errors propagate."""
        for attempt in range(ACCOUNT_ATTEMPTS):
            try:
                account = self.broker.get_account()
                return account, {p.symbol: p.qty for p in self.broker.list_positions()}
            except (BrokerRateLimitError, BrokerUnavailableError) as e:
                if attempt + 1 == ACCOUNT_ATTEMPTS:
                    raise
                wait = min(0.1 * 2**attempt, 10.0)
                log.warning("bridge: reading the account failed (%s); again in %.1f s", e, wait)
                self.journal.append("error", where="account", error=str(e), wait_s=wait)
                time.sleep(wait)
        raise AssertionError("unreachable")

    def _act(self, ts: int) -> None:
        with self.desk.lock:
            self.desk.settle()
            self._act_locked(ts)

    def _act_locked(self, ts: int) -> None:
        # the orders a newer instruction replaces are canceled, and the cancels confirmed,
        # before the account is read: a remainder that fills meanwhile (a partially filled
        # order) is in the positions the new orders are sized from, never on top of them
        row, atr = self._last_row()
        instructed = [s for s, tg in zip(self.symbols, row.target, strict=True) if not np.isnan(tg)]
        self.desk.replace(instructed, ts)
        account, held = self._account()
        positions = np.array([float(held.get(s, 0.0)) for s in self.symbols])
        session = int(session_ids(np.array([ts], dtype=np.int64))[0])
        if session != self.session:
            self.session, self.halted = session, False
        view = AccountView(
            positions=positions, closes=self.window.last_close.copy(), cash=account.cash,
            buying_power=account.buying_power,
        )  # fmt: skip
        view = dataclasses.replace(view, reserved=self._reserved(view))
        equity = view.equity
        risk = self.config.options.risk
        start = account.last_equity if account.last_equity is not None else equity
        hit = risk.daily_loss_limit is not None and equity <= start - risk.daily_loss_limit
        kill = hit and not self.halted
        self.halted = self.halted or hit
        self.peak = max(self.peak, equity)
        if risk.max_drawdown is not None and equity <= self.peak * (1.0 - risk.max_drawdown):
            self.stopped = True
        # an order from a session's last bar fills in the next session, where the day's loss
        # halt no longer holds (as in the backtest); the kill switch's closing orders still go
        halted = self.halted and not self.clock.last_of_session(ts)
        view = dataclasses.replace(view, halted=halted, stopped=self.stopped)
        if self.metrics is not None:
            self._report(equity, start, held)
        intents: list[OrderIntent] = []
        if kill:
            intents += self._kill_switch(ts, view, equity, start)
            row.target[positions != 0.0] = np.nan  # those close at the next open
        intents += self.planner.plan(row, view, bar_ts_ns=ts, atr=atr)
        self.desk.send_all(intents, dict(zip(self.symbols, positions.tolist(), strict=True)))
        self.journal.append(
            "bar", ts_ns=ts, equity=equity, session_start_equity=start,
            positions=positions.tolist(), signal_state=self.signal_state.tolist(),
            halted=self.halted, stopped=self.stopped, peak=self.peak, session=self.session,
            **self._carried(),
        )  # fmt: skip
        self.done.add(ts)
        self.stats["bars"] += 1

    def _reserved(self, view: AccountView) -> float:
        """Dollars of buying power the broker holds for open orders (the remainder of a
        partially filled order, a resting order of an earlier bar): what its ``buying_power``
        is below the engine's rule (margin x equity less the gross exposure), which new
        exposure may then not use. Differences below a cent are rounding: 0."""
        gap = view.power(float(self.config.options.margin)) - view.buying_power
        return gap if gap > 0.01 else 0.0

    def _fit_opening(self, intent: OrderIntent) -> OrderIntent:
        """A flip's opening half, due now that its closing half filled, cut to the buying
        power the broker reports now (at the check price of the window's last close, as the
        planner sizes). The closing half may have filled in parts over several bars, while
        other orders used buying power: sent as planned, the broker would refuse it. As
        planned when it fits (always when the close fills at once) or the account is not
        readable."""
        try:
            power = self.broker.get_account().buying_power
        except BrokerError as e:
            log.warning("bridge: reading the account for %s failed: %s", intent.symbol, e)
            return intent
        side = 1.0 if intent.side == "buy" else -1.0
        last = float(self.window.last_close[self.symbols.index(intent.symbol)])
        nan = math.nan
        trailing = intent.type == "trailing_stop"
        limit = nan if trailing or intent.limit_price is None else intent.limit_price
        stop = nan if trailing or intent.stop_price is None else intent.stop_price
        want, _ = self.planner.afford(side * intent.qty, 0.0, last, limit, stop, power)
        qty = abs(float(want))
        if qty >= intent.qty:
            return intent
        log.info("bridge: %s %s opening half cut %g -> %g to the buying power left",
                 intent.side, intent.symbol, intent.qty, qty)  # fmt: skip
        return dataclasses.replace(intent, qty=qty, reason=REASON_NAMES[REASON_CASH])

    def _report(self, equity: float, start: float, held: dict[str, float]) -> None:
        m = self.metrics
        m.set_equity(equity)
        m.set_daily_pnl(equity - start)
        m.set_positions({s: q for s, q in held.items() if s in self.symbols})
        m.set_halted(self.halted or self.stopped)

    def _last_row(self) -> tuple[Row, np.ndarray | None]:
        """The strategy's instructions for the window's last bar (stepping the entry/exit
        state), and the ATR there when exits need it."""
        window = self.window.bars()
        atr = None if self.atr is None else self.atr.value.copy()
        if isinstance(self.strategy, Combined) and self.combined_state is not None:
            target, self.combined_state = self.strategy.step(window, self.combined_state)
            return Row.market(target, "weight"), atr
        row, self.signal_state = last_row(
            self.strategy, self.strategy.signals(window), window.close.shape, self.signal_state
        )
        return row, atr

    def _carried(self) -> dict[str, Any]:
        """A combination's state for the journal's bar record (nothing for one strategy)."""
        if self.combined_state is None:
            return {}
        return {"combined_state": self.combined_state.to_json()}

    # -- orders --------------------------------------------------------------------------------
    def _kill_switch(
        self, ts: int, view: AccountView, equity: float, start: float
    ) -> list[OrderIntent]:
        limit = self.config.options.risk.daily_loss_limit
        log.warning(
            "daily loss limit hit: equity %.2f <= session start %.2f - %.2f; cancelling all "
            "orders, flattening, halting for the session", equity, start, limit,
        )  # fmt: skip
        self.journal.append(
            "kill_switch", ts_ns=ts, equity=equity, session_start_equity=start, limit=limit
        )
        if not self.config.dry_run:
            try:
                self.broker.cancel_all_orders()
                view = self._after_cancels(view)
            except BrokerError as e:
                log.error("kill switch: cancelling all orders failed: %s", e)
                self.journal.append("error", where="cancel_all_orders", error=str(e))
        self.desk.forget()
        return self.planner.flatten(view, bar_ts_ns=ts)

    def _after_cancels(self, view: AccountView) -> AccountView:
        """``view`` with the positions the broker holds once its open orders are canceled
        (confirmed, or :data:`CANCEL_CONFIRM_S` waited): a remainder that filled before its
        cancel landed is closed with the rest, never left over."""
        deadline = time.monotonic() + CANCEL_CONFIRM_S
        while self.broker.list_orders(status="open") and time.monotonic() < deadline:
            time.sleep(0.05)
        _, held = self._account()
        positions = np.array([float(held.get(s, 0.0)) for s in self.symbols])
        return dataclasses.replace(view, positions=positions)

    def on_trade_update(self, update: Any) -> None:
        """A trade_updates event: fills are journalled with price, qty and position."""
        order = update.order
        record = {
            "event": update.event, "client_order_id": update.client_order_id,
            "order_id": update.order_id, "symbol": order.get("symbol"),
            "side": order.get("side"), "status": order.get("status"),
            "price": None if update.price is None else float(update.price),
            "qty": None if update.qty is None else float(update.qty),
            "position_qty": None if update.position_qty is None else float(update.position_qty),
            "timestamp_ns": update.timestamp_ns,
        }  # fmt: skip
        kind = "fill" if update.event in ("fill", "partial_fill") else "update"
        self.journal.append(kind, **record)
        self.desk.on_update(update.event, update.client_order_id, update.order_id)
        if self.metrics is not None and update.event != "new":
            self.metrics.order_status(str(order.get("status") or update.event))
