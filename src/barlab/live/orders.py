"""From a strategy's last row to order intents: the bridge's sizing, risk and affordability,
by the engine's own rules (pure: no I/O, no strategy logic).

A target row (the last row of ``Signals.target``, or entries/exits stepped with
:func:`barlab.engine.kernel.signal_step_nb`) becomes, per symbol, the shares to hold, by the
kernel's own functions as the backtest runs them with ``size_on="signal"``: sized on the equity
marked at the bar's close with the close as the price (:func:`~barlab.engine.kernel.want_nb`),
held to the broker's buying-power check (:func:`~barlab.engine.kernel.afford_at_signal_nb`,
on :func:`~barlab.engine.costs.affordable_qty_nb`), then limited by the same
:class:`~barlab.engine.risk.RiskRules` (:func:`~barlab.engine.kernel.risk_target_nb`). Every
intent carries a deterministic ``client_order_id``, so the same intent is never placed twice,
also across restarts.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from barlab.engine.backtest import BacktestOptions, to_target
from barlab.engine.orders import order_px_nb
from barlab.engine.risk import REASON_CASH, REASON_DAILY_LOSS_LIMIT, REASON_NAMES, REASON_NONE
from barlab.engine.risk_nb import risk_target_nb
from barlab.engine.sizing import afford_at_signal_nb, want_nb
from barlab.engine.targets import signal_step_nb
from barlab.errors import StrategyError
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
    """One order the bridge means to send: ``qty`` shares (> 0) on ``side`` ("buy"/"sell")
    at the market (the next open), decided at the close of the bar starting ``bar_ts_ns``."""

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

    def to_json(self) -> dict[str, Any]:
        return {
            "client_order_id": self.client_order_id, "symbol": self.symbol, "side": self.side,
            "qty": self.qty, "bar_ts_ns": self.bar_ts_ns, "target": self.target,
            "requested_qty": self.requested_qty, "reason": self.reason, "type": self.type,
            "limit_price": self.limit_price, "stop_price": self.stop_price,
            "time_in_force": self.time_in_force,
        }  # fmt: skip


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
    """

    strategy: str
    params: dict[str, Any]
    symbols: tuple[str, ...]
    options: BacktestOptions
    _caps: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_caps", self.options.risk.position_caps(self.symbols))

    def plan(
        self, target: np.ndarray, account: AccountView, *, bar_ts_ns: int, size_type: str = "equal"
    ) -> list[OrderIntent]:
        """Intents for one row of targets (NaN: no instruction) sized as ``size_type``
        (``Signals.size_type``), sells before buys. Symbol by symbol, as the kernel does at a
        signal: the shares an order adds must fit in what is left of the buying power (the
        smaller of the broker's cash and buying power; sells free none until they fill), then
        the risk rules apply. Intents whose ``qty`` is 0 were refused (``reason`` says why):
        the bridge journals them and sends nothing."""
        sizing = SIZE_TYPES.index(size_type)
        power = max(0.0, min(account.cash, account.buying_power))
        found = []
        for j, tg in enumerate(target):
            intent, power = self._one(j, float(tg), account, bar_ts_ns, sizing, power)
            if intent is not None:
                found.append(intent)
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

    def _one(
        self, j: int, tg: float, acct: AccountView, ts: int, sizing: int, power: float
    ) -> tuple[OrderIntent | None, float]:
        """Symbol ``j``'s intent for target ``tg`` (None: nothing to do), and the power left."""
        last = float(acct.closes[j])
        if math.isnan(tg) or math.isnan(last):
            return None, power  # no instruction, or no price to size it at (as the kernel)
        o, c = self.options, self.options.costs
        px = order_px_nb(last, math.nan, math.nan, 1 if tg > 0 else -1, c.slippage_bps)
        asked = want_nb(
            sizing, tg, acct.equity, o.size_pct / len(self.symbols), px, c.commission_rate,
            c.commission_per_share, o.fractional,
        )  # fmt: skip
        pos = acct.positions
        want, power = afford_at_signal_nb(
            asked, pos[j], last * (1.0 + o.buying_power_buffer), power, c.commission_rate,
            c.commission_per_share, c.commission_per_order, c.commission_min,
            math.inf if c.commission_max is None else c.commission_max, o.fractional,
        )  # fmt: skip
        if want == pos[j] and asked == pos[j]:
            return None, power
        new_pos, reason = risk_target_nb(
            j, want, pos, acct.closes, px, REASON_CASH if want != asked else REASON_NONE,
            o.allow_short, self._caps[j],
            math.inf if o.risk.max_portfolio_value is None else o.risk.max_portfolio_value,
            o.risk.kernel_args(self.symbols)[2], acct.halted, acct.stopped, o.fractional,
        )  # fmt: skip
        side = 1 if asked > pos[j] else -1
        qty = abs(new_pos - pos[j]) if np.sign(new_pos - pos[j]) == side else 0.0
        symbol = self.symbols[j]
        intent = OrderIntent(
            client_order_id=self._coid(symbol, ts, f"target:{tg!r}"), symbol=symbol,
            side="buy" if side == 1 else "sell", qty=float(qty), bar_ts_ns=ts, target=tg,
            requested_qty=float(abs(asked - pos[j])), reason=REASON_NAMES[reason],
        )  # fmt: skip
        return intent, power

    def _coid(self, symbol: str, ts: int, intent: str) -> str:
        return client_order_id(
            strategy=self.strategy, params=self.params, symbol=symbol, bar_ts_ns=ts, intent=intent
        )


def last_row(
    strategy: Any, signals: Any, shape: tuple[int, int], state: np.ndarray
) -> tuple[np.ndarray, str, np.ndarray]:
    """The instruction row of ``signals``' last bar (NaN: none), its size type, and the new
    entry/exit state per symbol (``state``: the side held after the previous bar, as
    :func:`~barlab.engine.kernel.signals_to_target_nb` walks it). StrategyError when the
    signals are not Signals, or ask for limit or stop prices on that bar (market orders only
    for now)."""
    if not isinstance(signals, Signals):
        raise StrategyError(
            f"{strategy.label()}.signals() must return Signals, got {type(signals).__name__}"
        )
    for name in ("limit_price", "stop_price"):
        prices = getattr(signals, name)
        if prices is not None and np.any(np.isfinite(prices[-1])):
            raise StrategyError(
                f"{strategy.label()} sets Signals.{name}: the live bridge sends market orders "
                "only for now"
            )
    if signals.target is not None:
        return to_target(signals, shape)[-1].copy(), signals.size_type, state
    signals.check(shape)
    arrays = (signals.entries, signals.exits, signals.short_entries, signals.short_exits)
    row, new_state = np.full(shape[1], np.nan), state.copy()
    for j in range(shape[1]):
        flags = [bool(a[-1, j]) if a is not None else False for a in arrays]
        new = signal_step_nb(int(state[j]), *flags)
        if new != state[j]:
            row[j], new_state[j] = float(new), new
    return row, signals.size_type, new_state
