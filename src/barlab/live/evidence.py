"""The evidence a promotion weighs besides the backtest itself: a saved walk-forward run and a
replay parity result (``reports/runs/<id>/parity.json``, written by ``backtest live
--replay``), found by run id or as the latest saved one that fits the strategy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from barlab.errors import RunNotFoundError, UsageError
from barlab.live.promotion import plain_params
from barlab.strategy import Strategy

PARITY_FILE = "parity.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """One piece of evidence for a gate.

    Attributes
    ----------
    run_id : str
        The saved run it comes from, e.g. ``"20261124-055012-sma_crossover-wf-3fa2c1"``.
    value : bool or float
        Walk-forward: the out-of-sample Sharpe ratio (e.g. 0.8); parity: ``exact``.
    detail : str
        A line for people, e.g. ``"4 folds, efficiency 0.41"``.
    """

    run_id: str
    value: Any
    detail: str = ""


def find_walkforward(
    strategy: Strategy,
    info: Mapping[str, Any],
    *,
    reports_dir: str | os.PathLike[str],
    run_id: str | None = None,
) -> Evidence | None:
    """The walk-forward run of ``strategy`` that fits the backtest ``info``: same symbols,
    timeframe and source, and every parameter either swept with the run's value in the grid or
    left at its default. ``run_id`` names one (UsageError if it does not fit); without it, the
    latest that fits, or None."""
    if run_id is not None:
        doc = _read(_run_folder(run_id, reports_dir, "--walkforward"))
        why = _walkforward_misfit(doc, strategy, info)
        if why:
            raise UsageError(f"--walkforward {run_id}: {why}; give a walk-forward of this run")
        return _walkforward_evidence(doc)
    for doc in _latest_docs(reports_dir):
        if not _walkforward_misfit(doc, strategy, info):
            return _walkforward_evidence(doc)
    return None


def find_parity(
    strategy: Strategy, *, reports_dir: str | os.PathLike[str], run_id: str | None = None
) -> Evidence | None:
    """The replay parity result of ``strategy`` with its parameters: ``run_id``'s (UsageError
    if it is of another strategy or parameters), else the latest saved that fits, or None."""
    if run_id is not None:
        folder = _run_folder(run_id, reports_dir, "--parity", file=PARITY_FILE)
        doc = _parity_doc(folder)
        why = _parity_misfit(doc, strategy)
        if why:
            raise UsageError(f"--parity {run_id}: {why}")
        return _parity_evidence(folder.name, doc)
    runs = Path(reports_dir) / "runs"
    for folder in sorted(runs.glob(f"*/{PARITY_FILE}"), reverse=True):
        doc = _parity_doc(folder.parent, strict=False)
        if doc is not None and not _parity_misfit(doc, strategy):
            return _parity_evidence(folder.parent.name, doc)
    return None


def _walkforward_misfit(doc: Mapping[str, Any], strategy: Strategy, info: Mapping[str, Any]) -> str:
    """Why the walk-forward ``doc`` does not fit (empty when it does)."""
    wf = doc.get("info", {})
    if doc.get("kind") != "walkforward":
        return f"it is a {doc.get('kind') or 'backtest'} run, not a walk-forward"
    if wf.get("strategy") != strategy.label():
        return f"it is a walk-forward of {wf.get('strategy')}, not {strategy.label()}"
    for key in ("symbols", "timeframe", "source"):
        if wf.get(key) != info.get(key):
            return f"its {key} ({wf.get(key)}) differ from the run's ({info.get(key)})"
    grid = wf.get("grid", {})
    defaults = {p.name: p.default for p in strategy.params()}
    for name, value in _params(strategy).items():
        if name in grid and not any(_same(value, v) for v in grid[name]):
            return f"its grid of {name} ({grid[name]}) does not hold the run's {name}={value!r}"
        if name not in grid and not _same(value, defaults[name]):
            return f"it kept {name} at its default {defaults[name]!r}, the run has {value!r}"
    return ""


def _walkforward_evidence(doc: Mapping[str, Any]) -> Evidence:
    oos = doc.get("oos_metrics", {})
    sharpe = oos.get("sharpe")
    eff = doc.get("degradation", {}).get("efficiency")
    n_folds = doc.get("info", {}).get("n_folds")
    detail = f"{n_folds} folds, OOS total return {_pct(oos.get('total_return'))}"
    if isinstance(eff, int | float) and eff == eff:
        detail += f", efficiency {eff:.2f}"
    return Evidence(
        run_id=doc.get("run_id", ""),
        value=float("nan") if sharpe is None else float(sharpe),
        detail=detail,
    )


def _parity_misfit(doc: Mapping[str, Any], strategy: Strategy) -> str:
    if doc.get("partial_fill_rate"):
        return (
            f"it replayed with partial fills (--partial-fills {doc['partial_fill_rate']}), which "
            "the backtest's whole fills never match; give a replay without --partial-fills"
        )
    if doc.get("strategy") != strategy.label():
        return f"it is the parity of {doc.get('strategy')}, not {strategy.label()}"
    if plain_params(doc.get("params", {})) != _params(strategy):
        return f"its parameters {doc.get('params')} differ from the run's {_params(strategy)}"
    return ""


def _parity_doc(folder: Path, *, strict: bool = True) -> dict[str, Any] | None:
    """parity.json; its strategy and parameters default to those of the run.json beside it."""
    doc = _read(folder, PARITY_FILE, strict=strict)
    if doc is not None and not {"strategy", "params"} <= set(doc):
        info = (_read(folder, strict=False) or {}).get("info", {})
        doc = {"strategy": info.get("strategy"), "params": info.get("params", {}), **doc}
    return doc


def _parity_evidence(run_id: str, doc: Mapping[str, Any]) -> Evidence:
    exact = doc.get("exact")
    return Evidence(
        run_id=run_id,
        value=exact is True,
        detail=f"score {doc.get('score')}, exact {str(exact).lower()}",
    )


def _latest_docs(reports_dir: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """run.json of every saved run, newest first (run ids start with their UTC time)."""
    runs = Path(reports_dir) / "runs"
    for path in sorted(runs.glob("*/run.json"), reverse=True):
        doc = _read(path.parent, strict=False)
        if doc is not None:
            yield doc


def _run_folder(
    run_id: str, reports_dir: str | os.PathLike[str], flag: str, *, file: str = "run.json"
) -> Path:
    path = Path(run_id)
    if not (path / file).is_file():
        path = Path(reports_dir) / "runs" / run_id
    if not (path / file).is_file():
        raise RunNotFoundError(f"{flag} {run_id}: no {file} in {path}; check the run id")
    return path


def _read(folder: Path, file: str = "run.json", *, strict: bool = True) -> Any:
    try:
        doc = json.loads((folder / file).read_text())
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        if not strict:
            return None
        raise UsageError(f"{folder / file} is unreadable ({e}); run it again") from e
    return doc


def _params(strategy: Strategy) -> dict[str, Any]:
    return plain_params(strategy.get_params())


def _same(a: Any, b: Any) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _pct(value: Any) -> str:
    return f"{value:.2%}" if isinstance(value, int | float) else "n/a"
