"""`backtest promote`, run as a user runs it: a backtest on the demo market, then the gates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

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

    for args, words in (
        (("--run", "no-such-run"), "no saved run 'no-such-run'"),
        (("--run", run_id, "--parity", "nope"), "--parity nope"),
        (("--run", run_id, "--walkforward", run_id), "not a walk-forward"),
    ):
        bad = run(home, "promote", "sma_crossover", *args, env=LENIENT)
        assert bad.returncode == 2 and words in bad.stderr, bad.stderr
    other = run(home, "promote", "rsi_mean_reversion", "--run", run_id, env=LENIENT)
    assert other.returncode == 2
    assert "is a backtest of sma_crossover, not rsi_mean_reversion" in other.stderr
    missing = run(home, "promote", "sma_crossover")
    assert missing.returncode == 2 and "--run" in missing.stderr
    config = run(home, "promote", "sma_crossover", "--run", run_id,
                 env={"BARLAB_PROMOTION_MAX_DRAWDOWN": "25"})  # fmt: skip
    assert config.returncode == 2 and "max_drawdown is a fraction" in config.stderr
