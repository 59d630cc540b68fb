"""Saved runs as their pages read them: which kind a run folder holds, and sweeps and
optimisations as one :class:`GridRun` (a table of metrics, one row per parameter set).

Backtests load through :func:`barlab.load_run` and walk-forwards through
:func:`barlab.research.walkforward.load_walk_forward`; this module only adds the two kinds that
have no loader of their own, and reads nothing but ``run.json`` and the run's Parquet files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from barlab.errors import DataError

if TYPE_CHECKING:
    from barlab.engine.sweep_result import SweepResult
    from barlab.research.optimize import OptimizeResult

KINDS = ("backtest", "sweep", "optimize", "walkforward")


@dataclass(frozen=True, slots=True, kw_only=True)
class GridRun:
    """A sweep or an optimisation: what was run and one row of metrics per parameter set.

    Attributes
    ----------
    kind : str
        ``"sweep"`` or ``"optimize"``.
    info : dict
        The run's ``info`` as saved (strategy, grid or bounds, data, options, counts).
    table : polars DataFrame
        The parameters, then every :class:`barlab.Metrics` field; an optimisation adds
        ``eval``, ``feasible`` and ``objective``.
    params : list of str
        The parameter columns of ``table``, e.g. ``["fast", "slow"]``.
    run_id : str
        Empty for a run that was never saved.
    best : dict
        An optimisation's ``best_params`` and ``best_value``; empty for a sweep.
    """

    kind: str
    info: dict[str, Any]
    table: pl.DataFrame
    params: list[str]
    run_id: str = ""
    best: dict[str, Any] = field(default_factory=dict)


def from_sweep(result: SweepResult, run_id: str = "") -> GridRun:
    """A finished (unsaved or saved) sweep (:class:`~barlab.engine.sweep_result.SweepResult`)
    as a GridRun."""
    return GridRun(
        kind="sweep", info=result.info(), table=result.table, params=result.param_names,
        run_id=run_id,
    )  # fmt: skip


def from_optimize(result: OptimizeResult, run_id: str = "") -> GridRun:
    """A finished :class:`~barlab.research.optimize.OptimizeResult` as a GridRun."""
    best = {"best_params": result.best_params, "best_value": result.best_value}
    return GridRun(
        kind="optimize", info=result.info, table=result.table,
        params=list(result.info["bounds"]), run_id=run_id, best=best,
    )  # fmt: skip


def read_doc(path: Path) -> dict[str, Any]:
    """``run.json`` of the run folder ``path``."""
    try:
        return json.loads((path / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"saved run {path} is unreadable ({e}); run it again") from e


def run_kind(path: Path) -> str:
    """``"backtest"``, ``"sweep"``, ``"optimize"`` or ``"walkforward"`` for a run folder
    (a sweep records its kind in ``info``, the research runs at the top of ``run.json``)."""
    doc = read_doc(path)
    kind = doc.get("kind") or (doc.get("info") or {}).get("kind") or "backtest"
    if kind not in KINDS:
        raise DataError(f"saved run {path} is of an unknown kind {kind!r}; upgrade barlab")
    return kind


def load_grid_run(path: Path) -> GridRun:
    """The saved sweep or optimisation in the folder ``path``."""
    doc = read_doc(path)
    info = doc.get("info") or {}
    kind = doc.get("kind") or info.get("kind")
    name = {"sweep": "sweep.parquet", "optimize": "evaluations.parquet"}.get(kind or "")
    if name is None:
        raise DataError(f"saved run {path} is a {kind or 'backtest'} run, not a sweep")
    try:
        table = pl.read_parquet(path / name)
    except (OSError, pl.exceptions.PolarsError) as e:
        raise DataError(f"saved run {path} is unreadable ({e}); run it again") from e
    params = list(info["grid"] if kind == "sweep" else info.get("bounds") or {})
    best = {k: doc[k] for k in ("best_params", "best_value") if k in doc}
    return GridRun(
        kind=kind, info=info, table=table, params=params, run_id=doc.get("run_id", path.name),
        best=best,
    )  # fmt: skip
