"""The notebook path: import barlab, load bars, backtest, report; and the package's shape."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

import barlab

SRC = Path(barlab.__file__).parent


def test_public_api_is_pinned():
    assert sorted(barlab.__all__) == sorted(
        [
            "BacktestOptions", "BarlabError", "Bars", "ConfigError", "Costs", "DataError",
            "Metrics", "Result", "RiskRules", "Signals", "Strategy", "StrategyError",
            "__version__", "backtest", "combine", "load_bars", "load_config", "load_run",
            "load_strategy", "optimize", "sweep", "walk_forward",
        ]
    )  # fmt: skip
    for name in barlab.__all__:
        assert hasattr(barlab, name)


def test_import_has_no_side_effects():
    code = (
        "import sys, logging, barlab; "
        "heavy = [m for m in ('plotly', 'exchange_calendars', 'pandas', 'requests', 'numba') "
        "if m in sys.modules]; "
        "print(heavy, logging.getLogger().handlers, logging.getLogger('barlab').handlers)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] [] []"


def test_zones_import_toward_the_pure_core():
    """engine/, strategy.py, bars.py, metrics.py and indicators.py never import I/O or
    presentation."""
    forbidden = ("barlab.data", "barlab.live", "barlab.report", "barlab.cli", "requests", "plotly")
    pure = [*SRC.joinpath("engine").glob("*.py")]
    pure += [SRC / f for f in ("strategy.py", "bars.py", "metrics.py", "metrics_nb.py",
                               "order_stats_nb.py", "indicators.py",
                               "indicators_nb.py")]  # fmt: skip
    for path in pure:
        text = path.read_text()
        for name in forbidden:
            assert f"import {name}" not in text and f"from {name}" not in text, (path, name)
    for path in SRC.rglob("*.py"):
        assert "barlab.cli" not in path.read_text() or "cli" in path.parts, path


def test_notebook_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    bars = barlab.load_bars("AAPL,MSFT", "2023-03-01", dt.date(2023, 3, 10), timeframe="5m")
    assert bars.synthetic and bars.symbols == ("AAPL", "MSFT") and bars.timeframe == "5m"
    assert bars.n_bars == 8 * 78
    assert (tmp_path / "data" / "bars" / "source=demo" / "timeframe=5m").is_dir()
    strategy = barlab.load_strategy("sma_crossover")(fast=3, slow=12)
    result = barlab.backtest(strategy, bars, cash=10_000, slippage_bps=2)
    assert result.metrics.n_trades > 0
    assert result.info["source"] == "demo" and result.info["data_version"] == bars.version
    out = result.report(tmp_path / "nb.html")
    assert "SYNTHETIC" in out.read_text()


def test_backtest_rejects_bad_options(bars):
    strategy = barlab.load_strategy("sma_crossover")()
    with pytest.raises(barlab.ConfigError, match=r"unknown backtest option.*slipage_bps"):
        barlab.backtest(strategy, bars, slipage_bps=3)
    with pytest.raises(barlab.ConfigError, match="commission_rate is a fraction"):
        barlab.backtest(strategy, bars, commission_rate=1.0)
    with pytest.raises(barlab.StrategyError, match="Strategy instance"):
        barlab.backtest(type(strategy), bars)
