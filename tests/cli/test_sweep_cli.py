"""`backtest sweep`, run as a user runs it, on the demo market."""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest

from barlab.cli.sweep import parse_values
from barlab.errors import UsageError
from tests.cli.test_cli import run

RANGE = ("--from", "2023-03-01", "--to", "2023-03-10", "--symbols", "AAPL", "--source", "demo")


def test_sweep_prints_saves_and_matches_backtest_run(home):
    out = run(
        home, "sweep", "sma_crossover", "--param", "fast=5:20:5", "--param", "slow=10:40:10",
        "--where", "fast < slow", "--commission", "0.001", *RANGE, "--top", "3",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "7 combinations run, 2 skipped by the constraint, 0 invalid (of 9)" in out.stdout
    assert "SYNTHETIC" in out.stderr
    saved = home / out.stdout.split("saved: ")[1].split()[0]
    table = pl.read_parquet(saved / "sweep.parquet")
    assert table.height == 7
    doc = json.loads((saved / "run.json").read_text())
    assert doc["info"]["grid"] == {"fast": [5, 10, 15], "slow": [10, 20, 30]}
    assert doc["info"]["where"] == "fast < slow" and doc["info"]["data_version"]
    assert doc["info"]["options"]["costs"]["commission_rate"] == 0.001

    js = run(
        home, "sweep", "sma_crossover", "--param", "fast=5,10", "--param", "slow=20",
        "--param", "allow_short=true,false", "--commission", "0.001", *RANGE, "--json",
        "--executor", "process", "--jobs", "2",
    )  # fmt: skip
    assert js.returncode == 0, js.stderr
    doc = json.loads(js.stdout)
    assert (doc["n_run"], doc["n_skipped"], doc["n_invalid"]) == (4, 0, 0)
    assert Path(doc["path"]).name == doc["run_id"]
    row = next(r for r in doc["top"] if r["fast"] == 10 and r["allow_short"] is False)
    single = run(
        home, "run", "sma_crossover", "--param", "fast=10", "--param", "slow=20",
        "--commission", "0.001", *RANGE, "--json", "--no-report",
    )  # fmt: skip
    assert single.returncode == 0, single.stderr
    metrics = json.loads(single.stdout)["metrics"]
    for name, value in metrics.items():
        assert row[name] == value or (row[name] is None and (value is None or math.isnan(value))), (
            name
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--param", "fats=5:10"), "has no parameter 'fats'; it takes fast, slow, allow_short"),
        (("--param", "fast=5:x"), "a range is start:stop[:step]"),
        (("--param", "fast=10:5"), "empty range"),
        ((), "empty grid"),
        (("--param", "fast=5:10", "--where", "fast > 100"), "leaves none of the 5"),
        (("--param", "fast=5:10", "--where", "fsat < 3"), "unknown name 'fsat'"),
    ],
)
def test_bad_input_is_one_line_exit_2(home, args, message):
    out = run(home, "sweep", "sma_crossover", *args, *RANGE)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
    assert out.stderr.strip().count("\n") == 0
    assert not (home / "reports").exists()


def test_parse_values():
    assert parse_values("fast", "5:8") == [5, 6, 7]
    assert parse_values("slow", "20:50:10") == [20, 30, 40]
    assert parse_values("x", "0.5:2.0:0.5") == [0.5, 1.0, 1.5]
    assert parse_values("x", "0.1:0.4:0.1") == [0.1, 0.2, 0.3]
    assert parse_values("x", "10:4:-3") == [10, 7]
    assert parse_values("allow_short", "true,false") == ["true", "false"]
    assert parse_values("fast", "7") == ["7"]
    for bad in ("", "1:2:0", "1:2:3:4", "a:b", "1,,2"):
        with pytest.raises(UsageError):
            parse_values("x", bad)


def test_rerun_best_saves_the_best_combination_as_a_full_run(home):
    out = run(
        home, "sweep", "sma_crossover", "--param", "fast=5,10", "--param", "slow=20,30",
        "--commission", "0.001", *RANGE, "--sort", "total_return", "--rerun-best",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    sweep_dir = home / out.stdout.split("saved: ")[1].split()[0]
    rerun_id = out.stdout.split("run id: ")[1].split()[0]
    report = home / out.stdout.split("report: ")[1].split()[0]
    assert "best by total_return run again in full" in out.stdout
    assert report.is_file() and report.parent.name == rerun_id
    # the sweep's saved info names the rerun; the rerun is the table's first row, in full
    sweep_doc = json.loads((sweep_dir / "run.json").read_text())
    assert sweep_doc["info"]["rerun_best"] == rerun_id
    best = pl.read_parquet(sweep_dir / "sweep.parquet").sort("total_return", descending=True)
    best = best.row(0, named=True)
    run_doc = json.loads((report.parent / "run.json").read_text())
    assert run_doc["info"]["params"] == {"fast": best["fast"], "slow": best["slow"],
                                         "allow_short": False}  # fmt: skip
    assert "lookahead" in run_doc["info"]  # checked as `backtest run` checks a run

    js = run(
        home, "sweep", "sma_crossover", "--param", "fast=5,10", "--param", "slow=20,30",
        "--commission", "0.001", *RANGE, "--rerun-best", "--json",
    )  # fmt: skip
    assert js.returncode == 0, js.stderr
    doc = json.loads(js.stdout)
    rerun = doc["rerun_best"]
    top = doc["top"][0]  # sorted by sharpe, the default
    assert rerun["params"] == {"fast": top["fast"], "slow": top["slow"], "allow_short": False}
    for name, value in rerun["metrics"].items():
        assert top[name] == value, name
    assert (home / rerun["report"]).is_file()
    saved = json.loads((home / doc["path"] / "run.json").read_text())
    assert saved["info"]["rerun_best"] == rerun["run_id"] != doc["run_id"]
