"""The paper emulator's WebSocket plumbing, shared by its trade_updates and market-data
streams: one client's state, a reader that hands each request to a protocol function, and a
sender task that writes queued replies in order (market data batched into JSON arrays).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses")
"""Market-data channels a client may subscribe to."""
CLOSE = object()
"""Queued after a final reply: send what is queued, then close."""


@dataclass(eq=False)
class Client:
    """One open WebSocket and what it asked for."""

    ws: web.WebSocketResponse
    feed: str = ""
    key_id: str | None = None
    subs: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in CHANNELS})
    listening: bool = False
    closing: bool = False
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)

    def wants(self, channel: str, symbol: str) -> bool:
        chosen = self.subs[channel]
        return symbol in chosen or "*" in chosen


def close_after(client: Client) -> None:
    """Close once what is queued is sent; read nothing more."""
    client.closing = True
    client.queue.put_nowait(CLOSE)


async def _sender(client: Client, *, framing: str) -> None:
    """Sends what is queued, in order: ``"arrays"`` (market data) as JSON arrays in text
    frames, data messages already waiting merged into one; ``"binary"`` or ``"text"``
    (trade_updates) one JSON object per frame."""
    while True:
        items = [await client.queue.get()]
        while not client.queue.empty() and items[-1] is not CLOSE:
            items.append(client.queue.get_nowait())
        close = items[-1] is CLOSE
        payloads = [i for i in items if i is not CLOSE]
        frames = _batches(payloads) if framing == "arrays" else [p[0] for p in payloads]
        try:
            for frame in frames:
                text = json.dumps(frame)
                if framing == "binary":
                    await client.ws.send_bytes(text.encode())
                else:
                    await client.ws.send_str(text)
        except (ConnectionError, RuntimeError):  # the client left; nothing more to send
            return
        if close:
            await client.ws.close()
            return


def _batches(payloads: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """Data messages merged into one array; control messages stay alone."""
    out: list[list[dict[str, Any]]] = []
    data: list[dict[str, Any]] = []
    for payload in payloads:
        if payload and payload[0].get("T") in ("b", "u", "d", "t", "q"):
            data.extend(payload)
            continue
        if data:
            out.append(data)
            data = []
        out.append(payload)
    return [*out, data] if data else out


Handler = Callable[[dict[str, Any] | None], None]


async def serve(client: Client, handler: Handler, *, framing: str, auth_timeout_s: float) -> None:
    """Hands each request to ``handler`` (an object; ``{}`` when not one; None when the
    client has not authenticated within ``auth_timeout_s``) while a task sends the replies,
    until either side closes. ``framing``: ``"arrays"``, ``"binary"`` or ``"text"``."""
    sender = asyncio.create_task(_sender(client, framing=framing))
    deadline = time.monotonic() + auth_timeout_s
    try:
        while not client.ws.closed and not client.closing:
            timeout = None
            if client.key_id is None and math.isfinite(deadline):
                timeout = max(0.0, deadline - time.monotonic())
            try:
                msg = await client.ws.receive(timeout=timeout)
            except TimeoutError:
                handler(None)
                continue
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                request = json.loads(msg.data)
            except (ValueError, UnicodeDecodeError):
                request = None
            handler(request if isinstance(request, dict) else {})
    finally:
        if client.closing and not client.ws.closed:
            await asyncio.wait([sender], timeout=1.0)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await client.ws.close()
