"""`backtest live` as users run it: the offline replay with its parity report, and the refusals
(unknown strategy, missing keys, --live without confirmation, --replay without dates)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli import run

REPLAY = ("live", "sma_crossover", "--replay", "--from", "2024-03-04", "--to", "2024-03-08",
          "--symbols", "AAPL,MSFT,TSLA")  # fmt: skip


def test_replay_prints_an_exact_parity_score_and_saves_the_report(home: Path):
    done = run(home, *REPLAY)
    assert done.returncode == 0, done.stderr
    assert "parity score: 1.0000 (EXACT)" in done.stdout
    assert "SYNTHETIC" in done.stdout and "missed 0, extra 0, mismatched 0" in done.stdout
    runs = list((home / "reports" / "runs").glob("*-replay-sma_crossover-*"))
    assert len(runs) == 1
    doc = json.loads((runs[0] / "parity.json").read_text())
    assert doc["exact"] is True and doc["score"] == 1.0 and doc["strategy"] == "sma_crossover"
    assert doc["params"] == {"fast": 10, "slow": 50, "allow_short": False}
    assert doc["n_backtest"] == doc["n_bridge"] >= 50
    for name in ("backtest_orders.csv", "bridge_orders.csv", "journal.jsonl"):
        assert (runs[0] / name).stat().st_size > 0


def test_unknown_strategy_is_a_usage_error(home: Path):
    done = run(home, "live", "sma_crosover", "--replay", "--from", "2024-03-04")
    assert done.returncode == 2
    assert "unknown strategy 'sma_crosover'" in done.stderr and "sma_crossover" in done.stderr


def test_paper_without_keys_names_them(home: Path):
    done = run(home, "live", "sma_crossover", "--paper")
    assert done.returncode == 2
    assert "APCA_API_KEY_ID" in done.stderr and "APCA_API_SECRET_KEY" in done.stderr


def test_live_needs_an_explicit_confirmation(home: Path):
    keys = {"APCA_API_KEY_ID": "PKTESTKEY0123456789", "APCA_API_SECRET_KEY": "s3cr3t-x"}
    done = run(home, "live", "sma_crossover", "--live", env=keys)
    assert done.returncode == 2
    assert "--confirm-live" in done.stderr and "real money" in done.stderr
    assert "s3cr3t-x" not in done.stderr + done.stdout


def test_replay_needs_a_start_date_and_a_mode(home: Path):
    done = run(home, "live", "sma_crossover", "--replay")
    assert done.returncode == 2 and "--from" in done.stderr
    done = run(home, "live", "sma_crossover")
    assert done.returncode == 2 and "--paper" in done.stderr
