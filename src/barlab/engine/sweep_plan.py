"""What a sweep will run, before any backtest: the parameter grid of a strategy, the constraint
(``--where "fast < slow"``, a safe expression over the parameters) and the combinations left.
"""

from __future__ import annotations

import ast
import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from barlab.errors import StrategyError
from barlab.strategy import Param, Strategy, _coerce

Where = Callable[[dict[str, Any]], bool]


# -- constraints -------------------------------------------------------------------------------

_ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Name, ast.Load,
    ast.Constant, ast.IfExp,
)  # fmt: skip


def compile_where(expr: str, names: Iterable[str]) -> Where:
    """Turn ``"fast < slow"`` into a callable on a params dict.

    Only parameter names, numbers, strings, ``True``/``False``, arithmetic, comparisons and
    ``and``/``or``/``not`` are allowed: no calls, attributes, subscripts or builtins.
    Raises StrategyError naming the problem.
    """
    known = list(names)
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as e:
        raise StrategyError(f"constraint {expr!r} is not a valid expression ({e.msg})") from e
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise StrategyError(
                f"constraint {expr!r}: {type(node).__name__} is not allowed; use parameter "
                "names, numbers, comparisons and and/or/not, e.g. 'fast < slow'"
            )
        if isinstance(node, ast.Name) and node.id not in known:
            raise StrategyError(
                f"constraint {expr!r}: unknown name {node.id!r}; the strategy's parameters "
                f"are {', '.join(known) or 'none'}"
            )
    code = compile(tree, "<where>", "eval")

    def where(params: dict[str, Any]) -> bool:
        return bool(eval(code, {"__builtins__": {}}, dict(params)))

    where.expr = expr  # type: ignore[attr-defined]
    return where


# -- the plan: combinations, before any backtest ----------------------------------------------


@dataclass(frozen=True, slots=True)
class SweepPlan:
    """The combinations to run, and why the others will not be."""

    strategy_cls: type[Strategy]
    grid: dict[str, list[Any]]
    combos: list[dict[str, Any]]
    n_grid: int
    n_skipped: int
    n_invalid: int
    where: str | None


def split_kwargs(
    strategy_cls: type[Strategy], kwargs: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split keywords into (parameter grid, backtest options)."""
    names = {p.name for p in strategy_cls.params()}
    grid = {k: v for k, v in kwargs.items() if k in names}
    options = {k: v for k, v in kwargs.items() if k not in names}
    return grid, options


def _values(label: str, param: Param, values: Any) -> list[Any]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        values = [values]
    out = [_coerce(label, param, v) for v in values]
    if not out:
        raise StrategyError(f"{label} parameter {param.name}: no values to sweep (empty range?)")
    return out


def plan(
    strategy_cls: type[Strategy], grid: Mapping[str, Any], where: Where | str | None = None
) -> SweepPlan:
    """Expand ``grid``, apply the constraint ``where`` and the strategy's own validation.

    Raises StrategyError for an unknown parameter, an empty list of values, a value of the
    wrong type, a constraint that leaves no combination, or no valid combination at all.
    """
    if not (isinstance(strategy_cls, type) and issubclass(strategy_cls, Strategy)):
        raise StrategyError(
            f"sweep() takes a Strategy class, got {strategy_cls!r}; e.g. sweep(SmaCrossover, "
            "bars, fast=range(5, 55), slow=range(20, 220, 10))"
        )
    label = strategy_cls.label()
    params = {p.name: p for p in strategy_cls.params()}
    for name in grid:
        if name not in params:
            raise StrategyError(
                f"{label} has no parameter {name!r}; it takes {', '.join(params) or 'none'}"
            )
    if not grid:
        raise StrategyError(
            f"nothing to sweep: give values for at least one of {label}'s parameters "
            f"({', '.join(params) or 'none'})"
        )
    values = {name: _values(label, params[name], grid[name]) for name in params if name in grid}
    expr = where if isinstance(where, str) else getattr(where, "expr", None)
    if isinstance(where, str):
        where = compile_where(where, params)
    defaults = {p.name: p.default for p in params.values()}
    n_grid = math.prod(len(v) for v in values.values())
    kept: list[dict[str, Any]] = []
    n_skipped = 0
    for combo in itertools.product(*values.values()):
        chosen = dict(zip(values, combo, strict=True))
        if where is not None and not where({**defaults, **chosen}):
            n_skipped += 1
            continue
        kept.append(chosen)
    if not kept:
        raise StrategyError(
            f"the constraint {expr or 'where'!r} leaves none of the {n_grid} combinations; "
            "loosen it or widen the ranges"
        )
    combos: list[dict[str, Any]] = []
    first_error = ""
    for chosen in kept:
        try:
            strategy_cls(**chosen)
        except StrategyError as e:
            first_error = first_error or str(e)
            continue
        combos.append(chosen)
    if not combos:
        raise StrategyError(
            f"none of the {len(kept)} combinations is valid for {label}: {first_error}"
        )
    return SweepPlan(
        strategy_cls=strategy_cls, grid=values, combos=combos, n_grid=n_grid,
        n_skipped=n_skipped, n_invalid=len(kept) - len(combos), where=expr,
    )  # fmt: skip
