"""The `backtest` console script, run as a user runs it: a subprocess in a fresh directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BACKTEST = shutil.which("backtest", path=os.path.dirname(sys.executable)) or shutil.which(
    "backtest"
)
SECRET = "pk_test_9f8e7d6c5b4a3210SECRET"


def run(home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300):
    assert BACKTEST, "the backtest console script is not installed (pip install -e '.[dev]')"
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BARLAB_", "POLYGON_", "APCA_", "FINNHUB_"))
    }
    clean.update({"XDG_CONFIG_HOME": str(home / "xdg"), **(env or {})})
    return subprocess.run(
        [BACKTEST, *args], cwd=home, env=clean, capture_output=True, text=True, timeout=timeout
    )


RANGE = ("--from", "2023-03-01", "--to", "2023-03-31")


def test_help_is_clear(home):
    top = run(home, "--help")
    assert top.returncode == 0
    for word in ("run", "list", "config", "SYNTHETIC", "backtest run sma_crossover"):
        assert word in top.stdout
    sub = run(home, "run", "--help")
    assert sub.returncode == 0
    for flag in ("--from", "--to", "--symbols", "--timeframe", "--param", "--cash",
                 "--commission", "--slippage-bps", "--fractional", "--source", "--no-report",
                 "--json", "--quiet", "--debug"):  # fmt: skip
        assert flag in sub.stdout


def test_run_on_the_demo_market_says_so_and_saves_everything(home):
    out = run(home, "run", "sma_crossover", *RANGE, "--symbols", "AAPL,MSFT", "--json")
    assert out.returncode == 0, out.stderr
    assert "SYNTHETIC" in out.stderr and "POLYGON_API_KEY" in out.stderr
    doc = json.loads(out.stdout)
    for key in ("run_id", "strategy", "params", "symbols", "start", "end", "source",
                "final_equity", "n_trades", "metrics", "report"):  # fmt: skip
        assert key in doc
    assert doc["source"] == "demo" and doc["synthetic"] is True
    assert doc["symbols"] == ["AAPL", "MSFT"]
    assert doc["params"] == {"fast": 10, "slow": 50, "allow_short": False}
    assert doc["start"].startswith("2023-03-01T14:30") and doc["end"].startswith("2023-03-31T19:59")
    for name in ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "trade_win_rate",
                 "exposure", "fees", "final_equity"):  # fmt: skip
        assert name in doc["metrics"]
    report = home / doc["report"]
    assert report.is_file() and "SYNTHETIC" in report.read_text()
    run_dir = home / "reports" / "runs" / doc["run_id"]
    assert (run_dir / "run.json").is_file() and (run_dir / "trades.parquet").is_file()
    assert list((home / "data" / "bars" / "source=demo" / "timeframe=1m").iterdir())

    again = run(home, "run", "sma_crossover", *RANGE, "--symbols", "AAPL,MSFT", "--json")
    second = json.loads(again.stdout)
    assert second["run_id"] != doc["run_id"]
    assert second["metrics"] == doc["metrics"]
    assert second["data_version"] == doc["data_version"]


def test_human_summary_and_overrides(home):
    out = run(home, "run", "sma_crossover", *RANGE, "--symbols", "TSLA", "--param", "fast=5",
              "--param", "slow=30", "--timeframe", "5m", "--cash", "50000", "--commission",
              "0.001", "--slippage-bps", "3", "--fractional", "--no-report")  # fmt: skip
    assert out.returncode == 0, out.stderr
    expected = ["sma_crossover(fast=5, slow=30, allow_short=False)", "buy & hold", "Sharpe",
                "Max drawdown", "Final equity", "run id:", "SYNTHETIC", "5m bars"]  # fmt: skip
    for words in expected:
        assert words in out.stdout
    assert "report:" not in out.stdout
    run_id = out.stdout.split("run id: ")[1].split()[0]
    doc = json.loads((home / "reports" / "runs" / run_id / "run.json").read_text())
    opts = doc["info"]["options"]
    assert opts["cash"] == 50_000 and opts["fractional"] is True
    assert opts["costs"]["commission_rate"] == 0.001 and opts["costs"]["slippage_bps"] == 3


def test_list_and_config_show(home):
    out = run(home, "list")
    assert out.returncode == 0
    assert "sma_crossover" in out.stdout and "fast: int = 10" in out.stdout
    (home / ".env").write_text(f"POLYGON_API_KEY={SECRET}\n")
    (home / "backtest.toml").write_text("[risk]\ndaily_loss_limit = 1500\n")
    shown = run(home, "config", "show", env={"APCA_API_SECRET_KEY": SECRET})
    assert shown.returncode == 0
    assert SECRET not in shown.stdout + shown.stderr
    assert "daily_loss_limit = 1500.0" in shown.stdout and "****" in shown.stdout


def test_secrets_never_reach_saved_runs(home):
    out = run(home, "run", "sma_crossover", *RANGE, "--symbols", "AAPL", "--source", "demo",
              env={"POLYGON_API_KEY": SECRET, "APCA_API_SECRET_KEY": SECRET})  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert SECRET not in out.stdout + out.stderr
    for path in (home / "reports").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("run", "sma_crosover", "--from", "2023-01-01"), 2, ["did you mean sma_crossover"]),
        (("run", "sma_crossover", "--from", "2023-13-01"), 2, ["--from: '2023-13-01' is not"]),
        (("run", "sma_crossover", "--from", "2023-02-01", "--to", "2023-01-01"), 2, ["after"]),
        (("run", "sma_crossover", "--from", "2023-12-25", "--to", "2023-12-25"), 2,
         ["no trading days"]),
        (("run", "sma_crossover", *RANGE, "--symbols", "ZZZZ"), 2, ["unknown symbol 'ZZZZ'"]),
        (("run", "sma_crossover", *RANGE, "--source", "bloomberg"), 2, ["invalid choice"]),
        (("run", "sma_crossover", *RANGE, "--param", "fast=60"), 2, ["must be smaller than slow"]),
        (("run", "sma_crossover", *RANGE, "--param", "speed=3"), 2, ["no parameter 'speed'"]),
        (("run", "sma_crossover", *RANGE, "--param", "fast"), 2, ["expected NAME=VALUE"]),
        (("run", "sma_crossover", *RANGE, "--source", "polygon"), 1, ["polygon"]),
    ],
)  # fmt: skip
def test_bad_input_gets_one_clear_line(home, args, code, words):
    out = run(home, *args)
    assert out.returncode == code, out.stderr
    assert "Traceback" not in out.stderr
    for word in words:
        assert word in out.stderr
    leftovers = [p for p in home.rglob("*") if ".tmp" in p.name or p.name.endswith(".tmp")]
    assert not leftovers


def test_bad_config_is_a_usage_error(home):
    (home / "backtest.toml").write_text("[risk]\nmax_positon_size = 5\n")
    out = run(home, "run", "sma_crossover", *RANGE)
    assert out.returncode == 2
    assert "unknown key 'max_positon_size'" in out.stderr and "Traceback" not in out.stderr


def test_corrupt_cache_file_is_named(home):
    first = run(home, "run", "sma_crossover", *RANGE, "--symbols", "AAPL", "--no-report")
    assert first.returncode == 0, first.stderr
    part = next((home / "data").rglob("2023-03.parquet"))
    part.write_bytes(b"not parquet at all")
    out = run(home, "run", "sma_crossover", *RANGE, "--symbols", "AAPL", "--no-report")
    assert out.returncode == 1
    assert str(part.name) in out.stderr and "Traceback" not in out.stderr
    debug = run(home, "run", "sma_crossover", *RANGE, "--symbols", "AAPL", "--debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


@pytest.mark.slow
def test_warmup_compiles_into_the_configured_cache(home):
    cache = home / "kernels"
    (home / "backtest.toml").write_text(f'[system]\nnumba_cache_dir = "{cache}"\n')
    out = run(home, "warmup")
    assert out.returncode == 0, out.stderr
    assert "sma_crossover" in out.stdout and f"cache: {cache}" in out.stdout
    assert list(cache.rglob("*.nbi")), "no kernel was cached there"
    # compiled ahead: a run loads the kernels and says nothing about compiling them
    warm = run(home, "run", "sma_crossover", *RANGE, "--symbols", "AAPL", "--no-report")
    assert warm.returncode == 0 and "compiling" not in warm.stderr


def test_a_cold_kernel_cache_is_recognised(home, monkeypatch):
    """`backtest run` announces the first compilation when this says the cache is cold."""
    from barlab.engine.warmup import kernels_cached

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(home / "empty"))
    assert not kernels_cached()
    made = home / "warm" / "engine_0123" / "kernel.simulate_nb-321.py311.nbi"
    made.parent.mkdir(parents=True)
    made.write_bytes(b"")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(home / "warm"))
    assert kernels_cached()


def test_an_unwritable_kernel_cache_is_a_clear_error(home):
    blocker = home / "file"
    blocker.write_text("")
    out = run(home, "warmup", env={"NUMBA_CACHE_DIR": str(blocker / "cache")})
    assert out.returncode == 2
    assert "numba cache directory" in out.stderr and "NUMBA_CACHE_DIR" in out.stderr
