"""What a sweep produced (:class:`SweepResult`): the table of parameters and metrics, with its
sorting, the best combination re-run in full, saving as a run folder and display."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from barlab.atomic import publish_folder
from barlab.bars import Bars
from barlab.engine.backtest import BacktestOptions, backtest
from barlab.errors import ConfigError, StrategyError
from barlab.metrics import Metrics
from barlab.strategy import Strategy

SWEEP_FORMAT = 1

_INT_FIELDS = {f.name for f in dataclasses.fields(Metrics) if f.type in (int, "int")}
METRIC_NAMES = tuple(f.name for f in dataclasses.fields(Metrics))
"""The sweep table's metric columns, in order: every :class:`barlab.metrics.Metrics` field."""
_DTYPES = {int: pl.Int64, float: pl.Float64, bool: pl.Boolean, str: pl.String}


@dataclass(frozen=True, kw_only=True, eq=False)
class SweepResult:
    """What a sweep produced.

    Attributes
    ----------
    table : polars DataFrame
        One row per combination run: the swept parameters, then every :class:`Metrics` field;
        sorted by ``sharpe`` descending (NaN last) unless asked otherwise.
    n_grid, n_run, n_skipped, n_invalid : int
        Combinations in the grid, run, left out by the constraint, and rejected by the
        strategy's ``validate()``.
    """

    table: pl.DataFrame
    strategy_cls: type[Strategy]
    bars: Bars = field(repr=False)
    options: dict[str, Any] = field(repr=False)
    grid: dict[str, list[Any]]
    where: str | None
    n_grid: int
    n_run: int
    n_skipped: int
    n_invalid: int
    elapsed_s: float
    chunk_size: int
    n_jobs: int

    @property
    def param_names(self) -> list[str]:
        return list(self.grid)

    def sorted(self, metric: str = "sharpe", *, descending: bool = True) -> pl.DataFrame:
        """The table sorted by ``metric`` (NaN last)."""
        if metric not in METRIC_NAMES:
            raise ConfigError(f"unknown metric {metric!r}; known: {', '.join(METRIC_NAMES)}")
        key = pl.col(metric).cast(pl.Float64).fill_nan(None)
        return self.table.sort(key, descending=descending, nulls_last=True, maintain_order=True)

    def best(self, metric: str = "sharpe", *, descending: bool = True) -> dict[str, Any]:
        """The parameters of the best combination by ``metric``."""
        row = self.sorted(metric, descending=descending).row(0, named=True)
        return {name: row[name] for name in self.param_names}

    def rerun(self, params: Mapping[str, Any] | None = None):
        """A full :class:`barlab.Result` for ``params`` (default: the best by sharpe)."""
        chosen = self.best() if params is None else dict(params)
        return backtest(self.strategy_cls(**chosen), self.bars, **self.options)

    def info(self) -> dict[str, Any]:
        from barlab import __version__

        bars = self.bars
        opts = BacktestOptions.from_kwargs(**self.options)
        return {
            "kind": "sweep",
            "strategy": self.strategy_cls.label(),
            "grid": self.grid,
            "where": self.where,
            "n_grid": self.n_grid,
            "n_run": self.n_run,
            "n_skipped": self.n_skipped,
            "n_invalid": self.n_invalid,
            "elapsed_s": self.elapsed_s,
            **bars.describe(),
            "options": opts.to_dict(),
            "barlab_version": __version__,
        }

    def save(
        self,
        reports_dir: str | os.PathLike[str],
        *,
        config: dict | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        """Save as ``reports_dir/runs/<run-id>/`` (``sweep.parquet`` + ``run.json``); ``extra``
        adds keys to the saved info, e.g. ``{"rerun_best": "<run id>"}``."""
        from barlab.result import _new_run_id

        runs = Path(reports_dir) / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        info = self.info()
        clash = set(extra or {}) & set(info)
        if clash:
            raise ConfigError(
                f"extra info {', '.join(sorted(clash))} would replace the sweep's own"
            )
        info.update(extra or {})
        run_id = _new_run_id(runs, {**info, "strategy": f"{info['strategy']}-sweep"})
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{run_id}-", dir=runs))
        try:
            doc = {
                "format": SWEEP_FORMAT,
                "run_id": run_id,
                "info": info,
                "config": config or {},
            }
            (tmp / "run.json").write_text(
                json.dumps(doc, indent=2, allow_nan=True, default=str) + "\n"
            )
            self.table.write_parquet(tmp / "sweep.parquet")
            publish_folder(tmp, runs / run_id)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return runs / run_id

    def __repr__(self) -> str:
        return (
            f"<SweepResult {self.strategy_cls.label()} {self.n_run} run, "
            f"{self.n_skipped} skipped by the constraint, {self.n_invalid} invalid, "
            f"{self.elapsed_s:.2f} s>"
        )

    def _repr_html_(self) -> str:
        """Jupyter's view: the counts, the grid and the top combinations (polars' own table;
        the engine draws nothing, ``barlab.report.write_sweep_report`` draws the page)."""
        import html

        where = f" where {self.where}" if self.where else ""
        grid = "; ".join(f"{k}: {len(v)} values" for k, v in self.grid.items())
        lines = [
            f"<b>{html.escape(self.strategy_cls.label())}</b> sweep: {self.n_run:,} combinations "
            f"run ({self.n_skipped:,} left out by the constraint, {self.n_invalid:,} invalid), "
            f"{self.elapsed_s:.2f} s",
            html.escape(grid + where),
        ]
        if self.bars.synthetic:
            lines.append("<b style='color:#b00'>SYNTHETIC data (the demo market)</b>")
        top = self.table.head(5)
        shown = [*self.param_names, "sharpe", "total_return", "max_drawdown", "n_trades"]
        table = top.select(list(dict.fromkeys(shown)))._repr_html_()
        return "<div class='barlab-summary'>" + "<br>".join(lines) + table + "</div>"


def table_of(
    strategy_cls: type[Strategy],
    grid: dict[str, list[Any]],
    combos: list[dict[str, Any]],
    metrics: np.ndarray,
) -> pl.DataFrame:
    types = {p.name: p.type for p in strategy_cls.params()}
    clash = set(grid) & set(METRIC_NAMES)
    if clash:
        raise StrategyError(f"parameter name(s) {', '.join(sorted(clash))} clash with metrics")
    columns: dict[str, pl.Series] = {}
    for name in grid:
        dtype = _DTYPES.get(types[name])
        values = [c[name] for c in combos]
        columns[name] = pl.Series(name, values, dtype=dtype) if dtype else pl.Series(name, values)
    for k, name in enumerate(METRIC_NAMES):
        column = pl.Series(name, metrics[:, k], dtype=pl.Float64)
        columns[name] = column.cast(pl.Int64) if name in _INT_FIELDS else column
    return pl.DataFrame(list(columns.values()))
