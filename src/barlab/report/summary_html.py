"""Compact HTML summaries that Jupyter shows for a Result and a WalkForwardResult.

Their ``_repr_html_`` delegates here (a SweepResult draws its own plain table: the engine does
not import the report). A summary is a few small tables built from numbers the
result already holds (labels and formats from :mod:`barlab.report.labels`), with no chart and
no plotly: it is drawn every time a cell ends with a result, so it must stay cheap. Every piece
of text is HTML-escaped; synthetic data is labelled as such.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from barlab.report.labels import METRIC_FORMATS, SUMMARY, format_metric, label
from barlab.report.page import e

if TYPE_CHECKING:
    from barlab.research.walkforward import WalkForwardResult
    from barlab.result import Result

SYNTHETIC_NOTE = "SYNTHETIC data — demo market, not real prices"

MAX_FOLDS = 12
"""Folds a walk-forward summary lists (the first and last ones beyond that)."""

_STYLE = (
    "<style>"
    ".barlab-summary table{border-collapse:collapse;margin:0.3em 0 0.6em}"
    ".barlab-summary th,.barlab-summary td{padding:2px 10px;text-align:right}"
    ".barlab-summary th:first-child,.barlab-summary td:first-child{text-align:left}"
    ".barlab-summary .synthetic{color:#b00020;font-weight:bold}"
    ".barlab-summary .caption{color:#666}"
    "</style>"
)


def result_html(result: Result) -> str:
    """A backtest: what ran on which data, and the summary metrics against buy-and-hold."""
    info = result.info
    params = ", ".join(f"{k}={v}" for k, v in info["params"].items())
    rows = [
        [label(name), format_metric(name, getattr(result.metrics, name)),
         format_metric(name, getattr(result.benchmark_metrics, name))]
        for name in SUMMARY
    ]  # fmt: skip
    body = [
        f"<div><b>{e(info['strategy'])}</b>({e(params)})</div>",
        _data_line(info),
        _table(["", "strategy", "buy & hold"], rows),
    ]
    if result.run_id:
        body.append(f"<div class='caption'>run id: {e(result.run_id)}</div>")
    return _wrap(body, synthetic=bool(info.get("synthetic")))


def walk_forward_html(wf: WalkForwardResult) -> str:
    """A walk-forward: the folds' choices, IS vs OOS, the stitched OOS metrics, degradation."""
    info, d = wf.info, wf.degradation
    obj = str(info["objective"])
    names = wf.param_names
    kind = "anchored" if info.get("anchored") else "rolling"
    folds = list(wf.folds.iter_rows(named=True))
    shown = folds if len(folds) <= MAX_FOLDS else folds[: MAX_FOLDS - 2] + folds[-2:]
    fold_rows = [
        [str(r["fold"]), f"{r['train_start']} → {r['train_end']}",
         f"{r['test_start']} → {r['test_end']}", *(str(r[n]) for n in names),
         _objective(obj, r["is_objective"]), _objective(obj, r["oos_objective"]),
         format_metric("total_return", r["oos_total_return"])]
        for r in shown
    ]  # fmt: skip
    fold_header = ["fold", "train", "test", *names, f"IS {obj}", f"OOS {obj}", "OOS return"]
    oos_rows = [[label(n), format_metric(n, getattr(wf.oos_metrics, n))] for n in SUMMARY]
    dm = d.metric
    degr_rows = [
        [f"in-sample {dm} (mean of folds)", _objective(dm, d.is_mean)],
        [f"out-of-sample {dm} (mean of folds)", _objective(dm, d.oos_mean)],
        ["degradation (OOS - IS)", _objective(dm, d.mean)],
        ["efficiency (OOS / IS)", f"{d.efficiency:.2f}" if math.isfinite(d.efficiency) else "–"],
    ]
    body = [
        f"<div><b>{e(info['strategy'])}</b> walk-forward: {info['n_folds']} folds, "
        f"train {e(info['train'])}, test {e(info['test'])}, step {e(info['step'])} ({kind}), "
        f"objective {e(obj)}</div>",
        _data_line(info),
        _table(fold_header, fold_rows),
        "<div class='caption'>the test windows chained, and what survived of in-sample:</div>",
        _table(["", "out of sample"], oos_rows),
        _table(["degradation", ""], degr_rows),
    ]
    if len(folds) > len(shown):
        body.insert(3, f"<div class='caption'>{len(folds) - len(shown)} folds not shown "
                       "(all of them in .folds)</div>")  # fmt: skip
    return _wrap(body, synthetic=bool(info.get("synthetic")))


def _data_line(info: dict[str, Any]) -> str:
    kind = "SYNTHETIC demo market" if info.get("synthetic") else info.get("source", "")
    start, end = (str(info.get(k) or "")[:10] for k in ("start", "end"))
    text = (
        f"{', '.join(info.get('symbols', []))} · {info.get('timeframe', '')} bars · "
        f"{start} → {end} · {info.get('n_bars', 0):,} bars · data: {kind}"
    )
    return f"<div class='caption'>{e(text)}</div>"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _wrap(body: list[str], *, synthetic: bool) -> str:
    if synthetic:
        body = [f"<div class='synthetic'>{e(SYNTHETIC_NOTE)}</div>", *body]
    return f"<div class='barlab-summary'>{_STYLE}{''.join(body)}</div>"


def _objective(name: str, value: float) -> str:
    return format_metric(name, value) if name in METRIC_FORMATS else _number(value)


def _number(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) and math.isfinite(value) else "–"
