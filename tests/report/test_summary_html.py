"""What Jupyter shows for a Result, a SweepResult and a WalkForwardResult (``_repr_html_``)."""

from __future__ import annotations

import html
import sys

import pytest

import barlab
from barlab.report import summary_html
from barlab.report.labels import SUMMARY, format_metric, label
from barlab.strategy import load_strategy
from tests.conftest import make_bars

SMA = load_strategy("sma_crossover")
GRID = {"fast": [3, 5, 8], "slow": [20, 40]}


class Sneaky(SMA):
    """A strategy whose name is markup: it must be shown as text, never run as HTML."""

    name = "<script>alert('x')</script>&co"


@pytest.fixture(scope="module")
def bars():
    return make_bars(2_400, 2, seed=7, bars_per_day=60)


@pytest.fixture(scope="module")
def result(bars):
    return barlab.backtest(SMA(fast=5, slow=20), bars)


@pytest.fixture(scope="module")
def swept(bars):
    return barlab.sweep(SMA, bars, n_jobs=1, **GRID)


@pytest.fixture(scope="module")
def walked(bars):
    return barlab.walk_forward(SMA, bars, train="10D", test="5D", n_jobs=1, **GRID)


def cells(page: str) -> list[str]:
    """The text of every table cell, unescaped."""
    return [html.unescape(c.split("</td>")[0]) for c in page.split("<td>")[1:]]


def test_result_shows_the_summary_metrics_against_buy_and_hold(result):
    page = result._repr_html_()
    shown = cells(page)
    for name in SUMMARY:
        assert label(name) in shown
        assert format_metric(name, getattr(result.metrics, name)) in shown
        assert format_metric(name, getattr(result.benchmark_metrics, name)) in shown
    assert "buy &amp; hold" in page
    assert "sma_crossover" in page and "fast=5, slow=20" in page
    assert "SYNTHETIC" in page  # demo bars are labelled wherever they are shown
    assert "\n" not in repr(result)


def test_real_data_is_not_called_synthetic():
    real = barlab.backtest(SMA(fast=5, slow=20), make_bars(600, 1, source="polygon"))
    page = real._repr_html_()
    assert "SYNTHETIC" not in page and "data: polygon" in page


def test_sweep_shows_the_counts_and_the_best_combinations(swept):
    page = swept._repr_html_()
    top = swept.table.row(0, named=True)
    assert f"{swept.n_run:,} combinations run" in page
    assert "fast: 3 values" in page and "SYNTHETIC" in page
    assert f"<td>{top['fast']}</td>" in page and f"<td>{top['slow']}</td>" in page
    assert "\n" not in repr(swept)


def test_walk_forward_shows_the_folds_oos_metrics_and_degradation(walked):
    page = summary_html.walk_forward_html(walked)
    shown = cells(page)
    m, d = walked.oos_metrics, walked.degradation
    for name in SUMMARY:
        assert format_metric(name, getattr(m, name)) in shown
    for row in walked.folds.iter_rows(named=True):
        assert f"{row['test_start']} → {row['test_end']}" in shown
    assert format_metric("sharpe", d.is_mean) in shown
    assert format_metric("sharpe", d.oos_mean) in shown
    assert "efficiency (OOS / IS)" in shown
    assert f"{walked.info['n_folds']} folds" in page and "(rolling)" in page
    assert "SYNTHETIC" in page
    assert "\n" not in repr(walked)


def test_walk_forward_lists_the_first_and_last_folds_when_there_are_many(walked, monkeypatch):
    monkeypatch.setattr(summary_html, "MAX_FOLDS", 3)
    n = walked.info["n_folds"]
    assert n > 3
    page = summary_html.walk_forward_html(walked)
    assert f"{n - 3} folds not shown" in page
    assert f"{walked.folds['test_start'][-1]} → {walked.folds['test_end'][-1]}" in cells(page)


def test_names_are_escaped(bars):
    result = barlab.backtest(Sneaky(fast=5, slow=20), bars)
    swept = barlab.sweep(Sneaky, bars, n_jobs=1, **GRID)
    walked = barlab.walk_forward(Sneaky, bars, train="10D", test="5D", n_jobs=1, **GRID)
    pages = (
        summary_html.result_html(result),
        swept._repr_html_(),
        summary_html.walk_forward_html(walked),
    )
    for page in pages:
        assert "<script>" not in page
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;co" in page


def test_no_plotly_is_imported(result, swept, walked, monkeypatch):
    # an import of plotly (or of any plotly.* module) now raises ImportError
    monkeypatch.setitem(sys.modules, "plotly", None)
    for page_of, obj in (
        (summary_html.result_html, result),
        (summary_html.walk_forward_html, walked),
    ):
        page = page_of(obj)
        assert page.startswith("<div class='barlab-summary'>")
        assert "plotly" not in page.lower()


def test_results_display_themselves_in_jupyter(result, swept, walked):
    assert result._repr_html_() == summary_html.result_html(result)
    assert walked._repr_html_() == summary_html.walk_forward_html(walked)
