"""Performance statistics: one definition per statistic, and the `Metrics` record.

Return statistics follow empyrical (quantopian/empyrical 0.5.5, ``empyrical/stats.py``) over a
1-D float64 array of simple per-period returns; trade statistics work on a list of trade PnLs.
The engine result, the CLI summary, the report and saved runs all read `compute_metrics`.

Shared conventions
------------------
- NaN returns are ignored the way empyrical ignores them: dropped from means, deviations and
  percentiles, and compounded as 0 % in cumulative quantities (total return, drawdowns).
  Lengths used for annualisation (``cagr``) and the "too short" checks count NaNs, as in
  empyrical.
- A ratio whose denominator is exactly 0 follows IEEE division: ``x / 0`` is ``±inf`` and
  ``0 / 0`` is NaN (no warning is raised). A deviation over values that are all equal is
  exactly 0, so constant returns give ``inf`` Sharpe rather than a rounding-noise number.
- ``periods_per_year`` is the number of return periods in a year: 252 for daily returns,
  98,280 for regular-hours 1-minute bars (390 x 252).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from barlab import metrics_nb as nb
from barlab.order_stats_nb import percentile_nb

__all__ = [
    "DrawdownPeriod",
    "Metrics",
    "TradeStats",
    "aggregate_returns",
    "annual_volatility",
    "best_period",
    "cagr",
    "calmar",
    "compute_metrics",
    "drawdown_periods",
    "exposure",
    "max_drawdown",
    "max_drawdown_duration",
    "omega",
    "profit_factor",
    "returns_from_equity",
    "rolling_sharpe",
    "rolling_volatility",
    "sharpe",
    "slippage_cost",
    "sortino",
    "stability",
    "tail_ratio",
    "total_return",
    "trade_stats",
    "turnover",
    "value_at_risk",
    "win_rate",
    "worst_period",
]

_NAN = math.nan


def _as_1d(values: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D float array, got shape {arr.shape}; "
            "pass one series at a time (e.g. equity[:, 0])"
        )
    return arr


def _check_periods_per_year(periods_per_year: float) -> float:
    ppy = float(periods_per_year)
    if not (math.isfinite(ppy) and ppy > 0):
        raise ValueError(
            "periods_per_year must be a positive number such as 252 (daily bars) or "
            f"98280 (1-minute bars), got {periods_per_year!r}"
        )
    return ppy


def _div(num: float, den: float) -> float:
    """IEEE division without warnings: x/0 -> ±inf, 0/0 -> NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(num) / np.float64(den))


def _wealth(r: np.ndarray) -> np.ndarray:
    """Growth of 1 at the start of each period and after it: length n + 1, NaN compounded as 0."""
    out = np.empty(r.size + 1)
    out[0] = 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        np.cumprod(1.0 + np.where(np.isnan(r), 0.0, r), out=out[1:])
    return out


# --- returns --------------------------------------------------------------------------------


def returns_from_equity(equity: np.ndarray, *, initial_cash: float) -> np.ndarray:
    """Simple per-period returns of an equity curve.

    ``r[0] = equity[0] / initial_cash - 1`` and ``r[i] = equity[i] / equity[i-1] - 1``, so the
    first bar's PnL is not lost. Equity must stay positive for returns to mean anything: after
    equity reaches 0 the following returns are NaN (0/0) and are ignored like NaN returns.

    Examples
    --------
    >>> returns_from_equity(np.array([101.0, 99.99]), initial_cash=100.0).round(4).tolist()
    [0.01, -0.01]
    """
    return nb.returns_nb(_as_1d(equity, "equity"), float(initial_cash))


def total_return(returns: np.ndarray) -> float:
    """Compounded return over the whole series, a fraction (0.12 = +12 %).

    ``prod(1 + r) - 1`` with NaN treated as 0 % (empyrical ``cum_returns_final``).
    Empty input: NaN. All-zero returns: 0.0.
    """
    r = _as_1d(returns, "returns")
    return float(nb.total_return_nb(nb.valid_nb(r), r.size))


def cagr(returns: np.ndarray, *, periods_per_year: float) -> float:
    """Compound annual growth rate, a fraction per year (empyrical ``annual_return``).

    ``ending ** (1 / years) - 1`` with ``ending = prod(1 + r)`` (NaN as 0 %) and
    ``years = len(returns) / periods_per_year`` (NaNs count as periods). A year of daily
    returns ending 12 % up gives 0.12. Empty input: NaN. All-zero returns: 0.0. A negative
    ending value gives NaN; a short, strong series may overflow to ``inf``.
    """
    ppy = _check_periods_per_year(periods_per_year)
    r = _as_1d(returns, "returns")
    return float(nb.cagr_nb(nb.valid_nb(r), r.size, ppy))


def annual_volatility(returns: np.ndarray, *, periods_per_year: float) -> float:
    """Annualised standard deviation of returns, a fraction per year (0.18 = 18 %).

    ``std(r, ddof=1) * sqrt(periods_per_year)`` over non-NaN returns (empyrical
    ``annual_volatility``, alpha=2). Fewer than 2 returns: NaN. Constant returns: 0.0.
    """
    ppy = _check_periods_per_year(periods_per_year)
    r = _as_1d(returns, "returns")
    return float(nb.annual_volatility_nb(nb.valid_nb(r), r.size, ppy))


def sharpe(returns: np.ndarray, *, periods_per_year: float, risk_free: float = 0.0) -> float:
    """Annualised Sharpe ratio, dimensionless (1.0 is decent, 3+ is rare out of sample).

    ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods_per_year)`` over non-NaN returns
    (empyrical ``sharpe_ratio``); ``risk_free`` is a return per period (0.0001 a day ~ 2.5 %
    a year). Fewer than 2 returns: NaN. Constant excess returns: ``±inf``, NaN if all zero.
    """
    ppy = _check_periods_per_year(periods_per_year)
    r = _as_1d(returns, "returns")
    return float(nb.sharpe_nb(nb.valid_nb(r) - risk_free, r.size, ppy))


def sortino(returns: np.ndarray, *, periods_per_year: float, required_return: float = 0.0) -> float:
    """Annualised Sortino ratio, dimensionless (typically 1.3-1.5x the Sharpe ratio).

    ``mean(r - req) * ppy / (sqrt(mean(min(r - req, 0) ** 2)) * sqrt(ppy))`` over non-NaN
    returns (empyrical ``sortino_ratio`` with ``downside_risk``); ``required_return`` is per
    period. The downside deviation averages over all periods, not only the losing ones.
    Fewer than 2 returns: NaN. No return below ``required_return``: ``inf`` (NaN if the mean
    excess is 0, e.g. all-zero returns).
    """
    ppy = _check_periods_per_year(periods_per_year)
    r = _as_1d(returns, "returns")
    return float(nb.sortino_nb(nb.valid_nb(r) - required_return, r.size, ppy))


def max_drawdown(returns: np.ndarray) -> float:
    """Largest peak-to-trough fall of compounded wealth, a fraction <= 0 (-0.23 = -23 %).

    ``min(wealth / running_peak - 1)`` where wealth starts at 1 before the first period, so a
    first-period loss is a drawdown; NaN returns compound as 0 % (empyrical ``max_drawdown``).
    Empty input: NaN. No losing period: 0.0.

    Examples
    --------
    >>> round(max_drawdown(np.array([0.10, -0.10, 0.10])), 10)
    -0.1
    """
    return float(nb.drawdown_nb(_as_1d(returns, "returns"))[0])


def max_drawdown_duration(returns: np.ndarray) -> int:
    """Longest run of consecutive periods that end below the previous wealth peak, in periods.

    Wealth is compounded as in `max_drawdown` (starting at 1, NaN as 0 %); a period is
    "under water" if its closing wealth is strictly below the highest wealth before it. The run
    ends on the period that regains the peak; a run still open at the end counts in full. For
    daily returns, 40 means eight trading weeks without a new high. Empty input or no losing
    period: 0. (empyrical has no such statistic.)
    """
    return int(nb.drawdown_nb(_as_1d(returns, "returns"))[1])


def calmar(returns: np.ndarray, *, periods_per_year: float) -> float:
    """Calmar ratio: ``cagr / |max_drawdown|``, dimensionless (0.5-1 is typical).

    As empyrical ``calmar_ratio``: NaN when there is no drawdown (max drawdown >= 0 or NaN,
    e.g. empty or all-positive returns) and NaN instead of ``inf``.
    """
    ppy = _check_periods_per_year(periods_per_year)
    r = _as_1d(returns, "returns")
    return float(nb.calmar_nb(nb.valid_nb(r), r.size, ppy, nb.drawdown_nb(r)[0]))


def omega(
    returns: np.ndarray,
    *,
    periods_per_year: float,
    risk_free: float = 0.0,
    required_return: float = 0.0,
) -> float:
    """Omega ratio: sum of excess gains over sum of excess losses, dimensionless (1 = break-even).

    ``x = r - risk_free - threshold``; ``sum(x[x > 0]) / -sum(x[x < 0])`` over non-NaN returns
    (empyrical ``omega_ratio``). ``risk_free`` is per period; ``required_return`` is *annual*
    and becomes ``threshold = (1 + required_return) ** (1 / periods_per_year) - 1`` (used as is
    when ``periods_per_year == 1``). Fewer than 2 returns, ``required_return <= -1``, or no
    excess loss (e.g. all-zero returns): NaN.
    """
    ppy = _check_periods_per_year(periods_per_year)
    r = _as_1d(returns, "returns")
    if ppy != 1 and required_return <= -1:
        return _NAN
    threshold = _omega_threshold(required_return, ppy)
    return float(nb.omega_nb(nb.valid_nb(r), r.size, risk_free, threshold))


def _omega_threshold(required_return: float, ppy: float) -> float:
    """An annual required return as a per-period threshold (as is when ``ppy == 1``)."""
    return required_return if ppy == 1 else (1.0 + required_return) ** (1.0 / ppy) - 1.0


def tail_ratio(returns: np.ndarray) -> float:
    """``|95th percentile| / |5th percentile|`` of returns, dimensionless (0.25: losses 4x gains).

    Linear-interpolated percentiles of non-NaN returns (empyrical ``tail_ratio``). Empty or
    all-NaN input: NaN; a 5th percentile of exactly 0: ``inf`` (NaN if both are 0).
    """
    v = nb.valid_nb(_as_1d(returns, "returns"))
    if v.size == 0:
        return _NAN
    return float(nb.tail_ratio_nb(percentile_nb(v, 95.0), percentile_nb(v, 5.0)))


def value_at_risk(returns: np.ndarray, *, cutoff: float = 0.05) -> float:
    """Historical value at risk: the ``cutoff`` quantile of returns, a per-period fraction.

    ``percentile(r, 100 * cutoff)``, linear interpolation (empyrical ``value_at_risk``); -0.02
    means 5 % of days lost 2 % or more. NaN returns are dropped (empyrical would return NaN);
    empty input: NaN (empyrical raises).
    """
    if not 0.0 <= cutoff <= 1.0:
        raise ValueError(f"cutoff must be a fraction in [0, 1] such as 0.05, got {cutoff!r}")
    return float(percentile_nb(nb.valid_nb(_as_1d(returns, "returns")), 100.0 * cutoff))


def stability(returns: np.ndarray) -> float:
    """R² of a straight-line fit to cumulative log returns, in [0, 1] (0.9: a steady climb).

    Fits ``cumsum(log1p(r))`` against ``0..n-1`` by least squares over non-NaN returns
    (empyrical ``stability_of_timeseries``). Fewer than 2 returns (before or after dropping
    NaN), a return <= -100 %, or a flat curve (all-zero returns, R² = 0/0): NaN. Constant
    non-zero returns: 1.0.
    """
    r = _as_1d(returns, "returns")
    return float(nb.stability_nb(nb.valid_nb(r), r.size))


def win_rate(returns: np.ndarray) -> float:
    """Share of positive periods among non-zero, non-NaN periods, in [0, 1] (0.52 typical).

    Flat periods (no position, no move) are left out so idle time does not dilute the rate.
    Not in empyrical. No non-zero period (empty, all zero): NaN.
    """
    return float(nb.win_rate_nb(nb.valid_nb(_as_1d(returns, "returns"))))


def profit_factor(returns: np.ndarray) -> float:
    """Sum of positive returns over the absolute sum of negative returns, dimensionless.

    1.2 means gains outweigh losses by 20 %. Not in empyrical. Empty: NaN; no losing period:
    ``inf`` (NaN if there is no winning period either).
    """
    return float(nb.profit_factor_nb(nb.valid_nb(_as_1d(returns, "returns"))))


def best_period(returns: np.ndarray) -> float:
    """Largest single-period return, a fraction (0.031 = +3.1 %). Empty or all-NaN: NaN."""
    r = nb.valid_nb(_as_1d(returns, "returns"))
    return float(r.max()) if r.size else _NAN


def worst_period(returns: np.ndarray) -> float:
    """Smallest single-period return, a fraction (-0.042 = -4.2 %). Empty or all-NaN: NaN."""
    r = nb.valid_nb(_as_1d(returns, "returns"))
    return float(r.min()) if r.size else _NAN


# --- over time ------------------------------------------------------------------------------


def aggregate_returns(returns: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compounded return of each group of consecutive periods, e.g. months or trading days.

    ``groups`` is one non-decreasing integer key per period (e.g. ``year * 12 + month - 1`` of
    each bar); returns ``(keys, compounded)`` with ``prod(1 + r) - 1`` per key, NaN as 0 %
    (empyrical ``aggregate_returns``). Compounding the groups gives `total_return`.

    >>> k, r = aggregate_returns(np.array([0.1, -0.1, 0.02]), np.array([0, 0, 1]))
    >>> k.tolist(), r.round(4).tolist()
    ([0, 1], [-0.01, 0.02])
    """
    r, keys, starts = _grouped(returns, groups)
    if r.size == 0:
        return keys, np.empty(0)
    with np.errstate(over="ignore", invalid="ignore"):
        growth = np.multiply.reduceat(1.0 + np.where(np.isnan(r), 0.0, r), starts)
    return keys, growth - 1.0


def rolling_sharpe(
    returns: np.ndarray, groups: np.ndarray, *, window: int, periods_per_year: float
) -> np.ndarray:
    """`sharpe` of the periods in the trailing ``window`` groups, at the end of each group.

    With bars grouped by trading day and ``window=63``, entry ``i`` is the Sharpe ratio of the
    bar returns of days ``i-62..i``, annualised like the headline figure (so a window covering
    the whole run gives exactly `sharpe`). The first ``window - 1`` entries are NaN.
    """
    ppy = _check_periods_per_year(periods_per_year)
    return _rolling(lambda r: sharpe(r, periods_per_year=ppy), returns, groups, window)


def rolling_volatility(
    returns: np.ndarray, groups: np.ndarray, *, window: int, periods_per_year: float
) -> np.ndarray:
    """`annual_volatility` of the trailing ``window`` groups, as `rolling_sharpe`."""
    ppy = _check_periods_per_year(periods_per_year)
    return _rolling(lambda r: annual_volatility(r, periods_per_year=ppy), returns, groups, window)


def _grouped(returns: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, ...]:
    r = _as_1d(returns, "returns")
    g = np.asarray(groups)
    if g.shape != r.shape or (g.size and not bool(np.all(np.diff(g) >= 0))):
        raise ValueError(
            f"groups must be one non-decreasing key per return ({r.size}), got shape {g.shape}; "
            "e.g. the trading day of each bar"
        )
    starts = np.flatnonzero(np.concatenate(([True], g[1:] != g[:-1]))) if g.size else g[:0]
    return r, g[starts], starts


def _rolling(stat: Any, returns: np.ndarray, groups: np.ndarray, window: int) -> np.ndarray:
    if isinstance(window, bool) or int(window) != window or window < 1:
        raise ValueError(f"window must be a whole number of groups >= 1 (e.g. 63), got {window!r}")
    r, _, starts = _grouped(returns, groups)
    ends = np.append(starts[1:], r.size)
    out = np.full(starts.size, _NAN)
    for i in range(window - 1, starts.size):
        out[i] = stat(r[starts[i - window + 1] : ends[i]])
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class DrawdownPeriod:
    """One stretch under water, as period indices into the returns.

    ``start`` is the first period that ends below the previous peak, ``trough`` the lowest,
    ``end`` the period that regains the peak (-1: still under water at the end); ``depth`` is
    the fall from the peak at the trough, a fraction < 0; ``length`` counts the periods under
    water (the quantity `max_drawdown_duration` maximises).
    """

    start: int
    trough: int
    end: int
    depth: float
    length: int


def drawdown_periods(returns: np.ndarray, *, top: int | None = None) -> list[DrawdownPeriod]:
    """The drawdowns of compounded wealth, deepest first (``top`` of them, or all).

    Wealth and "under water" are defined as in `max_drawdown` and `max_drawdown_duration`, so
    the first period's depth is `max_drawdown` and the longest ``length`` is
    `max_drawdown_duration`. Ties keep time order.

    >>> [(p.start, p.trough, p.end, round(p.depth, 2)) for p in drawdown_periods(
    ...     np.array([0.1, -0.1, 0.2, -0.5, 0.1]))]
    [(3, 3, -1, -0.5), (1, 1, 2, -0.1)]
    """
    r = _as_1d(returns, "returns")
    wealth = _wealth(r)
    peak = np.fmax.accumulate(wealth)
    under = wealth < peak
    edges = np.diff(np.concatenate(([0], under.view(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = wealth / peak - 1.0
    periods = []
    for s, e in zip(starts, ends, strict=True):  # wealth indices: s..e-1 under water
        low = s + int(np.argmin(dd[s:e]))
        periods.append(
            DrawdownPeriod(
                start=int(s - 1), trough=int(low - 1), end=int(e - 1) if e <= r.size else -1,
                depth=float(dd[low]), length=int(e - s),
            )
        )  # fmt: skip
    periods.sort(key=lambda p: p.depth)
    return periods if top is None else periods[:top]


# --- trades ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeStats:
    """Statistics of closed trades; money amounts are in account currency (USD).

    Attributes
    ----------
    count : int
        Number of trades.
    win_rate : float
        Share of trades with PnL > 0, in [0, 1]; break-even trades count as non-wins.
    avg_trade, median_trade : float
        Mean and median PnL per trade, USD (e.g. 12.5).
    expectancy : float
        Mean PnL in units of the mean losing trade, ``avg_trade / |mean(pnl[pnl < 0])|``
        (Van Tharp's R-multiple; 0.3 = each trade earns 0.3x a typical loss). No losing
        trade: ``inf``, or NaN if ``avg_trade`` is 0.
    profit_factor : float
        Gross profit / gross loss; no losing trade: ``inf`` (NaN if no winner either).
    best_trade, worst_trade : float
        Largest and smallest PnL, USD.
    avg_holding_bars : float
        Mean bars held per trade; NaN when holding periods were not given.

    Every field but ``count`` is NaN when there are no trades.
    """

    count: int
    win_rate: float
    avg_trade: float
    median_trade: float
    expectancy: float
    profit_factor: float
    best_trade: float
    worst_trade: float
    avg_holding_bars: float


def trade_stats(pnl: np.ndarray, *, holding_bars: np.ndarray | None = None) -> TradeStats:
    """Summarise closed trades from their net PnL (after fees), USD per trade.

    Parameters
    ----------
    pnl : float array (n_trades,)
        Net PnL of each closed trade, e.g. ``[120.0, -45.5, 30.0]``; must be finite.
    holding_bars : int or float array (n_trades,), optional
        Bars each trade was held (>= 0), for ``avg_holding_bars``.

    Examples
    --------
    >>> s = trade_stats(np.array([120.0, -40.0, 30.0, -20.0]))
    >>> s.count, s.win_rate, s.avg_trade, s.profit_factor, s.expectancy
    (4, 0.5, 22.5, 2.5, 0.75)
    """
    p = _as_1d(pnl, "pnl")
    if not np.isfinite(p).all():
        raise ValueError("pnl must be finite; a NaN or inf trade PnL points to an engine bug")
    hold = _NAN
    if holding_bars is not None:
        h = _as_1d(holding_bars, "holding_bars")
        if h.shape != p.shape or not (np.isfinite(h).all() and (h >= 0).all()):
            raise ValueError(
                f"holding_bars must hold one finite count >= 0 per trade ({p.size}), "
                f"got shape {h.shape}"
            )
        hold = float(h.mean()) if h.size else _NAN
    if p.size == 0:
        return TradeStats(
            count=0, win_rate=_NAN, avg_trade=_NAN, median_trade=_NAN, expectancy=_NAN,
            profit_factor=_NAN, best_trade=_NAN, worst_trade=_NAN, avg_holding_bars=hold,
        )  # fmt: skip
    count, wins, total, profit, loss, losers, best, worst, _ = nb.trade_sums_nb(p)
    avg = total / count
    return TradeStats(
        count=count,
        win_rate=wins / count,
        avg_trade=avg,
        median_trade=float(np.median(p)),
        expectancy=_div(avg, abs(loss / losers) if losers else 0.0),
        profit_factor=_div(profit, abs(loss)),
        best_trade=best,
        worst_trade=worst,
        avg_holding_bars=hold,
    )


def exposure(position_mask: np.ndarray) -> float:
    """Share of bars with any open position, in [0, 1] (0.35 = in the market 35 % of the time).

    ``position_mask`` is a 1-D bool array, one entry per bar (e.g. ``positions != 0`` reduced
    over symbols with ``.any(axis=1)``). Empty: NaN.
    """
    count, n = _in_market(position_mask), np.size(position_mask)
    return count / n if n else _NAN


def turnover(traded_value: float, equity: np.ndarray, *, periods_per_year: float) -> float:
    """Dollars traded (buys plus sells) per year, in multiples of the mean equity.

    ``traded_value / mean(equity) / years`` with ``years = len(equity) / periods_per_year``:
    2.0 means the account was bought and sold once a year; buy-and-hold held a year is 1.0.
    ``traded_value`` is the sum of ``qty * fill price`` over fills, USD. Empty equity: NaN.
    """
    ppy = _check_periods_per_year(periods_per_year)
    eq = _as_1d(equity, "equity")
    if not (math.isfinite(traded_value) and traded_value >= 0):
        raise ValueError(f"traded_value must be a dollar amount >= 0, got {traded_value!r}")
    if eq.size == 0:
        return _NAN
    return _div(traded_value, float(eq.mean())) / (eq.size / ppy)


def slippage_cost(notional: np.ndarray, side: np.ndarray, *, slippage_bps: float) -> float:
    """Dollars lost to slippage by fills of ``notional = qty * fill price`` (USD each).

    The engine fills at ``price * (1 + side * slippage_bps / 1e4)`` (`barlab.engine.costs`), so
    a fill of ``side`` (+1 buy, -1 sell) paid ``notional * bps / (1e4 + side * bps)`` against the
    unslipped price. E.g. one $10,000 buy at 1 bp: about $1.00.
    """
    v, sd = _as_1d(notional, "notional"), _as_1d(side, "side")
    if v.shape != sd.shape or not bool(np.all(np.abs(sd) == 1)):
        raise ValueError("side must hold +1 (buy) or -1 (sell) for each notional")
    if not (0 <= slippage_bps < 10_000):
        raise ValueError(f"slippage_bps must be in [0, 10000), got {slippage_bps!r}")
    return float(np.sum(np.abs(v) * slippage_bps / (1e4 + sd * slippage_bps)))


# --- the record -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Metrics:
    """Every headline number of a run; fractions are fractions (0.12, not 12 %), money is USD.

    The period statistics (``total_return`` to ``worst_period``) are the functions of this
    module of the same name over the run's per-bar returns; ``max_drawdown_duration`` is in
    bars. ``n_trades``, ``trade_win_rate``, ``avg_trade`` (USD), ``expectancy`` and
    ``trade_profit_factor`` come from `trade_stats`; ``exposure`` from `exposure` (NaN when
    no position mask was given); ``fees`` is total fees paid and ``final_equity`` the last
    equity value, both USD. Undefined values are NaN or ``inf`` as documented per function.
    """

    total_return: float
    cagr: float
    annual_volatility: float
    sharpe: float
    sortino: float
    calmar: float
    max_drawdown: float
    max_drawdown_duration: int
    omega: float
    tail_ratio: float
    value_at_risk: float
    stability: float
    win_rate: float
    profit_factor: float
    best_period: float
    worst_period: float
    n_trades: int
    trade_win_rate: float
    avg_trade: float
    expectancy: float
    trade_profit_factor: float
    exposure: float
    fees: float
    final_equity: float

    def to_dict(self) -> dict[str, float]:
        """Field name -> plain Python float (NaN and inf kept), in field order."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, float]) -> Metrics:
        """Rebuild from `to_dict` output; rejects missing and unknown keys."""
        names = [f.name for f in fields(cls)]
        missing, unknown = set(names) - set(data), set(data) - set(names)
        if missing or unknown:
            raise ValueError(
                f"Metrics.from_dict expects exactly the Metrics fields; missing {sorted(missing)},"
                f" unknown {sorted(unknown)}; was the saved run written by another version?"
            )
        values: dict[str, float | int] = {}
        for f in fields(cls):
            value = float(data[f.name])
            if f.type == "int":
                if not value.is_integer():
                    raise ValueError(f"Metrics.{f.name} must be a whole number, got {value!r}")
                values[f.name] = int(value)
            else:
                values[f.name] = value
        return cls(**values)  # type: ignore[arg-type]


def compute_metrics(
    equity: np.ndarray,
    *,
    periods_per_year: float,
    initial_cash: float,
    trade_pnl: np.ndarray,
    position_mask: np.ndarray | None,
    fees: float,
) -> Metrics:
    """Compute every `Metrics` field for one run.

    One fused kernel (:func:`barlab.metrics_nb.metrics_into_nb`, a few passes over the equity
    curve) computes them all: the kernel a sweep runs for each combination, so a sweep's rows
    are a backtest's metrics exactly. Each figure equals its function's here exactly too.

    Parameters
    ----------
    equity : float array (n_bars,)
        Account equity at each bar's close, USD, finite (e.g. ``[100_012.5, 99_987.0, ...]``).
    periods_per_year : float
        Bars per year, e.g. 98,280 for 1-minute regular-hours bars (``Bars.periods_per_year``).
    initial_cash : float
        Equity before the first bar, USD (> 0); the first bar's return is relative to it.
    trade_pnl : float array (n_trades,)
        Net PnL of each closed trade, USD.
    position_mask : bool array (n_bars,) or None
        True where any position was open at the bar; None leaves ``exposure`` NaN.
    fees : float
        Total fees and commissions paid, USD (e.g. 37.5).

    Examples
    --------
    >>> m = compute_metrics(np.array([101.0, 99.99, 103.0]), periods_per_year=252,
    ...     initial_cash=100.0, trade_pnl=np.array([3.0]), position_mask=None, fees=0.0)
    >>> round(m.total_return, 4), round(m.max_drawdown, 4), m.n_trades
    (0.03, -0.01, 1)
    """
    ppy = _check_periods_per_year(periods_per_year)
    eq = _as_1d(equity, "equity")
    if not (math.isfinite(initial_cash) and initial_cash > 0):
        raise ValueError(f"initial_cash must be a positive amount in USD, got {initial_cash!r}")
    if position_mask is not None and np.shape(position_mask) != eq.shape:
        raise ValueError(
            f"position_mask must have one entry per equity bar ({eq.size}), "
            f"got shape {np.shape(position_mask)}"
        )
    n_in_market = -1 if position_mask is None else _in_market(position_mask)
    row = np.empty(len(nb.METRIC_FIELDS))
    status = nb.metrics_into_nb(
        eq, float(initial_cash), ppy, _omega_threshold(0.0, ppy), _as_1d(trade_pnl, "pnl"),
        n_in_market, float(fees), np.empty((nb.SCRATCH_ROWS, eq.size)), row,
    )  # fmt: skip
    check_status(status)
    return metrics_from_row(row)


def total_fees(fees: np.ndarray) -> float:
    """The fees of a run's trades, USD: one sum (numpy's) for a backtest, a loaded run and a
    sweep's row, so that they agree to the last digit."""
    return float(np.sum(np.ascontiguousarray(fees, dtype=np.float64)))


def check_status(status: int) -> None:
    """Raise the ValueError :func:`barlab.metrics_nb.metrics_into_nb` reported, if any."""
    if status == nb.BAD_EQUITY:
        raise ValueError("equity must be finite at every bar; found NaN or inf")
    if status == nb.BAD_PNL:
        raise ValueError("pnl must be finite; a NaN or inf trade PnL points to an engine bug")


_INT_FIELDS = frozenset(f.name for f in fields(Metrics) if f.type in (int, "int"))


def metrics_from_row(row: np.ndarray) -> Metrics:
    """A `Metrics` from a row in :data:`barlab.metrics_nb.METRIC_FIELDS` order."""
    values = dict(zip(nb.METRIC_FIELDS, row.tolist(), strict=True))
    for name in _INT_FIELDS:
        values[name] = int(values[name])
    return Metrics(**values)


def _in_market(position_mask: np.ndarray) -> int:
    """Bars with a position open, from a 1-D bool mask (validated as `exposure` does)."""
    mask = np.asarray(position_mask)
    if mask.ndim != 1 or mask.dtype != np.bool_:
        raise ValueError(
            f"position_mask must be a 1-D bool array, got {mask.dtype} with shape {mask.shape}; "
            "pass (positions != 0).any(axis=1)"
        )
    return int(np.count_nonzero(mask))
