"""What "best" means in research: an objective over :class:`barlab.Metrics`, higher is better."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from barlab.errors import ConfigError
from barlab.metrics import Metrics

OBJECTIVES = (
    "sharpe", "sortino", "calmar", "total_return", "cagr", "omega", "profit_factor",
    "final_equity",
)  # fmt: skip
"""Metric names accepted as objectives: each one is better when higher."""

Objective = str | Callable[[Metrics], float]

_METRIC_NAMES = tuple(f.name for f in dataclasses.fields(Metrics))


def resolve_objective(objective: Objective) -> tuple[str, Callable[[Metrics], float]]:
    """``(name, function of Metrics)`` for a metric name or a callable.

    A callable receives a :class:`Metrics` and returns a float, higher is better, e.g.
    ``lambda m: m.sharpe - 2 * abs(m.max_drawdown)``; its name is its ``__name__``.
    """
    if isinstance(objective, str):
        if objective not in OBJECTIVES:
            raise ConfigError(
                f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)} or a "
                "function of Metrics returning a float (higher is better)"
            )
        return objective, lambda m: float(getattr(m, objective))
    if callable(objective):
        name = getattr(objective, "__name__", "") or "custom"
        return ("custom" if name == "<lambda>" else name), objective
    raise ConfigError(
        f"objective must be a metric name ({', '.join(OBJECTIVES)}) or a function of Metrics, "
        f"got {objective!r}"
    )


def metrics_from_row(row: Mapping[str, Any]) -> Metrics:
    """The :class:`Metrics` of one row of a sweep table (parameters and metric columns)."""
    return Metrics.from_dict({name: row[name] for name in _METRIC_NAMES})


def rank_value(value: float) -> float:
    """``value`` for ranking: NaN (undefined, e.g. no trade) ranks below every number."""
    return -math.inf if value is None or math.isnan(value) else float(value)
