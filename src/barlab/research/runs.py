"""Saving research runs as ``reports/runs/<run-id>/`` folders, atomically (temp dir, fsync,
rename), beside the backtest and sweep runs."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

from barlab.atomic import publish_folder
from barlab.bars import Bars
from barlab.errors import DataError, RunNotFoundError
from barlab.result import _new_run_id


def save_run(
    reports_dir: str | os.PathLike[str],
    *,
    doc: dict[str, Any],
    frames: dict[str, pl.DataFrame],
    label: str,
) -> Path:
    """Write ``run.json`` (``doc`` plus its ``run_id``) and one Parquet file per frame
    (``{"folds.parquet": df}``) into a new run folder named after ``label``; return its path."""
    runs = Path(reports_dir) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    run_id = _new_run_id(runs, {**doc.get("info", {}), "strategy": label})
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{run_id}-", dir=runs))
    try:
        text = json.dumps({**doc, "run_id": run_id}, indent=2, allow_nan=True, default=str)
        (tmp / "run.json").write_text(text + "\n")
        for name, frame in frames.items():
            frame.write_parquet(tmp / name)
        publish_folder(tmp, runs / run_id)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return runs / run_id


def find_run(run: str | os.PathLike[str], reports_dir: str | os.PathLike[str] | None) -> Path:
    """The folder of a saved run given its id (under ``reports_dir/runs``) or its path."""
    path = Path(run)
    if (path / "run.json").is_file():
        return path
    if reports_dir is None:
        from barlab.config import load_config

        reports_dir = load_config().reports_dir
    path = Path(reports_dir) / "runs" / str(run)
    if not (path / "run.json").is_file():
        raise RunNotFoundError(f"no saved run {str(run)!r} in {path.parent}")
    return path


def read_doc(path: Path, kind: str) -> dict[str, Any]:
    """``run.json`` of the run at ``path``, checked to be of ``kind`` (``"walkforward"``)."""
    try:
        doc = json.loads((path / "run.json").read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"saved run {path} is unreadable ({e}); run it again") from e
    if doc.get("kind") != kind:
        raise DataError(f"saved run {path} is a {doc.get('kind') or 'backtest'} run, not {kind}")
    return doc


def finite(values: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN or infinity: those become None."""
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()
    }


def data_info(bars: Bars) -> dict[str, Any]:
    """What a saved run records about its bars (as a backtest run does) and barlab's version."""
    from barlab import __version__

    return {**bars.describe(), "barlab_version": __version__}
