"""The page of a walk-forward: the folds' train and test windows, the parameters each fold
chose with their in-sample and out-of-sample objective, the stitched out-of-sample equity
against buy-and-hold, and how much of the in-sample result survived (degradation, walk-forward
efficiency).

Built from the same pieces as the backtest report; every number is read from the
:class:`~barlab.research.walkforward.WalkForwardResult` (its fold table, its stitched record
and the metrics :mod:`barlab.metrics` computed for them).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from barlab.report import charts
from barlab.report.charts import (
    BENCHMARK,
    GRID,
    LOSS,
    MAX_POINTS,
    STRATEGY,
    base_layout,
    layout,
    line,
    log_toggle,
    to_spec,
)
from barlab.report.grid import floats
from barlab.report.html import SYNTHETIC_BANNER, _flatten
from barlab.report.labels import METRIC_FORMATS, fmt, format_metric, label
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
from barlab.report.sweep_page import data_facts, values_text

if TYPE_CHECKING:
    from barlab.research.walkforward import WalkForwardResult

MAX_FOLDS = 500
"""Folds listed in the table (all are drawn on the timeline up to this many)."""
_MS_PER_DAY = 86_400_000


def write_walkforward_report(wf: WalkForwardResult, path: Path | str) -> Path:
    """Write the page of a walk-forward to ``path`` (atomically).

    Parameters
    ----------
    wf : WalkForwardResult
        e.g. ``barlab.walk_forward(SmaCrossover, bars, train="3M", test="1M",
        fast=range(5, 55, 5), slow=range(20, 220, 20))``, or one loaded back with
        :func:`barlab.research.walkforward.load_walk_forward`.
    path : Path or str
        The file to write, e.g. ``"reports/wf.html"``; its directory is created.
    """
    return write_page(check_path(path), render_walkforward(wf))


def render_walkforward(wf: WalkForwardResult) -> str:
    """The page as one HTML string."""
    info = wf.info
    title = f"{info.get('strategy', 'strategy')} walk-forward — barlab report"
    if info.get("synthetic"):
        title = f"[SYNTHETIC] {title}"
    made = [timeline_chart(wf), objective_chart(wf), params_chart(wf), oos_equity_chart(wf)]
    body = "\n".join(
        [
            header(wf),
            summary_section(wf),
            '<section id="charts"><h2>Charts</h2>',
            *(chart_html(c) for c in made),
            "</section>",
            folds_section(wf),
            footer(info.get("barlab_version", "")),
        ]
    )
    return document(title, body)


def header(wf: WalkForwardResult) -> str:
    """The title, the SYNTHETIC banner for demo data, and what was run on which data."""
    info = wf.info
    banner = ""
    if info.get("synthetic"):
        banner = f'<div class="synthetic" role="alert">{e(SYNTHETIC_BANNER)}</div>'
    sections = nav([("run", "Run"), ("summary", "Out of sample"), ("charts", "Charts"),
                    ("folds", "Folds")])  # fmt: skip
    return (
        f"<header>\n<h1>{e(info.get('strategy', 'strategy'))}</h1>\n"
        '<p class="subtitle">Walk-forward: optimise on each train window, trade the choice on '
        f"the test window that follows, judge the test windows chained</p>\n{banner}\n"
        f"{sections}</header>\n"
        f'<div class="columns" id="run">\n<section><h2>Search</h2>{dl(search_facts(wf))}'
        f"</section>\n<section><h2>Data</h2>{dl(data_facts(info, wf.run_id))}</section>\n"
        f"<section><h2>Costs and risk</h2>{dl(_flatten(info.get('options') or {}))}</section>"
        "\n</div>"
    )


def search_facts(wf: WalkForwardResult) -> list[tuple[str, Any]]:
    """The grid, the constraint, the objective, the windows and the folds."""
    info = wf.info
    how = "anchored: every train window starts at the first session"
    windows = (
        f"train {info.get('train')}, test {info.get('test')}, step {info.get('step')} "
        f"({how if info.get('anchored') else 'rolling'})"
    )
    return [
        *((f"Grid: {p}", values_text(v)) for p, v in (info.get("grid") or {}).items()),
        ("Constraint", info.get("where") or "none"),
        ("Objective", f"{info.get('objective')} (higher is better)"),
        ("Windows", windows),
        ("Folds", f"{info.get('n_folds', wf.folds.height):,}"),
        ("Warm-up", info.get("warmup", "")),
        ("Elapsed", f"{float(info.get('elapsed_s') or 0):,.2f} s"),
    ]


def summary_section(wf: WalkForwardResult) -> str:
    """Degradation and walk-forward efficiency, then the stitched record's metrics beside the
    folds' mean in-sample and out-of-sample values."""
    d = wf.degradation
    m = d.metric
    kind = METRIC_FORMATS.get(m, ("", "ratio"))[1]
    eff = (
        f"{d.efficiency:.2f} (out-of-sample mean / in-sample mean)"
        if math.isfinite(d.efficiency)
        else "n/a: the in-sample mean is not above zero (or undefined), so the ratio means nothing"
    )
    facts = [
        ("Measured on", f"{label(m) if m in METRIC_FORMATS else m}"),
        ("In-sample mean (per fold)", fmt(d.is_mean, kind)),
        ("Out-of-sample mean (per fold)", fmt(d.oos_mean, kind)),
        ("Mean change (out − in)", fmt(d.mean, kind)),
        ("Walk-forward efficiency", eff),
    ]
    head = "".join(
        f'<th class="num" scope="col">{e(h)}</th>'
        for h in ("Out of sample, stitched", "Mean in-sample fold", "Mean out-of-sample fold")
    )
    return (
        f'<section id="summary"><h2>Out of sample</h2>{dl(facts)}'
        '<p class="note">Degradation compares each fold\'s chosen row on its train window with '
        "the same parameters on its test window; above ~0.5 efficiency is usually read as "
        "robust. Fold means skip undefined values (–).</p>"
        '<div class="table-wrap"><table class="metrics">'
        f"<thead><tr><th>Metric</th>{head}</tr></thead><tbody>{metric_rows(wf)}</tbody>"
        "</table></div></section>"
    )


def metric_rows(wf: WalkForwardResult) -> str:
    """One row per metric: the stitched record's, then the mean over folds in and out of
    sample (finite values only)."""
    oos = wf.oos_metrics.to_dict()
    rows = []
    for name in METRIC_FORMATS:
        cells = [format_metric(name, oos.get(name))]
        for side in ("is", "oos"):
            col = f"{side}_{name}"
            v = floats(wf.folds, col) if col in wf.folds.columns else np.array([])
            v = v[np.isfinite(v)]
            cells.append(format_metric(name, float(v.mean())) if len(v) else "–")
        tds = "".join(f'<td class="num">{e(c)}</td>' for c in cells)
        rows.append(f'<tr><th scope="row">{e(label(name))}</th>{tds}</tr>')
    return "".join(rows)


def _day_ms(day: Any) -> float:
    """A date as plotly's date-axis milliseconds (midnight)."""
    return float((np.datetime64(day, "D") - np.datetime64(0, "D")).astype(np.int64) * _MS_PER_DAY)


def timeline_chart(wf: WalkForwardResult) -> Chart:
    """One row per fold: its train window, then its test window (sessions, inclusive)."""
    folds = wf.folds.head(MAX_FOLDS)
    y = [f"Fold {f}" for f in folds["fold"]]
    data = []
    for part, color in (("train", BENCHMARK), ("test", STRATEGY)):
        start = np.array([_day_ms(d) for d in folds[f"{part}_start"]])
        end = np.array([_day_ms(d) for d in folds[f"{part}_end"]]) + _MS_PER_DAY
        text = [f"{a} → {b}" for a, b in zip(folds[f"{part}_start"], folds[f"{part}_end"],
                                            strict=True)]  # fmt: skip
        data.append(
            {"type": "bar", "orientation": "h", "name": part.capitalize(), "y": y,
             "base": start, "x": end - start, "text": text, "textposition": "none",
             "marker": {"color": color}, "opacity": 0.85,
             "hovertemplate": f"%{{y}} {part}: %{{text}}<extra></extra>"}
        )  # fmt: skip
    lay = base_layout() | {
        "barmode": "overlay", "height": min(900, 120 + 26 * len(y)),
        "xaxis": {"type": "date", "title": {"text": "Sessions (New York dates)"}, **GRID},
        "yaxis": {"autorange": "reversed", "type": "category", **GRID},
    }  # fmt: skip
    return Chart("timeline", "Fold timeline", to_spec(data, lay),
                 "Each fold sweeps the grid on its train window, then trades the chosen "
                 "parameters on the test window after it.")  # fmt: skip


def objective_chart(wf: WalkForwardResult) -> Chart:
    """In-sample against out-of-sample objective, fold by fold."""
    folds = wf.folds.head(MAX_FOLDS)
    x = [f"Fold {f}" for f in folds["fold"]]
    name = str(wf.info.get("objective"))
    data = []
    for col, title, color in (("is_objective", "In sample (train)", BENCHMARK),
                              ("oos_objective", "Out of sample (test)", STRATEGY)):  # fmt: skip
        v = floats(folds, col)
        data.append(
            {"type": "bar", "name": title, "x": x, "y": np.where(np.isfinite(v), v, np.nan),
             "marker": {"color": color},
             "hovertemplate": f"%{{x}}: {name} %{{y:.3f}}<extra>{title}</extra>"}
        )  # fmt: skip
    lay = base_layout() | {
        "barmode": "group", "xaxis": {"type": "category", **GRID},
        "yaxis": {"title": {"text": name}, "zeroline": True, **GRID},
    }  # fmt: skip
    n_bad = int((~np.isfinite(floats(folds, "oos_objective"))).sum())
    note = f"The objective ({name}) of each fold's chosen parameters."
    if n_bad:
        note += f" {n_bad} fold(s) have an undefined out-of-sample value (no bar drawn)."
    return Chart("objective", "In-sample against out-of-sample, by fold", to_spec(data, lay), note)


def params_chart(wf: WalkForwardResult) -> Chart:
    """The parameters each fold chose, one panel per parameter: steady choices across folds
    suggest a setting the data supports; jumps suggest the optimum is noise."""
    from plotly.subplots import make_subplots

    folds, params = wf.folds.head(MAX_FOLDS), wf.param_names
    fig = make_subplots(rows=len(params), cols=1, shared_xaxes=True,
                        vertical_spacing=0.12 / max(1, len(params)))  # fmt: skip
    x = folds["fold"].to_numpy()
    for k, p in enumerate(params):
        chosen = folds[p].to_list()
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in chosen)
        fig.add_trace(
            {"type": "scatter", "mode": "lines+markers", "name": p, "x": x,
             "y": np.asarray(chosen, dtype=np.float64) if numeric else [str(v) for v in chosen],
             "line": {"color": STRATEGY, "width": 1.5, "shape": "hv"}, "showlegend": False,
             "hovertemplate": f"fold %{{x}}: {p}=%{{y}}<extra></extra>"},
            row=k + 1, col=1,
        )  # fmt: skip
        grid_values = (wf.info.get("grid") or {}).get(p) or chosen
        fig.update_yaxes(title_text=p, row=k + 1, col=1, **_grid_axis(grid_values, numeric))
    fig.update_xaxes(dtick=1, **GRID)
    fig.update_xaxes(title_text="Fold", row=len(params), col=1)
    fig.update_layout(base_layout() | {"height": 110 + 150 * len(params), "hovermode": "closest"})
    return Chart("params", "Parameters chosen by fold", to_spec(list(fig.data), fig.layout),
                 "Steady choices suggest a setting the data supports; jumps from fold to fold "
                 "suggest the in-sample optimum is noise.")  # fmt: skip


def _grid_axis(grid_values: list[Any], numeric: bool) -> dict[str, Any]:
    """A y axis spanning the whole grid of a parameter, so a choice reads against its range."""
    if not numeric:
        return {"type": "category", "categoryarray": [str(v) for v in grid_values], **GRID}
    lo, hi = float(min(grid_values)), float(max(grid_values))
    pad = (hi - lo) * 0.05 or max(abs(lo) * 0.05, 0.5)
    return {"range": [lo - pad, hi + pad], **GRID}


def oos_equity_chart(wf: WalkForwardResult) -> Chart:
    """The stitched out-of-sample equity against buy-and-hold, fold starts marked."""
    oos = wf.oos
    ts = oos["ts"].cast(pl.Int64).to_numpy()
    tl = charts.timeline(ts)
    data = [
        line(
            "Out of sample (stitched)", tl.x, oos["equity"].to_numpy().astype(np.float64), STRATEGY
        ),
        line("Buy and hold", tl.x, oos["benchmark"].to_numpy().astype(np.float64), BENCHMARK),
    ]
    fold = oos["fold"].to_numpy()
    starts = np.flatnonzero(np.append(True, fold[1:] != fold[:-1]))
    shapes = [
        {"type": "line", "xref": "x", "yref": "paper", "x0": tl.x[i], "x1": tl.x[i], "y0": 0,
         "y1": 1, "line": {"color": LOSS, "width": 1, "dash": "dot"}, "layer": "below"}
        for i in starts[1:]
    ]  # fmt: skip
    lay = layout("Equity (USD)", "$,.0f", "$,.2f", tl.breaks, updatemenus=log_toggle(),
                 shapes=shapes)  # fmt: skip
    lay["margin"]["t"] = charts.MENU_TOP
    return Chart("oos-equity", "Stitched out-of-sample equity", to_spec(data, lay),
                 f"The test windows chained, each fold's returns compounding on the last; dotted "
                 f"lines: a new fold starts. At most {MAX_POINTS:,} points per line, each stretch "
                 "keeping its lowest and highest value.")  # fmt: skip


def folds_section(wf: WalkForwardResult) -> str:
    """The per-fold table: windows, chosen parameters, objective in and out of sample."""
    folds, params = wf.folds, wf.param_names
    name = str(wf.info.get("objective"))
    cols = [("fold", "Fold"), ("train", "Train"), ("test", "Test"), *((p, p) for p in params),
            ("n_run", "Combinations"), ("is_objective", f"IS {name}"),
            ("oos_objective", f"OOS {name}"), ("degradation", "Change"),
            ("efficiency", "Efficiency"), ("oos_total_return", "OOS return"),
            ("oos_max_drawdown", "OOS max drawdown"), ("oos_n_trades", "OOS trades")]  # fmt: skip
    rows = []
    for r in folds.head(MAX_FOLDS).iter_rows(named=True):
        r = {**r, "train": f"{r['train_start']} → {r['train_end']}",
             "test": f"{r['test_start']} → {r['test_end']}"}  # fmt: skip
        rows.append("<tr>" + "".join(_cell(c, r[c]) for c, _ in cols) + "</tr>")
    head = "".join(f'<th scope="col">{e(h)}</th>' for _, h in cols)
    more = (
        f" The first {MAX_FOLDS:,} of {folds.height:,} are listed."
        if folds.height > MAX_FOLDS
        else ""
    )
    return (
        f'<section id="folds"><h2>Folds</h2><p class="note">IS: in sample (the train window), '
        f"OOS: out of sample (the test window). Change and efficiency use "
        f"{e(wf.degradation.metric)}. Click a column to sort.{e(more)} Every fold and every "
        "metric is in folds.parquet in the run's folder.</p>"
        '<div class="table-wrap scroll"><table class="sortable folds" id="folds-table">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _cell(col: str, value: Any) -> str:
    kinds = {"oos_total_return": "pct", "oos_max_drawdown": "pct", "oos_n_trades": "int",
             "n_run": "int", "fold": "int"}  # fmt: skip
    if isinstance(value, str | dt.date | bool) or (
        col not in kinds and not isinstance(value, float)
    ):
        return f"<td>{e(value)}</td>"
    v = math.nan if value is None else float(value)
    key = f"{v:.10g}" if math.isfinite(v) else ("Infinity" if v == math.inf else "-Infinity")
    return f'<td class="num" data-v="{key}">{e(fmt(v, kinds.get(col, "ratio")))}</td>'
