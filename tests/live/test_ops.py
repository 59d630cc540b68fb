"""Operations: /metrics scraped over loopback and parsed as Prometheus does, /health, JSON log
lines without keys, and one shutdown callback however many SIGTERMs arrive."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from barlab.live.logs import JsonFormatter, configure_json_logging
from barlab.live.ops import BridgeMetrics, Health, OpsServer
from barlab.live.shutdown import GracefulShutdown
from tests.live.conftest import KEY_ID, SECRET

BAR_NS = 1_709_649_000 * 10**9  # 2024-03-05 14:30 UTC


@pytest.fixture
def ops():
    metrics, health = BridgeMetrics(), Health()
    with OpsServer(metrics, health, port=0) as server:
        yield metrics, health, server


def _scrape(server) -> dict[str, dict[tuple, float]]:
    """``{family name: {(sample name, sorted labels): value}}`` as Prometheus parses it."""
    response = requests.get(f"{server.url}/metrics", timeout=5)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/")
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        out[family.name] = {
            (s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples
        }
    return out


def test_every_metric_is_exposed_and_updated(ops):
    metrics, _, server = ops
    assert server.url.startswith("http://127.0.0.1:")
    before = _scrape(server)
    for name in ("barlab_bars_received", "barlab_feed_latency_seconds",
                 "barlab_last_bar_timestamp_seconds", "barlab_order_submit_latency_seconds",
                 "barlab_orders", "barlab_position_shares", "barlab_equity_usd",
                 "barlab_daily_pnl_usd", "barlab_api_calls", "barlab_rate_limit_waits",
                 "barlab_rate_limit_wait_seconds", "barlab_halted"):  # fmt: skip
        assert name in before, name
    for latency in (0.4, 0.9, 1.2, 7.0):
        metrics.bar_received(latency, bar_ts_ns=BAR_NS)
    metrics.bar_received(float("nan"))  # backfilled: counted, no latency
    metrics.order_submitted(0.08, "accepted")
    metrics.order_submitted(0.3, "rejected")
    metrics.order_status("filled")
    metrics.set_positions({"AAPL": 100, "TSLA": -20})
    metrics.set_positions({"AAPL": 50})
    metrics.set_equity(100_512.25)
    metrics.set_daily_pnl(-312.5)
    metrics.api_call(api="trading", status=200)
    metrics.api_call(api="trading", status=429)
    metrics.api_call(api="data", status=200)
    metrics.rate_limit_wait(1.5)
    metrics.set_halted(True)
    m = _scrape(server)
    assert m["barlab_bars_received"][("barlab_bars_received_total", ())] == 5
    feed = m["barlab_feed_latency_seconds"]
    assert feed[("barlab_feed_latency_seconds_count", ())] == 4
    assert feed[("barlab_feed_latency_seconds_sum", ())] == pytest.approx(9.5)
    assert feed[("barlab_feed_latency_seconds_bucket", (("le", "1.0"),))] == 2
    assert feed[("barlab_feed_latency_seconds_bucket", (("le", "+Inf"),))] == 4
    assert (
        m["barlab_last_bar_timestamp_seconds"][("barlab_last_bar_timestamp_seconds", ())]
        == BAR_NS / 1e9
    )
    submit = m["barlab_order_submit_latency_seconds"]
    assert submit[("barlab_order_submit_latency_seconds_count", ())] == 2
    orders = m["barlab_orders"]
    for status in ("accepted", "rejected", "filled"):
        assert orders[("barlab_orders_total", (("status", status),))] == 1
    positions = m["barlab_position_shares"]
    assert positions[("barlab_position_shares", (("symbol", "AAPL"),))] == 50
    assert positions[("barlab_position_shares", (("symbol", "TSLA"),))] == 0
    assert m["barlab_equity_usd"][("barlab_equity_usd", ())] == 100_512.25
    assert m["barlab_daily_pnl_usd"][("barlab_daily_pnl_usd", ())] == -312.5
    calls = m["barlab_api_calls"]
    assert calls[("barlab_api_calls_total", (("api", "trading"), ("status", "429")))] == 1
    assert calls[("barlab_api_calls_total", (("api", "data"), ("status", "200")))] == 1
    assert m["barlab_rate_limit_waits"][("barlab_rate_limit_waits_total", ())] == 1
    waited = m["barlab_rate_limit_wait_seconds"]
    assert waited[("barlab_rate_limit_wait_seconds_total", ())] == 1.5
    assert m["barlab_halted"][("barlab_halted", ())] == 1


def test_feed_latency_quantiles_interpolate_like_prometheus():
    metrics = BridgeMetrics()
    assert metrics.feed_latency_quantiles() == {"p50": None, "p95": None, "p99": None}
    for latency in [0.8] * 50 + [1.2] * 45 + [2.5] * 4 + [45.0]:
        metrics.bar_received(latency)
    q = metrics.feed_latency_quantiles()
    assert q["p50"] == pytest.approx(0.75 + 0.25 * 50 / 50)  # all 50 in (0.75, 1.0]
    assert q["p95"] == pytest.approx(1.0 + 0.5 * 45 / 45)  # 45 in (1.0, 1.5]
    assert q["p99"] == pytest.approx(2.0 + 1.0 * 4 / 4)  # 4 in (2.0, 3.0]
    metrics.bar_received(120.0)
    assert metrics.feed_latency_quantiles((1.0,)) == {"p100": 60.0}  # beyond the last bucket


def test_two_bridges_keep_their_own_registries():
    a, b = BridgeMetrics(), BridgeMetrics()
    a.bar_received(1.0)
    assert b"barlab_bars_received_total 1.0" in a.render()
    assert b"barlab_bars_received_total 0.0" in b.render()


def test_health_reports_what_the_bridge_registered(ops):
    _, health, server = ops
    url = f"{server.url}/health"
    state = {"feed": True, "broker": True, "halted": False}
    health.register("feed_connected", lambda: state["feed"])
    health.register("broker_reachable", lambda: state["broker"])
    health.register("halted", lambda: state["halted"])
    health.register("last_bar_ns", lambda: np.int64(BAR_NS))
    health.register("strategy", lambda: "sma_crossover")
    health.register("feed_latency_s", lambda: {"p50": 0.8, "p99": float("nan")})
    response = requests.get(url, timeout=5)
    doc = response.json()
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    assert doc["status"] == "ok" and doc["feed_connected"] and doc["broker_reachable"]
    assert doc["last_bar_time"] == "2024-03-05T14:30:00Z" and doc["strategy"] == "sma_crossover"
    assert doc["time"].endswith("Z") and doc["feed_latency_s"] == {"p50": 0.8, "p99": None}
    state["feed"] = False
    response = requests.get(url, timeout=5)
    assert response.status_code == 503 and response.json()["status"] == "degraded"
    state["feed"], state["halted"] = True, True
    response = requests.get(url, timeout=5)
    assert response.status_code == 200 and response.json()["status"] == "halted"

    def broken() -> bool:
        raise ConnectionError(f"cannot reach broker with key {SECRET}")

    state["halted"] = False
    health.register("broker_reachable", broken)
    response = requests.get(url, timeout=5)
    assert response.json()["status"] == "degraded" and SECRET not in response.text
    assert requests.get(f"{server.url}/nope", timeout=5).status_code == 404


def test_nothing_registered_is_degraded():
    doc = Health().snapshot()
    assert doc["status"] == "degraded" and doc["last_bar_time"] is None


def _logger(stream: io.StringIO, **kwargs) -> logging.Logger:
    logger = logging.getLogger(f"barlab.test_ops.{id(stream)}")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(**kwargs))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return logger


def test_json_log_lines_parse_and_never_hold_a_key(monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    stream = io.StringIO()
    log = _logger(stream, static={"strategy": "sma_crossover"})
    log.info("order sent %s", "AAPL", extra={"symbol": "AAPL", "qty": 10, "price": 187.5})
    log.warning("auth with %s failed", KEY_ID, extra={"headers": {"APCA-API-KEY-ID": KEY_ID}})
    log.info("keys", extra={"secret_key": "hunter2-not-registered", "url": f"/v2?k={SECRET}"})
    log.debug("odd values", extra={"latency_s": float("nan"), "when": time.gmtime(0)})
    try:
        raise RuntimeError(f"boom {SECRET}")
    except RuntimeError:
        log.exception("submit failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5
    docs = [json.loads(line) for line in lines]
    for line, doc in zip(lines, docs, strict=True):
        assert KEY_ID not in line and SECRET not in line and "hunter2" not in line
        assert {"time", "level", "logger", "message", "strategy"} <= set(doc)
        assert doc["time"].endswith("Z") and doc["strategy"] == "sma_crossover"
    first = docs[0]
    assert first["message"] == "order sent AAPL" and first["level"] == "INFO"
    assert (first["symbol"], first["qty"], first["price"]) == ("AAPL", 10, 187.5)
    assert docs[1]["message"] == "auth with *** failed"
    assert docs[1]["headers"] == {"APCA-API-KEY-ID": "***"}
    assert docs[2]["secret_key"] == "***" and docs[2]["url"] == "/v2?k=***"
    assert docs[3]["latency_s"] == "nan"
    assert docs[4]["level"] == "ERROR" and "RuntimeError: boom ***" in docs[4]["exc_info"]


def test_configure_json_logging_owns_the_root_logger():
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    stream = io.StringIO()
    try:
        handler = configure_json_logging("INFO", stream=stream, secrets=["explicit-secret-1"])
        assert root.handlers == [handler]
        logging.getLogger("barlab.live.bridge").info("started with explicit-secret-1")
        logging.getLogger("barlab.live.bridge").debug("not shown")
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["message"] == "started with ***"


def test_sigterm_runs_the_shutdown_callback_once():
    calls: list[str] = []
    previous = signal.getsignal(signal.SIGTERM)
    with GracefulShutdown(calls.append) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5.0) and stop.reason == "SIGTERM"
        assert stop.trigger("again") is False
    assert calls == ["SIGTERM"]
    assert signal.getsignal(signal.SIGTERM) is previous


def test_a_failing_callback_still_completes_the_shutdown():
    def boom(reason: str) -> None:
        raise RuntimeError("cancel failed")

    stop = GracefulShutdown(boom, signals=())
    assert stop.trigger("test") is True and stop.event.is_set() and stop.triggered


def test_sigterm_to_a_process_stops_it_cleanly(tmp_path):
    script = textwrap.dedent(
        """
        import sys, time
        from barlab.live.shutdown import GracefulShutdown
        calls = []
        with GracefulShutdown(lambda why: calls.append(why)) as stop:
            print("ready", flush=True)
            stop.wait(20)
            time.sleep(0.2)  # a second SIGTERM arrives while shutting down
        print("stopped", calls, flush=True)
        print("prometheus_client" in sys.modules, flush=True)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    out, _ = child.communicate(timeout=20)
    assert child.returncode == 0
    assert out.splitlines() == ["stopped ['SIGTERM']", "False"]


def test_import_barlab_does_not_load_prometheus_client():
    code = (
        "import sys, barlab, barlab.live.promotion, barlab.live.logs, barlab.live.shutdown; "
        "import barlab.live.ops; print('prometheus_client' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
