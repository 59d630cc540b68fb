"""From a strategy's last row to order intents: the bridge's sizing, risk and affordability,
by the engine's own rules (pure: no I/O, no strategy logic).

A target row (the last row of ``Signals.target``, or entries/exits stepped with
``signal_step_nb``) becomes, per symbol, the shares to hold, by the engine's own functions as
the backtest runs them with ``size_on="signal"``: sized on the equity marked at the bar's close
at the price the order asks (``order_px_nb``: its limit, its stop, or the close; ``want_nb``),
held to the broker's buying-power check (``afford_at_signal_nb``), then limited by the same
:class:`~barlab.engine.risk.RiskRules` (``risk_target_nb``).

The row's ``Signals.limit_price`` / ``stop_price`` / ``trail_stop`` make limit, stop,
stop_limit and trailing_stop orders (prices on the broker's tick); an entry carries the
attached exits of :class:`~barlab.live.exits.ExitRule` as a bracket or OTO order. A move from
long to short (or back) is two intents: ``close`` (the position) and ``open`` (the new one),
the second sent once the first filled (see :meth:`Planner.plan`). Every intent carries a
deterministic ``client_order_id``, so the same intent is never placed twice, also across
restarts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from barlab.engine.backtest import BacktestOptions, to_target
from barlab.engine.orders import order_px_nb, trailing_level_nb
from barlab.engine.risk import REASON_CASH, REASON_DAILY_LOSS_LIMIT, REASON_NAMES, REASON_NONE
from barlab.engine.risk_nb import risk_target_nb
from barlab.engine.sizing import afford_at_signal_nb, buying_power_nb, gross_nb, want_nb
from barlab.engine.targets import signal_step_nb
from barlab.errors import StrategyError
from barlab.live.exits import ExitRule, tick_price
from barlab.strategy import SIZE_TYPES, Signals


def client_order_id(
    *, strategy: str, params: dict[str, Any], symbol: str, bar_ts_ns: int, intent: str
) -> str:
    """A deterministic id (<= 128 characters, Alpaca's limit) for one order intent.

    Same strategy, parameters, symbol, bar start (ns, UTC) and intent (e.g. ``"target:1"`` or
    ``"flatten"``): same id. Example: ``"bl-sma_crossover-3f9a..."`` (strategy name, 32 hex).
    """
    key = json.dumps(
        [strategy, sorted(params.items()), symbol, int(bar_ts_ns), intent],
        sort_keys=True, default=str,
    )  # fmt: skip
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"bl-{strategy[:60]}-{digest}"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderIntent:
    """One order the bridge means to send: ``qty`` shares (> 0) on ``side`` ("buy"/"sell"),
    of ``type`` (market: the next open; limit, stop, stop_limit, trailing_stop with
    ``trail_percent``, e.g. 2.0 for 2 %), decided at the close of the bar starting
    ``bar_ts_ns``. ``order_class`` "bracket"/"oto" attaches ``take_profit`` (a limit price)
    and/or ``stop_loss`` (a stop price); ``after``: the client order id of the closing order
    this opening order waits for (a flip)."""

    client_order_id: str
    symbol: str
    side: str
    qty: float
    bar_ts_ns: int
    target: float
    requested_qty: float
    """Shares the sizing asked for before risk and affordability (``qty`` may be smaller)."""
    reason: str = ""
    """Why ``qty`` is below ``requested_qty`` (a RiskRules reason name), "" when it is not."""
    type: str = "market"
    limit_price: float | None = None
    stop_price: float | None = None
    time_in_force: str = "day"
    trail_percent: float | None = None
    order_class: str = ""
    take_profit: float | None = None
    stop_loss: float | None = None
    after: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "client_order_id": self.client_order_id, "symbol": self.symbol, "side": self.side,
            "qty": self.qty, "bar_ts_ns": self.bar_ts_ns, "target": self.target,
            "requested_qty": self.requested_qty, "reason": self.reason, "type": self.type,
            "limit_price": self.limit_price, "stop_price": self.stop_price,
            "time_in_force": self.time_in_force, "trail_percent": self.trail_percent,
            "order_class": self.order_class, "take_profit": self.take_profit,
            "stop_loss": self.stop_loss, "after": self.after,
        }  # fmt: skip

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> OrderIntent:
        """The intent of a journal record (its ``to_json()`` fields)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """A strategy's instructions for the window's last bar, per symbol (NaN: none):
    ``target``, and the order prices ``limit``/``stop`` (dollars) and ``trail`` (a fraction)
    of ``Signals``; its ``size_type`` and ``time_in_force``."""

    target: np.ndarray
    limit: np.ndarray
    stop: np.ndarray
    trail: np.ndarray
    size_type: str = "equal"
    time_in_force: str = "gtc"

    @classmethod
    def market(cls, target: np.ndarray, size_type: str = "equal") -> Row:
        """Market orders only: no prices."""
        nan = np.full(len(target), np.nan)
        return cls(target=target, limit=nan, stop=nan, trail=nan, size_type=size_type)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountView:
    """What the bridge knows of the account at a bar's close.

    ``positions`` are signed shares per symbol (the bars' column order); ``closes`` the last
    known close per symbol (dollars, NaN: never traded); ``cash`` and ``buying_power`` dollars
    from the broker; ``halted``: the daily loss limit was hit this session; ``stopped``: the
    maximum drawdown was hit.
    """

    positions: np.ndarray
    closes: np.ndarray
    cash: float
    buying_power: float
    halted: bool = False
    stopped: bool = False
    reserved: float = 0.0
    """Dollars of buying power open orders already hold at the broker: not for new orders."""

    def power(self, margin: float) -> float:
        """Buying power by the engine's rule (Alpaca's, engine/sizing.py): ``margin`` times the
        equity less the gross exposure, before what open orders hold (dollars)."""
        return buying_power_nb(self.equity, gross_nb(self.positions, self.closes), margin)

    @property
    def equity(self) -> float:
        """Cash plus positions marked at the closes, summed as the kernel sums it (dollars)."""
        value = self.cash
        for qty, price in zip(self.positions, self.closes, strict=True):
            if qty != 0.0:
                value += qty * price
        return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Planner:
    """Turns target rows into order intents for one strategy and account.

    Parameters
    ----------
    strategy, params : str, dict
        Name and parameters, for the client order ids.
    symbols : tuple of str
        The bars' column order.
    options : BacktestOptions
        Sizing, costs and risk rules: the same object the parity backtest runs with.
    market_tif : str
        Time in force of market orders, e.g. ``"day"`` (resting orders take the strategy's
        ``Signals.time_in_force``; a bracket is ``gtc``, as attached exits outlive a session).
    """

    strategy: str
    params: dict[str, Any]
    symbols: tuple[str, ...]
    options: BacktestOptions
    market_tif: str = "day"
    _caps: np.ndarray = field(init=False, repr=False)
    _exits: ExitRule | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_caps", self.options.risk.position_caps(self.symbols))
        object.__setattr__(self, "_exits", ExitRule.of(self.options))

    @property
    def exits(self) -> ExitRule | None:
        return self._exits

    def plan(
        self,
        row: Row | np.ndarray,
        account: AccountView,
        *,
        bar_ts_ns: int,
        size_type: str = "equal",
        atr: np.ndarray | None = None,
    ) -> list[OrderIntent]:
        """Intents for one :class:`Row` (or a row of market targets sized as ``size_type``),
        sells before buys. Symbol by symbol, as the kernel does at a signal: the shares an
        order adds must fit in what is left of the buying power (the kernel's, Alpaca's rule:
        ``margin`` times the equity less the gross exposure; closing orders free none until
        they fill), then the risk rules apply. Intents whose ``qty`` is 0 were refused
        (``reason`` says why): the bridge journals them and sends nothing. ``atr``: per
        symbol at this bar, for ATR exits."""
        if not isinstance(row, Row):
            row = Row.market(np.asarray(row, dtype=float), size_type)
        sizing = SIZE_TYPES.index(row.size_type)
        margin = float(getattr(self.options, "margin", 1.0))
        power = max(0.0, account.power(margin) - account.reserved)
        found: list[OrderIntent] = []
        for j in range(len(self.symbols)):
            intents, power = self._one(j, row, account, bar_ts_ns, sizing, power, atr)
            found += intents
        return sorted(found, key=lambda i: (i.side != "sell", self.symbols.index(i.symbol)))

    def flatten(self, account: AccountView, *, bar_ts_ns: int) -> list[OrderIntent]:
        """The daily loss limit's kill switch: an intent closing every position."""
        out = []
        for j, held in enumerate(account.positions):
            if held != 0.0:
                symbol, qty = self.symbols[j], abs(float(held))
                coid = self._coid(symbol, bar_ts_ns, "flatten")
                out.append(
                    OrderIntent(
                        client_order_id=coid,
                        symbol=symbol,
                        side="sell" if held > 0 else "buy",
                        qty=qty,
                        bar_ts_ns=bar_ts_ns,
                        target=0.0,
                        requested_qty=qty,
                        reason=REASON_NAMES[REASON_DAILY_LOSS_LIMIT],
                    )
                )
        return out

    def afford(
        self, want: float, held: float, last: float, limit: float, stop: float, power: float
    ) -> tuple[float, float]:
        """The kernel's buying-power check at submit (``afford_at_signal_nb``) with this
        planner's costs and buffer: the position to ask for on a move from ``held`` to
        ``want`` shares that fits in ``power`` dollars, and the power left."""
        o, c = self.options, self.options.costs
        return afford_at_signal_nb(
            want, held, last, limit, stop, o.buying_power_buffer, power, c.commission_rate,
            c.commission_per_share, c.commission_per_order, c.commission_min,
            math.inf if c.commission_max is None else c.commission_max, o.fractional,
        )  # fmt: skip

    def _one(
        self,
        j: int,
        row: Row,
        acct: AccountView,
        ts: int,
        sizing: int,
        power: float,
        atr: np.ndarray | None,
    ) -> tuple[list[OrderIntent], float]:
        """Symbol ``j``'s intents for its instruction in ``row`` (none: nothing to do; two: a
        flip), and the power left."""
        tg, last = float(row.target[j]), float(acct.closes[j])
        if math.isnan(tg) or math.isnan(last):
            return [], power  # no instruction, or no price to size it at (as the kernel)
        o, c = self.options, self.options.costs
        lim, stp, trl = float(row.limit[j]), float(row.stop[j]), float(row.trail[j])
        side_tg = 1 if tg > 0 else -1
        if not math.isnan(trl):  # a trailing order is sized at its stop from the close
            stp = trailing_level_nb(side_tg, last, last, trl)
        px = order_px_nb(last, lim, stp, side_tg, c.slippage_bps)
        asked = want_nb(
            sizing, tg, acct.equity, o.size_pct / len(self.symbols), px, c.commission_rate,
            c.commission_per_share, o.fractional,
        )  # fmt: skip
        pos = acct.positions
        # checked as the kernel checks it: a trailing order at the close (no price yet)
        trailing = not math.isnan(trl)
        want, power = self.afford(
            asked,
            pos[j],
            last,
            math.nan if trailing else lim,
            math.nan if trailing else stp,
            power,
        )
        if want == pos[j] and asked == pos[j]:
            return [], power
        new_pos, reason = risk_target_nb(
            j, want, pos, acct.closes, px, REASON_CASH if want != asked else REASON_NONE,
            o.allow_short, self._caps[j],
            math.inf if o.risk.max_portfolio_value is None else o.risk.max_portfolio_value,
            o.risk.kernel_args(self.symbols)[2], acct.halted, acct.stopped, o.fractional,
        )  # fmt: skip
        side = 1 if asked > pos[j] else -1
        qty = abs(new_pos - pos[j]) if np.sign(new_pos - pos[j]) == side else 0.0
        symbol, held = self.symbols[j], float(pos[j])
        base = {
            "symbol": symbol, "side": "buy" if side == 1 else "sell", "bar_ts_ns": ts,
            "target": tg, "reason": REASON_NAMES[reason],
            **self._prices(lim, stp if math.isnan(trl) else math.nan, trl, row.time_in_force),
        }  # fmt: skip
        # a flip is two orders. api/alpaca-trading.md §8, Shorting: "an order that would flip
        # a position from long to short in one go returned 403"; and while a sell holds the
        # shares, a second sell is refused with 403 "insufficient qty available" (Selling
        # more than you hold). So the opening half goes only once the closing half filled.
        if qty > 0 and held != 0.0 and np.sign(new_pos) == -np.sign(held):
            close = OrderIntent(
                client_order_id=self._coid(symbol, ts, "close"), qty=abs(held),
                requested_qty=abs(held), **base,
            )  # fmt: skip
            opening = OrderIntent(
                client_order_id=self._coid(symbol, ts, "open"), qty=abs(float(new_pos)),
                requested_qty=float(abs(asked)), after=close.client_order_id, **base,
            )  # fmt: skip
            return [close, self._with_exits(opening, j, last, atr)], power
        intent = OrderIntent(
            client_order_id=self._coid(symbol, ts, f"target:{tg!r}"), qty=float(qty),
            requested_qty=float(abs(asked - pos[j])), **base,
        )  # fmt: skip
        if held == 0.0 and qty > 0:
            intent = self._with_exits(intent, j, last, atr)
        return [intent], power

    def _prices(self, lim: float, stp: float, trl: float, tif: str) -> dict[str, Any]:
        """An instruction's order type and prices (on the broker's tick) as intent fields."""
        if not math.isnan(trl):
            return {"type": "trailing_stop", "trail_percent": 100.0 * trl, "time_in_force": tif}
        if math.isnan(lim) and math.isnan(stp):
            return {"type": "market", "time_in_force": self.market_tif}
        kind = "limit" if math.isnan(stp) else "stop" if math.isnan(lim) else "stop_limit"
        return {
            "type": kind, "time_in_force": tif,
            "limit_price": None if math.isnan(lim) else tick_price(lim),
            "stop_price": None if math.isnan(stp) else tick_price(stp),
        }  # fmt: skip

    def _with_exits(
        self, intent: OrderIntent, j: int, ref: float, atr: np.ndarray | None
    ) -> OrderIntent:
        """An entry with the attached exits, measured from ``ref`` (the signal bar's close)."""
        if self._exits is None:
            return intent
        atr_j = math.nan if atr is None else float(atr[j])
        stop, target = self._exits.levels(1 if intent.side == "buy" else -1, ref, atr_j)
        if stop is None and target is None:
            return intent
        order_class = "bracket" if stop is not None and target is not None else "oto"
        tif = "gtc" if intent.type == "market" else intent.time_in_force
        return dataclasses.replace(
            intent, order_class=order_class, take_profit=target, stop_loss=stop,
            time_in_force=tif,
        )  # fmt: skip

    def _coid(self, symbol: str, ts: int, intent: str) -> str:
        return client_order_id(
            strategy=self.strategy, params=self.params, symbol=symbol, bar_ts_ns=ts, intent=intent
        )


def last_row(
    strategy: Any, signals: Any, shape: tuple[int, int], state: np.ndarray
) -> tuple[Row, np.ndarray]:
    """The instructions of ``signals``' last bar as a :class:`Row`, and the new entry/exit
    state per symbol (``state``: the side held after the previous bar, as
    ``signals_to_target_nb`` walks it). StrategyError when the signals are not Signals."""
    if not isinstance(signals, Signals):
        raise StrategyError(
            f"{strategy.label()}.signals() must return Signals, got {type(signals).__name__}"
        )
    signals.check(shape)
    prices = {}
    for name, key in (("limit_price", "limit"), ("stop_price", "stop"), ("trail_stop", "trail")):
        given = getattr(signals, name, None)
        prices[key] = np.full(shape[1], np.nan) if given is None else np.array(given[-1], float)
    new_state = state
    if signals.target is not None:
        target = to_target(signals, shape)[-1].copy()
    else:
        arrays = (signals.entries, signals.exits, signals.short_entries, signals.short_exits)
        target, new_state = np.full(shape[1], np.nan), state.copy()
        for j in range(shape[1]):
            flags = [bool(a[-1, j]) if a is not None else False for a in arrays]
            new = signal_step_nb(int(state[j]), *flags)
            if new != state[j]:
                target[j], new_state[j] = float(new), new
    row = Row(
        target=target, size_type=signals.size_type, time_in_force=signals.time_in_force,
        **prices,
    )  # fmt: skip
    return row, new_state
