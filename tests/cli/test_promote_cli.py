"""`backtest promote`, run as a user runs it: a backtest on the demo market, then the gates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from barlab.cli import main

BACKTEST = shutil.which("backtest", path=os.path.dirname(sys.executable)) or shutil.which(
    "backtest"
)
LENIENT = {
    "BARLAB_PROMOTION_MIN_TRADES": "1",
    "BARLAB_PROMOTION_MIN_SHARPE": "-100",
    "BARLAB_PROMOTION_MAX_DRAWDOWN": "1",
    "BARLAB_PROMOTION_REQUIRE_PARITY": "false",
}


def run(home: Path, *args: str, env: dict[str, str] | None = None):
    assert BACKTEST, "the backtest console script is not installed (pip install -e '.[dev]')"
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BARLAB_", "POLYGON_", "APCA_", "FINNHUB_"))
    }
    clean.update({"XDG_CONFIG_HOME": str(home / "xdg"), **(env or {})})
    return subprocess.run(
        [BACKTEST, *args], cwd=home, env=clean, capture_output=True, text=True, timeout=300
    )


def test_promote_a_demo_run(home):
    out = run(home, "run", "sma_crossover", "--from", "2024-03-04", "--to", "2024-03-15",
              "--symbols", "AAPL,MSFT", "--timeframe", "1h", "--param", "fast=3",
              "--param", "slow=8", "--json", "--no-report")  # fmt: skip
    assert out.returncode == 0, out.stderr
    run_id = json.loads(out.stdout)["run_id"]
    record = home / "reports" / "promotions" / "sma_crossover.json"

    strict = run(home, "promote", "sma_crossover", "--run", run_id)
    assert strict.returncode == 1, strict.stderr
    for words in ("min_trades", ">= 30", "FAIL", "parity", "NOT RUN", "lookahead", "clean",
                  "NOT PROMOTED", "nothing was written", "SYNTHETIC"):  # fmt: skip
        assert words in strict.stdout, words
    assert not record.exists()

    (home / "backtest.toml").write_text(
        "[promotion]\nmin_trades = 1\nmin_sharpe = -100\nmax_drawdown = 1.0\n"
        "require_parity = false\n"
    )
    ok = run(home, "promote", "sma_crossover", "--run", run_id)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "PROMOTED: record written to" in ok.stdout and "SKIPPED" in ok.stdout
    doc = json.loads(record.read_text())
    assert doc["run_id"] == run_id and doc["params"]["fast"] == 3 and doc["passed"] is True
    (home / "backtest.toml").unlink()
    record.unlink()

    by_env = run(home, "promote", "sma_crossover", "--run", run_id, "--json", env=LENIENT)
    assert by_env.returncode == 0, by_env.stderr
    shown = json.loads(by_env.stdout)
    assert shown["path"] and record.is_file()
    assert {g["name"]: g["threshold"] for g in shown["gates"]}["min_trades"] == 1

    failing = run(home, "promote", "sma_crossover", "--run", run_id,
                  env={**LENIENT, "BARLAB_PROMOTION_MIN_SHARPE": "1000"})  # fmt: skip
    assert failing.returncode == 1 and "min_sharpe failed" in failing.stdout

    wrong_wf = run(home, "promote", "sma_crossover", "--run", run_id, "--walkforward", run_id)
    assert wrong_wf.returncode == 2 and "not a walk-forward" in wrong_wf.stderr


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (("sma_crossover", "--run", "no-such-run"), {}, "no saved run 'no-such-run'"),
        (("sma_crossover",), {}, "--run"),
        (("sma_crossover", "--run", "x"), {"BARLAB_PROMOTION_MAX_DRAWDOWN": "25"},
         "max_drawdown is a fraction"),
        (("sma_crossover", "--run", "x"), {"BARLAB_PROMOTION_MIN_TRADE": "2"},
         "unknown key 'min_trade'"),
        (("no_such_strategy", "--run", "x"), {}, "unknown strategy 'no_such_strategy'"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(home, monkeypatch, capsys, args, env, words):
    monkeypatch.chdir(home)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg"))
    for var in list(os.environ):
        if var.startswith("BARLAB_"):
            monkeypatch.delenv(var)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    code = _exit_code(["promote", *args])
    err = capsys.readouterr().err
    assert code == 2 and words in err, err


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's usage errors
        return int(e.code or 0)


def test_a_run_of_another_strategy_exits_2(home, monkeypatch, capsys):
    monkeypatch.chdir(home)
    runs = home / "reports" / "runs" / "20240101-000000-sma_crossover-abcdef"
    runs.mkdir(parents=True)
    (runs / "run.json").write_text(json.dumps({"info": {"strategy": "sma_crossover"}}))
    assert main(["promote", "rsi_mean_reversion", "--run", runs.name]) == 2
    err = capsys.readouterr().err
    assert "is a backtest of sma_crossover, not rsi_mean_reversion" in err
    wf = home / "reports" / "runs" / "20240101-000000-sma_crossover-wf"
    wf.mkdir()
    (wf / "run.json").write_text(json.dumps({"kind": "walkforward", "info": {}}))
    assert main(["promote", "sma_crossover", "--run", wf.name]) == 2
    assert "is a walkforward run; promote a backtest run" in capsys.readouterr().err
