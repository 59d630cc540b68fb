"""The page of a sweep or an optimisation: what was searched and on which data, the best
parameter sets, a heatmap over two parameters, Sharpe against drawdown and each metric's
distribution; for an optimisation, the points it evaluated and how the search converged.

Built from the same pieces as the backtest report (:mod:`barlab.report.page`, the charts'
layout and the metric labels), from the saved table of metrics alone.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from barlab.report import grid
from barlab.report.charts import GRID, LOSS, NY, STRATEGY, base_layout, to_spec
from barlab.report.html import SYNTHETIC_BANNER, _flatten
from barlab.report.labels import fmt
from barlab.report.page import (
    Chart,
    chart_html,
    check_path,
    dl,
    document,
    e,
    footer,
    nav,
    write_page,
)
from barlab.report.saved import GridRun, from_optimize, from_sweep

if TYPE_CHECKING:
    from barlab.engine.sweep_result import SweepResult
    from barlab.research.optimize import OptimizeResult


def write_sweep_report(run: SweepResult | OptimizeResult | GridRun, path: Path | str) -> Path:
    """Write the page of a sweep or an optimisation to ``path`` (atomically).

    Parameters
    ----------
    run : SweepResult, OptimizeResult or GridRun
        e.g. ``barlab.sweep(SmaCrossover, bars, fast=range(5, 55), slow=range(20, 220, 10))``;
        a saved run is written by :func:`barlab.report.write_run_report`.
    path : Path or str
        The file to write, e.g. ``"reports/sweep.html"``; its directory is created.
    """
    return write_page(check_path(path), render_sweep(as_grid_run(run)))


def as_grid_run(run: Any) -> GridRun:
    """A SweepResult or an OptimizeResult as the :class:`GridRun` its page reads."""
    if isinstance(run, GridRun):
        return run
    if hasattr(run, "best_params"):
        return from_optimize(run)
    return from_sweep(run)


def render_sweep(run: GridRun) -> str:
    """The page as one HTML string."""
    info = run.info
    what = "optimisation" if run.kind == "optimize" else "sweep"
    title = f"{info.get('strategy', 'strategy')} {what} — barlab report"
    if info.get("synthetic"):
        title = f"[SYNTHETIC] {title}"
    table = run.table.filter(pl.col("feasible")) if "feasible" in run.table.columns else run.table
    body = "\n".join([header(run), top_section(run, table), charts_section(run, table),
                      footer(info.get("barlab_version", ""))])  # fmt: skip
    return document(title, body)


def header(run: GridRun) -> str:
    """The title, the SYNTHETIC banner for demo data, and what was run on which data."""
    info = run.info
    banner = ""
    if info.get("synthetic"):
        banner = f'<div class="synthetic" role="alert">{e(SYNTHETIC_BANNER)}</div>'
    search = optimize_facts(run) if run.kind == "optimize" else sweep_facts(run)
    what = "Optimisation" if run.kind == "optimize" else "Parameter sweep"
    sections = nav([("run", "Run"), ("top", "Best parameters"), ("charts", "Charts")])
    return (
        f"<header>\n<h1>{e(info.get('strategy', 'strategy'))}</h1>\n"
        f'<p class="subtitle">{what}: every parameter set a full backtest, its metrics kept'
        f"</p>\n{banner}\n{sections}</header>\n"
        f'<div class="columns" id="run">\n<section><h2>Search</h2>{dl(search)}</section>\n'
        f"<section><h2>Data</h2>{dl(data_facts(run.info, run.run_id))}</section>\n"
        f"<section><h2>Costs and risk</h2>{dl(_flatten(info.get('options') or {}))}</section>"
        "\n</div>"
    )


def values_text(values: list[Any], most: int = 8) -> str:
    """``[5, 6, ..., 54]`` -> ``"5, 6, 7 … 53, 54 (50 values)"``."""
    shown = [str(v) for v in values]
    if len(shown) > most:
        shown = [*shown[:3], "…", *shown[-2:]]
    return ", ".join(shown).replace(", …,", " …") + f" ({len(values)} values)"


def sweep_facts(run: GridRun) -> list[tuple[str, Any]]:
    """The grid, the constraint, the counts run, skipped and invalid, and the time taken."""
    info = run.info
    counts = (
        f"{info.get('n_run', run.table.height):,} run, {info.get('n_skipped', 0):,} skipped by "
        f"the constraint, {info.get('n_invalid', 0):,} invalid (of {info.get('n_grid', 0):,})"
    )
    return [
        *((f"Grid: {p}", values_text(v)) for p, v in (info.get("grid") or {}).items()),
        ("Constraint", info.get("where") or "none"),
        ("Combinations", counts),
        ("Elapsed", f"{float(info.get('elapsed_s') or 0):,.2f} s"),
    ]


def optimize_facts(run: GridRun) -> list[tuple[str, Any]]:
    """The bounds, the objective, the search settings, the points tried and the best one."""
    info, best = run.info, run.best
    bounds = [(f"Bounds: {p}", f"{lo} … {hi}") for p, (lo, hi) in info["bounds"].items()]
    chosen = ", ".join(f"{k}={v}" for k, v in (best.get("best_params") or {}).items())
    return [
        *bounds,
        ("Fixed", ", ".join(f"{k}={v}" for k, v in (info.get("fixed") or {}).items()) or "none"),
        ("Constraint", info.get("where") or "none"),
        ("Objective", f"{info.get('objective')} (higher is better)"),
        ("Method", f"{info.get('method')}: {info.get('nit')} generations, population "
                   f"{info.get('popsize')} per parameter, seed {info.get('seed')}"),
        ("Points", f"{info.get('n_evaluations', 0):,} backtested, "
                   f"{info.get('n_infeasible', 0):,} infeasible, "
                   f"{info.get('n_candidates', 0):,} asked for (repeats included)"),
        ("Best", f"{chosen}: {info.get('objective')} {fmt(best.get('best_value'), 'ratio')}"),
        ("Stopped", info.get("message", "")),
        ("Elapsed", f"{float(info.get('elapsed_s') or 0):,.2f} s"),
    ]  # fmt: skip


def ny_time(iso: str | None) -> str:
    """An ISO UTC time as New York wall-clock ``YYYY-MM-DD HH:MM``."""
    if not iso:
        return "–"
    return dt.datetime.fromisoformat(iso).astimezone(ZoneInfo(NY)).strftime("%Y-%m-%d %H:%M")


def data_facts(info: dict[str, Any], run_id: str) -> list[tuple[str, Any]]:
    """The data a research run was tested on (shared with the walk-forward page)."""
    source = info.get("source", "")
    period = f"{ny_time(info.get('start'))} → {ny_time(info.get('end'))} New York"
    if info.get("n_bars"):
        period += f" ({int(info['n_bars']):,} bars)"
    return [
        ("Symbols", ", ".join(info.get("symbols", []))),
        ("Timeframe", info.get("timeframe", "")),
        ("Period", period),
        ("Data source", f"{source} (SYNTHETIC)" if info.get("synthetic") else source),
        ("Data version", info.get("data_version") or "–"),
        ("Run id", run_id or "not saved"),
        ("barlab version", info.get("barlab_version", "")),
    ]


def top_section(run: GridRun, table: pl.DataFrame) -> str:
    """The best rows (by Sharpe, or by the objective for an optimisation), with a note."""
    if run.kind == "optimize":
        by, what = "objective", f"the objective ({run.info.get('objective')})"
        listed = grid.top_table(table, run.params, by=by, extra=(("objective", "Objective"),))
    else:
        by, what = "sharpe", "Sharpe"
        listed = grid.top_table(table, run.params, grid=run.info.get("grid"))
    shown = min(grid.TOP_N, table.height)
    note = f"The best {shown:,} of {table.height:,} by {what}, undefined (NaN) last."
    if run.kind == "sweep":
        note += (
            " Neighbours: the combinations one grid step away along one parameter; a good row "
            "whose neighbours are much worse is likely luck, not a robust setting."
        )
    name = "sweep.parquet" if run.kind == "sweep" else "evaluations.parquet"
    note += f" Click a column to sort. Every row is in {name} in the run's folder."
    return (
        f'<section id="top"><h2>Best parameters</h2><p class="note">{e(note)}</p>{listed}</section>'
    )


def charts_section(run: GridRun, table: pl.DataFrame) -> str:
    """The charts in page order, and a sentence for each one left out."""
    made: list[Chart | None] = []
    missing = []
    moved = grid.varied(table, run.params)
    if run.kind == "optimize":
        made += [points_chart(run), convergence_chart(run)]
    else:
        heat = grid.heatmap_chart(table, run.params)
        if heat is None:
            missing.append(
                f"Heatmap: the sweep varies {len(moved)} parameter(s); it needs two (Sharpe by "
                "each parameter's value is drawn instead)."
            )
        made.append(heat)
    if len(moved) > 2 or (run.kind == "sweep" and len(moved) == 1):
        made.append(grid.marginal_chart(table, moved))
    noun = "feasible points" if run.kind == "optimize" else "combinations"
    made += [grid.scatter_chart(table, run.params, noun=noun), grid.distribution_chart(table)]
    left_out = "".join(f'<p class="note">Not drawn — {e(m)}</p>' for m in missing)
    figs = "\n".join(chart_html(c) for c in made if c is not None)
    return f'<section id="charts"><h2>Charts</h2>{figs}{left_out}</section>'


def points_chart(run: GridRun) -> Chart:
    """The points the optimiser evaluated over its first two searched parameters (or the one
    parameter against the objective), coloured by the objective; infeasible points crossed."""
    t, params = run.table, run.params
    feasible = t["feasible"].to_numpy()
    objective = grid.floats(t, "objective")
    px = params[0]
    py = params[1] if len(params) > 1 else None
    y_of = (
        (lambda rows: rows[py].to_numpy()) if py else (lambda rows: grid.floats(rows, "objective"))
    )
    ok, bad = t.filter(pl.col("feasible")), t.filter(~pl.col("feasible"))
    val = objective[feasible]
    data = [
        {"type": "scatter", "mode": "markers", "name": "Evaluated", "x": ok[px].to_numpy(),
         "y": y_of(ok), "text": [grid.params_text(r, params) for r in ok.iter_rows(named=True)],
         "marker": {"size": 7, "color": np.where(np.isfinite(val), val, np.nan),
                    "colorscale": "Viridis", "showscale": True, "colorbar": {"thickness": 12,
                    "title": {"text": str(run.info.get("objective"))}}},
         "hovertemplate": "%{text}<br>objective %{marker.color:.3f}<extra></extra>"},
        {"type": "scatter", "mode": "markers", "name": "Infeasible", "x": bad[px].to_numpy(),
         "y": bad[py].to_numpy() if py else np.zeros(bad.height),
         "marker": {"symbol": "x", "size": 6, "color": "#999"}, "hoverinfo": "skip"},
    ]  # fmt: skip
    best = run.best.get("best_params") or {}
    if px in best and (py is None or py in best):
        data.append({"type": "scatter", "mode": "markers", "name": "Best", "x": [best[px]],
                     "y": [best[py] if py else run.best.get("best_value")],
                     "marker": {"symbol": "star", "size": 15, "color": LOSS}})  # fmt: skip
    lay = base_layout() | {
        "height": 420, "hovermode": "closest", "xaxis": {"title": {"text": px}, **GRID},
        "yaxis": {"title": {"text": py or str(run.info.get("objective"))}, **GRID},
    }  # fmt: skip
    return Chart("points", "Evaluated points", to_spec(data, lay),
                 f"{t.height:,} distinct points, {bad.height:,} infeasible (constraint or "
                 "validation); undefined objectives (NaN) have no colour.")  # fmt: skip


def convergence_chart(run: GridRun) -> Chart:
    """Each evaluated point's objective in evaluation order, and the best so far."""
    t = run.table.sort("eval")
    x = t["eval"].to_numpy().astype(np.float64)
    v = grid.floats(t, "objective")
    v = np.where(np.isfinite(v), v, np.nan)
    best = np.fmax.accumulate(np.where(np.isnan(v), -np.inf, v))
    best = np.where(np.isfinite(best), best, np.nan)
    name = str(run.info.get("objective"))
    data = [
        {"type": "scatter", "mode": "markers", "name": "Each point", "x": x, "y": v,
         "marker": {"size": 4, "color": "#8a8a8a", "opacity": 0.6}},
        {"type": "scatter", "mode": "lines", "name": "Best so far", "x": x, "y": best,
         "line": {"color": STRATEGY, "width": 2, "shape": "hv"}},
    ]  # fmt: skip
    lay = base_layout() | {
        "hovermode": "x unified",
        "xaxis": {"title": {"text": "Evaluation (in the order first proposed)"}, **GRID},
        "yaxis": {"title": {"text": name}, **GRID},
    }  # fmt: skip
    return Chart("convergence", "Convergence", to_spec(data, lay),
                 "Infeasible points and undefined objectives have no dot.")  # fmt: skip
