"""`optimize(strategy_cls, bars, fast=(5, 100), slow=(20, 400)) -> OptimizeResult`: scipy's
differential evolution over a strategy's parameters, each point a full backtest.

scipy runs in its vectorized mode: every generation arrives as one batch of candidate points,
and the new ones run through :func:`barlab.sweep` together (its workers, its fast path). Integer
(and bool) parameters stay whole: scipy searches them as integers, the points are rounded again
before use, and each distinct point is backtested once (a cache answers repeats). A point that
breaks the ``where`` constraint or the strategy's ``validate()``, or whose objective is undefined
(NaN, e.g. no trade), scores :data:`PENALTY` and is never chosen while a defined point exists.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from barlab.bars import Bars
from barlab.engine.backtest import BacktestOptions, backtest
from barlab.errors import ConfigError, StrategyError
from barlab.metrics import Metrics
from barlab.research.distributed import session_for
from barlab.research.objective import Objective, metrics_from_row, rank_value, resolve_objective
from barlab.research.runs import data_info, save_run
from barlab.strategy import Strategy, _coerce

PENALTY = 1e6
"""What scipy minimises for an infeasible point or an undefined objective (it minimises
``-objective``, clipped to ``[-PENALTY, PENALTY]``)."""

OPTIMIZE_FORMAT = 1
METRIC_NAMES = tuple(f.name for f in dataclasses.fields(Metrics))
METHODS = ("differential_evolution",)
_MAX_PRODUCT = 20_000  # combinations a batch's grid may expand to before the membership filter


@dataclass(frozen=True, slots=True)
class Bound:
    """One searched parameter: ``lo <= value <= hi`` (inclusive), of type ``kind``."""

    name: str
    lo: float
    hi: float
    kind: type

    def value(self, x: float) -> Any:
        """scipy's coordinate ``x`` as the parameter's value (whole numbers rounded)."""
        if self.kind is float:
            return float(min(max(x, self.lo), self.hi))
        whole = int(min(max(round(float(x)), self.lo), self.hi))
        return bool(whole) if self.kind is bool else whole


@dataclass(frozen=True, kw_only=True, eq=False)
class OptimizeResult:
    """What an optimisation found.

    Attributes
    ----------
    best_params : dict
        The best point, fixed parameters included, e.g. ``{"fast": 12, "slow": 140}``.
    best_value : float
        Its objective (NaN if no point had a defined objective).
    best_metrics : Metrics
    table : polars DataFrame
        Every distinct point scipy proposed, in the order first proposed: ``eval`` (0, 1, ...),
        the searched parameters, ``feasible``, ``objective``, then every Metrics field (null
        for infeasible points).
    n_evaluations : int
        Distinct points backtested.
    n_infeasible : int
        Distinct points refused by the constraint or the strategy.
    n_candidates : int
        Points scipy asked for, repeats included.
    nit : int
        Generations run.
    elapsed_s : float
    message : str
        scipy's own word on how it stopped.
    """

    best_params: dict[str, Any]
    best_value: float
    best_metrics: Metrics
    table: pl.DataFrame
    n_evaluations: int
    n_infeasible: int
    n_candidates: int
    nit: int
    elapsed_s: float
    message: str
    strategy_cls: type[Strategy]
    bars: Bars
    options: dict[str, Any]
    info: dict[str, Any]

    def rerun(self, params: Mapping[str, Any] | None = None):
        """A full :class:`barlab.Result` for ``params`` (default: the best point)."""
        chosen = self.best_params if params is None else dict(params)
        return backtest(self.strategy_cls(**chosen), self.bars, **self.options)

    def save(self, reports_dir: Any, *, config: dict[str, Any] | None = None) -> Path:
        """Save as ``reports_dir/runs/<run-id>/``: ``run.json`` (``{"format": 1, "kind":
        "optimize", "info", "best_params", "best_value", "best_metrics", "config"}``) and
        ``evaluations.parquet`` (:attr:`table`)."""
        doc = {
            "format": OPTIMIZE_FORMAT,
            "kind": "optimize",
            "info": self.info,
            "best_params": self.best_params,
            "best_value": self.best_value,
            "best_metrics": self.best_metrics.to_dict(),
            "config": config or {},
        }
        label = f"{self.info['strategy']}-opt"
        return save_run(
            reports_dir, doc=doc, frames={"evaluations.parquet": self.table}, label=label
        )

    def __repr__(self) -> str:
        return (
            f"<OptimizeResult {self.info['strategy']} best {self.best_params} "
            f"{self.info['objective']}={self.best_value:.4g} after {self.n_evaluations} "
            f"backtests, {self.elapsed_s:.2f} s>"
        )


def optimize(
    strategy_cls: type[Strategy],
    bars: Bars,
    *,
    objective: Objective = "sharpe",
    method: str = "differential_evolution",
    where: Callable[[dict[str, Any]], bool] | str | None = None,
    maxiter: int = 30,
    popsize: int = 15,
    tol: float = 0.01,
    seed: int | None = 0,
    n_jobs: int | None = None,
    executor: str = "thread",
    dask_address: str | None = None,
    options: Mapping[str, Any] | None = None,
    **bounds: Any,
) -> OptimizeResult:
    """Search the parameters that maximise ``objective`` with differential evolution.

    Parameters
    ----------
    strategy_cls : type[Strategy]
    bars : Bars
    objective : str or callable
        ``"sharpe"`` (default), ``"sortino"``, ``"calmar"``, ``"total_return"``, ... or a
        function of Metrics returning a float; higher is better.
    where : str or callable, optional
        Constraint on the parameters, e.g. ``"fast < slow"``; points breaking it score PENALTY.
    maxiter, popsize, tol : int, int, float
        scipy's generations (30), population per searched parameter (15) and relative
        convergence tolerance (0.01).
    seed : int or None
        The same seed gives the same search and result (default 0; None: random).
    n_jobs : int, optional
        Workers of each batch's sweep.
    executor, dask_address : str
        As in :func:`barlab.sweep`; with ``"dask"`` every batch runs on the cluster (one
        client, and for ``"local"`` one cluster, for the whole search).
    options : mapping, optional
        Backtest options, as in :func:`barlab.backtest`.
    **bounds
        ``name=(lo, hi)`` searches the parameter between lo and hi inclusive (whole numbers for
        int parameters, ``(False, True)`` for bools); ``name=value`` holds it fixed.
    """
    from scipy.optimize import differential_evolution

    started = time.perf_counter()
    name, fn = resolve_objective(objective)
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    _check_settings(maxiter, popsize, tol)
    searched, fixed = parse_bounds(strategy_cls, bounds)
    opts = dict(options or {})
    BacktestOptions.from_kwargs(**opts)
    where_fn = _where(strategy_cls, where)
    workers = {"n_jobs": n_jobs, "executor": executor, "dask_address": dask_address}
    ev = _Evaluator(strategy_cls, bars, searched, fixed, where_fn, fn, opts, workers)
    with session_for(**workers):
        found = differential_evolution(
            ev, [(b.lo, b.hi) for b in searched], maxiter=maxiter, popsize=popsize, tol=tol,
            seed=seed, polish=False, vectorized=True, updating="deferred",
            integrality=[b.kind is not float for b in searched],
        )  # fmt: skip
    table = ev.table()
    best = _best(table, [b.name for b in searched])
    info = _info(strategy_cls, bars, searched, fixed, where, name, opts)
    info.update(method=method, maxiter=maxiter, popsize=popsize, tol=tol, seed=seed,
                elapsed_s=round(time.perf_counter() - started, 3), message=str(found.message),
                nit=int(found.nit), n_evaluations=ev.n_evaluated, n_infeasible=ev.n_infeasible,
                n_candidates=ev.n_candidates)  # fmt: skip
    return OptimizeResult(
        best_params={**fixed, **{b.name: best[b.name] for b in searched}},
        best_value=float(best["objective"]), best_metrics=metrics_from_row(best), table=table,
        n_evaluations=ev.n_evaluated, n_infeasible=ev.n_infeasible,
        n_candidates=ev.n_candidates, nit=int(found.nit), elapsed_s=info["elapsed_s"],
        message=str(found.message), strategy_cls=strategy_cls, bars=bars, options=opts, info=info,
    )  # fmt: skip


def _check_settings(maxiter: int, popsize: int, tol: float) -> None:
    for label, value in (("maxiter", maxiter), ("popsize", popsize)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{label} must be a whole number >= 1, got {value!r}")
    if not (isinstance(tol, int | float) and math.isfinite(tol) and tol >= 0):
        raise ConfigError(f"tol must be a number >= 0, e.g. 0.01, got {tol!r}")


def parse_bounds(
    strategy_cls: type[Strategy], given: Mapping[str, Any]
) -> tuple[list[Bound], dict[str, Any]]:
    """Split ``fast=(5, 100), allow_short=True`` into searched bounds and fixed values."""
    if not (isinstance(strategy_cls, type) and issubclass(strategy_cls, Strategy)):
        raise StrategyError(f"optimize() takes a Strategy class, got {strategy_cls!r}")
    params = {p.name: p for p in strategy_cls.params()}
    label, names = strategy_cls.label(), ", ".join(params) or "none"
    searched, fixed = [], {}
    for key, value in given.items():
        if key not in params:
            raise StrategyError(
                f"{label} has no parameter {key!r}; it takes {names} (backtest options go in "
                "options={...})"
            )
        if not isinstance(value, tuple | list):
            fixed[key] = _coerce(label, params[key], value)
            continue
        bound = _bound(label, key, params[key].type, value)
        if bound.lo == bound.hi:
            fixed[key] = bound.value(bound.lo)
        else:
            searched.append(bound)
    if not searched:
        raise StrategyError(
            f"nothing to optimise: give bounds for at least one of {label}'s parameters "
            f"({names}), e.g. fast=(5, 100)"
        )
    return searched, fixed


def _bound(label: str, key: str, kind: type, value: Any) -> Bound:
    example = {bool: "(False, True)", float: "(0.5, 2.0)"}.get(kind, "(5, 100)")
    if kind not in (int, float, bool):
        raise StrategyError(f"{label} parameter {key} is a {kind.__name__}: give it one value")
    ok = len(value) == 2 and all(
        isinstance(v, int | float | np.integer | np.floating) and math.isfinite(v) for v in value
    )
    if not ok or (kind is not float and any(float(v) != int(v) for v in value)):
        whole = "whole numbers " if kind is int else ""
        raise StrategyError(
            f"bounds for {key}: expected (lo, hi) with {whole}lo <= hi, e.g. {key}={example}; "
            f"got {tuple(value)!r}"
        )
    lo, hi = float(value[0]), float(value[1])
    if lo > hi:
        raise StrategyError(
            f"bounds for {key}: lo {value[0]} is above hi {value[1]}; give ({value[1]}, {value[0]})"
        )
    if kind is bool and (lo < 0 or hi > 1):
        raise StrategyError(f"bounds for {key}: a bool is searched as {example}")
    return Bound(key, lo, hi, kind)


def _where(strategy_cls: type[Strategy], where: Any) -> Callable[[dict[str, Any]], bool] | None:
    if isinstance(where, str):
        from barlab.engine.sweep_plan import compile_where

        return compile_where(where, [p.name for p in strategy_cls.params()])
    return where


class _Evaluator:
    """scipy's objective: a batch of candidate points in, ``-objective`` per point out."""

    def __init__(self, strategy_cls, bars, searched, fixed, where, fn, options, workers):
        self.strategy_cls, self.bars, self.searched, self.fixed = (
            strategy_cls,
            bars,
            searched,
            fixed,
        )
        self.where, self.fn, self.options, self.workers = where, fn, options, workers
        self.defaults = {p.name: p.default for p in strategy_cls.params()}
        self.names = [b.name for b in searched]
        self.values: dict[tuple, float | None] = {}  # point -> objective (None: infeasible)
        self.rows: list[dict[str, Any]] = []
        self.n_candidates = self.n_evaluated = self.n_infeasible = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        columns = np.atleast_2d(np.asarray(x, dtype=float).T)  # one row per candidate
        keys = [tuple(b.value(v) for b, v in zip(self.searched, c, strict=True)) for c in columns]
        self.n_candidates += len(keys)
        new = list(dict.fromkeys(k for k in keys if k not in self.values))
        feasible = [k for k in new if self._feasible(k)]
        for key in new:
            if key not in feasible:
                self.values[key] = None
                self.n_infeasible += 1
                blank = dict.fromkeys(METRIC_NAMES)
                self.rows.append({"eval": len(self.rows), **self._params(key),
                                  "feasible": False, "objective": math.nan, **blank})  # fmt: skip
        if feasible:
            self._run(feasible)
        return np.array([_energy(self.values[k]) for k in keys])

    def _params(self, key: tuple) -> dict[str, Any]:
        return dict(zip(self.names, key, strict=True))

    def _feasible(self, key: tuple) -> bool:
        params = {**self.fixed, **self._params(key)}
        if self.where is not None and not self.where({**self.defaults, **params}):
            return False
        try:
            self.strategy_cls(**params)
        except StrategyError:
            return False
        return True

    def _run(self, keys: list[tuple]) -> None:
        import barlab

        for group in _groups(sorted(keys), _MAX_PRODUCT):
            wanted = set(group)
            grid = {n: sorted({k[i] for k in group}) for i, n in enumerate(self.names)}
            swept = barlab.sweep(
                self.strategy_cls, self.bars, **self.workers, options=self.options,
                where=lambda p, wanted=wanted: tuple(p[n] for n in self.names) in wanted,
                **grid, **{k: [v] for k, v in self.fixed.items()},
            )  # fmt: skip
            by_key = {tuple(r[n] for n in self.names): r for r in swept.table.iter_rows(named=True)}
            for key in keys:
                if key in wanted:
                    row = by_key[key]
                    value = float(self.fn(metrics_from_row(row)))
                    self.values[key] = value
                    self.n_evaluated += 1
                    metrics = {k: row[k] for k in METRIC_NAMES}
                    self.rows.append({"eval": len(self.rows), **self._params(key),
                                      "feasible": True, "objective": value, **metrics})  # fmt: skip

    def table(self) -> pl.DataFrame:
        columns = ["eval", *self.names, "feasible", "objective", *METRIC_NAMES]
        return pl.DataFrame(self.rows, infer_schema_length=None).select(columns)


def _groups(keys: list[tuple], limit: int) -> list[list[tuple]]:
    """Consecutive runs of ``keys`` whose grid (product of distinct values) stays <= limit."""
    groups: list[list[tuple]] = []
    for key in keys:
        if groups:
            trial = [*groups[-1], key]
            if math.prod(len({k[i] for k in trial}) for i in range(len(key))) <= limit:
                groups[-1] = trial
                continue
        groups.append([key])
    return groups


def _energy(value: float | None) -> float:
    if value is None or math.isnan(value):
        return PENALTY
    return min(max(-value, -PENALTY), PENALTY)


def _best(table: pl.DataFrame, names: list[str]) -> dict[str, Any]:
    """The feasible row with the highest objective (NaN lowest); ties: the first evaluated."""
    rows = [r for r in table.iter_rows(named=True) if r["feasible"]]
    if not rows:
        raise StrategyError(
            f"no feasible point among the {table.height} evaluated: every one broke the "
            "constraint or the strategy's validation; loosen --where or change the bounds"
        )
    return max(rows, key=lambda r: (rank_value(r["objective"]), -r["eval"]))


def _info(strategy_cls, bars, searched, fixed, where, objective, options) -> dict[str, Any]:
    return {
        "kind": "optimize",
        "strategy": strategy_cls.label(),
        "bounds": {b.name: [b.value(b.lo), b.value(b.hi)] for b in searched},
        "fixed": fixed,
        "where": where if isinstance(where, str) else getattr(where, "expr", None),
        "objective": objective,
        **data_info(bars),
        "options": BacktestOptions.from_kwargs(**options).to_dict(),
    }
