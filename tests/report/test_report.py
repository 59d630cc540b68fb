"""The HTML report: self-contained, offline, complete, small, atomic, and free of secrets."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
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
from barlab.bars import Bars
from barlab.metrics import Metrics
from barlab.report import write_report
from barlab.report.charts import drawdown, minmax_indices
from barlab.report.html import MAX_TRADES, SYNTHETIC_BANNER
from barlab.report.labels import label

MINUTES_PER_DAY = 390
SECRET = "pk_live_DO_NOT_LEAK_7f3a9c"


class Momentum(barlab.Strategy):
    """Long a symbol while its close is above the close ``lookback`` bars earlier."""

    lookback: int = 30

    def signals(self, bars: Bars) -> barlab.Signals:
        close, k = bars.close, self.lookback
        target = np.full(close.shape, np.nan)
        target[k:] = (close[k:] > close[:-k]).astype(np.float64)
        return barlab.Signals(target=target)


def session_minutes(n: int) -> np.ndarray:
    """Bar starts of ``n`` regular-hours minutes on consecutive weekdays from 2024-01-02 (NY)."""
    n_days = -(-n // MINUTES_PER_DAY)
    days = np.busday_offset("2024-01-02", np.arange(n_days), roll="forward")
    open_ns = days.astype("datetime64[ns]").astype(np.int64) + (9 * 60 + 30) * 60 * 10**9
    local = (open_ns[:, None] + np.arange(MINUTES_PER_DAY) * 60 * 10**9).ravel()[:n]
    return (
        pl.Series(local, dtype=pl.Int64)
        .cast(pl.Datetime("ns"))
        .dt.replace_time_zone("America/New_York")
        .dt.convert_time_zone("UTC")
        .cast(pl.Int64)
        .to_numpy()
    )


def make_bars(n: int, symbols: tuple[str, ...], *, source: str = "demo", seed: int = 1) -> Bars:
    rng = np.random.default_rng(seed)
    shape = (n, len(symbols))
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, shape), axis=0))
    open_ = np.vstack([close[:1], close[:-1]])
    return Bars(
        ts_ns=session_minutes(n),
        open=np.ascontiguousarray(open_),
        high=np.maximum(open_, close) * 1.0005,
        low=np.minimum(open_, close) * 0.9995,
        close=close,
        volume=np.full(shape, 1_000.0),
        symbols=symbols,
        timeframe="1m",
        source=source,
        periods_per_year=98_280.0,
        version="test-v1",
    )


@pytest.fixture(scope="module")
def demo_result() -> barlab.Result:
    return barlab.backtest(Momentum(lookback=30), make_bars(2_000, ("AAA", "BBB")))


def write(result: barlab.Result, tmp_path: Path) -> str:
    path = write_report(result, tmp_path / "report.html")
    assert path == tmp_path / "report.html"
    assert path.is_file()
    return path.read_text(encoding="utf-8")


def plotly_payloads(page: str) -> list[str]:
    return re.findall(r'<script[^>]*id="plotly-js"[^>]*>\s*([A-Za-z0-9+/=]+)\s*</script>', page)


def test_plotly_js_is_embedded_once_and_nothing_is_fetched(demo_result, tmp_path):
    page = write(demo_result, tmp_path)
    payloads = plotly_payloads(page)
    assert len(payloads) == 1
    assert gzip.decompress(base64.b64decode(payloads[0])).decode() == get_plotlyjs()
    assert page.count('id="plotly-js"') == 1
    # base64 (plotly.js, chart arrays) may spell anything by chance
    rest = re.sub(r'"bdata":"[^"]*"', "", page.replace(payloads[0], "")).lower()
    assert "cdn" not in rest and "http" not in rest
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", rest)
    assert "@import" not in rest and "url(" not in rest


def test_every_metric_is_shown_for_strategy_and_benchmark(demo_result, tmp_path):
    page = write(demo_result, tmp_path)
    table = page[page.index('<table class="metrics">') : page.index("</table>")]
    for f in dataclasses.fields(Metrics):
        assert f">{label(f.name)}<" in table.replace("&amp;", "&")
    assert table.count("<tr>") == len(dataclasses.fields(Metrics)) + 1  # + header


def test_header_describes_the_run(demo_result, tmp_path):
    page = write(demo_result, tmp_path)
    for text in ("Momentum", "lookback=30", "AAA, BBB", "1m", "demo", "test-v1", "not saved"):
        assert text in page
    assert "2024-01-02 09:30" in page  # the first bar, New York time
    assert "slippage_bps" in page
    assert f"barlab version</dt><dd>{barlab.__version__}" in page


def test_synthetic_banner_only_for_demo_data(demo_result, tmp_path):
    assert SYNTHETIC_BANNER in write(demo_result, tmp_path)
    real = barlab.backtest(Momentum(), make_bars(500, ("AAA",), source="polygon"))
    page = write(real, tmp_path)
    assert "SYNTHETIC" not in page
    assert 'class="synthetic"' not in page


def test_trades_are_listed(demo_result, tmp_path):
    page = write(demo_result, tmp_path)
    trades = demo_result.trades
    assert 0 < trades.height <= MAX_TRADES
    body = page[page.index('<table class="trades">') :]
    assert body.count("<tr>") == trades.height + 1
    first = trades.row(0, named=True)
    ny = first["entry_time"].astimezone(ZoneInfo("America/New_York"))
    assert f"<td>{first['symbol']}</td><td>{first['direction']}</td>" in body
    assert ny.strftime("%Y-%m-%d %H:%M") in body
    assert f"{trades.height:,} trades." in page


def test_long_trade_lists_are_cut(tmp_path):
    busy = barlab.backtest(Momentum(lookback=3), make_bars(2_000, ("AAA", "BBB")))
    assert busy.trades.height > MAX_TRADES
    page = write(busy, tmp_path)
    body = page[page.index('<table class="trades">') :]
    assert body.count("<tr>") == MAX_TRADES + 1
    assert f"Showing the first {MAX_TRADES} of {busy.trades.height:,} trades." in page


class Hostile(Momentum):
    """A strategy whose name and parameter are markup."""

    name: ClassVar[str] = "<script>alert(1)</script>"
    note: str = "<b>&"


def test_text_from_the_result_is_escaped(tmp_path):
    result = barlab.backtest(Hostile(), make_bars(500, ("AAA",)))
    page = write(result, tmp_path)
    assert "<script>alert(1)" not in page and "<b>&" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "note=&#x27;&lt;b&gt;&amp;&#x27;" in page
    assert "\\u003cscript\\u003e" in page  # the legend, inside the charts' JSON


def test_no_secret_reaches_the_report(monkeypatch, tmp_path):
    for name in ("POLYGON_API_KEY", "ALPACA_API_KEY", "ALPACA_SECRET_KEY", "FINNHUB_API_KEY"):
        monkeypatch.setenv(name, f"{SECRET}-{name}")
    result = barlab.backtest(Momentum(), make_bars(800, ("AAA", "BBB"), source="polygon"))
    page = write(result, tmp_path)
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

    monkeypatch.setattr("barlab.report.html.os.replace", fail)
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
    for equity, metrics in (
        (demo_result.equity, demo_result.metrics),
        (demo_result.benchmark_equity, demo_result.benchmark_metrics),
    ):
        assert drawdown(equity, cash).min() == pytest.approx(metrics.max_drawdown, abs=1e-12)


@pytest.mark.slow
def test_a_year_of_minute_bars_stays_small(tmp_path):
    bars = make_bars(98_280, ("AAA", "BBB", "CCC", "DDD"), seed=7)
    result = barlab.backtest(Momentum(lookback=60), bars)
    path = write_report(result, tmp_path / "year.html")
    size = path.stat().st_size
    assert size < 5_000_000, f"report is {size:,} bytes"
    page = path.read_text(encoding="utf-8")
    assert f"Showing the first {MAX_TRADES}" in page
    specs = re.findall(r'<script type="application/json" id="figure-\d+">(.*?)</script>', page)
    assert len(specs) == 2
    for spec in specs:
        for trace in json.loads(spec)["data"]:
            assert len(base64.b64decode(trace["x"]["bdata"])) // 8 <= 4_000


CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0", "--virtual-time-budget=20000",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / ".ci" / "artifacts"


@pytest.mark.browser
def test_charts_draw_in_headless_chromium(demo_result, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: .ci/run installs Debian's chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    path = write_report(demo_result, tmp_path / "report.html")
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    shown = subprocess.run(
        [browser, *CHROMIUM_FLAGS, *profile, "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    dom = shown.stdout
    assert dom.count('class="main-svg"') >= 2 * 2  # two charts, drawn by plotly
    assert "Loading the" not in dom and ">Charts need a browser" not in dom
    console = [line for line in shown.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "error" in line.lower()], console
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    subprocess.run(
        [browser, *CHROMIUM_FLAGS, *profile, "--window-size=1280,2400",
         f"--screenshot={shot}", path.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert shot.stat().st_size > 10_000
