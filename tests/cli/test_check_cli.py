"""`backtest check` and the quick check of `backtest run`, run as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import run

RANGE = ("--from", "2023-03-01", "--to", "2023-03-10", "--symbols", "AAPL,MSFT", "--source", "demo")

PEEK_AHEAD = '''"""Long when the next bar closes higher: look-ahead on purpose."""

import numpy as np

from barlab import Signals, Strategy


class PeekAhead(Strategy):
    def signals(self, bars):
        c = bars.close
        target = np.full(c.shape, np.nan)
        target[:-1] = np.where(c[1:] > c[:-1], 1.0, 0.0)
        return Signals(target=target)
'''


@pytest.fixture
def leaky(home: Path) -> Path:
    (home / "strategies").mkdir()
    (home / "strategies" / "peek_ahead.py").write_text(PEEK_AHEAD)
    return home


def test_check_an_example_strategy_is_clean(home):
    out = run(home, "check", "sma_crossover", *RANGE)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("no look-ahead found in ")
    assert "prefixes of 3,120 bars" in out.stdout and "full check" in out.stdout
    assert "SYNTHETIC" in out.stderr
    js = run(home, "check", "sma_crossover", *RANGE, "--samples", "3", "--json")
    assert js.returncode == 0, js.stderr
    doc = json.loads(js.stdout)
    assert doc["clean"] is True and doc["first"] is None and doc["mode"] == "sampled"
    assert doc["synthetic"] is True and doc["n_bars"] == 3120 and doc["data_version"]


def test_check_a_leaky_strategy_exits_1_naming_the_bar(leaky):
    out = run(leaky, "check", "peek_ahead", *RANGE)
    assert out.returncode == 1, out.stderr
    assert "look-ahead in peek_ahead(): bar 0 (2023-03-01T14:30:00Z) AAPL target is" in out.stdout
    assert "with all 3,120 bars but NaN with the first 1:" in out.stdout
    js = run(leaky, "check", "peek_ahead", *RANGE, "--json")
    assert js.returncode == 1
    first = json.loads(js.stdout)["first"]
    assert (first["bar"], first["symbol"], first["field"], first["prefix_bars"]) == (
        0,
        "AAPL",
        "target",
        1,
    )


def test_run_warns_about_look_ahead_and_still_saves_the_run(leaky):
    out = run(leaky, "run", "peek_ahead", *RANGE, "--no-report", "--json")
    assert out.returncode == 0, out.stderr
    warning = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1
    assert "look-ahead in peek_ahead(): bar 0 (2023-03-01T14:30:00Z) AAPL target" in warning[0]
    assert "backtest check peek_ahead" in warning[0]
    doc = json.loads(out.stdout)
    assert doc["lookahead"]["clean"] is False and doc["lookahead"]["first"]["bar"] == 0
    saved = json.loads((leaky / "reports" / "runs" / doc["run_id"] / "run.json").read_text())
    assert saved["info"]["lookahead"] == doc["lookahead"]

    skipped = run(leaky, "run", "peek_ahead", *RANGE, "--no-report", "--no-lookahead-check")
    assert skipped.returncode == 0, skipped.stderr
    assert "look-ahead" not in skipped.stderr


def test_run_records_a_clean_check(home):
    out = run(home, "run", "sma_crossover", *RANGE, "--no-report", "--json")
    assert out.returncode == 0, out.stderr
    assert "warning" not in out.stderr
    check = json.loads(out.stdout)["lookahead"]
    assert check["clean"] is True and check["mode"] == "sampled" and check["n_checked"] >= 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sma_crosover", *RANGE), "unknown strategy 'sma_crosover'; did you mean sma_crossover?"),
        (
            ("sma_crossover", "--from", "2023-03-10", "--to", "2023-03-01"),
            "--from 2023-03-10 is after --to 2023-03-01; swap them",
        ),
        (("sma_crossover", "--param", "fats=5", *RANGE), "has no parameter 'fats'"),
        (("sma_crossover", "--samples", "0", *RANGE), "--samples must be >= 1"),
    ],
)
def test_bad_input_is_one_line_exit_2(home, args, message):
    out = run(home, "check", *args)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
    assert out.stderr.strip().count("\n") == 0


def test_check_help_says_the_defaults_and_exit_codes(home):
    out = run(home, "check", "--help")
    assert out.returncode == 0
    for words in ("91 days before --to", "exit status: 0 no look-ahead found, 1 look-ahead found",
                  "--samples", "--json", "--param"):  # fmt: skip
        assert words in out.stdout
    assert "--no-lookahead-check" in run(home, "run", "--help").stdout


def test_check_without_dates_takes_the_last_three_months(home):
    out = run(home, "check", "sma_crossover", "--symbols", "AAPL", "--source", "demo", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["clean"] is True and 55 * 390 <= doc["n_bars"] <= 66 * 390  # ~63 sessions
