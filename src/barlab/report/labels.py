"""How metrics are named and formatted for people (the terminal summary and the report)."""

from __future__ import annotations

import math

# metric field -> (label, format): pct = percent, ratio = 2 decimals, int, money, bars (1 decimal)
METRIC_FORMATS: dict[str, tuple[str, str]] = {
    "total_return": ("Total return", "pct"),
    "cagr": ("CAGR", "pct"),
    "annual_volatility": ("Volatility (ann.)", "pct"),
    "sharpe": ("Sharpe", "ratio"),
    "sortino": ("Sortino", "ratio"),
    "calmar": ("Calmar", "ratio"),
    "max_drawdown": ("Max drawdown", "pct"),
    "max_drawdown_duration": ("Max drawdown duration (bars)", "int"),
    "omega": ("Omega", "ratio"),
    "tail_ratio": ("Tail ratio", "ratio"),
    "value_at_risk": ("Value at risk (5%, per bar)", "pct"),
    "stability": ("Stability (R²)", "ratio"),
    "win_rate": ("Winning bars", "pct"),
    "profit_factor": ("Profit factor (bars)", "ratio"),
    "best_period": ("Best bar", "pct"),
    "worst_period": ("Worst bar", "pct"),
    "n_trades": ("Trades", "int"),
    "trade_win_rate": ("Win rate (trades)", "pct"),
    "avg_trade": ("Average trade", "money"),
    "expectancy": ("Expectancy (avg trade / avg loss)", "ratio"),
    "trade_profit_factor": ("Profit factor (trades)", "ratio"),
    "exposure": ("Exposure", "pct"),
    "fees": ("Fees", "money"),
    "final_equity": ("Final equity", "money"),
}

EXTRA_FORMATS: dict[str, tuple[str, str]] = {
    "median_trade": ("Median trade", "money"),
    "best_trade": ("Best trade", "money"),
    "worst_trade": ("Worst trade", "money"),
    "avg_holding_bars": ("Average holding time (bars)", "bars"),
    "turnover": ("Turnover (× mean equity per year)", "ratio"),
    "slippage": ("Slippage paid", "money"),
}
"""Report-only rows (see :mod:`barlab.report.stats`), computed by barlab.metrics functions."""

METRIC_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Returns", ("total_return", "cagr", "final_equity", "best_period", "worst_period",
                 "stability")),
    ("Risk", ("annual_volatility", "sharpe", "sortino", "calmar", "omega", "tail_ratio",
              "value_at_risk", "max_drawdown", "max_drawdown_duration")),
    ("Bars", ("win_rate", "profit_factor", "exposure")),
    ("Trades", ("n_trades", "trade_win_rate", "avg_trade", "median_trade", "best_trade",
                "worst_trade", "expectancy", "trade_profit_factor", "avg_holding_bars")),
    ("Costs", ("turnover", "fees", "slippage")),
)  # fmt: skip
"""The report's metrics table, in sections: every Metrics field and every extra, once."""

SUMMARY = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "n_trades",
    "trade_win_rate",
    "exposure",
    "fees",
    "final_equity",
)
"""The metrics the terminal summary shows."""


def fmt(value: float | int | None, kind: str) -> str:
    """``0.1234, 'pct'`` -> ``'12.34%'``; NaN -> ``'–'``; inf -> ``'∞'``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if kind == "pct":
        if abs(value) >= 100:  # beyond 10,000 % (a leaky strategy's CAGR): no 20-digit numbers
            return f"{value * 100:.3g}%"
        return f"{value:.2%}"
    if kind == "ratio":
        return f"{value:.2f}"
    if kind == "bars":
        return f"{value:,.1f}"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "money":
        return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"
    return str(value)


def label(name: str) -> str:
    return (METRIC_FORMATS.get(name) or EXTRA_FORMATS[name])[0]


def format_metric(name: str, value: float | int | None) -> str:
    return fmt(value, (METRIC_FORMATS.get(name) or EXTRA_FORMATS[name])[1])
