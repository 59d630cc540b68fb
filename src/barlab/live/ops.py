"""Operating the live bridge: its Prometheus metrics (:class:`BridgeMetrics`) and a small HTTP
server (:class:`OpsServer`) on 127.0.0.1 serving ``/metrics`` (Prometheus text format) and
``/health`` (JSON fed by callables the bridge registers, :class:`Health`).

prometheus-client comes with the ``[live]`` extra and is imported only here, when a
:class:`BridgeMetrics` is made (``import barlab`` never loads it).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

FEED_LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
"""Seconds from a minute bar's end to its arrival: about 1 s at Alpaca, so the buckets are
dense around 1 s (p50/p95/p99 by ``histogram_quantile``) and reach a minute for outages."""
SUBMIT_LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds from sending an order to the broker's answer (about 0.1 s; retries reach seconds)."""
HEALTH_STATES = ("ok", "degraded", "halted")


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as e:  # pragma: no cover - the [live] extra is installed in tests
        from barlab.errors import ConfigError

        raise ConfigError(
            "the bridge's metrics need prometheus-client: pip install 'barlab[live]'"
        ) from e
    return prometheus_client


class BridgeMetrics:
    """The bridge's metrics, on their own registry (names start with ``barlab_``).

    ======================================  =========  ==========================================
    metric                                  type       what
    ======================================  =========  ==========================================
    barlab_bars_received_total              counter    closed minute bars received
    barlab_feed_latency_seconds             histogram  bar end to arrival, seconds
    barlab_last_bar_timestamp_seconds       gauge      start of the last bar, Unix seconds
    barlab_order_submit_latency_seconds     histogram  order sent to the broker's answer
    barlab_orders_total{status}             counter    orders by status (new, filled, rejected...)
    barlab_position_shares{symbol}          gauge      shares held (negative: short)
    barlab_equity_usd                       gauge      account equity, USD
    barlab_daily_pnl_usd                    gauge      equity minus the last close's, USD
    barlab_api_calls_total{api,status}      counter    REST calls by API and HTTP status
    barlab_rate_limit_waits_total           counter    waits for the rate limit
    barlab_rate_limit_wait_seconds_total    counter    seconds spent waiting for it
    barlab_halted                           gauge      1 after the kill switch, else 0
    ======================================  =========  ==========================================

    Every method is thread-safe (the feed, the broker and the main loop call them).
    """

    def __init__(self, *, registry: Any = None) -> None:
        pc = _prometheus()
        self.registry = registry if registry is not None else pc.CollectorRegistry()
        reg = {"registry": self.registry}
        self._bars = pc.Counter("barlab_bars_received", "Closed bars received.", **reg)
        self._feed_latency = pc.Histogram(
            "barlab_feed_latency_seconds", "Bar end to arrival, seconds.",
            buckets=FEED_LATENCY_BUCKETS_S, **reg,
        )  # fmt: skip
        self._last_bar = pc.Gauge(
            "barlab_last_bar_timestamp_seconds", "Start of the last bar, Unix seconds.", **reg
        )
        self._submit_latency = pc.Histogram(
            "barlab_order_submit_latency_seconds", "Order sent to the broker's answer, seconds.",
            buckets=SUBMIT_LATENCY_BUCKETS_S, **reg,
        )  # fmt: skip
        self._orders = pc.Counter("barlab_orders", "Orders by status.", ["status"], **reg)
        self._positions = pc.Gauge(
            "barlab_position_shares", "Shares held per symbol.", ["symbol"], **reg
        )
        self._equity = pc.Gauge("barlab_equity_usd", "Account equity, USD.", **reg)
        self._daily_pnl = pc.Gauge("barlab_daily_pnl_usd", "P&L since the last close, USD.", **reg)
        self._api = pc.Counter("barlab_api_calls", "REST calls.", ["api", "status"], **reg)
        self._waits = pc.Counter("barlab_rate_limit_waits", "Rate-limit waits.", **reg)
        self._wait_s = pc.Counter(
            "barlab_rate_limit_wait_seconds", "Seconds waited for the rate limit.", **reg
        )
        self._halted = pc.Gauge("barlab_halted", "1 once the kill switch halted trading.", **reg)
        self._lock = threading.Lock()
        self._held: set[str] = set()

    def bar_received(self, latency_s: float, *, bar_ts_ns: int | None = None) -> None:
        """A closed bar arrived ``latency_s`` seconds after its end (e.g. 0.9); ``bar_ts_ns``
        is its start (UTC ns). A backfilled bar: pass ``math.nan`` (counted, no latency)."""
        self._bars.inc()
        if math.isfinite(latency_s):
            self._feed_latency.observe(max(0.0, latency_s))
        if bar_ts_ns is not None:
            self._last_bar.set(bar_ts_ns / 1e9)

    def order_submitted(self, latency_s: float, status: str) -> None:
        """An order was answered after ``latency_s`` seconds (e.g. 0.12) with ``status``
        (Alpaca's: ``"accepted"``, ``"new"``, ``"rejected"``...)."""
        if math.isfinite(latency_s):
            self._submit_latency.observe(max(0.0, latency_s))
        self._orders.labels(status=str(status)).inc()

    def order_status(self, status: str) -> None:
        """An order reached ``status`` later (a trade update: ``"filled"``, ``"canceled"``)."""
        self._orders.labels(status=str(status)).inc()

    def set_positions(self, positions: Mapping[str, float]) -> None:
        """The whole book, symbol -> shares (``{"AAPL": 100, "TSLA": -20}``); symbols no
        longer held are reported as 0."""
        with self._lock:
            for symbol in self._held - set(positions):
                self._positions.labels(symbol=symbol).set(0.0)
            for symbol, shares in positions.items():
                self._positions.labels(symbol=symbol).set(float(shares))
            self._held = set(positions)

    def set_equity(self, equity_usd: float) -> None:
        """Account equity, USD (e.g. 100_512.25)."""
        self._equity.set(float(equity_usd))

    def set_daily_pnl(self, pnl_usd: float) -> None:
        """P&L of the session so far, USD (e.g. -312.5)."""
        self._daily_pnl.set(float(pnl_usd))

    def api_call(self, *, api: str = "trading", status: int | str = 200) -> None:
        """One REST call to ``api`` (``"trading"`` or ``"data"``) answered with ``status``
        (an HTTP status, or ``"error"`` when no answer came)."""
        self._api.labels(api=api, status=str(status)).inc()

    def rate_limit_wait(self, wait_s: float) -> None:
        """The client waited ``wait_s`` seconds for its rate limit (or a 429's Retry-After)."""
        self._waits.inc()
        self._wait_s.inc(max(0.0, float(wait_s)))

    def set_halted(self, halted: bool) -> None:
        self._halted.set(1.0 if halted else 0.0)

    def feed_latency_quantiles(self, qs: tuple[float, ...] = (0.5, 0.95, 0.99)) -> dict[str, Any]:
        """Feed latency quantiles in seconds from the histogram, interpolated within buckets
        as Prometheus' ``histogram_quantile`` does: ``{"p50": 0.8, "p95": 1.4, "p99": 2.7}``
        (None before the first bar)."""
        bounds, counts = [], []
        for sample in self._feed_latency.collect()[0].samples:
            if sample.name.endswith("_bucket"):
                bounds.append(float(sample.labels["le"]))
                counts.append(sample.value)
        return {f"p{round(q * 100):d}": _quantile(q, bounds, counts) for q in qs}

    def render(self) -> bytes:
        """The metrics in Prometheus text format."""
        return _prometheus().generate_latest(self.registry)


def _quantile(q: float, bounds: list[float], cumulative: list[float]) -> float | None:
    total = cumulative[-1] if cumulative else 0.0
    if total == 0:
        return None
    rank = q * total
    for i, (upper, count) in enumerate(zip(bounds, cumulative, strict=True)):
        if count >= rank:
            if math.isinf(upper):
                return bounds[i - 1] if i else None
            lower, below = (bounds[i - 1], cumulative[i - 1]) if i else (0.0, 0.0)
            inside = count - below
            return upper if inside == 0 else lower + (upper - lower) * (rank - below) / inside
    return None


class Health:
    """What ``/health`` answers, from callables the bridge registers.

    Known checks: ``feed_connected`` and ``broker_reachable`` (-> bool), ``halted`` (-> bool,
    the kill switch), ``last_bar_ns`` (-> int or None, the last bar's start in UTC ns). Any
    other name is reported as is: a number, a string or a dict of them, e.g.
    ``register("feed_latency_s", metrics.feed_latency_quantiles)``. A check that raises counts
    as False (and is logged).
    Status: ``halted`` when halted, ``ok`` when the feed is connected and the broker
    reachable, else ``degraded``.
    """

    def __init__(self) -> None:
        self._checks: dict[str, Callable[[], Any]] = {}
        self._lock = threading.Lock()

    def register(self, name: str, check: Callable[[], Any]) -> None:
        """Add or replace the check ``name``, e.g. ``register("feed_connected", lambda:
        feed.connected)``."""
        with self._lock:
            self._checks[name] = check

    def snapshot(self) -> dict[str, Any]:
        """``{"status", "time", "last_bar_time", "feed_connected", "broker_reachable",
        "halted", ...}``, JSON-ready."""
        with self._lock:
            checks = dict(self._checks)
        values = {name: _run_check(name, fn) for name, fn in checks.items()}
        last_ns = values.pop("last_bar_ns", None)
        doc = {
            "feed_connected": bool(values.pop("feed_connected", False)),
            "broker_reachable": bool(values.pop("broker_reachable", False)),
            "halted": bool(values.pop("halted", False)),
            "last_bar_time": _iso(last_ns) if isinstance(last_ns, int) else None,
        }
        if doc["halted"]:
            status = "halted"
        elif doc["feed_connected"] and doc["broker_reachable"]:
            status = "ok"
        else:
            status = "degraded"
        return {"status": status, "time": _iso(None), **doc, **values}


def _run_check(name: str, fn: Callable[[], Any]) -> Any:
    try:
        value = fn()
    except Exception as e:  # a broken check must not break /health
        log.warning("health check %s failed: %s", name, type(e).__name__)
        return False
    if hasattr(value, "item"):  # numpy scalars: np.int64 bar times, np.bool_ flags
        value = value.item()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, bool | int | float | str | type(None)) else str(value)


def _iso(ts_ns: int | None) -> str:
    moment = (
        dt.datetime.now(dt.UTC) if ts_ns is None else dt.datetime.fromtimestamp(ts_ns / 1e9, dt.UTC)
    )
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class OpsServer:
    """``/metrics`` and ``/health`` over HTTP on ``host:port``, on a daemon thread.

    Parameters
    ----------
    metrics : BridgeMetrics
    health : Health
    host : str
        ``"127.0.0.1"`` (default: only this machine); ``"0.0.0.0"`` inside a container whose
        port is published to the scraper.
    port : int
        e.g. 9108; 0 picks a free port (see :attr:`port`).

    ``/health`` answers 200 when ``ok`` or ``halted`` (the process does what it should) and
    503 when ``degraded``, so a container health check catches a dead feed or broker.
    """

    def __init__(
        self, metrics: BridgeMetrics, health: Health, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        handler = type("_Handler", (_Handler,), {"metrics": metrics, "health": health})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="barlab-ops", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        return f"http://{host}:{self.port}"

    def start(self) -> OpsServer:
        self._thread.start()
        log.info("metrics and health on %s/metrics and %s/health", self.url, self.url)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5.0)
        self._server.server_close()

    def __enter__(self) -> OpsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    metrics: BridgeMetrics
    health: Health

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body, ctype, code = self.metrics.render(), _prometheus().CONTENT_TYPE_LATEST, 200
        elif path == "/health":
            doc = self.health.snapshot()
            body = json.dumps(doc).encode()
            ctype, code = "application/json", 503 if doc["status"] == "degraded" else 200
        else:
            body = b'{"error": "not found; try /metrics or /health"}'
            ctype, code = "application/json", 404
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("ops %s", format % args)
