"""Each strategy's share of a combined run (:func:`barlab.combine`): the rows of the terminal
summary and the report's "Strategies" section (a table and each one's cumulative P&L).

The numbers come from ``Result.attribution`` and ``Result.attribution_pnl``; how they are
defined is in :mod:`barlab.attribution`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from barlab.report.charts import BENCHMARK, LOSS, STRATEGY, layout, line, timeline, to_spec
from barlab.report.decisions import _td, _th
from barlab.report.labels import fmt
from barlab.report.page import Chart, chart_html, e

if TYPE_CHECKING:
    from barlab.result import Result

_COLORS = (STRATEGY, "#e08a00", "#1b6e3a", LOSS, "#7b3fa0", BENCHMARK)
DEFINITION = (
    "Each symbol's position belongs to the strategies in proportion to their signed parts of "
    "the combined target; an order to those whose targets changed (attached exits to the "
    "position's owners), its fee split by how much each one's target moved. The strategies' "
    "P&L add up to the change in equity on every bar."
)


def summary_lines(result: Result) -> list[str]:
    """The terminal summary's rows for a combined run (none for a single strategy)."""
    table = result.attribution
    if table is None:
        return []
    lines = [
        "",
        f"{'per strategy':<24}{'weight':>8}{'P&L':>15}{'return':>10}{'fees':>13}"
        f"{'orders':>8}{'trades':>8}",
    ]
    for row in table.iter_rows(named=True):
        lines.append(
            f"{row['strategy']:<24}{row['weight']:>8g}{fmt(row['pnl'], 'money'):>15}"
            f"{fmt(row['return'], 'pct'):>10}{fmt(row['fees'], 'money'):>13}"
            f"{row['orders']:>8,}{row['trades']:>8,}"
        )
    return lines


def section(result: Result) -> str:
    """The report's per-strategy section ("" for a single strategy)."""
    table, frame = result.attribution, result.attribution_pnl
    if table is None or frame is None:
        return ""
    columns = (("Strategy", ""), ("Weight", "num"), ("P&L", "num"), ("Return", "num"),
               ("Fees", "num"), ("Orders", "num"), ("Trades", "num"))  # fmt: skip
    rows = []
    for row in table.iter_rows(named=True):
        cells = [
            f'<th scope="row">{e(row["strategy"])}</th>',
            _td(f"{row['weight']:g}", "num"),
            _td(fmt(row["pnl"], "money"), "num", row["pnl"]),
            _td(fmt(row["return"], "pct"), "num", row["return"]),
            _td(fmt(row["fees"], "money"), "num", row["fees"]),
            _td(f"{row['orders']:,}", "num"),
            _td(f"{row['trades']:,}", "num"),
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(_th(n, c) for n, c in columns)
    return (
        '<section id="strategies"><h2>Strategies</h2>'
        f'<p class="note">{e(DEFINITION)} Orders and trades are counted for every strategy '
        "that caused them.</p>"
        f'<div class="table-wrap"><table class="strategies sortable"><thead><tr>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
        f"{chart_html(pnl_chart(result.ts_ns, table, frame))}</section>"
    )


def pnl_chart(ts_ns: np.ndarray, table: pl.DataFrame, frame: pl.DataFrame) -> Chart:
    """Each strategy's cumulative P&L after fees (USD) over time, from ``Result.attribution``
    (``table``) and ``Result.attribution_pnl`` (``frame``)."""
    tl = timeline(ts_ns)
    names = table["strategy"].to_list()
    pnl = frame["pnl"].to_numpy().reshape(-1, len(names))
    data = [
        line(name, tl.x, np.cumsum(pnl[:, k]), _COLORS[k % len(_COLORS)])
        for k, name in enumerate(names)
    ]
    lay = layout("Cumulative P&L (USD)", "$,.0f", "$,.2f", tl.breaks)
    return Chart(
        "strategies", "P&L by strategy", to_spec(data, lay),
        "After fees; together the lines make the change in equity.",
    )  # fmt: skip
