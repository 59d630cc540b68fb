"""Slow, obviously correct versions of barlab.metrics: plain Python loops over lists of floats.

Each function restates the documented definition (empyrical's where one exists) step by step,
without numpy, so the fast module can be checked against it on random inputs.
"""

from __future__ import annotations

import math

from scipy import stats

NAN = math.nan


def _clean(returns) -> list[float]:
    return [float(x) for x in returns if not math.isnan(x)]


def _ratio(num: float, den: float) -> float:
    if den != 0:
        return num / den
    if num == 0 or math.isnan(num):
        return NAN
    return math.copysign(math.inf, num)


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _std1(xs: list[float]) -> float:
    if len(xs) < 2:
        return NAN
    if all(x == xs[0] for x in xs):
        return 0.0
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _percentile(xs: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default 'linear' method)."""
    s = sorted(xs)
    pos = q / 100 * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    frac = pos - lo
    return s[lo] + (s[hi] - s[lo]) * frac


def wealth(returns) -> list[float]:
    w = [1.0]
    for x in returns:
        w.append(w[-1] * (1 + (0.0 if math.isnan(x) else x)))
    return w


def total_return(returns) -> float:
    if len(returns) == 0:
        return NAN
    return wealth(returns)[-1] - 1


def cagr(returns, periods_per_year) -> float:
    if len(returns) == 0:
        return NAN
    years = len(returns) / periods_per_year
    ending = wealth(returns)[-1]
    if ending < 0:
        return NAN
    return ending ** (1 / years) - 1


def annual_volatility(returns, periods_per_year) -> float:
    if len(returns) < 2:
        return NAN
    return _std1(_clean(returns)) * math.sqrt(periods_per_year)


def sharpe(returns, periods_per_year, risk_free=0.0) -> float:
    if len(returns) < 2:
        return NAN
    adj = [x - risk_free for x in _clean(returns)]
    if not adj:
        return NAN
    return _ratio(_mean(adj), _std1(adj)) * math.sqrt(periods_per_year)


def sortino(returns, periods_per_year, required_return=0.0) -> float:
    if len(returns) < 2:
        return NAN
    adj = [x - required_return for x in _clean(returns)]
    if not adj:
        return NAN
    downside = math.sqrt(_mean([min(x, 0.0) ** 2 for x in adj])) * math.sqrt(periods_per_year)
    return _ratio(_mean(adj) * periods_per_year, downside)


def max_drawdown(returns) -> float:
    if len(returns) == 0:
        return NAN
    worst, peak = 0.0, -math.inf
    for w in wealth(returns):
        peak = max(peak, w)
        worst = min(worst, (w - peak) / peak)
    return worst


def max_drawdown_duration(returns) -> int:
    longest = run = 0
    peak = -math.inf
    for w in wealth(returns):
        if w < peak:
            run += 1
            longest = max(longest, run)
        else:
            run = 0
        peak = max(peak, w)
    return longest


def calmar(returns, periods_per_year) -> float:
    mdd = max_drawdown(returns)
    if not mdd < 0:
        return NAN
    value = cagr(returns, periods_per_year) / abs(mdd)
    return NAN if math.isinf(value) else value


def omega(returns, periods_per_year, risk_free=0.0, required_return=0.0) -> float:
    if len(returns) < 2:
        return NAN
    if periods_per_year == 1:
        threshold = required_return
    elif required_return <= -1:
        return NAN
    else:
        threshold = (1 + required_return) ** (1 / periods_per_year) - 1
    gains = losses = 0.0
    for x in _clean(returns):
        excess = x - risk_free - threshold
        if excess > 0:
            gains += excess
        elif excess < 0:
            losses -= excess
    return gains / losses if losses > 0 else NAN


def tail_ratio(returns) -> float:
    xs = _clean(returns)
    if not xs:
        return NAN
    return _ratio(abs(_percentile(xs, 95)), abs(_percentile(xs, 5)))


def value_at_risk(returns, cutoff=0.05) -> float:
    xs = _clean(returns)
    return _percentile(xs, 100 * cutoff) if xs else NAN


def stability(returns) -> float:
    if len(returns) < 2:
        return NAN
    xs = _clean(returns)
    if len(xs) < 2 or min(xs) <= -1:
        return NAN
    cum, total = [], 0.0
    for x in xs:
        total += math.log1p(x)
        cum.append(total)
    if all(c == cum[0] for c in cum):
        return NAN
    return stats.linregress(list(range(len(cum))), cum).rvalue ** 2


def win_rate(returns) -> float:
    moved = [x for x in _clean(returns) if x != 0]
    return sum(1 for x in moved if x > 0) / len(moved) if moved else NAN


def profit_factor(returns) -> float:
    xs = _clean(returns)
    if not xs:
        return NAN
    return _ratio(sum(x for x in xs if x > 0), -sum(x for x in xs if x < 0))


def best_period(returns) -> float:
    xs = _clean(returns)
    return max(xs) if xs else NAN


def worst_period(returns) -> float:
    xs = _clean(returns)
    return min(xs) if xs else NAN


def trade_stats(pnl) -> dict[str, float]:
    pnl = [float(x) for x in pnl]
    if not pnl:
        return {"count": 0}
    wins = [x for x in pnl if x > 0]
    losses = [x for x in pnl if x < 0]
    avg = _mean(pnl)
    s = sorted(pnl)
    mid = len(s) // 2
    median = s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
    return {
        "count": len(pnl),
        "win_rate": len(wins) / len(pnl),
        "avg_trade": avg,
        "median_trade": median,
        "expectancy": _ratio(avg, abs(_mean(losses)) if losses else 0.0),
        "profit_factor": _ratio(sum(wins), -sum(losses)),
        "best_trade": max(pnl),
        "worst_trade": min(pnl),
    }
