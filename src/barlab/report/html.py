"""The run report: one self-contained HTML file that opens offline and prints cleanly.

Sections: the run (what, on which data, with which costs and risk rules), the metrics against
buy-and-hold, the charts, and what the engine decided (trades, order log, risk events).
Everything shown comes from the Result (and, for the price chart, the run's bars) and is
HTML-escaped; the file is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from barlab.report import attribution, charts, decisions, returns
from barlab.report.charts import MAX_POINTS, NY
from barlab.report.decisions import MAX_TRADES
from barlab.report.labels import METRIC_GROUPS, format_metric, label
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
from barlab.report.prices import price_chart
from barlab.report.stats import report_metrics

if TYPE_CHECKING:
    from barlab.bars import Bars
    from barlab.result import Result

__all__ = ["MAX_TRADES", "SYNTHETIC_BANNER", "render", "write_report"]

SYNTHETIC_BANNER = (
    "SYNTHETIC DATA — demo market, not real prices; "
    "for real data set POLYGON_API_KEY and use --source polygon"
)


def write_report(result: Result, path: Path, *, bars: Bars | None = None) -> Path:
    """Write ``result``'s HTML report to ``path`` (atomically) and return the path.

    Parameters
    ----------
    result : Result
        A finished backtest, e.g. ``barlab.backtest(SmaCrossover(), bars)``.
    path : Path
        The file to write, e.g. ``Path("reports/sma.html")``; its directory is created.
    bars : Bars, optional
        The bars the run was tested on, for the price chart; by default they are read back
        from the local cache when it still holds them (nothing is downloaded).
    """
    return write_page(check_path(path), render(result, bars=bars))


def run_charts(result: Result, bars: Bars | None = None) -> tuple[list[Chart], list[str]]:
    """The report's charts, in page order, and a sentence for each chart left out."""
    tl = charts.timeline(result.ts_ns)
    made: list[Chart | None] = [
        charts.equity_chart(result, tl),
        charts.drawdown_chart(result, tl),
        returns.monthly_heatmap(result, tl),
        returns.yearly_bars(result, tl),
        charts.rolling_chart(result, tl),
        returns.period_distribution(result, tl),
        returns.trade_distribution(result),
        charts.exposure_chart(result, tl),
    ]
    missing = []
    if made[4] is None:
        missing.append("Rolling Sharpe and volatility: the run is too short for a window.")
    if made[6] is None:
        missing.append("Distribution of trade returns: the strategy made no trade.")
    price, why = price_chart(result, tl, bars)
    made.append(price)
    if price is None:
        missing.append(f"Price chart: {why}.")
    made.append(returns.symbol_contribution(result))
    return [c for c in made if c is not None], missing


def render(result: Result, *, bars: Bars | None = None) -> str:
    """The report as one HTML string."""
    info = result.info
    title = f"{info.get('strategy', 'strategy')} — barlab report"
    if result.synthetic:
        title = f"[SYNTHETIC] {title}"
    figs, missing = run_charts(result, bars)
    mine, theirs = report_metrics(result)
    left_out = "".join(f'<p class="note">Not drawn — {e(m)}</p>' for m in missing)
    body = "\n".join(
        [
            header(result),
            metrics_table({"Strategy": mine, "Buy and hold": theirs}),
            attribution.section(result),
            '<section id="charts"><h2>Charts</h2>',
            *(chart_html(c) for c in figs),
            left_out,
            f'<p class="note">Lines show at most {MAX_POINTS:,} points: each stretch of bars '
            "keeps its lowest and highest value. Times are New York time.</p></section>",
            decisions.trades_table(
                result.trades, fill_policy=(info.get("options") or {}).get("fill_policy")
            ),
            decisions.orders_summary(result.orders),
            decisions.risk_events(result.orders),
            sweep_sections(result),
            footer(info.get("barlab_version", "")),
        ]
    )  # fmt: skip
    return document(title, body)


def sweep_sections(result: Result) -> str:
    """Extension point for a run that came out of a sweep: nothing yet.

    Sweeps, optimisations and walk-forwards have pages of their own
    (:mod:`barlab.report.sweep_page`, :mod:`barlab.report.walkforward_page`), built from the
    same pieces; a backtest does not yet record which sweep it came from, so there is nothing
    to link to here.
    """
    return ""


def header(result: Result) -> str:
    info = result.info
    banner = ""
    if result.synthetic:
        banner = f'<div class="synthetic" role="alert">{e(SYNTHETIC_BANNER)}</div>'
    return (
        f"<header>\n<h1>{e(info.get('strategy', 'strategy'))}</h1>\n"
        f'<p class="subtitle">Backtest report: strategy against buy-and-hold of the same '
        f"symbols</p>\n{banner}\n{SECTIONS}</header>\n"
        f'<div class="columns" id="run">\n<section><h2>Run</h2>{dl(run_facts(result))}</section>\n'
        f"<section><h2>Costs and risk</h2>{dl(_flatten(info.get('options') or {}))}</section>"
        "\n</div>"
    )


SECTIONS = nav(
    [("run", "Run"), ("metrics", "Metrics"), ("charts", "Charts"), ("trades", "Trades"),
     ("orders", "Order log"), ("risk", "Risk events")]
)  # fmt: skip


def run_facts(result: Result) -> list[tuple[str, Any]]:
    info = result.info
    params = ", ".join(f"{k}={v!r}" for k, v in (info.get("params") or {}).items())
    start, end = ny_span(result.ts_ns)
    source = info.get("source", "")
    return [
        ("Strategy", info.get("strategy", "")),
        ("Parameters", params or "none"),
        ("Symbols", ", ".join(info.get("symbols", []))),
        ("Timeframe", info.get("timeframe", "")),
        ("Period", f"{start} → {end} New York ({len(result.ts_ns):,} bars)"),
        ("Data source", f"{source} (SYNTHETIC)" if result.synthetic else source),
        ("Data version", info.get("data_version") or "–"),
        ("Run id", result.run_id or "not saved"),
        ("Strategy source hash", (info.get("strategy_hash") or "–")[:16]),
        ("barlab version", info.get("barlab_version", "")),
    ]


def _flatten(options: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``{"costs": {"slippage_bps": 1.0}}`` -> ``[("costs.slippage_bps", "1.0")]``."""
    rows: list[tuple[str, Any]] = []
    for key, value in options.items():
        if isinstance(value, dict) and value:
            rows.extend(_flatten(value, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", _option(value)))
    return rows


def _option(value: Any) -> str:
    if value is None or value == {}:
        return "off"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:,g}" if isinstance(value, float) else f"{value:,}"
    return str(value)


def ny_span(ts_ns: np.ndarray) -> tuple[str, str]:
    if len(ts_ns) == 0:
        return "–", "–"
    ends = pl.Series([ts_ns[0], ts_ns[-1]], dtype=pl.Int64).cast(pl.Datetime("ns", "UTC"))
    text = ends.dt.convert_time_zone(NY).dt.strftime("%Y-%m-%d %H:%M").to_list()
    return text[0], text[1]


def metrics_table(columns: dict[str, dict[str, float]]) -> str:
    """The metrics in sections, one column per account (``{"Strategy": {...}, ...}``)."""
    n = len(columns) + 1
    rows = []
    for group, names in METRIC_GROUPS:
        rows.append(f'<tr class="group"><th colspan="{n}" scope="rowgroup">{e(group)}</th></tr>')
        for name in names:
            cells = "".join(
                f'<td class="num">{e(format_metric(name, values[name]))}</td>'
                for values in columns.values()
            )
            rows.append(f'<tr><th scope="row">{e(label(name))}</th>{cells}</tr>')
    head = "".join(f'<th class="num" scope="col">{e(c)}</th>' for c in columns)
    return (
        '<section id="metrics"><h2>Metrics</h2><div class="table-wrap"><table class="metrics">'
        f"<thead><tr><th>Metric</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
        '<p class="note">Bar statistics use every bar\'s return, annualised with the bars in '
        "a trading year; trade statistics use each round trip's P&L after fees. Turnover: "
        "dollars bought and sold per year over the mean equity.</p></section>"
    )
