"""`walk_forward(strategy_cls, bars, train="6M", test="1M", **grid) -> WalkForwardResult`.

Each fold sweeps the grid on its train window (:func:`barlab.sweep`), picks the best parameters
by the objective (ties: the smallest parameters, in the grid's order), then measures them on the
test window that follows. The test windows, chained, are the out-of-sample (OOS) record.

Warm-up, and why: the chosen parameters are backtested on the bars from the fold's *train
start* through its test end, and only the test rows are kept, rebased so the fold starts at 1.
Indicators are therefore warmed up on the train window, and a position the strategy holds at
the end of the train window is carried into the test window, exactly as if the strategy had been
trading those parameters all along (the engine is causal: row t uses rows <= t only, so no
test bar reaches back into the choice). A trade entered in the train window and closed in the
test window counts in the fold's trade statistics with its whole P&L; the equity, returns and
fees of the fold are the test rows' only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from barlab.bars import Bars
from barlab.engine.backtest import BacktestOptions, session_ids
from barlab.errors import StrategyError
from barlab.metrics import Metrics
from barlab.research.distributed import within_session
from barlab.research.objective import Objective, metrics_from_row, rank_value, resolve_objective
from barlab.research.oos import oos_segment, stitch
from barlab.research.runs import data_info, find_run, read_doc, save_run
from barlab.research.splits import make_folds
from barlab.strategy import Strategy

WALKFORWARD_FORMAT = 1
METRIC_NAMES = tuple(f.name for f in dataclasses.fields(Metrics))


@dataclass(frozen=True, slots=True, kw_only=True)
class Degradation:
    """How much of the in-sample result survived out of sample, on ``metric`` (the objective;
    ``cagr`` when the objective is ``total_return``, whose value depends on the window length).

    Attributes
    ----------
    metric : str
    is_mean, oos_mean : float
        Mean over folds of ``metric``: in-sample (the chosen row on its train window) and
        out-of-sample (the test window), e.g. sharpe 2.1 and 0.4.
    mean : float
        Mean per-fold degradation, ``oos - is`` (negative: worse out of sample), e.g. -1.7.
    efficiency : float
        Walk-forward efficiency, ``oos_mean / is_mean`` (0.19 keeps 19 % of the in-sample
        figure; above ~0.5 is usually read as robust); NaN unless ``is_mean > 0``.
    """

    metric: str
    is_mean: float
    oos_mean: float
    mean: float
    efficiency: float


@dataclass(frozen=True, kw_only=True, eq=False)
class WalkForwardResult:
    """A finished walk-forward.

    Attributes
    ----------
    folds : polars DataFrame
        One row per fold: ``fold`` (1, 2, ...); ``train_start``, ``train_end``,
        ``test_start``, ``test_end`` (first and last session, New York dates, inclusive);
        ``train_start_row``, ``test_start_row``, ``test_end_row`` (rows of the bars, end
        exclusive); ``n_run``
        (combinations swept); the chosen parameters; ``is_objective``, ``oos_objective``,
        ``degradation`` (oos - is, on ``Degradation.metric``), ``efficiency`` (oos / is); then
        ``is_<metric>`` and ``oos_<metric>`` for every :class:`Metrics` field.
    oos : polars DataFrame
        The stitched out-of-sample record, one row per test bar: ``ts`` (UTC), ``fold``,
        ``equity`` (dollars, starting from the initial cash, each fold's test returns chained),
        ``benchmark`` (buy-and-hold of the same symbols over the same bars, chained the same
        way), ``in_market`` (any position open).
    oos_metrics : Metrics
        :func:`barlab.metrics.compute_metrics` of the stitched equity.
    degradation : Degradation
    info : dict
        What was run (see :meth:`save` for the saved layout).
    """

    folds: pl.DataFrame
    oos: pl.DataFrame
    oos_metrics: Metrics
    degradation: Degradation
    info: dict[str, Any]
    run_id: str = ""

    @property
    def param_names(self) -> list[str]:
        return list(self.info["grid"])

    def best_params(self) -> list[dict[str, Any]]:
        """The parameters chosen in each fold, in fold order."""
        return [{k: row[k] for k in self.param_names} for row in self.folds.iter_rows(named=True)]

    def save(self, reports_dir: Any, *, config: dict[str, Any] | None = None) -> Path:
        """Save as ``reports_dir/runs/<run-id>/``, atomically:

        - ``run.json``: ``{"format": 1, "kind": "walkforward", "run_id", "info",
          "oos_metrics", "degradation", "config"}``; ``info`` holds the strategy, grid,
          constraint, objective, train/test/step/anchored, data (symbols, timeframe, source,
          synthetic, start, end, n_bars, data_version), options and ``n_folds``;
        - ``folds.parquet``: :attr:`folds`;
        - ``oos_equity.parquet``: :attr:`oos`.
        """
        doc = {
            "format": WALKFORWARD_FORMAT,
            "kind": "walkforward",
            "info": self.info,
            "oos_metrics": self.oos_metrics.to_dict(),
            "degradation": asdict(self.degradation),
            "config": config or {},
        }
        frames = {"folds.parquet": self.folds, "oos_equity.parquet": self.oos}
        return save_run(reports_dir, doc=doc, frames=frames, label=f"{self.info['strategy']}-wf")

    def __repr__(self) -> str:
        m, d = self.oos_metrics, self.degradation
        return (
            f"<WalkForwardResult {self.info['strategy']} {self.info['n_folds']} folds "
            f"OOS sharpe={m.sharpe:.2f} total_return={m.total_return:.2%} "
            f"efficiency={d.efficiency:.2f}>"
        )

    def _repr_html_(self) -> str:
        """Jupyter's view: the folds, the stitched out-of-sample metrics and the degradation."""
        from barlab.report.summary_html import walk_forward_html

        return walk_forward_html(self)


def load_walk_forward(run: Any, *, reports_dir: Any = None) -> WalkForwardResult:
    """Load a saved walk-forward by run id (under ``reports_dir/runs``) or folder path."""
    path = find_run(run, reports_dir)
    doc = read_doc(path, "walkforward")
    return WalkForwardResult(
        folds=pl.read_parquet(path / "folds.parquet"),
        oos=pl.read_parquet(path / "oos_equity.parquet"),
        oos_metrics=Metrics.from_dict(doc["oos_metrics"]),
        degradation=Degradation(**doc["degradation"]),
        info=doc["info"],
        run_id=doc["run_id"],
    )


def walk_forward(
    strategy_cls: type[Strategy],
    bars: Bars,
    *,
    train: str = "6M",
    test: str = "1M",
    step: str | None = None,
    anchored: bool = False,
    objective: Objective = "sharpe",
    where: Callable[[dict[str, Any]], bool] | str | None = None,
    options: Mapping[str, Any] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    n_jobs: int | None = None,
    executor: str = "thread",
    dask_address: str | None = None,
    on_fold: Callable[[int, int], None] | None = None,
    **grid: Any,
) -> WalkForwardResult:
    """Walk-forward analysis: optimise on each train window, trade the result on the next test
    window, and judge the chained test windows.

    Parameters
    ----------
    strategy_cls : type[Strategy]
        e.g. ``SmaCrossover``.
    bars : Bars
    train, test, step : str
        Window lengths: ``"6M"`` months, ``"1Y"`` years, ``"2W"`` weeks, ``"20D"`` trading
        sessions (see :func:`barlab.research.splits.make_folds`); ``step`` defaults to ``test``.
    anchored : bool
        True: every train window starts at the beginning of the data and grows.
    objective : str or callable
        What the sweep of each train window maximises (``"sharpe"``, ``"sortino"``,
        ``"calmar"``, ``"total_return"``, ... or a function of Metrics).
    where : str or callable, optional
        Constraint on the parameters, e.g. ``"fast < slow"``.
    options : mapping, optional
        Backtest options (``{"commission_rate": 0.001}``), as in :func:`barlab.backtest`.
    start, end : date, optional
        The calendar span windows are cut from (default: the first session; the last one and
        the weekend after it).
    n_jobs : int, optional
        Workers of each sweep.
    executor, dask_address : str
        As in :func:`barlab.sweep`; with ``"dask"`` every fold's sweep runs on the cluster
        (one client, and for ``"local"`` one cluster, for all the folds).
    on_fold : callable, optional
        Called as ``on_fold(done, total)`` after each fold.
    **grid
        Values to sweep per parameter, e.g. ``fast=range(5, 55, 5), slow=range(20, 220, 20)``.
    """
    started = time.perf_counter()
    name, fn = resolve_objective(objective)
    values = _check_grid(strategy_cls, grid)
    opts = dict(options or {})
    account = BacktestOptions.from_kwargs(**opts)
    if isinstance(where, str):
        from barlab.engine.sweep_plan import compile_where

        compile_where(where, [p.name for p in strategy_cls.params()])
    folds = make_folds(
        bars.ts_ns, train=train, test=test, step=step, anchored=anchored, start=start, end=end
    )
    cmp_name, cmp_fn = ("cagr", _cagr) if name == "total_return" else (name, fn)
    rows, segments, scores, grid_run = [], [], [], values
    workers = {"n_jobs": n_jobs, "executor": executor, "dask_address": dask_address}
    for fold in within_session(folds, **workers):
        swept = _sweep(strategy_cls, bars.slice(fold.train_start, fold.test_start),
                       where=where, workers=workers, options=opts, grid=values)  # fmt: skip
        params, is_metrics = _choose(swept.table, list(values), fn)
        segment = oos_segment(strategy_cls(**params), bars, fold, opts, account.cash)
        score = (float(cmp_fn(is_metrics)), float(cmp_fn(segment.metrics)))
        rows.append(_fold_row(fold, bars, swept.n_run, params, is_metrics, segment.metrics,
                              fn, score))  # fmt: skip
        scores.append(score)
        segments.append(segment)
        grid_run = swept.grid
        if on_fold is not None:
            on_fold(fold.index + 1, len(folds))
    oos, oos_metrics = stitch(segments, bars, account.cash)
    table = pl.DataFrame(rows)
    info = _info(strategy_cls, bars, grid_run, where, name, cmp_name, account, len(folds))
    info.update(train=train, test=test, step=step or test, anchored=bool(anchored),
                origin=str(start) if start else None, last_day=str(end) if end else None,
                elapsed_s=round(time.perf_counter() - started, 3))  # fmt: skip
    return WalkForwardResult(
        folds=table, oos=oos, oos_metrics=oos_metrics,
        degradation=_degradation(scores, cmp_name), info=info,
    )  # fmt: skip


def _check_grid(strategy_cls: type[Strategy], grid: Mapping[str, Any]) -> dict[str, list[Any]]:
    if not (isinstance(strategy_cls, type) and issubclass(strategy_cls, Strategy)):
        raise StrategyError(f"walk_forward() takes a Strategy class, got {strategy_cls!r}")
    names = [p.name for p in strategy_cls.params()]
    label = strategy_cls.label()
    if not grid:
        raise StrategyError(
            f"nothing to optimise: give values for at least one of {label}'s parameters "
            f"({', '.join(names) or 'none'}), e.g. fast=range(5, 55, 5)"
        )
    out: dict[str, list[Any]] = {}
    for key, given in grid.items():
        if key not in names:
            raise StrategyError(
                f"{label} has no parameter {key!r}; it takes {', '.join(names) or 'none'} "
                "(backtest options go in options={...})"
            )
        items = [given] if isinstance(given, str) or not isinstance(given, Iterable) else given
        out[key] = list(items)
        if not out[key]:
            raise StrategyError(f"{label} parameter {key}: no values (empty range?)")
    return out


def _sweep(strategy_cls, bars, *, where, workers, options, grid):
    import barlab

    return barlab.sweep(strategy_cls, bars, where=where, options=options, **workers, **grid)


def _choose(
    table: pl.DataFrame, names: list[str], fn: Callable[[Metrics], float]
) -> tuple[dict[str, Any], Metrics]:
    """The row with the highest objective (NaN lowest); ties go to the smallest parameters."""
    best_key, best = None, None
    for row in table.iter_rows(named=True):
        metrics = metrics_from_row(row)
        key = (-rank_value(fn(metrics)), tuple(_sortable(row[n]) for n in names))
        if best_key is None or key < best_key:
            best_key, best = key, ({n: row[n] for n in names}, metrics)
    assert best is not None
    return best


def _sortable(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) else (1, str(value))


def _cagr(m: Metrics) -> float:
    return m.cagr


def _fold_row(fold, bars, n_run, params, is_m, oos_m, fn, score) -> dict[str, Any]:
    days = session_ids(bars.ts_ns[[fold.train_start, fold.test_start - 1, fold.test_start,
                                   fold.test_end - 1]])  # fmt: skip
    dates = [dt.date(1970, 1, 1) + dt.timedelta(days=int(d)) for d in days]
    is_cmp, oos_cmp = score
    row: dict[str, Any] = {
        "fold": fold.index + 1,
        "train_start": dates[0], "train_end": dates[1],
        "test_start": dates[2], "test_end": dates[3],
        "train_start_row": fold.train_start, "test_start_row": fold.test_start,
        "test_end_row": fold.test_end, "n_run": n_run,
        **params,
        "is_objective": float(fn(is_m)), "oos_objective": float(fn(oos_m)),
        "degradation": oos_cmp - is_cmp,
        "efficiency": oos_cmp / is_cmp if is_cmp > 0 else math.nan,
    }  # fmt: skip
    row.update({f"is_{k}": getattr(is_m, k) for k in METRIC_NAMES})
    row.update({f"oos_{k}": getattr(oos_m, k) for k in METRIC_NAMES})
    return row


def _degradation(scores: list[tuple[float, float]], metric: str) -> Degradation:
    is_vals, oos_vals = np.array(scores, dtype=float).reshape(-1, 2).T
    ok = np.isfinite(is_vals) & np.isfinite(oos_vals)
    is_mean = float(np.mean(is_vals[ok])) if ok.any() else math.nan
    oos_mean = float(np.mean(oos_vals[ok])) if ok.any() else math.nan
    return Degradation(
        metric=metric, is_mean=is_mean, oos_mean=oos_mean, mean=oos_mean - is_mean,
        efficiency=oos_mean / is_mean if is_mean > 0 else math.nan,
    )  # fmt: skip


def _info(strategy_cls, bars, grid, where, objective, metric, account, n_folds) -> dict[str, Any]:
    return {
        "kind": "walkforward",
        "strategy": strategy_cls.label(),
        "grid": grid,
        "where": where if isinstance(where, str) else getattr(where, "expr", None),
        "objective": objective,
        "degradation_metric": metric,
        "n_folds": n_folds,
        **data_info(bars),
        "options": account.to_dict(),
        "warmup": "test backtests start at the fold's train start; only test rows are kept",
    }
