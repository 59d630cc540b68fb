"""The HTML tearsheet: one self-contained file that opens offline and prints cleanly.

plotly.js is embedded exactly once, gzip-compressed and base64-encoded (1.9 MB instead of
4.8 MB) and unpacked by the browser's DecompressionStream, so a year of minute bars fits well
under 5 MB. Everything shown comes from the Result alone (never the config or the
environment) and is HTML-escaped; the file is written atomically.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import gzip
import html
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from barlab.errors import ConfigError
from barlab.metrics import Metrics
from barlab.report.charts import MAX_POINTS, NY, figures
from barlab.report.labels import fmt, format_metric, label

if TYPE_CHECKING:
    from barlab.result import Result

MAX_TRADES = 500
"""Trades listed in the report; a longer run lists its first 500 and says so."""

SYNTHETIC_BANNER = (
    "SYNTHETIC DATA — demo market, not real prices; "
    "for real data set POLYGON_API_KEY and use --source polygon"
)

# Unpacks plotly.js, then draws every <div data-figure="id"> from <script id="id"> JSON.
_LOADER = """
(async () => {
  const charts = [...document.querySelectorAll("[data-figure]")];
  try {
    const packed = atob(document.getElementById("plotly-js").textContent.trim());
    const bytes = Uint8Array.from(packed, (c) => c.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    const code = await new Response(stream).text();
    const script = document.createElement("script");
    script.textContent = code;
    document.head.appendChild(script);
    for (const el of charts) {
      const fig = JSON.parse(document.getElementById(el.dataset.figure).textContent);
      el.textContent = "";
      await Plotly.newPlot(el, fig.data, fig.layout, {responsive: true, displaylogo: false});
    }
    window.addEventListener("beforeprint", () => charts.forEach((el) => Plotly.Plots.resize(el)));
    window.addEventListener("afterprint", () => charts.forEach((el) => Plotly.Plots.resize(el)));
  } catch (err) {
    for (const el of charts) {
      el.textContent = "Charts need a browser from 2023 or later (" + err + ").";
    }
  }
})();
"""


def write_report(result: Result, path: Path) -> Path:
    """Write ``result``'s HTML report to ``path`` (atomically) and return the path.

    Parameters
    ----------
    result : Result
        A finished backtest, e.g. ``barlab.backtest(SmaCrossover(), bars)``.
    path : Path
        The file to write, e.g. ``Path("reports/sma.html")``; its directory is created.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"report path {path} is a directory; give a file name like report.html")
    page = render(result)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, page)
    return path


def render(result: Result) -> str:
    """The report as one HTML string."""
    info = result.info
    title = f"{info.get('strategy', 'strategy')} — barlab report"
    if result.synthetic:
        title = f"[SYNTHETIC] {title}"
    figs = figures(result)
    body = "\n".join(
        [
            _header(result),
            _metrics_table(result.metrics, result.benchmark_metrics),
            "<h2>Equity and drawdown</h2>",
            *(_chart(i, heading, spec) for i, (heading, spec) in enumerate(figs)),
            f'<p class="note">Charts show at most {MAX_POINTS:,} points per line: each stretch '
            "of bars keeps its lowest and highest value. Times are New York time.</p>",
            _trades_table(result.trades),
            _footer(result),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>\n{_css()}</style>\n</head>\n<body>\n<main>\n"
        f"{body}\n</main>\n{_plotly_script()}\n<script>{_LOADER}</script>\n</body>\n</html>\n"
    )


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _header(result: Result) -> str:
    info = result.info
    banner = ""
    if result.synthetic:
        banner = f'<div class="synthetic" role="alert">{_e(SYNTHETIC_BANNER)}</div>'
    params = ", ".join(f"{k}={v!r}" for k, v in (info.get("params") or {}).items())
    start, end = _ny_span(result.ts_ns)
    run = _dl(
        [
            ("Strategy", info.get("strategy", "")),
            ("Parameters", params or "none"),
            ("Symbols", ", ".join(info.get("symbols", []))),
            ("Timeframe", info.get("timeframe", "")),
            ("Period", f"{start} → {end} New York ({len(result.ts_ns):,} bars)"),
            ("Data source", info.get("source", "")),
            ("Data version", info.get("data_version") or "–"),
            ("Run id", result.run_id or "not saved"),
            ("Strategy source hash", (info.get("strategy_hash") or "–")[:16]),
            ("barlab version", info.get("barlab_version", "")),
        ]
    )
    options = _dl(_flatten(info.get("options") or {}))
    return (
        f"<header>\n<h1>{_e(info.get('strategy', 'strategy'))}</h1>\n"
        f'<p class="subtitle">Backtest report: strategy against buy-and-hold of the same '
        f"symbols</p>\n{banner}\n</header>\n"
        f'<div class="columns">\n<section><h2>Run</h2>{run}</section>\n'
        f"<section><h2>Costs and risk</h2>{options}</section>\n</div>"
    )


def _dl(rows: list[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows)
    return f'<dl class="facts">{items}</dl>'


def _flatten(options: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``{"costs": {"slippage_bps": 1.0}}`` -> ``[("costs.slippage_bps", "1.0")]``."""
    rows: list[tuple[str, Any]] = []
    for key, value in options.items():
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", _option(value)))
    return rows


def _option(value: Any) -> str:
    if value is None:
        return "off"
    if isinstance(value, float):
        return f"{value:,g}"
    return str(value)


def _ny_span(ts_ns: np.ndarray) -> tuple[str, str]:
    if len(ts_ns) == 0:
        return "–", "–"
    ends = pl.Series([ts_ns[0], ts_ns[-1]], dtype=pl.Int64).cast(pl.Datetime("ns", "UTC"))
    text = ends.dt.convert_time_zone(NY).dt.strftime("%Y-%m-%d %H:%M").to_list()
    return text[0], text[1]


def _metrics_table(strategy: Metrics, benchmark: Metrics) -> str:
    rows = []
    for f in dataclasses.fields(Metrics):
        mine, theirs = getattr(strategy, f.name), getattr(benchmark, f.name)
        rows.append(
            f'<tr><th scope="row">{_e(label(f.name))}</th>'
            f'<td class="num">{_e(format_metric(f.name, mine))}</td>'
            f'<td class="num">{_e(format_metric(f.name, theirs))}</td></tr>'
        )
    return (
        '<section><h2>Metrics</h2><div class="table-wrap"><table class="metrics">'
        '<thead><tr><th>Metric</th><th class="num">Strategy</th>'
        '<th class="num">Buy and hold</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _chart(index: int, title: str, spec: str) -> str:
    # "<" inside JSON strings would let a strategy name close the <script> early
    safe = spec.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    fig_id = f"figure-{index}"
    return (
        f"<h3>{_e(title)}</h3>\n"
        f'<div class="chart" data-figure="{fig_id}">Loading the chart…</div>\n'
        f'<script type="application/json" id="{fig_id}">{safe}</script>'
    )


_TRADE_COLUMNS = (
    ("Symbol", ""),
    ("Direction", ""),
    ("Entry (NY)", ""),
    ("Exit (NY)", ""),
    ("Size", "num"),
    ("Entry price", "num"),
    ("Exit price", "num"),
    ("P&L", "num"),
    ("Return", "num"),
    ("Fees", "num"),
    ("Open", ""),
)


def _trades_table(trades: pl.DataFrame) -> str:
    total = trades.height
    shown = trades.head(MAX_TRADES).with_columns(
        pl.col("entry_time", "exit_time").dt.convert_time_zone(NY).dt.strftime("%Y-%m-%d %H:%M")
    )
    rows = []
    for t in shown.iter_rows(named=True):
        cells = [
            (t["symbol"], ""),
            (t["direction"], ""),
            (t["entry_time"], ""),
            (t["exit_time"], ""),
            (_shares(t["size"]), "num"),
            (fmt(t["entry_price"], "money"), "num"),
            (fmt(t["exit_price"], "money"), "num"),
            (fmt(t["pnl"], "money"), "num " + _sign(t["pnl"])),
            (fmt(t["return"], "pct"), "num " + _sign(t["return"])),
            (fmt(t["fees"], "money"), "num"),
            ("open" if t["is_open"] else "", ""),
        ]
        rows.append("<tr>" + "".join(_cell("td", v, c) for v, c in cells) + "</tr>")
    head = "".join(_cell("th", name, c) for name, c in _TRADE_COLUMNS)
    if total > MAX_TRADES:
        note = f"Showing the first {MAX_TRADES:,} of {total:,} trades."
    else:
        note = f"{total:,} trades." if total != 1 else "1 trade."
    return (
        f'<section><h2>Trades</h2><p class="note">{_e(note)} A trade still open at the last bar '
        "is marked open and valued at that bar's close.</p>"
        f'<div class="table-wrap"><table class="trades"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _cell(tag: str, value: Any, css: str) -> str:
    attr = f' class="{css.strip()}"' if css.strip() else ""
    return f"<{tag}{attr}>{_e(value)}</{tag}>"


def _shares(size: float) -> str:
    return f"{size:,.0f}" if float(size).is_integer() else f"{size:,.4f}"


def _sign(value: float) -> str:
    return "gain" if value > 0 else "loss" if value < 0 else ""


def _footer(result: Result) -> str:
    from plotly.offline import get_plotlyjs_version

    return (
        f"<footer>Made by barlab {_e(result.info.get('barlab_version', ''))} with plotly.js "
        f"{_e(get_plotlyjs_version())} (MIT license, © Plotly, Inc.), embedded for offline "
        "use.</footer>"
    )


@functools.cache
def _css() -> str:
    return resources.files("barlab.report").joinpath("report.css").read_text(encoding="utf-8")


@functools.cache
def _plotly_script() -> str:
    """plotly.js, once, gzip + base64 (mtime 0, so the same result gives the same bytes)."""
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    packed = gzip.compress(get_plotlyjs().encode("utf-8"), compresslevel=9, mtime=0)
    payload = base64.b64encode(packed).decode("ascii")
    return (
        '<script type="application/octet-stream" id="plotly-js" data-encoding="gzip+base64" '
        f'data-version="{_e(get_plotlyjs_version())}">\n{payload}\n</script>'
    )


def _write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory, fsync, then rename over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
