"""The report's charts hold the run's data (and only numbers barlab.metrics computes), the price
chart uses the run's bars or says why not, and the notebook and comparison views work."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import barlab
from barlab import metrics
from barlab.report import plot, write_comparison
from barlab.report.html import render, run_charts
from barlab.report.prices import MAX_CANDLES, fills_match
from tests.report.factories import Hold, Momentum, figures, make_bars, values

CHARTS = ["equity", "drawdown", "monthly", "yearly", "rolling", "period-returns",
          "trade-returns", "exposure", "price", "contribution"]  # fmt: skip
MAIN = {"scatter": "y", "bar": "y", "heatmap": "z", "candlestick": "close"}


@pytest.fixture(scope="module")
def figs(demo_result, demo_bars) -> dict[str, dict]:
    return figures(render(demo_result, bars=demo_bars))


def returns_of(result: barlab.Result, equity: np.ndarray) -> np.ndarray:
    return metrics.returns_from_equity(equity, initial_cash=result.info["options"]["cash"])


def test_every_chart_is_there_and_has_data(figs):
    assert list(figs) == CHARTS
    for key, fig in figs.items():
        assert fig["data"], key
        assert fig["layout"]["template"]["data"] == {} or "template" in fig["layout"]
        for trace in fig["data"]:
            data = values(trace[MAIN[trace["type"]]]).astype(np.float64)
            assert data.size > 0 and np.isfinite(data).any(), (key, trace.get("name"))


def test_equity_has_a_log_scale_toggle(figs, demo_result):
    fig = figs["equity"]
    buttons = fig["layout"]["updatemenus"][0]["buttons"]
    assert [b["args"][0] for b in buttons] == [{"yaxis.type": "linear"}, {"yaxis.type": "log"}]
    strategy, bench = (values(t["y"]) for t in fig["data"])
    assert strategy[-1] == demo_result.equity[-1] and bench[-1] == demo_result.benchmark_equity[-1]


def test_the_five_worst_drawdowns_are_marked(figs, demo_result):
    result = barlab.backtest(Hold(), make_bars(2_000, ("AAA",), seed=3))
    fig = figures(render(result))["drawdown"]
    worst = metrics.drawdown_periods(returns_of(result, result.equity))
    assert len(worst) > 5
    assert len(fig["layout"]["shapes"]) == 5
    marks = next(t for t in fig["data"] if t["name"] == "Worst 5")
    assert values(marks["y"]).tolist() == [p.depth for p in worst[:5]]
    assert marks["text"] == ["#1", "#2", "#3", "#4", "#5"]
    assert worst[0].depth == pytest.approx(result.metrics.max_drawdown, abs=1e-12)
    # a run that never recovers has one drawdown, from its peak to the last bar
    (only,) = metrics.drawdown_periods(returns_of(demo_result, demo_result.equity))
    assert only.end == -1 and len(figs["drawdown"]["layout"]["shapes"]) == 1


def test_months_and_years_compound_to_the_total_return(figs, demo_result):
    z = values(figs["monthly"]["data"][0]["z"])
    assert z.shape == (1, 12) and np.isfinite(z).sum() == 2  # January and February 2024
    total = demo_result.metrics.total_return
    assert np.prod(1 + z[np.isfinite(z)]) - 1 == pytest.approx(total, rel=1e-9)
    strategy, bench = figs["yearly"]["data"]
    assert strategy["x"] == ["2024"]
    assert values(strategy["y"])[0] == pytest.approx(total, rel=1e-9)
    assert values(bench["y"])[0] == pytest.approx(
        demo_result.benchmark_metrics.total_return, rel=1e-9
    )


def test_rolling_statistics_come_from_metrics(figs, demo_result):
    fig = figs["rolling"]
    sharpe = values(fig["data"][0]["y"])
    days = np.arange(len(demo_result.ts_ns)) // 390  # the fixture: whole sessions
    want = metrics.rolling_sharpe(
        returns_of(demo_result, demo_result.equity), days, window=5, periods_per_year=98_280
    )
    np.testing.assert_array_equal(sharpe, want)
    assert [t["yaxis"] for t in fig["data"]] == ["y", "y2", "y", "y2"]


def test_contributions_add_up_to_the_change_in_equity(figs, demo_result):
    strategy, bench = figs["contribution"]["data"]
    cash = demo_result.info["options"]["cash"]
    assert values(strategy["y"]).sum() == pytest.approx(demo_result.equity[-1] - cash, abs=1e-6)
    final = demo_result.benchmark_equity[-1]
    assert values(bench["y"]).sum() == pytest.approx(final - cash, abs=1e-6)


def test_price_chart_marks_every_trade_of_the_chosen_symbol(figs, demo_result, demo_bars):
    fig = figs["price"]
    menu = fig["layout"]["updatemenus"][0]
    assert [b["label"] for b in menu["buttons"]] == ["AAA", "BBB"]
    shown = [t for t in fig["data"] if t["visible"]]
    symbol = menu["buttons"][menu["active"]]["label"]
    assert shown[0]["type"] == "scatter" and shown[0]["name"] == f"{symbol} close"
    assert len(demo_bars.ts_ns) > MAX_CANDLES  # so a line, downsampled
    trades = demo_result.trades.filter(demo_result.trades["symbol"] == symbol)
    entries = next(t for t in shown if t["name"] == "Long entries")
    np.testing.assert_array_equal(values(entries["y"]), trades["entry_price"].to_numpy())
    assert fills_match(demo_result, demo_bars)


def test_few_bars_are_drawn_as_candles():
    bars = make_bars(600, ("AAA", "BBB", "CCC"))
    fig = figures(render(barlab.backtest(Momentum(), bars), bars=bars))["price"]
    candles = [t for t in fig["data"] if t["type"] == "candlestick"]
    assert len(candles) == 3
    np.testing.assert_array_equal(values(candles[0]["close"]), bars.close[:, 0])


def test_other_bars_are_not_drawn_as_the_runs(demo_result, demo_bars):
    moved = dataclasses.replace(demo_bars, open=np.ascontiguousarray(demo_bars.open * 1.01))
    assert not fills_match(demo_result, moved)
    shorter = make_bars(500, ("AAA", "BBB"))
    charts, missing = run_charts(demo_result, shorter)
    assert "price" not in [c.key for c in charts]
    assert missing == ["Price chart: the bars given are not the ones this run was tested on."]


def test_without_bars_the_price_chart_says_why(demo_result, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an empty cache under ./data
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    charts, missing = run_charts(demo_result)
    assert len(charts) == len(CHARTS) - 1
    assert missing == ["Price chart: the local cache (data) holds none of the run's bars."]


def test_plot_is_a_plotly_figure_for_notebooks(demo_result):
    import plotly.graph_objects as go

    fig = demo_result.plot()
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["Momentum", "Momentum", "Buy and hold", "Buy and hold"]
    assert fig.layout.updatemenus[0].buttons[1].label == "Log"
    assert "SYNTHETIC" in fig.layout.title.text
    assert len(plot(demo_result).data[0].y) <= 4000


def test_comparison_page(demo_result, demo_bars, tmp_path):
    other = barlab.backtest(Momentum(lookback=90), make_bars(390 * 10, ("AAA",), seed=2))
    path = write_comparison(demo_result, other, tmp_path / "cmp.html")
    page = path.read_text(encoding="utf-8")
    assert "A: Momentum" in page and "B: Momentum" in page
    assert "lookback=30" in page and "lookback=90" in page
    assert "Buy and hold (A)" in page and "Buy and hold (B)" in page  # different data
    assert "both runs: SYNTHETIC DATA" in page
    figs = figures(page)
    assert list(figs) == ["growth", "drawdowns"]
    growth = figs["growth"]["data"]
    assert [t["name"] for t in growth] == ["A: Momentum", "B: Momentum", "Buy and hold (A)",
                                           "Buy and hold (B)"]  # fmt: skip
    assert values(growth[0]["y"])[-1] == pytest.approx(1 + demo_result.metrics.total_return)
    same = write_comparison(demo_result, demo_result, tmp_path / "same.html").read_text()
    assert "Buy and hold (B)" not in same and ">Buy and hold</th>" in same
