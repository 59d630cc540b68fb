"""The page every report is built on: one self-contained HTML file that opens offline.

plotly.js is embedded exactly once, gzip-compressed and base64-encoded (about 40 % of its
size) and unpacked by the browser's DecompressionStream. Each chart is a ``<div data-figure>``
beside a ``<script type="application/json">`` holding its figure. Tables marked ``sortable``
sort on a header click; a ``<div data-filter>`` filters a table's rows. The small inline
scripts below are the only code besides plotly.js: no CDN, no other library.
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from barlab.atomic import write_text
from barlab.errors import ConfigError

# Unpacks plotly.js, then draws every <div data-figure="id"> from <script id="id"> JSON; marks
# <body data-charts-drawn-ms> when done, which the browser test and the benchmark read.
_LOADER = """
(async () => {
  const charts = [...document.querySelectorAll("[data-figure]")];
  try {
    const packed = atob(document.getElementById("plotly-js").textContent.trim());
    const bytes = new Uint8Array(packed.length);  // a plain loop: 10x faster than .from(fn)
    for (let i = 0; i < packed.length; i++) bytes[i] = packed.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    const code = await new Response(stream).text();
    const script = document.createElement("script");
    script.textContent = code;
    document.head.appendChild(script);
    for (const el of charts) {
      const fig = JSON.parse(document.getElementById(el.dataset.figure).textContent);
      el.textContent = "";
      await Plotly.newPlot(el, fig.data, fig.layout, {responsive: true, displaylogo: false});
      el.classList.add("drawn");
    }
    document.body.dataset.chartsDrawnMs = Math.round(performance.now());
    const resize = () => charts.forEach((el) => Plotly.Plots.resize(el));
    window.addEventListener("beforeprint", resize);
    window.addEventListener("afterprint", resize);
  } catch (err) {
    for (const el of charts) {
      el.textContent = "Charts need a browser from 2023 or later (" + err + ").";
    }
  }
})();
"""

# Sort a table on a header click (numbers by their data-v value), filter rows by words and kind.
_TABLES = """
for (const table of document.querySelectorAll("table.sortable")) {
  const heads = [...table.tHead.rows[0].cells];
  heads.forEach((th, col) => {
    th.tabIndex = 0;
    th.title = "Sort";
    const sort = () => {
      const dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      heads.forEach((h) => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
      const key = (row) => {
        const cell = row.cells[col];
        return "v" in cell.dataset ? Number(cell.dataset.v) : cell.textContent;
      };
      const body = table.tBodies[0];
      const rows = [...body.rows].sort((a, b) => {
        const x = key(a), y = key(b);
        return (x < y ? -1 : x > y ? 1 : 0) * dir;
      });
      body.append(...rows);
    };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
    });
  });
}
for (const box of document.querySelectorAll("[data-filter]")) {
  const rows = [...document.getElementById(box.dataset.filter).tBodies[0].rows];
  const text = box.querySelector("input"), kind = box.querySelector("select");
  const count = box.querySelector("output");
  const apply = () => {
    const words = text.value.toLowerCase().split(/\\s+/).filter(Boolean);
    let shown = 0;
    for (const row of rows) {
      const line = row.textContent.toLowerCase();
      const ok = words.every((w) => line.includes(w)) &&
        (!kind.value || row.dataset.kind.split(" ").includes(kind.value));
      row.hidden = !ok;
      shown += ok;
    }
    count.textContent = shown + " of " + rows.length + " shown";
  };
  text.addEventListener("input", apply);
  kind.addEventListener("change", apply);
}
"""


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart of a page: its anchor, heading, plotly JSON and an optional note under it."""

    key: str
    title: str
    spec: str
    note: str = ""


def e(value: Any) -> str:
    """HTML-escaped text."""
    return html.escape(str(value), quote=True)


def chart_html(chart: Chart) -> str:
    # "<" inside JSON strings would let a strategy name close the <script> early
    safe = chart.spec.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    fig_id = f"figure-{chart.key}"
    note = f'<p class="note">{e(chart.note)}</p>\n' if chart.note else ""
    return (
        f'<h3 id="{fig_id}-title">{e(chart.title)}</h3>\n'
        f'<div class="chart" data-figure="{fig_id}" aria-labelledby="{fig_id}-title">'
        f"Loading the chart…</div>\n{note}"
        f'<script type="application/json" id="{fig_id}">{safe}</script>'
    )


def dl(rows: list[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows)
    return f'<dl class="facts">{items}</dl>'


def nav(items: list[tuple[str, str]]) -> str:
    """Links to the page's sections: ``[(anchor, text), ...]``."""
    links = "".join(f'<li><a href="#{e(a)}">{e(t)}</a></li>' for a, t in items)
    return f'<nav aria-label="Sections"><ul>{links}</ul></nav>'


def document(title: str, body: str) -> str:
    """The whole page: head, styles, ``body``, plotly.js (once) and the page's scripts."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n<style>\n{_css()}</style>\n</head>\n<body>\n<main>\n"
        f"{body}\n</main>\n{_plotly_script()}\n<script>{_LOADER}</script>\n"
        f"<script>{_TABLES}</script>\n</body>\n</html>\n"
    )


def footer(barlab_version: str) -> str:
    from plotly.offline import get_plotlyjs_version

    return (
        f"<footer>Made by barlab {e(barlab_version)} with plotly.js "
        f"{e(get_plotlyjs_version())} (MIT license, © Plotly, Inc.), embedded for offline "
        "use.</footer>"
    )


def check_path(path: Path | str) -> Path:
    """``path`` as a Path, if a page may be written there (checked before any work is done)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"report path {path} is a directory; give a file name like report.html")
    return path


def write_page(path: Path, page: str) -> Path:
    """Write ``page`` to ``path`` atomically (its directory is created) and return the path."""
    path = check_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, page)
    return path


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
        f'data-version="{e(get_plotlyjs_version())}">\n{payload}\n</script>'
    )


def _write_atomic(path: Path, text: str) -> None:
    """Write atomically, readable by all (a report is meant to be shared)."""
    write_text(path, text, mode=0o644)
