"""Charts and tables over a table of metrics, one row per parameter set (a sweep or an
optimisation): the top rows with their neighbourhood, a heatmap over two parameters, Sharpe
against drawdown, and each metric's distribution.

No equity curve exists per combination, only its metrics, and a sweep may hold 100,000 rows:
every piece here is capped (rows listed, points drawn, heatmap cells, histogram bins) and says
so on the page. NaN (undefined, e.g. no trade) and infinite values are never drawn as numbers;
they are counted and named.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from barlab.report.charts import GRID, LOSS, STRATEGY, base_layout, to_spec
from barlab.report.labels import METRIC_FORMATS, fmt, label
from barlab.report.page import Chart, e

TOP_N = 50
"""Rows of the top table."""
MAX_SCATTER = 4_000
"""Points of the Sharpe-against-drawdown scatter (the top rows always among them)."""
MAX_HEAT_VALUES = 250_000
"""Heatmap values in the page, over every metric the heatmap can switch to."""
HEAT_METRICS = (
    "sharpe", "total_return", "max_drawdown", "sortino", "calmar", "trade_win_rate",
    "n_trades", "exposure",
)  # fmt: skip
"""Metrics the heatmap can show, in the order of its menu (the first is shown first)."""
TOP_COLUMNS = (
    "sharpe", "total_return", "cagr", "max_drawdown", "sortino", "calmar", "trade_win_rate",
    "n_trades", "exposure", "fees",
)  # fmt: skip
_SIGNED = {"sharpe", "total_return", "cagr", "sortino", "calmar", "avg_trade"}
_D3 = {"pct": ".2%", "ratio": ".2f", "int": ",d", "money": "$,.2f", "bars": ",.1f"}
_DIVERGING = [[0.0, "#b3261e"], [0.5, "#f7f7f7"], [1.0, "#1b6e3a"]]


def d3_format(metric: str) -> str:
    """The plotly (d3) number format of ``metric``, matching :func:`labels.format_metric`."""
    return _D3.get(METRIC_FORMATS[metric][1], ".4g") if metric in METRIC_FORMATS else ".4g"


def floats(table: pl.DataFrame, column: str) -> np.ndarray:
    """``column`` as float64, null as NaN."""
    return table[column].cast(pl.Float64).fill_null(math.nan).to_numpy().astype(np.float64)


def sort_by(table: pl.DataFrame, metric: str) -> pl.DataFrame:
    """``table`` sorted by ``metric``, highest first, NaN and null last (stable)."""
    key = pl.col(metric).cast(pl.Float64).fill_nan(None)
    return table.sort(key, descending=True, nulls_last=True, maintain_order=True)


def params_text(row: dict[str, Any], params: list[str]) -> str:
    """``"fast=10, slow=50"`` for a row, the hover text of a point."""
    return ", ".join(f"{p}={row[p]}" for p in params)


def undefined_note(table: pl.DataFrame, metrics: tuple[str, ...]) -> str:
    """``"Sharpe: 3 undefined (NaN), 1 infinite"`` for the metrics that have any, or ``""``."""
    parts = []
    for m in metrics:
        if m not in table.columns:
            continue
        v = floats(table, m)
        bad = [(int(np.isnan(v).sum()), "undefined (NaN)"), (int(np.isinf(v).sum()), "infinite")]
        said = ", ".join(f"{n:,} {what}" for n, what in bad if n)
        if said:
            parts.append(f"{label(m)}: {said}")
    return "; ".join(parts)


# --- the top table and each row's neighbourhood ---------------------------------------------


def neighbourhood(
    table: pl.DataFrame, rows: pl.DataFrame, grid: dict[str, list[Any]], metric: str = "sharpe"
) -> list[tuple[float, float, int]]:
    """For each of ``rows``: (mean, lowest, count) of ``metric`` over its grid neighbours, the
    combinations one step away along one parameter (NaN neighbours are not counted)."""
    params = list(grid)
    order = {p: {v: i for i, v in enumerate(grid[p])} for p in params}
    value = dict(zip(table.select(params).iter_rows(), floats(table, metric), strict=True))
    out = []
    for row in rows.select(params).iter_rows():
        near = []
        for k, p in enumerate(params):
            i = order[p].get(row[k])
            for j in (i - 1, i + 1) if i is not None else ():
                if 0 <= j < len(grid[p]):
                    key = (*row[:k], grid[p][j], *row[k + 1 :])
                    v = value.get(key, math.nan)
                    if math.isfinite(v):
                        near.append(v)
        out.append((float(np.mean(near)), float(np.min(near)), len(near)) if near else
                   (math.nan, math.nan, 0))  # fmt: skip
    return out


def _td(text: str, value: Any) -> str:
    """A number cell; ``data-v`` sorts it (NaN lowest, infinities at the ends)."""
    v = math.nan if value is None else float(value)
    if math.isnan(v) or v == -math.inf:
        key = "-Infinity"
    else:
        key = "Infinity" if v == math.inf else f"{v:.10g}"
    return f'<td class="num" data-v="{key}">{e(text)}</td>'


def top_table(
    table: pl.DataFrame, params: list[str], *, by: str = "sharpe",
    grid: dict[str, list[Any]] | None = None, extra: tuple[tuple[str, str], ...] = (),
) -> str:  # fmt: skip
    """The best :data:`TOP_N` rows by ``by`` as a sortable table: parameters, metrics, the
    ``extra`` columns ``(column, header)`` and, given the ``grid``, each row's neighbourhood."""
    top = sort_by(table, by).head(TOP_N)
    metrics = [m for m in TOP_COLUMNS if m in top.columns]
    near = neighbourhood(table, top, grid) if grid else []
    heads = ["#", *params, *(h for _, h in extra), *(label(m) for m in metrics)]
    if near:
        heads += ["Neighbours' Sharpe (mean)", "Neighbours' Sharpe (lowest)", "Neighbours"]
    rows = []
    for i, row in enumerate(top.iter_rows(named=True)):
        cells = [_td(str(i + 1), i + 1)]
        cells += [f"<td>{e(row[p])}</td>" for p in params]
        cells += [_td(fmt(row[c], "ratio"), row[c]) for c, _ in extra]
        cells += [_td(fmt(row[m], METRIC_FORMATS[m][1]), row[m]) for m in metrics]
        if near:
            mean, low, n = near[i]
            cells += [_td(fmt(mean, "ratio"), mean), _td(fmt(low, "ratio"), low), _td(f"{n}", n)]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    head = "".join(f'<th scope="col">{e(h)}</th>' for h in heads)
    return (
        f'<div class="table-wrap scroll"><table class="sortable top" id="top-table">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


# --- the heatmap over two parameters --------------------------------------------------------


def heat_axes(table: pl.DataFrame, params: list[str]) -> tuple[str, str] | None:
    """The two parameters with the most distinct values (grid order on ties), or None when
    fewer than two take more than one value."""
    counts = sorted(varied(table, params), key=lambda p: -table[p].n_unique())
    return (counts[0], counts[1]) if len(counts) >= 2 else None


def varied(table: pl.DataFrame, params: list[str]) -> list[str]:
    """The parameters that take more than one value in ``table``."""
    return [p for p in params if table[p].n_unique() > 1]


def _axis(values: list[Any], most: int, keep: Any) -> list[Any]:
    """The distinct values of an axis in order; every k-th (and ``keep``, the best row's) when
    there are over ``most``."""
    ordered = sorted(set(values), key=lambda v: (not isinstance(v, int | float), v))
    step = max(1, math.ceil(len(ordered) / most))
    if step == 1:
        return ordered
    return [v for i, v in enumerate(ordered) if i % step == 0 or v == keep]


def heatmap_chart(table: pl.DataFrame, params: list[str]) -> Chart | None:
    """Metrics over the two parameters with the most values, the others held at the best
    row's (by Sharpe); a menu switches the metric. None with fewer than two parameters."""
    axes = heat_axes(table, params)
    if axes is None:
        return None
    px, py = axes
    best = sort_by(table, "sharpe").row(0, named=True)
    fixed = {p: best[p] for p in params if p not in axes}
    plane = table.filter(*(pl.col(p) == v for p, v in fixed.items())) if fixed else table
    side = max(2, int(math.sqrt(MAX_HEAT_VALUES)))
    xs, ys = _axis(plane[px].to_list(), side, best[px]), _axis(plane[py].to_list(), side, best[py])
    offered = [m for m in HEAT_METRICS if m in table.columns]
    shown = offered[: max(1, MAX_HEAT_VALUES // max(1, len(xs) * len(ys)))]
    data = [
        _heat_trace(m, z, xs, ys, px, py, visible=k == 0)
        for k, (m, z) in enumerate(zip(shown, _planes(plane, px, py, xs, ys, shown), strict=True))
    ]
    data.append(
        {"type": "scatter", "mode": "markers", "name": "Best by Sharpe", "x": [best[px]],
         "y": [best[py]], "marker": {"symbol": "star", "size": 14, "color": "#111",
         "line": {"color": "#fff", "width": 1}}, "hoverinfo": "skip", "showlegend": True}
    )  # fmt: skip
    note = _heat_note(fixed, xs, ys, plane, px, py, len(shown) < len(offered))
    lay = _heat_layout(shown, xs, ys, px, py)
    return Chart("heatmap", f"Heatmap over {px} and {py}", to_spec(data, lay), note)


def _planes(plane: pl.DataFrame, px: str, py: str, xs: list, ys: list, shown: list[str]):
    """One (len(ys), len(xs)) float32 grid per metric; NaN where nothing was run, where the
    value is undefined or infinite, and off the drawn axes."""
    xi, yi = {v: i for i, v in enumerate(xs)}, {v: i for i, v in enumerate(ys)}
    pairs = zip(plane[px], plane[py], strict=True)
    at = np.array([(yi.get(y, -1), xi.get(x, -1)) for x, y in pairs], dtype=np.int64)
    at = at.reshape(-1, 2)
    ok = (at[:, 0] >= 0) & (at[:, 1] >= 0)
    for m in shown:
        z = np.full((len(ys), len(xs)), np.nan, dtype=np.float32)
        v = floats(plane, m)[ok]
        z[at[ok, 0], at[ok, 1]] = np.where(np.isfinite(v), v, np.nan)
        yield z


def _heat_trace(m, z, xs, ys, px, py, *, visible: bool) -> dict[str, Any]:
    signed = m in _SIGNED
    return {
        "type": "heatmap", "name": label(m), "x": xs, "y": ys, "z": z, "visible": visible,
        "colorscale": _DIVERGING if signed else "Viridis", **({"zmid": 0.0} if signed else {}),
        "hoverongaps": False, "xgap": 1, "ygap": 1,
        "colorbar": {"tickformat": d3_format(m), "thickness": 12, "title": {"text": label(m)}},
        "hovertemplate": f"{px}=%{{x}}<br>{py}=%{{y}}<br>{label(m)}: "
                         f"%{{z:{d3_format(m)}}}<extra></extra>",
    }  # fmt: skip


def _heat_layout(shown, xs, ys, px, py) -> dict[str, Any]:
    n = len(shown) + 1
    buttons = [
        {"label": label(m), "method": "update",
         "args": [{"visible": [j == k for j in range(n - 1)] + [True]}, {}]}
        for k, m in enumerate(shown)
    ]  # fmt: skip
    # one equal cell per value, however uneven the grid (20, 40, 60, 100000)
    cat = {"type": "category", "showgrid": False, "automargin": True}
    return base_layout() | {
        "height": min(760, max(360, 140 + 22 * len(ys))), "margin": {"l": 70, "r": 20, "t": 64,
                                                                    "b": 50},
        # the whole grid, even a row or column with no defined value (autorange would cut it)
        "xaxis": {"title": {"text": px}, "range": [-0.5, len(xs) - 0.5], **cat},
        "yaxis": {"title": {"text": py}, "range": [-0.5, len(ys) - 0.5], **cat},
        "updatemenus": [{"type": "dropdown", "x": 1, "xanchor": "right", "y": 1.02,
                         "yanchor": "bottom", "buttons": buttons, "showactive": True}]
        if len(shown) > 1 else [],
    }  # fmt: skip


def _categorical(values: list[Any]) -> bool:
    return not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _heat_note(fixed, xs, ys, plane, px, py, capped: bool) -> str:
    held = ", ".join(f"{p}={v}" for p, v in fixed.items())
    note = f"Other parameters held at the best row's values (by Sharpe): {held}. " if held else ""
    n_x, n_y = plane[px].n_unique(), plane[py].n_unique()
    if len(xs) < n_x or len(ys) < n_y:
        note += f"Every few values drawn: {len(xs)} of {n_x} {px}, {len(ys)} of {n_y} {py}. "
    if capped:
        note += "The menu offers fewer metrics to keep the page small. "
    return note + "Blank cells: not run (constraint or invalid) or the metric is undefined."


# --- the scatter and the distributions ------------------------------------------------------


def sample(ranks: np.ndarray, most: int = MAX_SCATTER) -> np.ndarray:
    """At most ``most`` of ``ranks`` (sorted positions, best first): the first :data:`TOP_N`
    and an evenly spread sample of the rest, so every part of the ranking is drawn."""
    if len(ranks) <= most:
        return ranks
    rest = ranks[TOP_N:]
    pick = np.linspace(0, len(rest) - 1, most - TOP_N).round().astype(np.int64)
    return np.concatenate([ranks[:TOP_N], rest[np.unique(pick)]])


def scatter_chart(table: pl.DataFrame, params: list[str], *, noun: str = "combinations") -> Chart:
    """Sharpe against max drawdown for every combination (at most :data:`MAX_SCATTER` drawn:
    the top rows and an evenly spread sample of the rest), coloured by total return."""
    ranked = sort_by(table, "sharpe")
    x, y = floats(ranked, "max_drawdown"), floats(ranked, "sharpe")
    good = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    keep = sample(good)
    rows = ranked[keep.tolist()] if len(keep) else ranked.head(0)
    text = [params_text(r, params) for r in rows.select(params).iter_rows(named=True)]
    ret = floats(rows, "total_return")
    top = keep < TOP_N
    top_text = [t for t, k in zip(text, top, strict=True) if k]
    data = [
        {"type": "scatter", "mode": "markers",  # SVG, not WebGL: it prints, and needs no GPU
         "name": "Combinations", "x": x[keep], "y": y[keep], "text": text,
         "marker": {"size": 6, "opacity": 0.75, "color": np.where(np.isfinite(ret), ret, 0.0),
                    "colorscale": _DIVERGING, "cmid": 0.0, "showscale": True,
                    "colorbar": {"title": {"text": "Total return"}, "tickformat": "~%",
                                 "thickness": 12}},
         "hovertemplate": "%{text}<br>Sharpe %{y:.2f}, max drawdown %{x:.2%}<extra></extra>"},
        {"type": "scatter", "mode": "markers", "name": f"Top {TOP_N} by Sharpe",
         "x": x[keep][top], "y": y[keep][top], "text": top_text,
         "marker": {"size": 9, "symbol": "circle-open", "color": LOSS, "line": {"width": 1.5}},
         "hovertemplate": "%{text}<br>Sharpe %{y:.2f}, max drawdown %{x:.2%}<extra></extra>"},
    ]  # fmt: skip
    lay = base_layout() | {
        "height": 420, "hovermode": "closest",
        "xaxis": {"title": {"text": "Max drawdown"}, "tickformat": "~%", **GRID},
        "yaxis": {"title": {"text": "Sharpe"}, "tickformat": ".2f", **GRID},
    }  # fmt: skip
    left = table.height - len(good)
    note = f"{len(keep):,} of {table.height:,} {noun} drawn"
    note += (", the top rows and an evenly spread sample of the rest by rank." if
             len(keep) < len(good) else ".")  # fmt: skip
    if left:
        note += f" {left:,} with an undefined or infinite Sharpe or drawdown are left out."
    return Chart("scatter", "Sharpe against max drawdown", to_spec(data, lay), note)


def marginal_chart(table: pl.DataFrame, params: list[str], *, cols: int = 3) -> Chart:
    """For each parameter, Sharpe at each of its values: the best, median and worst over every
    combination of the other parameters (a flat best line: the value matters little)."""
    from plotly.subplots import make_subplots

    finite = table.filter(pl.col("sharpe").cast(pl.Float64).is_finite())
    rows = math.ceil(len(params) / cols)
    n_cols = min(cols, len(params))
    fig = make_subplots(rows=rows, cols=n_cols, horizontal_spacing=0.08,
                        vertical_spacing=0.3 / rows)  # fmt: skip
    stats = (("best", pl.col("sharpe").max(), STRATEGY), ("median", pl.col("sharpe").median(),
             "#5b6475"), ("worst", pl.col("sharpe").min(), LOSS))  # fmt: skip
    for k, p in enumerate(params):
        by = finite.group_by(p).agg(*(expr.alias(n) for n, expr, _ in stats)).sort(p)
        x = [str(v) for v in by[p]] if _categorical(by[p].to_list()) else by[p].to_numpy()
        for name, _, color in stats:
            fig.add_trace(
                {"type": "scatter", "mode": "lines+markers", "name": f"{name} Sharpe", "x": x,
                 "y": by[name].to_numpy(), "legendgroup": name, "showlegend": k == 0,
                 "line": {"color": color, "width": 1.5}, "marker": {"size": 4},
                 "hovertemplate": f"{p}=%{{x}}: {name} Sharpe %{{y:.2f}}<extra></extra>"},
                row=k // n_cols + 1, col=k % n_cols + 1,
            )  # fmt: skip
        fig.update_xaxes(title_text=p, row=k // n_cols + 1, col=k % n_cols + 1, **GRID)
    fig.update_yaxes(tickformat=".2f", **GRID)
    fig.update_layout(base_layout() | {"height": 300 * rows + 40, "hovermode": "closest"})
    note = (
        "Each parameter's values across all the others: the spread between the lines is what "
        "the other parameters change. Combinations with an undefined Sharpe are left out."
    )
    return Chart("marginal", "Sharpe by each parameter's value", to_spec(list(fig.data),
                 fig.layout), note)  # fmt: skip


def distribution_chart(table: pl.DataFrame, *, bins: int = 30, cols: int = 4) -> Chart:
    """One small histogram per metric (binned here: 30 bars each, whatever the row count)."""
    from plotly.subplots import make_subplots

    names = [m for m in METRIC_FORMATS if m in table.columns]
    rows = math.ceil(len(names) / cols)
    titles = [_dist_title(table, m) for m in names]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, vertical_spacing=0.5 / rows,
                        horizontal_spacing=0.06)  # fmt: skip
    for k, m in enumerate(names):
        v = floats(table, m)
        v = v[np.isfinite(v)]
        if len(v):
            lo, hi = float(v.min()), float(v.max())
            counts, edges = np.histogram(v, bins=bins if hi > lo else 1)
            fig.add_trace(
                {"type": "bar", "x": (edges[:-1] + edges[1:]) / 2, "y": counts,
                 "width": np.diff(edges) if hi > lo else None, "marker": {"color": STRATEGY},
                 "name": label(m), "showlegend": False,
                 "hovertemplate": f"%{{x:{d3_format(m)}}}: %{{y:,}}<extra>{e(label(m))}</extra>"},
                row=k // cols + 1, col=k % cols + 1,
            )  # fmt: skip
        fig.update_xaxes(tickformat=d3_format(m), nticks=4, row=k // cols + 1, col=k % cols + 1)
    fig.update_annotations(font={"size": 11})
    fig.update_layout(
        base_layout()
        | {
            "height": 170 * rows + 40,
            "bargap": 0.05,
            "margin": {"l": 40, "r": 20, "t": 40, "b": 30},
        }
    )
    note = "Each metric over every combination; the y axis counts combinations."
    bad = undefined_note(table, tuple(names))
    return Chart("distributions", "Each metric's distribution", to_spec(list(fig.data), fig.layout),
                 note + (f" Not drawn — {bad}." if bad else ""))  # fmt: skip


def _dist_title(table: pl.DataFrame, m: str) -> str:
    v = floats(table, m)
    n = int((~np.isfinite(v)).sum())
    return f"{label(m)}" + (f" ({n:,} not finite)" if n else "")
