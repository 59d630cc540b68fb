"""The paper emulator's streams and market data: the trade_updates WebSocket (``/stream``),
the market-data WebSocket (``/v2/{iex,sip,delayed_sip,test}``) and the historical bars REST
endpoint (``/v2/stocks/bars``), on the emulator's aiohttp app, speaking Alpaca's formats
(api/alpaca-trading.md §6-7, 10; api/market-data.md §2), fed by the exchange's listeners.

:class:`StreamHub` also injects faults for tests: drop every connection now, refuse new ones
for a while (a mid-day outage), and a short auth timeout.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from barlab.live.emulator_bars import bars_handler
from barlab.live.emulator_ws import CHANNELS, Client, close_after, serve
from barlab.live.marketdata import MINUTE_NS, format_ts, parse_ts_ns

FEEDS = ("iex", "sip", "delayed_sip", "test")
REPLY_CHANNELS = (*CHANNELS, "lulds", "corrections", "cancelErrors")


def _error(code: int, msg: str) -> list[dict[str, Any]]:
    return [{"T": "error", "code": code, "msg": msg}]


class StreamHub:
    """The emulator's stream state, and fault injection for tests (callable from any thread).

    Attributes
    ----------
    auth_timeout_s : float
        A market-data client must authenticate within this long (Alpaca: 10 s), else 404.
    max_symbols : int or None
        Trades + quotes symbols one connection may hold (the old free plan: 30); None: no limit.
    feeds : tuple of str
        Feeds the emulated plan includes; another answers 409 after auth.
    binary_frames : bool
        trade_updates in binary frames, as Alpaca's paper server sends them (False: text).
    """

    def __init__(self, exchange: Any, *, key_id: str | None, secret_key: str | None) -> None:
        self.exchange = exchange
        self.auth_timeout_s = 10.0
        self.max_symbols: int | None = None
        self.feeds = FEEDS
        self.binary_frames = True
        self.loop: asyncio.AbstractEventLoop | None = None
        self._keys = None if key_id is None else {key_id: secret_key}
        self._market: set[Client] = set()
        self._trading: set[Client] = set()
        self._refuse_until = 0.0
        self._trade_id = 0
        self._tasks: set[asyncio.Task[int]] = set()
        self.connects = {"market_data": 0, "trade_updates": 0}
        """Connections accepted so far, per stream."""

    def __repr__(self) -> str:
        return f"StreamHub(market_data={len(self._market)}, trade_updates={len(self._trading)})"

    def authorized(self, key_id: Any, secret: Any) -> bool:
        """The emulator's keys, or any non-empty pair when it was made without keys."""
        if not (isinstance(key_id, str) and key_id and isinstance(secret, str) and secret):
            return False
        return self._keys is None or self._keys.get(key_id) == secret

    # -- fault injection (any thread) -------------------------------------------------------
    def drop(self, stream: str = "market_data", *, refuse_s: float = 0.0) -> int:
        """Close every open connection of ``stream`` (``"market_data"``, ``"trade_updates"`` or
        ``"all"``) now, and refuse new ones (HTTP 503) for ``refuse_s`` seconds
        (``math.inf`` until :meth:`allow`). Returns the number of connections closed."""
        if stream not in ("market_data", "trade_updates", "all"):
            raise ValueError(f"stream must be market_data, trade_updates or all, got {stream!r}")
        self.refuse(refuse_s)
        if self.loop is None:
            return 0
        if _on_loop(self.loop):
            clients = self._clients(stream)
            task = self.loop.create_task(self._close(stream))
            self._tasks.add(task)  # kept until done: the loop holds tasks only weakly
            task.add_done_callback(self._tasks.discard)
            return len(clients)
        return asyncio.run_coroutine_threadsafe(self._close(stream), self.loop).result(5.0)

    def _clients(self, stream: str) -> list[Client]:
        return [
            *(self._market if stream != "trade_updates" else ()),
            *(self._trading if stream != "market_data" else ()),
        ]

    async def _close(self, stream: str) -> int:
        clients = self._clients(stream)
        await asyncio.gather(*(client.ws.close() for client in clients))
        return len(clients)

    def refuse(self, seconds: float) -> None:
        """Answer new WebSocket connections 503 for ``seconds`` (``math.inf``: until allow())."""
        self._refuse_until = time.monotonic() + seconds if seconds > 0 else 0.0

    def allow(self) -> None:
        self._refuse_until = 0.0

    @property
    def refusing(self) -> bool:
        return time.monotonic() < self._refuse_until

    # -- exchange events (any thread) -------------------------------------------------------
    def on_exchange_event(self, kind: str, payload: Mapping[str, Any]) -> None:
        """The exchange's listener: a closed bar, or a trade_updates event."""
        if self.loop is None:
            return
        if _on_loop(self.loop):
            self._dispatch(kind, payload)
        else:
            self.loop.call_soon_threadsafe(self._dispatch, kind, payload)

    def _dispatch(self, kind: str, payload: Mapping[str, Any]) -> None:
        if kind == "trade_update":
            message = {"stream": "trade_updates", "data": payload}
            for client in self._trading:
                if client.listening:
                    client.queue.put_nowait([message])
        elif kind == "bar":
            trade, quote = self._synthesize(payload)
            for client in self._market:
                if client.key_id is None:
                    continue
                sym = payload["S"]
                batch = [
                    msg
                    for channel, msg in (("bars", payload), ("trades", trade), ("quotes", quote))
                    if client.wants(channel, sym)
                ]
                if batch:
                    client.queue.put_nowait(batch)

    def _synthesize(self, bar: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """A deterministic last trade (at the close) and quote (a cent around it) per bar,
        stamped one millisecond before the bar ends."""
        self._trade_id += 1
        ts = format_ts(parse_ts_ns(bar["t"]) + MINUTE_NS - 10**6)
        close, sym = float(bar["c"]), bar["S"]
        trade = {"T": "t", "S": sym, "i": self._trade_id, "x": "V", "p": close,
                 "s": 100, "t": ts, "c": ["@"], "z": "C"}  # fmt: skip
        quote = {"T": "q", "S": sym, "bx": "V", "bp": round(close - 0.01, 4), "bs": 1,
                 "ax": "V", "ap": round(close + 0.01, 4), "as": 1, "t": ts, "c": ["R"],
                 "z": "C"}  # fmt: skip
        return trade, quote


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


HUB = web.AppKey("barlab_stream_hub", StreamHub)


def add_stream_routes(
    app: web.Application,
    exchange: Any,
    *,
    key_id: str | None = None,
    secret_key: str | None = None,
) -> StreamHub:
    """Serve ``/stream``, ``/v2/{feed}`` and ``/v2/stocks/bars`` on ``app`` from ``exchange``
    (a PaperExchange: ``add_listener``, ``bars_until_now``, ``bar_messages``), accepting only
    ``key_id``/``secret_key`` (None: any non-empty pair, as the trading routes do). Returns the
    hub (also ``stream_hub(app)``) for fault injection."""
    hub = StreamHub(exchange, key_id=key_id, secret_key=secret_key)
    app[HUB] = hub
    exchange.add_listener(hub.on_exchange_event)

    async def on_startup(app: web.Application) -> None:
        hub.loop = asyncio.get_running_loop()

    async def on_shutdown(app: web.Application) -> None:
        for client in [*hub._market, *hub._trading]:
            await client.ws.close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/stream", _trade_updates)
    bars = bars_handler(exchange, hub.authorized)
    app.router.add_get("/v2/stocks/bars", bars)
    app.router.add_get("/v2/stocks/{symbol}/bars", bars)
    app.router.add_get("/v2/{feed:" + "|".join(FEEDS) + "}", _market_data)
    return hub


def stream_hub(app: web.Application) -> StreamHub:
    """The hub :func:`add_stream_routes` put on ``app``."""
    return app[HUB]


async def _open(request: web.Request, stream: str) -> tuple[StreamHub, Client] | web.Response:
    hub = request.app[HUB]
    hub.loop = hub.loop or asyncio.get_running_loop()
    if hub.refusing:
        return web.Response(status=503, text="stream unavailable (emulated outage)")
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    hub.connects[stream] += 1
    return hub, Client(ws=ws)


async def _market_data(request: web.Request) -> web.StreamResponse:
    opened = await _open(request, "market_data")
    if isinstance(opened, web.Response):
        return opened
    hub, client = opened
    client.feed = request.match_info["feed"]
    hub._market.add(client)
    client.queue.put_nowait([{"T": "success", "msg": "connected"}])
    headers = request.headers
    if "APCA-API-KEY-ID" in headers:
        _md_auth(hub, client, headers["APCA-API-KEY-ID"], headers.get("APCA-API-SECRET-KEY"))
    try:
        await serve(
            client, lambda req: _md_request(hub, client, req),
            framing="arrays", auth_timeout_s=hub.auth_timeout_s,
        )  # fmt: skip
    finally:
        hub._market.discard(client)
    return client.ws


def _md_fail(client: Client, code: int, msg: str) -> None:
    client.queue.put_nowait(_error(code, msg))
    close_after(client)


def _md_auth(hub: StreamHub, client: Client, key_id: Any, secret: Any) -> None:
    if client.key_id is not None:
        client.queue.put_nowait(_error(403, "already authenticated"))
    elif not hub.authorized(key_id, secret):
        _md_fail(client, 402, "auth failed")
    elif any(c.key_id == key_id for c in hub._market):
        _md_fail(client, 406, "connection limit exceeded")
    elif client.feed not in hub.feeds:
        _md_fail(client, 409, "insufficient subscription")
    else:
        client.key_id = key_id
        client.queue.put_nowait([{"T": "success", "msg": "authenticated"}])


def _md_request(hub: StreamHub, client: Client, request: dict[str, Any] | None) -> None:
    if request is None:
        _md_fail(client, 404, "auth timeout")
        return
    action = request.get("action")
    if action == "auth":
        _md_auth(hub, client, request.get("key"), request.get("secret"))
    elif action not in ("subscribe", "unsubscribe"):
        client.queue.put_nowait(_error(400, "invalid syntax"))
    elif client.key_id is None:
        client.queue.put_nowait(_error(401, "not authenticated"))
    else:
        _subscribe(hub, client, request, add=action == "subscribe")


def _subscribe(hub: StreamHub, client: Client, request: dict[str, Any], *, add: bool) -> None:
    asked = {c: request[c] for c in CHANNELS if c in request}
    if any(
        not isinstance(v, list) or not all(isinstance(s, str) for s in v) for v in asked.values()
    ):
        client.queue.put_nowait(_error(400, "invalid syntax"))
        return
    new = {c: (s | set(asked.get(c, ())) if add else s - set(asked.get(c, ())))
           for c, s in client.subs.items()}  # fmt: skip
    if hub.max_symbols is not None and len(new["trades"] | new["quotes"]) > hub.max_symbols:
        client.queue.put_nowait(_error(405, "symbol limit exceeded"))
        return
    client.subs = new
    reply = {"T": "subscription", **{c: sorted(client.subs.get(c, ())) for c in REPLY_CHANNELS}}
    client.queue.put_nowait([reply])


async def _trade_updates(request: web.Request) -> web.StreamResponse:
    opened = await _open(request, "trade_updates")
    if isinstance(opened, web.Response):
        return opened
    hub, client = opened
    hub._trading.add(client)
    try:
        await serve(
            client, lambda req: _tu_request(hub, client, req),
            framing="binary" if hub.binary_frames else "text",
            auth_timeout_s=math.inf,
        )  # fmt: skip
    finally:
        hub._trading.discard(client)
    return client.ws


def _tu_reply(client: Client, stream: str, data: dict[str, Any]) -> None:
    client.queue.put_nowait([{"stream": stream, "data": data}])


def _tu_request(hub: StreamHub, client: Client, request: dict[str, Any] | None) -> None:
    request = request or {}
    action, data = request.get("action"), request.get("data")
    data = data if isinstance(data, dict) else {}
    if action in ("authenticate", "auth"):
        key_id = data.get("key_id") if action == "authenticate" else request.get("key")
        secret = data.get("secret_key") if action == "authenticate" else request.get("secret")
        ok = hub.authorized(key_id, secret)
        client.key_id = key_id if ok else None
        status = "authorized" if ok else "unauthorized"
        _tu_reply(client, "authorization", {"action": "authenticate", "status": status})
        if not ok:
            close_after(client)
    elif action == "listen":
        if client.key_id is None:
            _tu_reply(client, "authorization", {"action": "listen", "status": "unauthorized"})
            return
        streams = data.get("streams")
        if not isinstance(streams, list):
            _tu_reply(client, "listening", {"streams": [], "error": "invalid syntax"})
            return
        client.listening = "trade_updates" in streams
        _tu_reply(client, "listening", {"streams": ["trade_updates"] if client.listening else []})
    else:
        _tu_reply(client, "error", {"code": 400, "message": "invalid syntax"})
