"""`backtest run a+b --combine ...`: several strategies on one account, from the command line."""

from __future__ import annotations

import json

import polars as pl
import pytest

from tests.cli.test_cli import RANGE, run

BOTH = "sma_crossover+rsi_mean_reversion"


def test_combined_run_saves_and_reports_each_strategys_share(home):
    out = run(home, "run", BOTH, *RANGE, "--symbols", "AAPL,MSFT", "--combine", "sum",
              "--param", "sma_crossover.fast=5", "--param", "sma_crossover.slow=30",
              "--param", "rsi_mean_reversion.n=10", "--param", "weights=0.6,0.4",
              "--commission", "0.001", "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["strategy"] == BOTH
    assert doc["params"]["how"] == "sum" and doc["params"]["weights"] == [0.6, 0.4]
    assert doc["params"]["sma_crossover.fast"] == 5 and doc["params"]["rsi_mean_reversion.n"] == 10
    rows = doc["attribution"]
    assert [r["strategy"] for r in rows] == ["sma_crossover", "rsi_mean_reversion"]
    assert [r["weight"] for r in rows] == [0.6, 0.4]
    assert all(r["orders"] > 0 for r in rows)
    assert sum(r["pnl"] for r in rows) == pytest.approx(doc["final_equity"] - 100_000, abs=1e-4)
    assert sum(r["fees"] for r in rows) == pytest.approx(doc["metrics"]["fees"], rel=1e-9)

    run_dir = home / "reports" / "runs" / doc["run_id"]
    saved = json.loads((run_dir / "run.json").read_text())
    assert saved["attribution"]["strategies"] == ["sma_crossover", "rsi_mean_reversion"]
    per_bar = pl.read_parquet(run_dir / "attribution.parquet")
    assert per_bar.columns == ["time", "strategy", "pnl", "fees"]
    orders = pl.read_parquet(run_dir / "orders.parquet")
    assert set(orders["strategies"].explode().unique()) == {"sma_crossover", "rsi_mean_reversion"}
    page = (home / doc["report"]).read_text()
    assert 'id="strategies"' in page and "P&amp;L by strategy" in page

    again = run(home, "report", doc["run_id"])  # a saved run's report keeps the section
    assert again.returncode == 0, again.stderr
    assert 'id="strategies"' in (run_dir / "report.html").read_text()


def test_priority_summary_names_each_strategy(home):
    out = run(home, "run", BOTH, *RANGE, "--symbols", "TSLA", "--combine", "priority",
              "--no-report", "--no-lookahead-check")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{BOTH}(how=priority, weights=[1.0, 1.0], sma_crossover.fast=10")
    table = out.stdout[out.stdout.index("per strategy") :]
    assert "sma_crossover " in table and "rsi_mean_reversion " in table
    for word in ("weight", "P&L", "return", "fees", "orders", "trades"):
        assert word in table.splitlines()[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((BOTH, "--param", "fast=20"), "write <strategy>.<name>=VALUE, e.g. --param sma_crossover"),
        ((BOTH, "--param", "weights=1"), "give 2 numbers"),
        (("sma_crossover", "--combine", "sum"), "joined by +, e.g. sma_crossover+"),
        (("sma_crossover+nope",), "unknown strategy 'nope'"),
        ((BOTH, "--param", "sma_crossover.fast=80"), "must be smaller than slow"),
    ],
)
def test_combined_usage_errors_exit_2_and_say_the_fix(home, args, words):
    out = run(home, "run", *args, *RANGE)
    assert out.returncode == 2, out.stderr
    assert words in out.stderr and "Traceback" not in out.stderr
