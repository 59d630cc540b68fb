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


def test_replay_with_attached_exits_sends_brackets_on_the_cent(home: Path):
    done = run(home, "live", "sma_crossover", "--replay", "--from", "2024-03-05", "--symbols",
               "AAPL,MSFT", "--stop-loss", "0.002", "--take-profit", "0.003",
               "--slippage-bps", "0")  # fmt: skip
    exact = "parity score: 1.0000 (EXACT)" in done.stdout
    assert done.returncode == (0 if exact else 1), done.stdout + done.stderr
    assert exact or "attached exits go to the broker on the cent" in done.stdout
    (folder,) = (home / "reports" / "runs").glob("*-replay-sma_crossover-*")
    intents = [json.loads(line) for line in (folder / "journal.jsonl").read_text().splitlines()]
    brackets = [r for r in intents if r["kind"] == "intent" and r["order_class"] == "bracket"]
    levels = [r[k] for r in brackets for k in ("stop_loss", "take_profit")]
    assert levels and all(p == round(p, 2) for p in levels)
    assert json.loads((folder / "parity.json").read_text())["options"]["stop_loss"] == 0.002


def test_replay_says_why_orders_the_broker_refused_break_parity(home: Path):
    # reversing at each cross with all the equity: the backtest shorts on its cash, the
    # emulator's buying power (as Alpaca's) does not stretch that far
    done = run(home, "live", "sma_crossover", "--replay", "--from", "2024-03-04", "--symbols",
               "AAPL,MSFT,TSLA", "--param", "allow_short=true")  # fmt: skip
    assert done.returncode == 1 and "NOT exact" in done.stdout
    assert "the broker refused" in done.stdout and "--size-pct" in done.stdout
    smaller = run(home, "live", "sma_crossover", "--replay", "--from", "2024-03-04",
                  "--symbols", "AAPL,MSFT,TSLA", "--param", "allow_short=true",
                  "--size-pct", "0.5")  # fmt: skip
    assert smaller.returncode == 0 and "(EXACT)" in smaller.stdout


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


LAX_GATES = {
    "BARLAB_PROMOTION_MIN_SHARPE": "-100", "BARLAB_PROMOTION_MIN_TRADES": "0",
    "BARLAB_PROMOTION_MAX_DRAWDOWN": "1", "BARLAB_PROMOTION_ALLOW_SYNTHETIC": "true",
}  # fmt: skip
DAYS = ("--from", "2024-03-05", "--to", "2024-03-06", "--symbols", "AAPL,MSFT,TSLA")


def test_paper_dry_run_of_a_promoted_strategy_sends_nothing(home: Path):
    """backtest, replay, promote, then --paper --dry-run against the local emulator."""
    import datetime as dt
    import os
    import signal
    import subprocess

    from barlab.data.panel import load_bars
    from barlab.live.emulator import EmulatorServer
    from barlab.live.exchange import PaperExchange
    from barlab.live.journal import read_journal, wait_for
    from barlab.live.replay import drive
    from tests.cli.test_cli import BACKTEST

    refused = run(
        home,
        "live",
        "sma_crossover",
        "--paper",
        "--dry-run",
        env={"APCA_API_KEY_ID": "PKTESTKEY0123456789", "APCA_API_SECRET_KEY": "x" * 20},
    )
    assert refused.returncode == 2 and "promote" in refused.stderr  # not promoted yet
    done = run(home, "run", "sma_crossover", *DAYS, "--quiet", "--no-report", env=LAX_GATES)
    run_id = done.stdout.split("run id:")[1].split()[0]
    assert run(home, "live", "sma_crossover", "--replay", *DAYS, env=LAX_GATES).returncode == 0
    promoted = run(home, "promote", "sma_crossover", "--run", run_id, env=LAX_GATES)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr

    bars = load_bars(["AAPL", "MSFT", "TSLA"], dt.date(2024, 3, 5), dt.date(2024, 3, 6),
                     timeframe="1m", source="demo", data_dir=home / "data")  # fmt: skip
    journal = home / "paper.jsonl"
    keys = {"APCA_API_KEY_ID": "PKTESTKEY0123456789", "APCA_API_SECRET_KEY": "paper-secret-0123"}
    with EmulatorServer(PaperExchange(bars), rate_limit_per_min=None) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BARLAB_", "APCA_"))}
        env.update({**keys, **LAX_GATES, "XDG_CONFIG_HOME": str(home / "xdg"),
                    "APCA_API_BASE_URL": server.url, "APCA_DATA_BASE_URL": server.url,
                    "BARLAB_LIVE_DATA_STREAM_URL": server.ws_url,
                    "BARLAB_ALPACA_REQUESTS_PER_MINUTE": "600000"})  # fmt: skip
        with open(home / "paper.out", "wb") as out:
            proc = subprocess.Popen(
                [BACKTEST, "live", "sma_crossover", "--paper", "--dry-run", "--symbols",
                 "AAPL,MSFT,TSLA", "--journal", str(journal)],
                cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            wait_for(journal, "ready", timeout_s=60, alive=lambda: proc.poll() is None)
            drive(server, journal, bars=390, alive=lambda: proc.poll() is None)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(30)
        orders = server.exchange.orders
    output = (home / "paper.out").read_text()
    assert code == 0, output[-3000:]
    assert orders == {} and "DRY RUN" in output and "paper-secret-0123" not in output
    kinds = [r["kind"] for r in read_journal(journal)]
    assert kinds.count("dry_run") > 0 and "intent" not in kinds and kinds.count("bar") == 390
