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
    # reversing at each cross with all the equity: exact, the backtest checks each order
    # against Alpaca's buying power as the emulator does (docs/engine.md, Buying power)
    done = run(home, "live", "sma_crossover", "--replay", "--from", "2024-03-04", "--symbols",
               "AAPL,MSFT,TSLA", "--param", "allow_short=true")  # fmt: skip
    assert done.returncode == 0 and "(EXACT)" in done.stdout
    # under Alpaca's $2,000 minimum an account may not sell short; the backtest does not know
    small = run(home, "live", "sma_crossover", "--replay", "--from", "2024-03-04",
                "--symbols", "AAPL,MSFT,TSLA", "--param", "allow_short=true",
                "--cash", "1500")  # fmt: skip
    assert small.returncode == 1 and "NOT exact" in small.stdout
    assert "the broker refused" in small.stdout


def test_replay_with_partial_fills_says_they_explain_the_differences(home: Path):
    done = run(home, "live", "sma_crossover", "--replay", "--from", "2024-03-06", "--symbols",
               "AAPL,MSFT", "--partial-fills", "0.3", "--margin", "2")  # fmt: skip
    assert done.returncode == 1 and "NOT exact" in done.stdout, done.stdout + done.stderr
    assert "bridge orders filled in parts" in done.stdout
    assert "not exact because of partial fills (--partial-fills 0.3)" in done.stdout
    assert "the broker refused" not in done.stdout
    (folder,) = (home / "reports" / "runs").glob("*-replay-sma_crossover-*")
    doc = json.loads((folder / "parity.json").read_text())
    assert doc["partial_fill_rate"] == 0.3 and doc["options"]["margin"] == 2.0
    assert doc["partial_fills"] and doc["unexplained"] == 0
    for flag, value, says in (("--partial-fills", "1.5", "--partial-fills 0.1"),
                              ("--margin", "3", "one of 1, 2, 4")):  # fmt: skip
        bad = run(home, "live", "sma_crossover", "--replay", "--from", "2024-03-06", flag, value)
        assert bad.returncode == 2 and flag in bad.stderr and says in bad.stderr, bad.stderr
    paper = run(home, "live", "sma_crossover", "--paper", "--partial-fills", "0.1")
    assert paper.returncode == 2 and "use it with --replay" in paper.stderr


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
    refused = run(home, "live", "sma_crossover", "--paper", "--dry-run", env=KEYS)
    assert refused.returncode == 2 and "promote" in refused.stderr  # not promoted yet
    done = run(home, "run", "sma_crossover", *DAYS, "--quiet", "--no-report", env=LAX_GATES)
    run_id = done.stdout.split("run id:")[1].split()[0]
    assert run(home, "live", "sma_crossover", "--replay", *DAYS, env=LAX_GATES).returncode == 0
    promoted = run(home, "promote", "sma_crossover", "--run", run_id, env=LAX_GATES)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr

    output, code, orders, kinds = _paper_dry_run(home, ("sma_crossover",), bars=390)
    assert code == 0, output[-3000:]
    assert orders == {} and "DRY RUN" in output and "paper-secret-0123" not in output
    assert kinds.count("dry_run") > 0 and "intent" not in kinds and kinds.count("bar") == 390


COMBINED = ("my_sma+rsi_mean_reversion", "--combine", "sum", "--param", "weights=0.6,0.4")
WEEK = ("--from", "2024-03-04", "--to", "2024-03-08", "--symbols", "AAPL,MSFT,TSLA")
KEYS = {"APCA_API_KEY_ID": "PKTESTKEY0123456789", "APCA_API_SECRET_KEY": "paper-secret-0123"}


def test_a_combination_replays_exactly_is_promoted_and_trades_only_as_promoted(home: Path):
    """replay (exact parity), backtest, promote, --paper --dry-run of a combination; then
    other weights and a changed child's source are refused."""
    from barlab.strategy import builtin_dir

    (home / "strategies").mkdir()
    child = home / "strategies" / "my_sma.py"
    child.write_text((builtin_dir() / "sma_crossover.py").read_text())

    replay = run(home, "live", *COMBINED, "--replay", *WEEK, env=LAX_GATES)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "parity score: 1.0000 (EXACT)" in replay.stdout
    (folder,) = (home / "reports" / "runs").glob("*-replay-my_sma+rsi_mean_reversion-*")
    doc = json.loads((folder / "parity.json").read_text())
    assert doc["score"] == 1.0 and doc["exact"] is True and doc["n_bridge"] >= 50
    assert doc["params"]["how"] == "sum" and doc["params"]["weights"] == [0.6, 0.4]
    bars = [json.loads(line) for line in (folder / "journal.jsonl").read_text().splitlines()]
    assert all("combined_state" in r for r in bars if r["kind"] == "bar")

    done = run(home, "run", *COMBINED, *WEEK, "--quiet", "--no-report", env=LAX_GATES)
    run_id = done.stdout.split("run id:")[1].split()[0]
    other = run(home, "promote", *COMBINED[:-1], "weights=0.5,0.5", "--run", run_id)
    assert other.returncode == 2 and "with weights=[0.6, 0.4], not [0.5, 0.5]" in other.stderr
    promoted = run(home, "promote", *COMBINED, "--run", run_id, env=LAX_GATES)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert f"parity: run {folder.name}" in promoted.stdout  # the replay above is the evidence
    record = json.loads((home / "reports/promotions/my_sma+rsi_mean_reversion.json").read_text())
    combination = record["combination"]
    assert combination["how"] == "sum" and combination["weights"] == [0.6, 0.4]
    assert [c["key"] for c in combination["children"]] == ["my_sma", "rsi_mean_reversion"]
    assert combination["children"][0]["params"] == {"fast": 10, "slow": 50, "allow_short": False}
    assert all(len(c["source_sha256"]) == 64 for c in combination["children"])

    output, code, orders, kinds = _paper_dry_run(home, COMBINED, bars=120)
    assert code == 0, output[-3000:]
    assert orders == {} and "DRY RUN" in output and kinds.count("bar") == 120
    assert kinds.count("dry_run") > 0 and "intent" not in kinds

    paper = ("live", *COMBINED[:-1])
    refused = run(home, *paper, "weights=0.5,0.5", "--paper", "--dry-run", env=KEYS)
    assert refused.returncode == 2
    assert "promoted on" in refused.stderr
    assert "weights=[0.6, 0.4], not [0.5, 0.5]" in refused.stderr
    child.write_text(child.read_text() + "\n# changed after the promotion\n")
    refused = run(home, *paper, "weights=0.6,0.4", "--paper", "--dry-run", env=KEYS)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "my_sma.py (my_sma, in my_sma+rsi_mean_reversion) changed since" in refused.stderr
    assert "backtest promote my_sma+rsi_mean_reversion" in refused.stderr


def _paper_dry_run(home: Path, strategy: tuple[str, ...], *, bars: int):
    """``backtest live STRATEGY --paper --dry-run`` against a local emulator of 2024-03-05
    and -06 for ``bars`` bars: its output, exit code, the emulator's orders and the journal's
    record kinds."""
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

    market = load_bars(["AAPL", "MSFT", "TSLA"], dt.date(2024, 3, 5), dt.date(2024, 3, 6),
                       timeframe="1m", source="demo", data_dir=home / "data")  # fmt: skip
    journal = home / "paper.jsonl"
    with EmulatorServer(PaperExchange(market), rate_limit_per_min=None) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BARLAB_", "APCA_"))}
        env.update({**KEYS, **LAX_GATES, "XDG_CONFIG_HOME": str(home / "xdg"),
                    "APCA_API_BASE_URL": server.url, "APCA_DATA_BASE_URL": server.url,
                    "BARLAB_LIVE_DATA_STREAM_URL": server.ws_url,
                    "BARLAB_ALPACA_REQUESTS_PER_MINUTE": "600000"})  # fmt: skip
        with open(home / "paper.out", "wb") as out:
            proc = subprocess.Popen(
                [BACKTEST, "live", *strategy, "--paper", "--dry-run", "--symbols",
                 "AAPL,MSFT,TSLA", "--journal", str(journal)],
                cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            wait_for(journal, "ready", timeout_s=60, alive=lambda: proc.poll() is None)
            drive(server, journal, bars=bars, alive=lambda: proc.poll() is None)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(30)
        orders = dict(server.exchange.orders)
    kinds = [r["kind"] for r in read_journal(journal)]
    return (home / "paper.out").read_text(), code, orders, kinds
