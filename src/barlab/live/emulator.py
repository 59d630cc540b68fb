"""The local Alpaca paper server: the trading REST API of api/alpaca-trading.md §2-5 over a
:class:`~barlab.live.exchange.PaperExchange`, with Alpaca's auth, rate limit and error bodies,
served by aiohttp on loopback, plus fault injection for tests.

``make_app(exchange, ...)`` builds the aiohttp application; ``EmulatorServer`` runs it on its
own event loop in a background thread. Every exchange call happens on that loop's thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from barlab.live.emulator_data import add_stream_routes
from barlab.live.emulator_routes import ROUTES, handle_rejections
from barlab.live.exchange import PaperExchange
from barlab.live.wire import error_body

T = TypeVar("T")

EXCHANGE = web.AppKey("exchange", PaperExchange)


@dataclass
class Faults:
    """Failures the next requests get, for tests: counts decrease as they are served."""

    http_429: int = 0
    http_5xx: int = 0
    reset_in_s: int = 0
    """Seconds ahead the injected 429s' X-RateLimit-Reset points (0: now, no wait)."""
    after_processing: bool = False
    """5xx after the request took effect (an order was placed, the answer is lost)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> int | None:
        """The status to fail the next request with, if any."""
        with self.lock:
            if self.http_429 > 0:
                self.http_429 -= 1
                return 429
            if self.http_5xx > 0:
                self.http_5xx -= 1
                return 500
        return None


FAULTS = web.AppKey("faults", Faults)


class RateLimiter:
    """Alpaca's budget: ``per_min`` requests per key per clock minute, with its headers."""

    def __init__(self, per_min: int) -> None:
        self.per_min = per_min
        self.window = 0
        self.counts: dict[str, int] = {}

    def headers(self, key: str) -> tuple[bool, dict[str, str]]:
        """(allowed, X-RateLimit-* headers) for one more request from ``key``."""
        now = int(time.time())
        window = now // 60
        if window != self.window:
            self.window, self.counts = window, {}
        used = self.counts.get(key, 0) + 1
        self.counts[key] = used
        allowed = used <= self.per_min
        return allowed, {
            "X-RateLimit-Limit": str(self.per_min),
            "X-RateLimit-Remaining": str(max(0, self.per_min - used)),
            "X-RateLimit-Reset": str((window + 1) * 60),
        }


def make_app(
    exchange: PaperExchange,
    *,
    key_id: str | None = None,
    secret_key: str | None = None,
    rate_limit_per_min: int | None = 200,
    faults: Faults | None = None,
) -> web.Application:
    """The emulator's aiohttp application.

    Parameters
    ----------
    exchange : PaperExchange
        The state machine the routes read and change.
    key_id, secret_key : str, optional
        The only keys accepted; None: any non-empty pair (requests without keys still get 401).
    rate_limit_per_min : int or None
        Requests per key per minute before 429, e.g. 200 (Alpaca's); None: no limit.
    faults : Faults, optional
        Shared with the caller to inject 429s and 5xxs.
    """
    limiter = RateLimiter(rate_limit_per_min) if rate_limit_per_min else None
    faults = faults or Faults()

    @web.middleware
    async def gate(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        if not request.path.startswith("/v2/") or request.path.startswith(STREAM_PREFIXES):
            return await handler(request)
        key = request.headers.get("APCA-API-KEY-ID", "")
        secret = request.headers.get("APCA-API-SECRET-KEY", "")
        if not key or not secret or (key_id is not None and (key, secret) != (key_id, secret_key)):
            return web.json_response(error_body(401), status=401)
        headers: dict[str, str] = {}
        if limiter is not None:
            allowed, headers = limiter.headers(key)
            if not allowed:
                return web.json_response(error_body(429), status=429, headers=headers)
        failure = faults.take()
        if failure == 429:
            reset = str(int(time.time()) + faults.reset_in_s)
            limit = {"X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "0"}
            return web.json_response(
                error_body(429), status=429, headers={**limit, "X-RateLimit-Reset": reset}
            )
        if failure and not faults.after_processing:
            return web.json_response(error_body(failure), status=failure)
        response = await handle_rejections(handler, request)
        if failure:
            return web.json_response(error_body(failure), status=failure)
        response.headers.update(headers)
        return response

    app = web.Application(middlewares=[gate])
    app[EXCHANGE] = exchange
    app[FAULTS] = faults
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    # -- streaming routes (barlab.live.emulator_data, owned by the streaming side) -------------
    # add_stream_routes(app, exchange) goes here: /stream and /v2/{feed} WebSockets, market-data
    # REST bars. They authenticate themselves; the gate above leaves STREAM_PREFIXES alone.
    add_stream_routes(app, exchange, key_id=key_id, secret_key=secret_key)
    return app


STREAM_PREFIXES = ("/v2/iex", "/v2/sip", "/v2/test", "/v2/delayed_sip", "/v2/stocks")
"""Paths the trading gate leaves to the streaming routes (market data has its own auth)."""


class EmulatorServer:
    """Runs :func:`make_app` on 127.0.0.1 in a background thread with its own event loop.

    Use as a context manager; ``url`` is ``http://127.0.0.1:PORT``, ``ws_url`` the same with
    ``ws://``. ``advance()``/``advance_to()`` and :meth:`call` run on the loop's thread, so the
    exchange's listeners fire there.

    Parameters
    ----------
    exchange : PaperExchange
    host : str
        e.g. ``"127.0.0.1"``.
    port : int
        0: any free port.
    key_id, secret_key, rate_limit_per_min
        As for :func:`make_app`.
    """

    def __init__(
        self,
        exchange: PaperExchange,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        key_id: str | None = None,
        secret_key: str | None = None,
        rate_limit_per_min: int | None = 200,
    ) -> None:
        self.exchange = exchange
        self.host = host
        self.port = port
        self.faults = Faults()
        self.app = make_app(
            exchange, key_id=key_id, secret_key=secret_key,
            rate_limit_per_min=rate_limit_per_min, faults=self.faults,
        )  # fmt: skip
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def start(self) -> EmulatorServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=30)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            asyncio.run_coroutine_threadsafe(runner.cleanup(), self.loop).result(timeout=30)
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=30)
            self.loop.close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on the server's loop thread; its result (or exception)."""

        async def run() -> T:
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=60)

    def advance(self) -> int | None:
        """Close the next bar (``exchange.advance()`` on the loop); its row, or None at the end."""
        return self.call(self.exchange.advance)

    def open_bar(self) -> int | None:
        """Open the next bar: the orders working at its open fill (``exchange.open_bar()``);
        orders submitted before :meth:`close_bar` are worked in it too. Its row, or None."""
        return self.call(self.exchange.open_bar)

    def close_bar(self) -> int:
        """Close the bar :meth:`open_bar` opened: its bars go out."""
        return self.call(self.exchange.close_bar)

    def advance_to(self, ts_ns: int) -> int:
        """Close every bar that starts before ``ts_ns``; how many bars were closed."""

        def run() -> int:
            ex, count = self.exchange, 0
            while ex.index + 1 < ex.bars.n_bars and int(ex.bars.ts_ns[ex.index + 1]) < ts_ns:
                ex.advance()
                count += 1
            return count

        return self.call(run)

    def inject_429(self, n: int, *, reset_in_s: int = 0) -> None:
        """The next ``n`` trading requests get 429, their X-RateLimit-Reset ``reset_in_s``
        seconds ahead (0: now, so a client honouring it retries at once)."""
        with self.faults.lock:
            self.faults.http_429 = n
            self.faults.reset_in_s = reset_in_s

    def inject_5xx(self, n: int, *, after_processing: bool = False) -> None:
        """The next ``n`` trading requests get 500; with ``after_processing`` the request takes
        effect first (an order is placed and its answer lost)."""
        with self.faults.lock:
            self.faults.http_5xx = n
            self.faults.after_processing = after_processing
