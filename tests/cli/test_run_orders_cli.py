"""`backtest run` with attached exits, ATR exits and margin, from flags and from the config."""

from __future__ import annotations

import json

from tests.cli.test_cli import RANGE, run


def _orders(home, run_id):
    import polars as pl

    return pl.read_parquet(home / "reports" / "runs" / run_id / "orders.parquet")


def test_atr_exits_and_margin_from_flags(home):
    out = run(home, "run", "sma_crossover", *RANGE, "--symbols", "AAPL", "--stop-loss-atr", "1",
              "--take-profit-atr", "2", "--atr-window", "20", "--margin", "2", "--no-report",
              "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    run_json = json.loads((home / "reports" / "runs" / doc["run_id"] / "run.json").read_text())
    opts = run_json["info"]["options"]
    assert (opts["stop_loss_atr"], opts["take_profit_atr"], opts["atr_window"]) == (1, 2, 20)
    assert opts["margin"] == 2 and opts["stop_loss"] is None
    kinds = set(_orders(home, doc["run_id"])["kind"].to_list())
    assert {"stop_loss", "take_profit"} <= kinds  # ATR exits fired on a month of minute bars


def test_exits_from_the_config_and_the_ambiguous_count(home):
    (home / "backtest.toml").write_text(
        '[backtest]\nstop_loss = 0.0005\ntake_profit = 0.0005\nfill_policy = "optimistic"\n'
    )
    out = run(home, "run", "sma_crossover", *RANGE, "--symbols", "AAPL", "--no-report",
              "--no-lookahead-check")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "exited on a bar that reached both the stop and the target" in out.stdout
    assert "the optimistic fill policy decided them" in out.stdout
    again = run(home, "run", "sma_crossover", *RANGE, "--symbols", "AAPL", "--no-report",
                "--no-lookahead-check", "--json")  # fmt: skip
    ambiguous = json.loads(again.stdout)["ambiguous"]
    assert ambiguous["trades"] > 0 and ambiguous["pnl"] != 0.0


def test_contradicting_exit_options_are_one_clear_line(home):
    out = run(home, "run", "sma_crossover", *RANGE, "--stop-loss", "0.02", "--stop-loss-atr", "2")
    assert out.returncode == 2
    assert "not both" in out.stderr and "Traceback" not in out.stderr
    out = run(home, "run", "sma_crossover", *RANGE, "--margin", "0.5")
    assert out.returncode == 2
    assert "margin is buying power" in out.stderr
