"""The HTML report: self-contained, offline, complete, small, atomic, free of secrets, and drawn
by a real browser."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
from plotly.offline import get_plotlyjs

import barlab
from barlab import metrics
from barlab.metrics import Metrics
from barlab.report import write_report
from barlab.report.charts import MAX_POINTS, drawdown, minmax_indices
from barlab.report.html import MAX_TRADES, SYNTHETIC_BANNER
from barlab.report.labels import EXTRA_FORMATS, METRIC_GROUPS, format_metric, label
from tests.report.factories import Idle, Momentum, figures, make_bars, section, values

SECRET = "pk_live_DO_NOT_LEAK_7f3a9c"


@pytest.fixture(scope="module")
def page(demo_result, demo_bars, tmp_path_factory) -> str:
    return write(demo_result, tmp_path_factory.mktemp("report"), bars=demo_bars)


def write(result: barlab.Result, tmp_path: Path, **kwargs) -> str:
    path = write_report(result, tmp_path / "report.html", **kwargs)
    assert path == tmp_path / "report.html"
    assert path.is_file()
    return path.read_text(encoding="utf-8")


def plotly_payloads(page: str) -> list[str]:
    return re.findall(r'<script[^>]*id="plotly-js"[^>]*>\s*([A-Za-z0-9+/=]+)\s*</script>', page)


def test_plotly_js_is_embedded_once_and_nothing_is_fetched(page):
    payloads = plotly_payloads(page)
    assert len(payloads) == 1
    assert gzip.decompress(base64.b64decode(payloads[0])).decode() == get_plotlyjs()
    assert page.count('id="plotly-js"') == 1
    # base64 (plotly.js, chart arrays) may spell anything by chance
    rest = re.sub(r'"bdata":"[^"]*"', "", page.replace(payloads[0], "")).lower()
    assert "cdn" not in rest and "http" not in rest
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", rest)
    assert "@import" not in rest and "url(" not in rest


def test_metric_sections_hold_every_metric_once():
    listed = [name for _, names in METRIC_GROUPS for name in names]
    assert len(listed) == len(set(listed))
    assert set(listed) == {f.name for f in dataclasses.fields(Metrics)} | set(EXTRA_FORMATS)


def test_every_metric_is_shown_for_strategy_and_benchmark(page):
    table = section(page, "metrics").replace("&amp;", "&")
    rows = re.findall(r'<tr><th scope="row">(.*?)</th>(.*?)</tr>', table)
    names = [name for _, group in METRIC_GROUPS for name in group]
    assert [r[0] for r in rows] == [label(n) for n in names]
    for _, cells in rows:
        assert cells.count('<td class="num">') == 2
    for wanted in ("Total return", "CAGR", "Volatility", "Sharpe", "Sortino", "Calmar",
                   "Max drawdown", "Max drawdown duration", "Win rate", "Profit factor",
                   "Expectancy", "Exposure", "Trades", "Average trade", "Median trade",
                   "Best trade", "Worst trade", "Average holding time", "Turnover", "Fees",
                   "Slippage paid"):  # fmt: skip
        assert f">{wanted}" in table, wanted


def cell(page: str, name: str, column: int = 0) -> str:
    row = re.search(rf'<th scope="row">{re.escape(label(name))}</th>(.*?)</tr>', page)
    assert row, name
    return re.findall(r'<td class="num">(.*?)</td>', row.group(1))[column]


def test_metric_figures_come_from_barlab_metrics(page, demo_result, demo_bars):
    m, trades, orders = demo_result.metrics, demo_result.trades, demo_result.orders
    assert cell(page, "sharpe") == format_metric("sharpe", m.sharpe)
    assert cell(page, "sharpe", 1) == format_metric("sharpe", demo_result.benchmark_metrics.sharpe)
    held = (trades["exit_bar"] - trades["entry_bar"]).to_numpy()
    stats = metrics.trade_stats(trades["pnl"].to_numpy(), holding_bars=held)
    for name in ("median_trade", "best_trade", "worst_trade", "avg_holding_bars"):
        assert cell(page, name) == format_metric(name, getattr(stats, name))
    # slippage, independently: each fill's distance from its bar's open
    fills = orders.filter(pl.col("status") != "refused")
    col = {"AAA": 0, "BBB": 1}
    opens = demo_bars.open[fills["fill_bar"].to_numpy(), [col[s] for s in fills["symbol"]]]
    paid = float(np.sum(fills["qty"].to_numpy() * np.abs(fills["price"].to_numpy() - opens)))
    assert cell(page, "slippage") == format_metric("slippage", paid)
    traded = float((fills["qty"] * fills["price"]).sum())
    years = len(demo_result.equity) / demo_result.info["periods_per_year"]
    turnover = traded / demo_result.equity.mean() / years
    assert cell(page, "turnover") == format_metric("turnover", turnover)
    bench = demo_result.benchmark_trades  # bought once at 1 bp over the open, held
    bought = float((bench["size"] * bench["entry_price"]).sum())
    assert cell(page, "slippage", 1) == format_metric("slippage", bought * 1e-4 / (1 + 1e-4))


def test_header_describes_the_run(page):
    for text in ("Momentum", "lookback=30", "AAA, BBB", "1m", "demo", "test-v1", "not saved"):
        assert text in page
    assert "2024-01-02 09:30" in page  # the first bar, New York time
    assert "<dt>costs.slippage_bps</dt><dd>1</dd>" in page
    assert "<dt>risk.max_position_size</dt><dd>40,000</dd>" in page
    assert "<dt>risk.max_open_positions</dt><dd>1</dd>" in page
    assert "<dt>risk.daily_loss_limit</dt><dd>off</dd>" in page
    assert f"barlab version</dt><dd>{barlab.__version__}" in page


def test_synthetic_banner_only_for_demo_data(page, tmp_path):
    assert SYNTHETIC_BANNER in page
    assert "<title>[SYNTHETIC]" in page
    real = barlab.backtest(Momentum(), make_bars(500, ("AAA",), source="polygon"))
    other = write(real, tmp_path)
    assert "SYNTHETIC" not in other
    assert 'class="synthetic"' not in other


def test_trades_are_listed_sortable_and_filterable(page, demo_result):
    trades = demo_result.trades
    assert 0 < trades.height <= MAX_TRADES
    body = section(page, "trades")
    assert '<table class="trades sortable" id="trades-table">' in body
    assert 'data-filter="trades-table"' in body and 'type="search"' in body
    assert body.count("<tr data-kind=") == trades.height
    first = trades.row(0, named=True)
    ny = first["entry_time"].astimezone(ZoneInfo("America/New_York"))
    assert f"<td>{first['symbol']}</td><td>{first['direction']}</td>" in body
    assert ny.strftime("%Y-%m-%d %H:%M") in body
    assert f'data-v="{first["pnl"]:.10g}"' in body  # sorts by the number, not the text
    assert f"{trades.height:,} trades." in page
    assert "table.sortable" in page and "[data-filter]" in page  # the inline script


def test_long_trade_lists_are_cut(tmp_path, demo_bars):
    busy = barlab.backtest(Momentum(lookback=3), demo_bars)
    assert busy.trades.height > MAX_TRADES
    body = section(write(busy, tmp_path, bars=demo_bars), "trades")
    assert body.count("<tr data-kind=") == MAX_TRADES
    assert f"Showing the first {MAX_TRADES:,} of {busy.trades.height:,} trades" in body


def test_order_log_and_risk_events(page, demo_result):
    orders = demo_result.orders
    counts = dict(orders["status"].value_counts().iter_rows())
    log = section(page, "orders")
    for status in ("filled", "resized", "refused"):
        row = re.search(rf'<th scope="row">{status}</th><td class="num">([\d,]+)</td>', log)
        assert row and int(row.group(1).replace(",", "")) == counts.get(status, 0)
    risk = section(page, "risk")
    events = orders.filter(pl.col("status") != "filled")
    assert events.height > 0
    by_rule = events.group_by("reason", "status").len().rows()
    assert {r for r, _, _ in by_rule} == {"max_position_size", "max_open_positions"}
    for reason, status, n in by_rule:
        pattern = rf'{reason}</th><td>{status}</td><td class="num">{n:,}</td>'
        assert re.search(pattern, risk), (reason, status, n)
    assert 'id="figure-price"' in page


def test_exits_by_kind_and_ambiguous_bars(tmp_path, demo_bars):
    """Attached exits show in the order log by kind; trades decided by the fill policy on a
    bar that held both the stop and the target are counted and can be filtered."""
    spike = 1 + 0.005 * (np.random.default_rng(0).random(demo_bars.high.shape) < 0.05)
    wide = dataclasses.replace(  # one bar in twenty spans both levels
        demo_bars,
        high=np.ascontiguousarray(demo_bars.high * spike),
        low=np.ascontiguousarray(demo_bars.low / spike),
    )
    result = barlab.backtest(Momentum(lookback=30), wide, stop_loss=0.003, take_profit=0.002)
    orders, trades = result.orders, result.trades
    kinds = dict(orders["kind"].value_counts().iter_rows())
    assert kinds.get("stop_loss") and kinds.get("take_profit")
    n_ambiguous = int(trades["ambiguous"].sum())
    assert n_ambiguous > 0
    page = write(result, tmp_path, bars=wide)
    log = section(page, "orders")
    for kind, n in kinds.items():
        assert re.search(rf'<th scope="row">{kind}</th><td class="num">{n:,}</td>', log), kind
    body = section(page, "trades")
    shown = trades.head(MAX_TRADES)
    assert f"{n_ambiguous:,} of them exited on an ambiguous bar" in body
    assert "the fill policy (pessimistic) chose" in body
    assert body.count("<td>ambiguous bar</td>") == int(shown["ambiguous"].sum())
    assert '<option value="ambiguous">' in body
    assert 'id="figure-price"' in page  # exits fill at their levels, market orders at opens


def test_a_run_without_trades_or_risk_events(tmp_path, demo_bars):
    page = write(barlab.backtest(Idle(), demo_bars), tmp_path, bars=demo_bars)
    assert "No order was refused or resized" in page
    assert "Not drawn — Distribution of trade returns: the strategy made no trade." in page
    assert "0 trades." in page


class Hostile(Momentum):
    """A strategy whose name and parameter are markup."""

    name: ClassVar[str] = "<script>alert(1)</script>"
    note: str = "<b>&"


def test_text_from_the_result_is_escaped(tmp_path):
    page = write(barlab.backtest(Hostile(), make_bars(500, ("AAA",))), tmp_path)
    assert "<script>alert(1)" not in page and "<b>&" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "note=&#x27;&lt;b&gt;&amp;&#x27;" in page
    assert "\\u003cscript\\u003e" in page  # the legend, inside the charts' JSON


def test_no_secret_reaches_the_report(monkeypatch, tmp_path):
    for name in ("POLYGON_API_KEY", "ALPACA_API_KEY", "ALPACA_SECRET_KEY", "FINNHUB_API_KEY"):
        monkeypatch.setenv(name, f"{SECRET}-{name}")
    bars = make_bars(800, ("AAA", "BBB"), source="polygon")
    page = write(barlab.backtest(Momentum(), bars), tmp_path, bars=bars)
    assert SECRET not in page


def test_write_is_atomic(demo_result, tmp_path, monkeypatch):
    target = tmp_path / "out" / "report.html"
    target.parent.mkdir()
    target.write_text("previous report")
    write_report(demo_result, target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]
    assert target.stat().st_mode & 0o777 == 0o644

    def fail(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("barlab.atomic.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_report(demo_result, target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]
    assert "<!DOCTYPE html>" in target.read_text()  # the last good report is untouched


def test_a_directory_is_not_a_report_path(demo_result, tmp_path):
    with pytest.raises(barlab.ConfigError, match="directory"):
        write_report(demo_result, tmp_path)


def test_result_report_delegates(demo_result, tmp_path):
    path = demo_result.report(tmp_path / "nested" / "r.html")
    assert path.is_file() and path.stat().st_size > 0


def test_minmax_keeps_first_last_and_extremes():
    y = np.random.default_rng(3).normal(size=50_001).cumsum()
    keep = minmax_indices(y, 1_000)
    assert len(keep) <= 1_000
    assert keep[0] == 0 and keep[-1] == len(y) - 1
    assert np.all(np.diff(keep) > 0)
    assert y[keep].min() == y.min() and y[keep].max() == y.max()
    assert minmax_indices(y[:10], 1_000).tolist() == list(range(10))


def test_drawdown_curve_bottoms_at_the_max_drawdown(demo_result):
    cash = demo_result.info["options"]["cash"]
    for equity, m in (
        (demo_result.equity, demo_result.metrics),
        (demo_result.benchmark_equity, demo_result.benchmark_metrics),
    ):
        assert drawdown(equity, cash).min() == pytest.approx(m.max_drawdown, abs=1e-12)


@pytest.mark.slow
def test_ten_symbols_for_a_year_of_minute_bars_stay_under_10_mb(tmp_path):
    symbols = tuple(f"S{i:02d}" for i in range(10))
    bars = make_bars(98_280, symbols, seed=7)
    result = barlab.backtest(Momentum(lookback=60), bars)
    path = write_report(result, tmp_path / "year.html", bars=bars)
    size = path.stat().st_size
    assert size <= 10_000_000, f"report is {size:,} bytes"
    page = path.read_text(encoding="utf-8")
    assert f"Showing the first {MAX_TRADES:,}" in page
    figs = figures(page)
    assert "price" in figs and len(figs) == 10
    for key, fig in figs.items():
        for trace in fig["data"]:
            if trace["type"] == "scatter" and trace.get("mode") == "lines":
                assert len(values(trace["x"])) <= MAX_POINTS, key


CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0", "--virtual-time-budget=30000",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / ".ci" / "artifacts"
SORT_AND_FILTER = """
const table = document.getElementById("trades-table");
const heads = [...table.tHead.rows[0].cells];
const col = heads.findIndex((th) => th.textContent === "P&L");
heads[col].click();
const pnl = [...table.tBodies[0].rows].map((row) => Number(row.cells[col].dataset.v));
document.body.dataset.sortedByPnl = pnl.every((v, i) => i === 0 || pnl[i - 1] <= v);
const input = document.querySelector("[data-filter] input");
input.value = "bbb";
input.dispatchEvent(new Event("input"));
document.body.dataset.rowsShown = [...table.tBodies[0].rows].filter((r) => !r.hidden).length;
"""


@pytest.mark.browser
def test_every_chart_draws_in_headless_chromium(page, demo_result, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: .ci/run installs Debian's chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    clicked = tmp_path / "clicked.html"  # the same page, then a click on P&L and a filter
    clicked.write_text(page.replace("</body>", f"<script>{SORT_AND_FILTER}</script></body>"))
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    shown = subprocess.run(
        [browser, *CHROMIUM_FLAGS, *profile, "--dump-dom", clicked.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    dom = shown.stdout
    assert "data-charts-drawn-ms=" in dom  # the loader finished
    keys = list(figures(page))
    assert len(keys) == 10
    for key in keys:  # each chart div holds a drawn plot with its traces
        start = dom.index(f'data-figure="figure-{key}"')
        div = dom[start : dom.find('<script type="application/json"', start)]
        opening = re.search(rf'<div class="([^"]*)" data-figure="figure-{key}"', dom)
        assert opening and "drawn" in opening.group(1).split(), key
        assert 'class="main-svg"' in div, key
        assert re.search(r'class="(trace|hm)[ "]', div) or "<image" in div, key
    assert "Loading the chart" not in dom and ">Charts need a browser" not in dom
    assert 'data-sorted-by-pnl="true"' in dom
    n_bbb = demo_result.trades.filter(pl.col("symbol") == "BBB").height
    assert f'data-rows-shown="{n_bbb}"' in dom and f"{n_bbb} of " in dom
    console = [line for line in shown.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "error" in line.lower()], console
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    subprocess.run(
        [browser, *CHROMIUM_FLAGS, *profile, "--hide-scrollbars", "--window-size=1280,9000",
         f"--screenshot={shot}", path.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert shot.stat().st_size > 50_000
