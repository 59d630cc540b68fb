"""The bridge process killed (SIGKILL) mid-day, while it sends an order (or between the two
halves of a flip), and started again: no order placed twice, only the missing half of a flip
sent, positions reconciled, the journal consistent, parity still exact."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from barlab.data.panel import load_bars
from barlab.live.journal import read_journal, wait_for
from barlab.live.parity import backtest_orders, compare
from barlab.live.replay import bridge_orders, drive, make_server
from barlab.strategies.sma_crossover import SmaCrossover
from tests.live.conftest import KEY_ID, SECRET
from tests.live.test_bridge import config

ROOT = Path(__file__).resolve().parents[2]


def start(url: str, journal: Path, symbols: str, *extra: str) -> subprocess.Popen:
    """The bridge in its own process; its stderr goes to ``journal``.stderr."""
    env = {**os.environ, "APCA_API_KEY_ID": KEY_ID, "APCA_API_SECRET_KEY": SECRET}
    with open(journal.with_suffix(".stderr"), "ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.live.bridge_proc", url, str(journal), symbols, *extra],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def kill_while_sending(server, journal: Path, proc: subprocess.Popen, kind: bytes) -> int:
    """Close bars until the bridge journals a ``kind`` record (an order intent, or the broker's
    answer to it), then SIGKILL it at once, before it finishes the bar. Returns the bar time
    it was killed at."""
    ex = server.exchange
    while True:
        offset = size(journal)
        row = server.advance()  # a deferred opening half (a flip) then fills a bar later
        ts = int(ex.bars.ts_ns[row])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            new = journal.read_bytes()[offset:]
            if b'"kind": "%s"' % kind in new:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                return ts
            if b'"kind": "bar"' in new:
                break
            time.sleep(0.0002)
        else:
            raise TimeoutError(f"the bridge did not act on bar {ts}")


@pytest.mark.parametrize(
    ("kill_on", "short"), [(b"intent", False), (b"submit", False), (b"deferred", True)]
)
def test_killed_mid_day_and_restarted(tmp_path: Path, kill_on: bytes, short: bool):
    bars = load_bars(
        ["AAPL", "MSFT", "TSLA"], dt.date(2024, 3, 5), dt.date(2024, 3, 6), timeframe="1m",
        source="demo", data_dir=tmp_path / "data",
    )  # fmt: skip
    cfg = config(size_pct=0.5) if short else config()  # as bridge_proc runs it
    journal = tmp_path / "journal.jsonl"
    server = make_server(bars, cfg.options, key_id=KEY_ID, secret_key=SECRET)
    with server:
        extra = ("short",) if short else ()
        first = start(server.url, journal, ",".join(bars.symbols), *extra)
        try:
            wait_for(journal, "ready", timeout_s=60, alive=lambda: first.poll() is None)
            drive(server, journal, bars=250)
            killed_at = kill_while_sending(server, journal, first, kill_on)
        finally:
            if first.poll() is None:
                first.kill()
        second = start(server.url, journal, ",".join(bars.symbols), *extra)
        try:
            offset = size(journal)
            wait_for(journal, "ready", offset=offset, timeout_s=60,
                     alive=lambda: second.poll() is None)  # fmt: skip
            # the bar it was killed in is finished by one of the two (the first may have
            # written its bar record just before it died)
            wait_for(journal, "bar", ts_ns=killed_at, timeout_s=60)
            drive(server, journal, alive=lambda: second.poll() is None)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0, journal.with_suffix(".stderr").read_text()[-2000:]
        from barlab.live.broker import AlpacaBroker

        broker = AlpacaBroker(server.url, KEY_ID, SECRET, requests_per_minute=600_000.0)
        live = bridge_orders(broker, journal)
        held = {p.symbol: p.qty for p in broker.list_positions()}
        orders = list(server.exchange.orders.values())

    records = list(read_journal(journal))
    # no order placed twice: one order per symbol and bar at the broker (and one opening half
    # of a flip, sent at the next bar's open), one accepted submit per client order id
    opening = {r["client_order_id"] for r in records if r["kind"] == "deferred"}
    assert len(opening) >= (5 if short else 0)
    placed = Counter((o.symbol, o.created_ns, o.client_order_id in opening) for o in orders)
    assert max(placed.values()) == 1
    accepted = Counter(r["client_order_id"] for r in records
                       if r["kind"] == "submit" and r.get("order_id"))  # fmt: skip
    assert max(accepted.values()) == 1 and len(accepted) == len(orders)
    # the journal: every bar acted on exactly once, across both processes; two starts, each
    # reconciled with the broker, the second resuming the first
    assert [r["ts_ns"] for r in records if r["kind"] == "bar"] == bars.ts_ns.tolist()
    starts = [r for r in records if r["kind"] == "start"]
    assert [s["resumed"] for s in starts] == [False, True]
    if short:  # killed between a flip's halves: the second process sent the opening half
        (half,) = {r["client_order_id"] for r in records
                   if r["kind"] == "deferred" and r["bar_ts_ns"] == killed_at}  # fmt: skip
        second_start = records.index(starts[1])
        sent = [i for i, r in enumerate(records)
                if r["kind"] == "intent" and r["client_order_id"] == half]  # fmt: skip
        assert len(sent) == 1 and sent[0] > second_start
    assert sum(r["kind"] == "reconcile" for r in records) >= 2
    # and the whole run is still the backtest, order by order
    report = compare(
        backtest_orders(SmaCrossover(allow_short=short), bars, cfg.options), live,
        bridge_positions={s: float(held.get(s, 0.0)) for s in bars.symbols},
    )  # fmt: skip
    assert report.exact, (report.summary(), report.missed, report.mismatched[:3])
