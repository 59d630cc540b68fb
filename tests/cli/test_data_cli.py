"""`backtest data ...` end to end: the console script against the Polygon emulator on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time

import pytest

from barlab.data.store import Store
from tests.cli.test_cli import BACKTEST, run
from tests.emulators.base import Emulator, Reply, Request
from tests.emulators.polygon import polygon_app

KEY = "test-key-0123456789abcdef"
BAD_DAY = dt.date(2024, 3, 12)


@pytest.fixture
def polygon():
    app = polygon_app(keys={KEY: "paid"}, today=dt.date(2024, 7, 1), bad_days=frozenset({BAD_DAY}))
    with Emulator(app) as server:
        yield server


def env_for(server: Emulator, key: str = KEY) -> dict[str, str]:
    return {
        "POLYGON_API_KEY": key,
        "POLYGON_BASE_URL": server.url,
        "POLYGON_REQUESTS_PER_MINUTE": "100000",
    }


SPRING = ("--from", "2024-03-01", "--to", "2024-04-30")


def test_download_status_resume_and_backtest_on_polygon(home, polygon):
    env = env_for(polygon)
    out = run(home, "data", "download", "AAPL", "MSFT", *SPRING, env=env)
    assert out.returncode == 0, out.stderr
    assert "AAPL:" in out.stdout and "from polygon, 2 month(s) fetched" in out.stdout
    assert "2 bad bar(s) quarantined" in out.stdout
    asked = len(polygon.requests)
    assert asked == 4  # 2 symbols x 2 months, one page each
    assert KEY not in out.stdout + out.stderr

    again = run(home, "data", "download", "AAPL", "MSFT", *SPRING, env=env)
    assert again.returncode == 0 and "already cached" in again.stdout
    assert len(polygon.requests) == asked  # a finished download asks for nothing

    status = run(home, "data", "status", env=env)
    assert status.returncode == 0
    rows = [line.split() for line in status.stdout.splitlines() if line.startswith("polygon")]
    assert [r[2] for r in rows] == ["AAPL", "MSFT"]
    assert all(r[3:5] == ["2024-03-01", "2024-04-30"] and r[6] == "2" for r in rows)
    assert run(home, "data", "verify", env=env).returncode == 0
    info = Store(home / "data").info(source="polygon", timeframe="1m", symbol="AAPL",
                                     month="2024-03")  # fmt: skip
    assert info.provenance == {"adjusted": "true"} and info.n_bars > 0 and info.fetched_at

    bt = run(home, "run", "sma_crossover", "--source", "polygon", "--symbols", "AAPL,MSFT",
             *SPRING, "--json", env=env)  # fmt: skip
    assert bt.returncode == 0, bt.stderr
    doc = json.loads(bt.stdout)
    assert doc["source"] == "polygon" and doc["synthetic"] is False
    assert "SYNTHETIC" not in bt.stderr
    assert doc["start"].startswith("2024-03-01T14:30")  # regular hours only by default
    assert len(polygon.requests) == asked


def test_unknown_symbol_and_bad_key_are_clear(home, polygon):
    out = run(home, "data", "download", "ZZZZ", *SPRING, env=env_for(polygon))
    assert out.returncode == 1
    assert "no bars for ZZZZ between 2024-03-01 and 2024-04-30 from polygon" in out.stderr
    wrong = "wrong-key-ABCDEFGHIJKLMNOP"
    bad = run(home, "data", "download", "AAPL", *SPRING, env=env_for(polygon, wrong))
    assert bad.returncode == 1
    assert "POLYGON_API_KEY" in bad.stderr and wrong not in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_killed_download_leaves_a_readable_cache_and_resumes(home, polygon):
    slow = polygon.app

    def app(request: Request) -> Reply:
        time.sleep(0.3)
        return slow(request)

    polygon.app = app
    env = env_for(polygon)
    args = ["data", "download", "AAPL", "MSFT", "NVDA", "--from", "2024-01-01", "--to",
            "2024-04-30", "--quiet"]  # fmt: skip
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BARLAB_", "POLYGON_"))}
    clean.update({"XDG_CONFIG_HOME": str(home / "xdg"), **env})
    proc = subprocess.Popen([BACKTEST, *args], cwd=home, env=clean,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    while len(polygon.requests) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.15)  # mid-request, mid-write: anywhere
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    done_before = len(list((home / "data" / "bars").rglob("[0-9]*.parquet")))
    assert 0 < done_before < 12

    assert run(home, "data", "verify", env=env).returncode == 0  # every file readable
    polygon.app = slow
    before = len(polygon.requests)
    rest = run(home, *args, env=env)
    assert rest.returncode == 0, rest.stderr
    assert len(polygon.requests) - before == 12 - done_before  # only what was missing
    assert len(list((home / "data" / "bars").rglob("[0-9]*.parquet"))) == 12
    assert not list(home.rglob("*.tmp"))


def test_failover_to_alpaca_through_the_cli(home, polygon):
    from tests.emulators.alpaca import KEY_ID, SECRET_KEY, alpaca_app

    (home / "backtest.toml").write_text('[data]\nfallback = ["polygon", "alpaca"]\n')
    with Emulator(alpaca_app()) as alpaca:
        env = {
            **env_for(polygon, "wrong-key-ABCDEFGHIJKLMNOP"),
            "APCA_API_KEY_ID": KEY_ID,
            "APCA_API_SECRET_KEY": SECRET_KEY,
            "APCA_DATA_BASE_URL": alpaca.url,
        }
        out = run(home, "data", "download", "AAPL", "--from", "2024-03-01", "--to",
                  "2024-03-31", env=env)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "from alpaca" in out.stdout and "after: polygon" in out.stdout
        assert len(alpaca.requests) >= 1
        for secret in (SECRET_KEY, "wrong-key-ABCDEFGHIJKLMNOP"):
            assert secret not in out.stdout + out.stderr
        bt = run(home, "run", "sma_crossover", "--source", "alpaca", "--symbols", "AAPL",
                 "--from", "2024-03-01", "--to", "2024-03-31", "--json", env=env)  # fmt: skip
        assert bt.returncode == 0, bt.stderr
        assert json.loads(bt.stdout)["source"] == "alpaca"
