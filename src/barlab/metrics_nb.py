"""The return statistics as numba kernels: their one definition.

:mod:`barlab.metrics` documents each statistic and wraps these kernels for one series;
:func:`metrics_into_nb` computes every `Metrics` field of one run in a few passes over its
equity curve, into a caller's row and scratch, without the GIL: for
:func:`barlab.metrics.compute_metrics` (a backtest) and for every combination of a sweep, so a
sweep's row and a backtest's metrics are the same numbers. It restates the one-pass sums of
the functions here in the same order, so each of its figures equals its own function's.

Conventions (see :mod:`barlab.metrics`): ``v`` is the returns with NaN dropped, ``n_all`` the
length before dropping (annualisation and the "too short" checks count NaNs); ratios follow
IEEE division (``error_model="numpy"``: x/0 is ±inf, 0/0 is NaN).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from barlab.order_stats_nb import (
    SAMPLE,
    lerp_nb,
    pair_in_window_nb,
    sample_brackets_nb,
)

_NB = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_NB)
def valid_nb(r):
    """The non-NaN values of ``r``, in order (a new array)."""
    out = np.empty(r.size)
    k = 0
    for x in r:
        if not math.isnan(x):
            out[k] = x
            k += 1
    return out[:k]


@njit(**_NB)
def returns_nb(equity, initial_cash):
    """``r[0] = equity[0] / initial_cash - 1``, ``r[i] = equity[i] / equity[i-1] - 1``."""
    out = np.empty(equity.size)
    prev = initial_cash
    for i in range(equity.size):
        out[i] = equity[i] / prev - 1.0
        prev = equity[i]
    return out


@njit(**_NB)
def moments_nb(v):
    """One pass over NaN-free returns, then one for the deviations: ``(n, mean, ss, growth,
    down_ss, gains, losses, wins, moved, high, low)`` where ``ss`` is the sum of squared
    deviations from the mean, ``growth`` is ``prod(1 + v)``, ``down_ss`` the sum of squared
    negative values, ``gains``/``losses`` the sums of positive values and of the absolute
    negative ones, ``wins``/``moved`` the counts of positive and of non-zero values, and
    ``high``/``low`` the extremes (NaN when empty). Branch-free where the sign of a return
    would be a coin flip to the branch predictor."""
    n = v.size
    total = 0.0
    growth = 1.0
    down_ss = 0.0
    gains = 0.0
    losses = 0.0
    wins = 0
    moved = 0
    high = -np.inf
    low = np.inf
    for x in v:
        total += x
        growth *= 1.0 + x
        neg = min(x, 0.0)
        down_ss += neg * neg
        gains += max(x, 0.0)
        losses -= neg
        wins += x > 0.0
        moved += x != 0.0
        high = max(high, x)
        low = min(low, x)
    if n == 0:
        return 0, np.nan, np.nan, growth, 0.0, 0.0, 0.0, 0, 0, np.nan, np.nan
    mean = total / n
    ss = 0.0
    if high != low:  # all equal: exactly 0, not rounding noise
        ss = _centred_sums_nb(v, mean, v, 0.0, False)[0]
    return n, mean, ss, growth, down_ss, gains, losses, wins, moved, high, low


@njit(**_NB)
def _centred_sums_nb(v, mean, y, ybar, fit):
    """``(sum((v - mean)²), sum((k - xbar)(y - ybar)), sum((y - ybar)²))`` over k = 0..n-1,
    xbar = (n - 1) / 2; the last two only if ``fit``. Four interleaved partial sums, added
    in a fixed order: the same numbers on every machine, at a quarter of the latency."""
    n = v.size
    xbar = (n - 1) / 2.0
    a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = c0 = c1 = c2 = c3 = 0.0
    whole = n - n % 4
    for k in range(0, whole, 4):
        d0 = v[k] - mean
        d1 = v[k + 1] - mean
        d2 = v[k + 2] - mean
        d3 = v[k + 3] - mean
        a0 += d0 * d0
        a1 += d1 * d1
        a2 += d2 * d2
        a3 += d3 * d3
        if fit:
            e0 = y[k] - ybar
            e1 = y[k + 1] - ybar
            e2 = y[k + 2] - ybar
            e3 = y[k + 3] - ybar
            kf = k + 0.0  # one conversion, not four: k + 1.0 is exact, as k + 1 is
            b0 += (kf - xbar) * e0
            b1 += (kf + 1.0 - xbar) * e1
            b2 += (kf + 2.0 - xbar) * e2
            b3 += (kf + 3.0 - xbar) * e3
            c0 += e0 * e0
            c1 += e1 * e1
            c2 += e2 * e2
            c3 += e3 * e3
    ss = (a0 + a1) + (a2 + a3)
    sxy = (b0 + b1) + (b2 + b3)
    syy = (c0 + c1) + (c2 + c3)
    for k in range(whole, n):
        d = v[k] - mean
        ss += d * d
        if fit:
            e = y[k] - ybar
            sxy += (k - xbar) * e
            syy += e * e
    return ss, sxy, syy


@njit(**_NB)
def _std1(n, ss):
    return np.nan if n < 2 else math.sqrt(ss / (n - 1))


@njit(**_NB)
def _cagr(growth, n_all, ppy):
    return np.nan if n_all == 0 else growth ** (1.0 / (n_all / ppy)) - 1.0


@njit(**_NB)
def _sharpe(n, mean, ss, n_all, ppy):
    if n_all < 2 or n == 0:
        return np.nan
    return mean / _std1(n, ss) * math.sqrt(ppy)


@njit(**_NB)
def _sortino(n, mean, down_ss, n_all, ppy):
    if n_all < 2 or n == 0:
        return np.nan
    return mean * ppy / (math.sqrt(down_ss / n) * math.sqrt(ppy))


@njit(**_NB)
def _calmar(growth, n_all, ppy, mdd):
    if not mdd < 0:
        return np.nan
    value = _cagr(growth, n_all, ppy) / abs(mdd)
    return np.nan if math.isinf(value) else value


@njit(**_NB)
def total_return_nb(v, n_all):
    return np.nan if n_all == 0 else moments_nb(v)[3] - 1.0


@njit(**_NB)
def cagr_nb(v, n_all, ppy):
    return _cagr(moments_nb(v)[3], n_all, ppy)


@njit(**_NB)
def annual_volatility_nb(v, n_all, ppy):
    m = moments_nb(v)
    return np.nan if n_all < 2 else _std1(m[0], m[2]) * math.sqrt(ppy)


@njit(**_NB)
def sharpe_nb(adj, n_all, ppy):
    """``adj`` = returns minus the risk-free rate per period, NaN dropped."""
    m = moments_nb(adj)
    return _sharpe(m[0], m[1], m[2], n_all, ppy)


@njit(**_NB)
def sortino_nb(adj, n_all, ppy):
    """``adj`` = returns minus the required return per period, NaN dropped."""
    m = moments_nb(adj)
    return _sortino(m[0], m[1], m[4], n_all, ppy)


@njit(**_NB)
def drawdown_nb(r):
    """(max drawdown, longest run under water) of wealth compounded from ``r`` (NaN as 0 %),
    starting at 1 before the first period; a NaN wealth (overflow) never becomes the peak."""
    if r.size == 0:
        return np.nan, 0
    wealth = 1.0
    peak = 1.0
    worst = 0.0
    run = 0
    longest = 0
    for x in r:
        if not math.isnan(x):
            wealth *= 1.0 + x
        if wealth > peak:
            peak = wealth
        dd = (wealth - peak) / peak
        if dd < worst:
            worst = dd
        if wealth < peak:
            run += 1
            longest = max(longest, run)
        else:
            run = 0
    return worst, longest


@njit(**_NB)
def calmar_nb(v, n_all, ppy, mdd):
    return _calmar(moments_nb(v)[3], n_all, ppy, mdd)


@njit(**_NB)
def omega_nb(v, n_all, risk_free, threshold):
    """Both per period."""
    if n_all < 2:
        return np.nan
    m = moments_nb(v - risk_free - threshold)
    return _omega(m[5], m[6])


@njit(**_NB)
def _omega(gains, losses):
    return gains / losses if losses > 0 else np.nan


@njit(**_NB)
def tail_ratio_nb(p95, p5):
    return abs(p95) / abs(p5)


@njit(**_NB)
def stability_nb(v, n_all):
    """R² of a least-squares line through ``y = cumsum(log1p(v))`` against ``0..n-1``."""
    n = v.size
    if n_all < 2 or n < 2:
        return np.nan
    y = np.empty(n)
    log1p_into_nb(v, y)
    total = 0.0
    ysum = 0.0
    flat = True
    for k in range(n):
        total += y[k]
        y[k] = total
        ysum += total
        flat &= total == y[0]
    _, sxy, syy = _centred_sums_nb(y, 0.0, y, ysum / n, True)
    return _stability(n_all, n, ysum, flat, sxy, syy)


@njit(**_NB)
def _stability(n_all, n, ysum, flat, sxy, syy):
    """R² from the centred sums of the fit (``sxy``, ``syy``), or NaN: too short, a return
    <= -100 % (``ysum`` not finite), or a flat curve (tested exactly: centring would leave
    rounding noise, not zeros)."""
    if n_all < 2 or n < 2 or not math.isfinite(ysum) or flat:
        return np.nan
    sxx = n * (n * n - 1.0) / 12.0  # the sum of (k - xbar)² over k = 0..n-1
    rho = sxy / math.sqrt(sxx * syy)
    return min(rho * rho, 1.0)


@njit(**_NB)
def win_rate_nb(v):
    m = moments_nb(v)
    return np.nan if m[8] == 0 else m[7] / m[8]


@njit(**_NB)
def profit_factor_nb(v):
    m = moments_nb(v)
    return np.nan if m[0] == 0 else m[5] / m[6]


# -- trades ------------------------------------------------------------------------------------


@njit(**_NB)
def trade_sums_nb(pnl):
    """One pass over trade PnLs: ``(count, wins, total, gross_profit, gross_loss, losers, best,
    worst, finite)``; ``gross_loss`` is the (negative) sum of the losing trades, ``best`` and
    ``worst`` are NaN when empty, ``finite`` whether every PnL is finite."""
    total = 0.0
    profit = 0.0
    loss = 0.0
    wins = 0
    losers = 0
    best = -np.inf
    worst = np.inf
    finite = True
    for x in pnl:
        finite &= math.isfinite(x)
        total += x
        if x > 0.0:
            profit += x
            wins += 1
        elif x < 0.0:
            loss += x
            losers += 1
        best = max(best, x)
        worst = min(worst, x)
    if pnl.size == 0:
        best = worst = np.nan
    return pnl.size, wins, total, profit, loss, losers, best, worst, finite


# -- every statistic of one run, fused ---------------------------------------------------------

# every Metrics field, in order: the row metrics_into_nb fills, for compute_metrics and sweeps
METRIC_FIELDS = (
    "total_return", "cagr", "annual_volatility", "sharpe", "sortino", "calmar",
    "max_drawdown", "max_drawdown_duration", "omega", "tail_ratio", "value_at_risk",
    "stability", "win_rate", "profit_factor", "best_period", "worst_period",
    "n_trades", "trade_win_rate", "avg_trade", "expectancy", "trade_profit_factor",
    "exposure", "fees", "final_equity",
)  # fmt: skip
SCRATCH_ROWS = 4  # metrics_into_nb's scratch: (SCRATCH_ROWS, n_bars) float64
OK, BAD_EQUITY, BAD_PNL = 0, 1, 2  # metrics_into_nb's answer


@njit(**_NB)
def _returns_into_nb(equity, initial_cash, r):
    """`returns_nb` into ``r``; ``(NaN returns, non-finite equity values)``. Loops without
    dependencies between iterations, which the compiler turns into vector instructions."""
    n = equity.size
    if n:
        r[0] = equity[0] / initial_cash - 1.0
    for i in range(1, n):
        r[i] = equity[i] / equity[i - 1] - 1.0
    nans = 0
    bad = 0
    for i in range(n):
        nans += math.isnan(r[i])
        bad += not math.isfinite(equity[i])
    return nans, bad


_NEAR = 1.0 / 32.0  # |x| below: log1p by its series; above, by the C library


@njit(**_NB)
def log1p_into_nb(v, out):
    """``out[i] = log1p(v[i])`` within an ulp. Returns are mostly tiny: there the alternating
    series to x¹² (truncated below 2⁻⁶⁰ · |x|), as ``x - x² q(x)``, in one vectorised loop is
    seven times faster than calling the C library's log1p, which serves the few others."""
    for i in range(v.size):
        x = v[i]
        q = 1.0 / 12.0
        q = 1.0 / 11.0 - x * q
        q = 1.0 / 10.0 - x * q
        q = 1.0 / 9.0 - x * q
        q = 1.0 / 8.0 - x * q
        q = 1.0 / 7.0 - x * q
        q = 1.0 / 6.0 - x * q
        q = 1.0 / 5.0 - x * q
        q = 1.0 / 4.0 - x * q
        q = 1.0 / 3.0 - x * q
        q = 0.5 - x * q
        out[i] = x - (x * x) * q  # the correction is below |x| / 64: rounded once, nearly
    for i in range(v.size):
        if abs(v[i]) >= _NEAR:  # NaN stays NaN either way
            out[i] = math.log1p(v[i])


@njit(**_NB)
def _returns_pass_nb(equity, initial_cash, v, y, win_a, win_b):
    """The returns of an equity curve, NaN dropped, into ``v``; the running
    ``cumsum(log1p(v))`` of `stability_nb` into ``y``; and the one-pass sums of `moments_nb`
    and `drawdown_nb` in their order, so every statistic equals its own function's. Then counts
    the returns below the sampled brackets of the 5th and 95th percentiles and gathers those
    within them into ``win_a`` and ``win_b``. Returns the sums, ``finite``, then
    ``(lo, below, gathered)`` for each percentile (nothing gathered when there are too few
    returns to sample)."""
    nans, bad = _returns_into_nb(equity, initial_cash, v)
    if bad:
        return (0, 0.0, 1.0, 0.0, 0.0, 0.0, 0, 0, 0.0, 0.0, 0.0, True, 0.0, 0, False,
                0, 0, 0, 0, 0, 0)  # fmt: skip
    drawdown = (0.0, 0)
    n = equity.size
    if nans:  # rare (equity reached 0): the drawdown counts NaN periods, the rest drops them
        drawdown = drawdown_nb(v[:n])
        k = 0
        for i in range(n):
            if not math.isnan(v[i]):
                v[k] = v[i]
                k += 1
        n = k
    log1p_into_nb(v[:n], y[:n])
    lo_a = math.floor(5.0 / 100.0 * (n - 1))  # as np.percentile's ranks
    lo_b = math.floor(95.0 / 100.0 * (n - 1))
    low_a = high_a = low_b = high_b = np.nan  # compare false: nothing counted or gathered
    if n > 4 * SAMPLE:
        low_a, high_a, low_b, high_b = sample_brackets_nb(v[:n], lo_a, lo_b)
    below_a = below_b = k_a = k_b = 0
    total = 0.0
    growth = 1.0  # prod(1 + v): also the wealth of drawdown_nb, NaN compounded as 0 %
    down_ss = 0.0
    gains = 0.0
    losses = 0.0
    wins = 0
    moved = 0
    high = -np.inf
    low = np.inf
    logs = 0.0
    ysum = 0.0
    flat = True
    first = y[0] if n else 0.0  # y[0] as the curve starts: log1p(v[0])
    peak = 1.0
    worst = 0.0
    run = 0
    longest = 0
    for k in range(n):
        x = v[k]
        total += x
        growth *= 1.0 + x
        neg = min(x, 0.0)
        down_ss += neg * neg
        gains += max(x, 0.0)
        losses -= neg
        wins += x > 0.0
        moved += x != 0.0
        high = max(high, x)
        low = min(low, x)
        logs += y[k]
        y[k] = logs
        ysum += logs
        flat &= logs == first
        if growth > peak:
            peak = growth
        if growth < peak:  # else the drawdown is 0 (or NaN): never the worst
            dd = (growth - peak) / peak
            if dd < worst:
                worst = dd
            run += 1
            longest = max(longest, run)
        else:
            run = 0
    if nans:
        worst, longest = drawdown
    for k in range(n):  # without branches: which values fall in a bracket is a coin flip
        x = v[k]
        below_a += x < low_a
        below_b += x < low_b
        win_a[k_a] = x
        k_a += (x >= low_a) & (x <= high_a)
        win_b[k_b] = x
        k_b += (x >= low_b) & (x <= high_b)
    return (n, total, growth, down_ss, gains, losses, wins, moved, high, low, ysum, flat,
            worst, longest, True, lo_a, below_a, k_a, lo_b, below_b, k_b)  # fmt: skip


@njit(**_NB)
def _summary_into_nb(equity, initial_cash, ppy, omega_threshold, scratch, out):
    """The return statistics (``out[:16]``), in a few passes over the returns: vectorised
    ones for the returns and their logs, one for the running sums and the drawdown, one for
    the tail percentiles (the 5th and 95th, exact: counted below sampled brackets, gathered
    within them, then selected) and one for the deviations and the stability fit. False when
    the equity is not finite."""
    n_all = equity.size
    v, y, win_a, win_b = scratch[0], scratch[1], scratch[2], scratch[3]
    n, total, growth, down_ss, gains, losses, wins, moved, high, low, ysum, flat, mdd, longest, \
        finite, lo_a, below_a, k_a, lo_b, below_b, k_b = _returns_pass_nb(
            equity, initial_cash, v, y, win_a, win_b)  # fmt: skip
    if not finite:
        return False
    v, y = v[:n], y[:n]
    mean = total / n if n else np.nan
    ss, sxy, syy = _centred_sums_nb(v, mean, y, ysum / n if n else np.nan, True)
    if high == low:  # all equal: exactly 0, not rounding noise
        ss = 0.0
    p5 = p95 = np.nan
    if n:  # unsampled (small): the windows are empty, quickselect runs over a copy
        below, above = pair_in_window_nb(v, lo_a, below_a, win_a, k_a)
        p5 = lerp_nb(below, above, 5.0 / 100.0 * (n - 1))
        below, above = pair_in_window_nb(v, lo_b, below_b, win_b, k_b)
        p95 = lerp_nb(below, above, 95.0 / 100.0 * (n - 1))
    out[0] = np.nan if n_all == 0 else growth - 1.0
    out[1] = _cagr(growth, n_all, ppy)
    out[2] = np.nan if n_all < 2 else _std1(n, ss) * math.sqrt(ppy)
    out[3] = _sharpe(n, mean, ss, n_all, ppy)
    out[4] = _sortino(n, mean, down_ss, n_all, ppy)
    mdd = np.nan if n_all == 0 else mdd
    out[5] = _calmar(growth, n_all, ppy, mdd)
    out[6] = mdd
    out[7] = longest
    if omega_threshold == 0.0:
        out[8] = np.nan if n_all < 2 else _omega(gains, losses)
    else:
        out[8] = omega_nb(v, n_all, 0.0, omega_threshold)
    out[9] = tail_ratio_nb(p95, p5) if n else np.nan
    out[10] = p5
    out[11] = _stability(n_all, n, ysum, flat, sxy, syy)
    out[12] = np.nan if moved == 0 else wins / moved
    out[13] = np.nan if n == 0 else gains / losses
    out[14] = high if n else np.nan
    out[15] = low if n else np.nan
    return True


@njit(**_NB)
def metrics_into_nb(equity, initial_cash, ppy, omega_threshold, pnl, n_in_market, fees, scratch,
                    out):  # fmt: skip
    """Every Metrics field of one run into ``out`` (:data:`METRIC_FIELDS` order), without
    allocating more than a few small arrays.

    ``equity`` (n,) USD at each close; ``pnl`` each trade's net PnL, USD; ``n_in_market`` the
    bars with a position open (-1: unknown, exposure NaN); ``fees`` USD; ``scratch`` a
    (:data:`SCRATCH_ROWS`, n) float64 array to work in. Returns :data:`OK`, or
    :data:`BAD_EQUITY` / :data:`BAD_PNL` for a NaN or inf there (``out`` is then partial).
    """
    if not _summary_into_nb(equity, initial_cash, ppy, omega_threshold, scratch, out):
        return BAD_EQUITY
    count, wins, total, profit, loss, losers, _, _, finite = trade_sums_nb(pnl)
    if not finite:
        return BAD_PNL
    avg = total / count if count else np.nan
    out[16] = count
    out[17] = wins / count if count else np.nan
    out[18] = avg
    out[19] = avg / abs(loss / losers if losers else 0.0) if count else np.nan
    out[20] = profit / abs(loss) if count else np.nan
    n = equity.size
    out[21] = np.nan if n_in_market < 0 or n == 0 else n_in_market / n
    out[22] = fees
    out[23] = equity[-1] if n else initial_cash
    return OK


@njit(**_NB)
def rows_in_market_nb(positions):
    """Rows of ``positions`` (n, m) holding any non-zero position."""
    count = 0
    if positions.shape[1] == 1:  # one symbol: a loop without a branch, vectorised
        for t in range(positions.shape[0]):
            count += positions[t, 0] != 0.0
        return count
    for t in range(positions.shape[0]):
        for j in range(positions.shape[1]):
            if positions[t, j] != 0.0:
                count += 1
                break
    return count
