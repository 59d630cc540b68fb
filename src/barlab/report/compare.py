"""Two runs side by side: what each ran, their metrics, their equity curves and drawdowns.

The runs may differ in anything (strategy, parameters, symbols, dates, starting cash), so the
equity curves are drawn as the growth of $1 and each run keeps its own buy-and-hold column
when its benchmark differs from the other's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from barlab.report import charts
from barlab.report.charts import BENCHMARK, MAX_POINTS, layout, line, log_toggle, to_spec
from barlab.report.html import SYNTHETIC_BANNER, metrics_table, run_facts
from barlab.report.page import Chart, chart_html, check_path, dl, document, e, footer, write_page
from barlab.report.stats import report_metrics

if TYPE_CHECKING:
    from barlab.result import Result

_COLORS = {"A": "#1f5fbf", "B": "#c2410c"}


def write_comparison(a: Result, b: Result, path: Path) -> Path:
    """Write the side-by-side page of runs ``a`` and ``b`` to ``path`` (atomically).

    Parameters
    ----------
    a, b : Result
        Two runs, e.g. ``barlab.load_run("20240105-101500-sma_crossover-1a2b3c")``.
    path : Path
        The file to write, e.g. ``Path("reports/compare/a_vs_b.html")``.
    """
    return write_page(check_path(path), render_comparison(a, b))


def _same_benchmark(a: Result, b: Result) -> bool:
    keys = ("symbols", "timeframe", "source", "data_version", "start", "end", "options")
    return all(a.info.get(k) == b.info.get(k) for k in keys)


def _name(tag: str, result: Result) -> str:
    return f"{tag}: {result.info.get('strategy', 'strategy')}"


def comparison_charts(a: Result, b: Result) -> list[Chart]:
    runs = {"A": a, "B": b}
    x = {tag: charts.ny_wall_ms(r.ts_ns) for tag, r in runs.items()}
    breaks = charts.rangebreaks(np.unique(np.concatenate(list(x.values()))))
    growth, under = [], []
    for tag, r in runs.items():
        cash = float(r.info["options"]["cash"])
        equity = np.asarray(r.equity, dtype=np.float64)
        growth.append(line(_name(tag, r), x[tag], equity / cash, _COLORS[tag]))
        under.append(line(_name(tag, r), x[tag], charts.drawdown(equity, cash), _COLORS[tag]))
    benchmarks = ["A"] if _same_benchmark(a, b) else ["A", "B"]
    for tag in benchmarks:
        r = runs[tag]
        name = "Buy and hold" if len(benchmarks) == 1 else f"Buy and hold ({tag})"
        bench = np.asarray(r.benchmark_equity, np.float64) / float(r.info["options"]["cash"])
        dash = {"dash": "dot"} if tag == "B" else {}
        growth.append(
            line(name, x[tag], bench, BENCHMARK)
            | {"line": {"color": BENCHMARK, "width": 1.2, **dash}}
        )
    return [
        Chart(
            "growth", "Growth of $1",
            to_spec(growth, layout("Growth of $1", "$,.2f", "$,.4f", breaks,
                                   updatemenus=log_toggle())),
            "Equity over each run's starting cash, so runs with different cash compare.",
        ),
        Chart(
            "drawdowns", "Drawdowns (underwater)",
            to_spec(under, layout("Below the running peak", "~%", ".2%", breaks)),
        ),
    ]  # fmt: skip


def render_comparison(a: Result, b: Result) -> str:
    columns: dict[str, dict[str, float]] = {}
    mine_a, bench_a = report_metrics(a)
    mine_b, bench_b = report_metrics(b)
    columns[_name("A", a)] = mine_a
    columns[_name("B", b)] = mine_b
    if _same_benchmark(a, b):
        columns["Buy and hold"] = bench_a
    else:
        columns["Buy and hold (A)"] = bench_a
        columns["Buy and hold (B)"] = bench_b
    synthetic = [tag for tag, r in (("A", a), ("B", b)) if r.synthetic]
    banner = ""
    if synthetic:
        which = "both runs" if len(synthetic) == 2 else f"run {synthetic[0]}"
        banner = f'<div class="synthetic" role="alert">{e(which)}: {e(SYNTHETIC_BANNER)}</div>'
    ids = f"{a.run_id or 'unsaved'} vs {b.run_id or 'unsaved'}"
    title = f"{'[SYNTHETIC] ' if synthetic else ''}Comparison {ids} — barlab"
    facts = "".join(
        f"<section><h2>{e(_name(tag, r))}</h2>{dl(run_facts(r))}</section>"
        for tag, r in (("A", a), ("B", b))
    )
    body = "\n".join(
        [
            f'<header><h1>Comparison</h1><p class="subtitle">{e(ids)}</p>{banner}</header>',
            f'<div class="columns" id="run">{facts}</div>',
            metrics_table(columns),
            '<section id="charts"><h2>Charts</h2>',
            *(chart_html(c) for c in comparison_charts(a, b)),
            f'<p class="note">Lines show at most {MAX_POINTS:,} points: each stretch of bars '
            "keeps its lowest and highest value. Times are New York time.</p></section>",
            footer(a.info.get("barlab_version", "")),
        ]
    )
    return document(title, body)
