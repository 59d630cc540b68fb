"""`backtest(strategy, bars, **options) -> Result`: the wrapper around the kernel.

It owns validation, dtypes and defaults; the kernel only walks arrays.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from barlab.bars import Bars
from barlab.engine.costs import Costs
from barlab.engine.kernel import simulate_nb
from barlab.engine.risk import RiskRules
from barlab.engine.targets import count_targets_nb, signals_to_target_nb
from barlab.errors import ConfigError, StrategyError
from barlab.strategy import SIZE_TYPES, Signals, Strategy


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestOptions:
    """How the account is simulated.

    Attributes
    ----------
    cash : float
        Starting cash in dollars, e.g. ``100_000``.
    size_pct : float
        Fraction of equity put to work when every symbol is in the market, split equally across
        the symbols, e.g. ``1.0`` (all of it) or ``0.5``; up to ``margin`` (e.g. ``2.0`` with
        ``margin=2``) to trade on borrowed buying power.
    fractional : bool
        Trade fractional shares; whole shares otherwise.
    allow_short : bool
        False: a target below zero only closes the position (logged ``no_shorting``).
    costs : Costs
        Commission and slippage.
    risk : RiskRules
        The account's limits.
    stop_loss, take_profit, trailing_stop : float or None
        Exits attached to every entry, as fractions: ``stop_loss=0.02`` sells a long 2 % below
        its entry price, ``take_profit=0.05`` 5 % above it, ``trailing_stop=0.03`` 3 % below
        the best high since entry (mirrored for shorts). None: off.
    stop_loss_atr, take_profit_atr, trailing_stop_atr : float or None
        The same exits as multiples of the average true range over ``atr_window`` bars at the
        entry's signal bar: ``stop_loss_atr=2`` sells a long two ATRs below its entry price.
        Give each exit as a fraction or as an ATR multiple, not both. An entry made while the
        ATR is still unknown (the first ``atr_window`` bars) gets no ATR exit.
    atr_window : int
        Bars in the ATR of the ``*_atr`` exits (Wilder's, as :func:`barlab.indicators.atr`).
    fill_policy : str
        For a bar whose range reaches both the stop and the target: ``"pessimistic"`` (the
        stop fills; the default) or ``"optimistic"`` (the target fills). Such trades are
        flagged in ``Result.trades`` (column ``ambiguous``).
    size_on : str
        When a target becomes shares: ``"fill"`` (the default) at the fill bar's open, with the
        equity marked there; ``"signal"`` at the signal bar's close, with the equity marked at
        that close and the close as the price (slippage applied) — what a live trader knows when
        it sends the order, so the live bridge, its parity report and the promotion gates use it.
    buying_power_buffer : float
        With ``size_on="signal"`` only: like a broker at submit, the shares an order adds must
        fit in the buying power at the signal bar's close (``margin`` x equity less the gross
        exposure, as Alpaca's), priced this fraction above that close, e.g. ``0.03`` (Alpaca's
        check on market orders); fewer are asked for otherwise (docs/engine.md, Buying power).
    margin : float
        Buying power as a multiple of equity: ``1`` (the default) is a cash account, buys
        never spend cash it does not have; ``2`` is Reg T margin, buys may borrow until cash
        reaches minus the equity; ``4`` a pattern day trader's intraday power. No interest is
        charged on the borrowed cash.
    """

    cash: float = 100_000.0
    size_pct: float = 1.0
    fractional: bool = False
    allow_short: bool = True
    costs: Costs = field(default_factory=Costs)
    risk: RiskRules = field(default_factory=RiskRules)
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None
    stop_loss_atr: float | None = None
    take_profit_atr: float | None = None
    trailing_stop_atr: float | None = None
    atr_window: int = 14
    fill_policy: str = "pessimistic"
    size_on: str = "fill"
    buying_power_buffer: float = 0.03
    margin: float = 1.0

    def __post_init__(self) -> None:
        for name in ("stop_loss", "take_profit", "trailing_stop"):
            value = getattr(self, name)
            if value is not None and not 0 < value < (10 if name == "take_profit" else 1):
                raise ConfigError(
                    f"{name} is a fraction of the entry price, e.g. 0.02 for 2 %, got {value!r}"
                )
            multiple = getattr(self, f"{name}_atr")
            if multiple is not None and not (multiple > 0 and np.isfinite(multiple)):
                raise ConfigError(
                    f"{name}_atr is a positive multiple of the ATR, e.g. 2.0, got {multiple!r}"
                )
            if value is not None and multiple is not None:
                raise ConfigError(
                    f"{name} and {name}_atr both set: give the exit as a fraction of the entry "
                    f"price or as an ATR multiple, not both"
                )
        w = self.atr_window
        if isinstance(w, bool) or not isinstance(w, int | np.integer) or w < 1:
            raise ConfigError(f"atr_window must be a whole number of bars >= 1, got {w!r}")
        if not 1 <= self.margin <= 10:
            raise ConfigError(
                f"margin is buying power as a multiple of equity in [1, 10]: 1 for a cash "
                f"account, 2 for Reg T, got {self.margin!r}"
            )
        if self.fill_policy not in ("pessimistic", "optimistic"):
            raise ConfigError(
                f"fill_policy must be pessimistic or optimistic, got {self.fill_policy!r}"
            )
        if self.size_on not in ("fill", "signal"):
            raise ConfigError(f"size_on must be fill or signal, got {self.size_on!r}")
        if not 0 <= self.buying_power_buffer < 1:
            raise ConfigError(
                f"buying_power_buffer is a fraction in [0, 1), e.g. 0.03, "
                f"got {self.buying_power_buffer!r}"
            )
        if not (self.cash > 0 and np.isfinite(self.cash)):
            raise ConfigError(f"cash must be a positive number of dollars, got {self.cash!r}")
        if not (0 < self.size_pct <= self.margin):
            raise ConfigError(
                f"size_pct must be in (0, 1], or up to the margin ({self.margin:g}) to trade on "
                f"borrowed buying power, got {self.size_pct!r}"
            )

    @classmethod
    def from_kwargs(cls, **options: Any) -> BacktestOptions:
        """Build from flat keywords: ``cash``, ``size_pct``, ``fractional``, the fields of
        :class:`Costs` and of :class:`RiskRules`, or ``costs=`` / ``risk=`` objects."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        cost_names = {f.name for f in dataclasses.fields(Costs)}
        risk_names = {f.name for f in dataclasses.fields(RiskRules)}
        own = {k: v for k, v in options.items() if k in fields}
        costs = {k: v for k, v in options.items() if k in cost_names}
        risk = {k: v for k, v in options.items() if k in risk_names}
        unknown = set(options) - set(own) - set(costs) - set(risk)
        if unknown:
            known = sorted(set(fields) | cost_names | risk_names)
            raise ConfigError(
                f"unknown backtest option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(known)}"
            )
        if costs:
            own["costs"] = dataclasses.replace(own.get("costs", Costs()), **costs)
        if risk:
            own["risk"] = dataclasses.replace(own.get("risk", RiskRules()), **risk)
        return cls(**own)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_HOUR_NS = 3_600_000_000_000
_DAY_NS = 24 * _HOUR_NS


def session_ids(ts_ns: np.ndarray) -> np.ndarray:
    """The New York calendar date of each bar, as days since the epoch (int64).

    New York is 4 or 5 hours behind UTC, and the two offsets give the same date except for
    times from 04:00 to 05:00 UTC; only bars there need the time-zone database.
    """
    days = (ts_ns - 4 * _HOUR_NS) // _DAY_NS
    unsure = np.flatnonzero((ts_ns % _DAY_NS) // _HOUR_NS == 4)
    if len(unsure):
        days[unsure] = (
            pl.Series(ts_ns[unsure], dtype=pl.Int64)
            .cast(pl.Datetime("ns", "UTC"))
            .dt.convert_time_zone("America/New_York")
            .dt.date()
            .cast(pl.Int32)
            .to_numpy()
        )
    return days


def to_target(signals: Signals, shape: tuple[int, int]) -> np.ndarray:
    """The kernel's target array (float64, NaN = no instruction) for ``signals``."""
    signals.check(shape)
    if signals.target is not None:
        target = np.require(signals.target, np.float64, ("C", "W"))
        if count_targets_nb(target)[1]:
            raise StrategyError("Signals.target must not contain inf")
        return target
    zeros = np.zeros(shape, dtype=np.bool_)

    def as_bool(a: np.ndarray | None) -> np.ndarray:
        return zeros if a is None else np.ascontiguousarray(a, dtype=np.bool_)

    target = np.empty(shape, dtype=np.float64)
    signals_to_target_nb(
        as_bool(signals.entries),
        as_bool(signals.exits),
        as_bool(signals.short_entries),
        as_bool(signals.short_exits),
        target,
    )
    return target


@dataclass(frozen=True, slots=True)
class Simulation:
    """The kernel's raw output for one account."""

    equity: np.ndarray
    cash: np.ndarray
    positions: np.ndarray
    orders_i: np.ndarray
    orders_f: np.ndarray
    trades_i: np.ndarray
    trades_f: np.ndarray


@dataclass(frozen=True, slots=True)
class Account:
    """What the kernel needs besides the instructions: the bars, sessions, costs, risk rules
    and exits, as kernel arguments. Built once per (bars, options); a sweep reuses it."""

    bars: Bars
    market: tuple
    sessions: np.ndarray
    rules: tuple

    @classmethod
    def of(cls, bars: Bars, options: BacktestOptions) -> Account:
        c = options.costs
        inf = np.inf

        def off(value: float | None) -> float:
            return inf if value is None else float(value)

        exits_atr = (options.stop_loss_atr, options.take_profit_atr, options.trailing_stop_atr)
        atr = _NAN_CELL
        if any(x is not None for x in exits_atr):
            from barlab.indicators import atr as average_true_range

            atr = average_true_range(bars.high, bars.low, bars.close, options.atr_window)
        rules = (
            float(options.cash),
            float(options.size_pct),
            options.size_on == "signal",
            float(options.buying_power_buffer),
            float(options.margin),
            c.commission_rate,
            c.commission_per_share,
            c.commission_per_order,
            c.commission_min,
            inf if c.commission_max is None else float(c.commission_max),
            c.slippage_bps,
            c.price_impact,
            inf if c.max_participation is None else float(c.max_participation),
            bars.volume,
            bool(options.fractional),
            bool(options.allow_short),
            *options.risk.kernel_args(bars.symbols),
            off(options.stop_loss),
            off(options.take_profit),
            off(options.trailing_stop),
            *(off(x) for x in exits_atr),
            np.require(atr, np.float64, ("C", "W")),
            options.fill_policy == "optimistic",
        )
        market = (bars.open, bars.high, bars.low, bars.close)
        return cls(bars=bars, market=market, sessions=session_ids(bars.ts_ns), rules=rules)


def simulate(
    bars: Bars,
    target: np.ndarray,
    options: BacktestOptions,
    *,
    size_type: str = "equal",
    limit_price: np.ndarray | None = None,
    stop_price: np.ndarray | None = None,
    trail_stop: np.ndarray | None = None,
    time_in_force: str = "gtc",
    account: Account | None = None,
) -> Simulation:
    """Run the kernel over ``bars`` with the ``target`` instructions, sized as ``size_type``
    says, as limit/stop orders where prices are given (see :class:`barlab.strategy.Signals`).
    ``account`` (``Account.of(bars, options)``) saves rebuilding the arguments each call."""
    n, m = bars.close.shape
    acct = Account.of(bars, options) if account is None else account
    args = kernel_inputs(
        acct, target, size_type=size_type, limit_price=limit_price, stop_price=stop_price,
        trail_stop=trail_stop, time_in_force=time_in_force,
    )  # fmt: skip
    capacity = log_capacity(target)
    equity = np.empty(n)
    cash = np.empty(n)
    positions = np.empty((n, m))
    while True:
        logs = empty_logs(capacity, m)
        n_orders, n_trades = simulate_nb(*args, equity, cash, positions, *logs)
        if n_orders >= 0:
            break
        capacity *= 4
    orders_i, orders_f, trades_i, trades_f = logs
    return Simulation(
        equity, cash, positions, orders_i[:n_orders], orders_f[:n_orders],
        trades_i[:n_trades], trades_f[:n_trades],
    )  # fmt: skip


def kernel_inputs(
    account: Account,
    target: np.ndarray,
    *,
    size_type: str = "equal",
    limit_price: np.ndarray | None = None,
    stop_price: np.ndarray | None = None,
    trail_stop: np.ndarray | None = None,
    time_in_force: str = "gtc",
) -> tuple:
    """:func:`barlab.engine.kernel.simulate_nb`'s inputs, in its order (all but its outputs)."""
    shape = target.shape
    return (
        *account.market,
        target,
        _prices(limit_price, shape),
        _prices(stop_price, shape),
        _prices(trail_stop, shape),
        time_in_force == "day",
        account.sessions,
        SIZE_TYPES.index(size_type),
        *account.rules,
    )


LOG_COLUMNS = ((7, np.int64), (4, np.float64), (6, np.int64), (7, np.float64))
"""Columns and dtype of the kernel's logs: orders_i, orders_f, trades_i, trades_f."""


def log_capacity(target: np.ndarray) -> int:
    """Orders to make room for: every instruction makes at most one order and each entry at
    most one attached exit, but partial fills can make more; then the kernel returns -1 and
    runs again with a bigger log."""
    return 2 * int(count_targets_nb(target)[0]) + 1


def empty_logs(capacity: int, n_symbols: int) -> tuple[np.ndarray, ...]:
    """Zeroed order and trade logs for ``capacity`` orders (trades: ``capacity + n_symbols``,
    the ones still open at the end included)."""
    return tuple(
        np.zeros((capacity + (n_symbols if k >= 2 else 0), width), dtype=dtype)
        for k, (width, dtype) in enumerate(LOG_COLUMNS)
    )


_NAN_CELL = np.full((1, 1), np.nan)
"""An array the kernel broadcasts (one NaN cell): an input a run does not use."""


def _prices(prices: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """Order prices for the kernel: one NaN cell (none anywhere) when not given. Always a
    writable C array, so that every run uses the same compiled kernel."""
    if prices is None:
        return _NAN_CELL
    return np.require(prices, np.float64, ("C", "W"))


def simulate_signals(
    bars: Bars, signals: Signals, options: BacktestOptions, *, account: Account | None = None
) -> Simulation:
    """Run the kernel on a strategy's ``signals``: its instructions, sizing, order prices,
    trails and time in force (:func:`simulate` with every field of ``signals``)."""
    return simulate(
        bars, to_target(signals, bars.close.shape), options, size_type=signals.size_type,
        limit_price=signals.limit_price, stop_price=signals.stop_price,
        trail_stop=signals.trail_stop, time_in_force=signals.time_in_force, account=account,
    )  # fmt: skip


def buy_and_hold_target(shape: tuple[int, int]) -> np.ndarray:
    """All symbols bought at the first opportunity and held: the benchmark."""
    target = np.full(shape, np.nan)
    if shape[0]:
        target[0] = 1.0
    return target


def benchmark_options(options: BacktestOptions) -> BacktestOptions:
    """Buy-and-hold pays the same costs but knows no risk rules and no exits."""
    return dataclasses.replace(
        options, risk=RiskRules(), stop_loss=None, take_profit=None, trailing_stop=None,
        stop_loss_atr=None, take_profit_atr=None, trailing_stop_atr=None, margin=1.0,
    )  # fmt: skip


def backtest(strategy: Strategy, bars: Bars, **options: Any):
    """Backtest ``strategy`` on ``bars``.

    Parameters
    ----------
    strategy : Strategy
        e.g. ``SmaCrossover(fast=10, slow=50)``.
    bars : Bars
        From :func:`barlab.load_bars`.
    **options
        ``cash`` (100,000), ``size_pct`` (1.0), ``fractional`` (False), ``commission_rate``
        (0.0, fraction of notional), ``commission_per_share`` (0.0), ``commission_min`` (0.0),
        ``slippage_bps`` (1.0), ``max_position_size``, ``max_portfolio_value``,
        ``daily_loss_limit`` (dollars; None = off).

    Returns
    -------
    Result
    """
    from barlab.result import Result

    if not isinstance(strategy, Strategy):
        raise StrategyError(
            f"backtest() takes a Strategy instance, got {type(strategy).__name__}; "
            "e.g. SmaCrossover(fast=10, slow=50)"
        )
    opts = BacktestOptions.from_kwargs(**options)
    shape = bars.close.shape
    signals = strategy.signals(bars)
    if not isinstance(signals, Signals):
        raise StrategyError(
            f"{strategy.label()}.signals() must return Signals, got {type(signals).__name__}"
        )
    sim = simulate_signals(bars, signals, opts)
    return Result.from_simulation(
        strategy=strategy,
        bars=bars,
        options=opts,
        sim=sim,
        benchmark=lambda: simulate(bars, buy_and_hold_target(shape), benchmark_options(opts)),
    )
