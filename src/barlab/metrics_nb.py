"""The return statistics as numba kernels: their one definition.

:mod:`barlab.metrics` documents each statistic and wraps these kernels for one series;
:func:`summary_nb` computes them all for one equity curve in a few passes, without the GIL,
for :func:`barlab.metrics.compute_metrics` (a backtest) and for every combination of a sweep.

Conventions (see :mod:`barlab.metrics`): ``v`` is the returns with NaN dropped, ``n_all`` the
length before dropping (annualisation and the "too short" checks count NaNs); ratios follow
IEEE division (``error_model="numpy"``: x/0 is ±inf, 0/0 is NaN).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_NB = {"cache": True, "nogil": True, "error_model": "numpy"}

# the order of summary_nb's output; compute_metrics maps it onto Metrics fields
SUMMARY_FIELDS = (
    "total_return", "cagr", "annual_volatility", "sharpe", "sortino", "calmar",
    "max_drawdown", "max_drawdown_duration", "omega", "tail_ratio", "value_at_risk",
    "stability", "win_rate", "profit_factor", "best_period", "worst_period",
)  # fmt: skip


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
        for x in v:
            ss += (x - mean) * (x - mean)
    return n, mean, ss, growth, down_ss, gains, losses, wins, moved, high, low


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
def _select_nb(a, k):
    """Reorder ``a`` in place so ``a[k]`` is its k-th smallest value; everything before is <=
    and everything after >= it. Quickselect with a three-way partition, so runs of equal
    values (the zero returns of flat periods) cost one pass, not a quadratic walk."""
    lo, hi = 0, a.size - 1
    while lo < hi:
        mid = (lo + hi) // 2
        x, y, z = a[lo], a[mid], a[hi]
        pivot = max(min(x, y), min(max(x, y), z))  # the median of three
        lt, i, gt = lo, lo, hi
        while i <= gt:
            if a[i] < pivot:
                a[lt], a[i] = a[i], a[lt]
                lt += 1
                i += 1
            elif a[i] > pivot:
                a[gt], a[i] = a[i], a[gt]
                gt -= 1
            else:
                i += 1
        if k < lt:
            hi = lt - 1
        elif k > gt:
            lo = gt + 1
        else:
            return


_SAMPLE = 4096  # values in the sample that brackets a rank


@njit(**_NB)
def sorted_sample_nb(v):
    """A sorted strided sample of ``v`` (empty when ``v`` is too small to need one)."""
    n = v.size
    return np.sort(v[:: n // _SAMPLE]) if n > 4 * _SAMPLE else np.empty(0)


@njit(**_NB)
def _order_stats_nb(v, lo, sample, window):
    """``(a[lo], a[lo + 1])`` of ``a = sorted(v)`` (the second is NaN past the end).

    The sorted ``sample`` brackets rank ``lo`` between two values; one branch-free pass counts
    what lies below the bracket and gathers what lies in it (a few percent of ``v``) into
    ``window`` (scratch, ``v.size`` long), and quickselect finishes there. Without a sample,
    or when it misses (rare), quickselect runs over a copy of everything.
    """
    n = v.size
    size = sample.size
    if size:
        at = lo * size // n
        margin = 4 * int(math.sqrt(size))
        low = sample[max(0, at - margin)]
        high = sample[min(size - 1, at + margin)]
        below = 0
        k = 0
        for x in v:
            below += x < low
            window[k] = x
            k += (x >= low) & (x <= high)
        if below <= lo and lo + 1 < below + k:
            w = window[:k]
            _select_nb(w, lo - below)
            _select_nb(w[lo - below + 1 :], 0)
            return w[lo - below], w[lo - below + 1]
    a = v.copy()
    _select_nb(a, lo)
    if lo + 1 >= n:
        return a[lo], np.nan
    _select_nb(a[lo + 1 :], 0)
    return a[lo], a[lo + 1]


@njit(**_NB)
def _percentile(v, q, sample, window):
    n = v.size
    if n == 0:
        return np.nan
    pos = q / 100.0 * (n - 1)
    lo = math.floor(pos)
    t = pos - lo
    below, above = _order_stats_nb(v, lo, sample, window)
    if t == 0.0 or lo + 1 >= n:
        return below
    diff = above - below
    # numpy's lerp: exact at both ends
    return above - diff * (1.0 - t) if t >= 0.5 else below + diff * t


@njit(**_NB)
def percentile_nb(v, q):
    """``np.percentile(v, q)`` (linear interpolation) of NaN-free ``v``, by selection."""
    return _percentile(v, q, sorted_sample_nb(v), np.empty(v.size))


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
    total = 0.0
    ysum = 0.0
    flat = True
    for k in range(n):
        if v[k] != 0.0:  # log1p(0) is 0: flat periods cost nothing
            total += math.log1p(v[k])
        y[k] = total
        ysum += total
        flat = flat and total == y[0]
    if not math.isfinite(ysum):
        return np.nan
    if flat:  # tested exactly: centring would leave rounding noise, not zeros
        return np.nan
    xbar = (n - 1) / 2.0
    ybar = ysum / n
    sxy = 0.0
    syy = 0.0
    for k in range(n):
        dy = y[k] - ybar
        sxy += (k - xbar) * dy
        syy += dy * dy
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


@njit(**_NB)
def summary_nb(equity, initial_cash, ppy, omega_threshold):
    """Every return statistic of one equity curve, in :data:`SUMMARY_FIELDS` order."""
    r = returns_nb(equity, initial_cash)
    v = valid_nb(r)
    n_all = r.size
    n, mean, ss, growth, down_ss, gains, losses, wins, moved, high, low = moments_nb(v)
    mdd, duration = drawdown_nb(r)
    sample = sorted_sample_nb(v)
    window = np.empty(v.size)
    p5 = _percentile(v, 5.0, sample, window)
    out = np.empty(len(SUMMARY_FIELDS))
    out[0] = np.nan if n_all == 0 else growth - 1.0
    out[1] = _cagr(growth, n_all, ppy)
    out[2] = np.nan if n_all < 2 else _std1(n, ss) * math.sqrt(ppy)
    out[3] = _sharpe(n, mean, ss, n_all, ppy)
    out[4] = _sortino(n, mean, down_ss, n_all, ppy)
    out[5] = _calmar(growth, n_all, ppy, mdd)
    out[6] = mdd
    out[7] = duration
    if omega_threshold == 0.0:
        out[8] = np.nan if n_all < 2 else _omega(gains, losses)
    else:
        out[8] = omega_nb(v, n_all, 0.0, omega_threshold)
    out[9] = tail_ratio_nb(_percentile(v, 95.0, sample, window), p5) if n else np.nan
    out[10] = p5
    out[11] = stability_nb(v, n_all)
    out[12] = np.nan if moved == 0 else wins / moved
    out[13] = np.nan if n == 0 else gains / losses
    out[14] = high
    out[15] = low
    return out
