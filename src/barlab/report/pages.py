"""Any saved run's page, chosen by the run's kind: a backtest's report, or the page of a
sweep, an optimisation or a walk-forward (what ``backtest report RUN_ID`` writes)."""

from __future__ import annotations

import os
from pathlib import Path

from barlab.errors import RunNotFoundError
from barlab.report.html import write_report
from barlab.report.saved import load_grid_run, run_kind
from barlab.report.sweep_page import write_sweep_report
from barlab.report.walkforward_page import write_walkforward_report


def write_run_report(
    run: str | os.PathLike[str],
    path: Path | str | None = None,
    *,
    reports_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the page of the saved run ``run`` and return its path.

    Parameters
    ----------
    run : str or path
        A run id under ``reports_dir/runs`` (e.g. ``"20240105-101500-sma_crossover-sweep-1a2b3c"``)
        or the run's folder.
    path : Path or str, optional
        Where to write it (default: ``report.html`` in the run's folder).
    reports_dir : str or path, optional
        Where runs are saved (default: the config's ``reports_dir``, ``reports``).

    Raises RunNotFoundError (naming recent runs) for an unknown run.
    """
    # the research and result modules (and the engine behind them) load only when a run is read
    from barlab.research.walkforward import load_walk_forward
    from barlab.result import load_run

    folder = _folder(run, reports_dir)
    out = Path(path) if path is not None else folder / "report.html"
    kind = run_kind(folder)
    if kind == "walkforward":
        return write_walkforward_report(load_walk_forward(folder), out)
    if kind in ("sweep", "optimize"):
        return write_sweep_report(load_grid_run(folder), out)
    return write_report(load_run(str(folder)), out)


def _folder(run: str | os.PathLike[str], reports_dir: str | os.PathLike[str] | None) -> Path:
    """The run's folder; an unknown run raises load_run's error, which lists recent runs."""
    from barlab.research.runs import find_run
    from barlab.result import load_run

    try:
        return find_run(run, reports_dir)
    except RunNotFoundError:
        load_run(str(run), reports_dir=reports_dir)  # raises RunNotFoundError with a hint
        raise
