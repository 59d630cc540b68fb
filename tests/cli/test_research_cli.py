"""`backtest walkforward` and `backtest optimize`, run as users run them, on the demo market."""

from __future__ import annotations

import json

import polars as pl
import pytest

from barlab.cli import main
from barlab.cli.research import parse_bounds
from barlab.errors import UsageError
from tests.cli.test_cli import run

DATA = ("--symbols", "AAPL", "--timeframe", "1h", "--source", "demo")
HALF = ("--from", "2023-01-01", "--to", "2023-06-30", *DATA)


def test_walkforward_prints_the_folds_and_saves_the_run(home):
    out = run(
        home, "walkforward", "sma_crossover", "--param", "fast=2:6:2", "--param", "slow=10:30:10",
        "--train", "3M", "--test", "1M", "--commission", "0.0005", *HALF,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "3 folds, train 3M, test 1M, step 1M (rolling), objective sharpe" in out.stdout
    assert "2023-01-03 → 2023-03-31  2023-04-03 → 2023-04-28" in out.stdout
    assert "out of sample 2023-04-03 → 2023-06-30" in out.stdout
    assert "walk-forward efficiency" in out.stdout and "SYNTHETIC" in out.stdout
    assert "fold 3/3 done" in out.stderr
    saved = home / out.stdout.split("saved: ")[1].split()[0]
    doc = json.loads((saved / "run.json").read_text())
    assert doc["kind"] == "walkforward" and doc["info"]["grid"] == {
        "fast": [2, 4], "slow": [10, 20],
    }  # fmt: skip
    assert doc["info"]["options"]["costs"]["commission_rate"] == 0.0005
    folds = pl.read_parquet(saved / "folds.parquet")
    oos = pl.read_parquet(saved / "oos_equity.parquet")
    assert folds.height == 3 and oos["fold"].unique().sort().to_list() == [1, 2, 3]
    assert oos["equity"][-1] == pytest.approx(
        100_000 * (1 + doc["oos_metrics"]["total_return"]), rel=1e-9
    )


def test_optimize_json_and_saved_points(home):
    out = run(
        home, "optimize", "sma_crossover", "--param", "fast=2:20", "--param", "slow=10:60",
        "--param", "allow_short=true", "--where", "fast < slow", "--maxiter", "4",
        "--popsize", "5", "--seed", "2", *HALF, "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    best = doc["best_params"]
    assert isinstance(best["fast"], int) and 2 <= best["fast"] < best["slow"] <= 60
    assert best["allow_short"] is True and doc["best_value"] == doc["best_metrics"]["sharpe"]
    points = pl.read_parquet(home / doc["path"] / "evaluations.parquet")
    assert points.height == doc["n_evaluations"] + doc["n_infeasible"]
    saved = json.loads((home / doc["path"] / "run.json").read_text())
    assert saved["kind"] == "optimize" and saved["info"]["bounds"]["slow"] == [10, 60]


def test_window_longer_than_the_data(home):
    out = run(
        home, "walkforward", "sma_crossover", "--param", "fast=2:6", "--param", "slow=20",
        "--train", "6M", "--test", "1M", "--from", "2023-01-01", "--to", "2023-03-31", *DATA,
    )  # fmt: skip
    assert out.returncode == 2
    assert "train 6M + test 1M needs at least 7 months of bars" in out.stderr
    assert "the data has 62 sessions (about 2.9 months) from 2023-01-03 to 2023-03-31" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("walkforward", "--param", "fats=5:10"), "has no parameter 'fats'"),
        (("walkforward", "--param", "fast=10:5"), "empty range"),
        (("walkforward", "--param", "fast=5:10", "--train", "6m"), "did you mean 6M"),
        (("walkforward", "--param", "fast=5:10", "--test", "0D"), "test '0D' is empty"),
        (("walkforward", "--param", "fast=5:10", "--objective", "sharp"), "unknown objective"),
        (("walkforward",), "empty grid"),
        (("optimize", "--param", "fast=100:5"), "LO is above HI; use 5:100"),
        (("optimize", "--param", "fast=5:100:5"), "bounds are LO:HI"),
        (("optimize", "--param", "fast=5.5:10"), "whole numbers"),
        (("optimize", "--param", "fast=5", "--param", "slow=50"), "nothing to optimise"),
        (("optimize", "--param", "fast=5:50", "--objective", "sharp"), "unknown objective"),
        (("optimize", "--param", "fast=5:50", "--maxiter", "0"), "--maxiter must be >= 1"),
        (("optimize", "--param", "fast=5:50", "--where", "fast < slw"), "unknown name 'slw'"),
    ],
)
def test_bad_input_exits_2_before_loading_data(home, monkeypatch, capsys, args, message):
    monkeypatch.chdir(home)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg"))
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    command, *rest = args
    code = main([command, "sma_crossover", *rest, *HALF])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err
    assert not (home / "data").exists()  # nothing was loaded


def test_parse_bounds():
    names = ["fast", "slow", "allow_short"]
    assert parse_bounds(["fast=5:100", "allow_short=true"], names, "s") == {
        "fast": (5, 100), "allow_short": "true",
    }  # fmt: skip
    assert parse_bounds(["slow=0.5:2.0"], names, "s") == {"slow": (0.5, 2.0)}
    with pytest.raises(UsageError, match="given twice"):
        parse_bounds(["fast=1:2", "fast=3:4"], names, "s")
