"""The paper emulator's historical bars endpoint, ``GET /v2/stocks/bars`` and
``/v2/stocks/{symbol}/bars``, over the bars the exchange has closed so far, in Alpaca Market
Data v2's JSON and pagination (api/market-data.md §2): what the live feed's backfill reads
through barlab's Alpaca provider after a reconnect.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import numpy as np
from aiohttp import web

from barlab.live.marketdata import format_ts, parse_ts_ns

TIMEFRAMES = {"1m": ("1Min", "M"), "5m": ("5Min", "M"), "15m": ("15Min", "M"),
              "1h": ("1Hour", "H"), "1d": ("1Day", "D")}  # fmt: skip
"""barlab timeframe -> Alpaca's name and the letter its page tokens carry."""
DEFAULT_LIMIT, MAX_LIMIT = 1000, 10_000
_FORBIDDEN = {"message": "forbidden."}

Handler = Callable[[web.Request], Any]


def bars_handler(exchange: Any, authorized: Callable[[Any, Any], bool]) -> Handler:
    """An aiohttp handler answering both bars routes from ``exchange.bars_until_now()`` (bar
    objects from ``exchange.bar_messages(row)``, so REST and stream agree to the digit).
    ``authorized(key_id, secret)`` checks the ``APCA-API-*`` headers (403 ``forbidden.``)."""

    async def handle(request: web.Request) -> web.Response:
        headers = request.headers
        if not authorized(headers.get("APCA-API-KEY-ID"), headers.get("APCA-API-SECRET-KEY")):
            return web.json_response(_FORBIDDEN, status=403)
        single = request.match_info.get("symbol")
        query = dict(request.query)
        if single:
            query["symbols"] = single
        bars = exchange.bars_until_now()
        parsed = _query(query, bars.timeframe)
        if isinstance(parsed, web.Response):
            return parsed
        try:
            page, token = _page(exchange, bars, **parsed)
        except ValueError:
            return _invalid(f"invalid page_token: {parsed['token']!r}")
        if single:  # a list, or null when empty (reported, not documented)
            body = {"bars": page.get(single), "symbol": single, "next_page_token": token}
            return web.json_response(body)
        return web.json_response({"bars": page, "next_page_token": token})

    return handle


def _invalid(message: str) -> web.Response:
    return web.json_response({"code": 42210000, "message": message}, status=422)


def _query(query: dict[str, str], timeframe: str) -> dict[str, Any] | web.Response:
    """The request's values, or the 422 Alpaca answers to an invalid one."""
    symbols = sorted({s for s in query.get("symbols", "").split(",") if s})
    if not symbols:
        return _invalid("missing symbols")
    name, letter = TIMEFRAMES[timeframe]
    if query.get("timeframe") != name:
        return _invalid(f"invalid timeframe {query.get('timeframe')!r}: the emulator has {name}")
    limit = query.get("limit") or str(DEFAULT_LIMIT)
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
        return _invalid(f"invalid limit: {limit!r} (expected 1 to {MAX_LIMIT})")
    sort = query.get("sort") or "asc"
    if sort not in ("asc", "desc"):
        return _invalid(f"invalid sort: {sort!r}")
    edges = {}
    for edge, default in (("start", -(2**62)), ("end", 2**62)):
        text = query.get(edge)
        try:
            edges[edge] = parse_ts_ns(text + "T00:00:00Z" if len(text) == 10 else text)
        except TypeError:
            edges[edge] = default
        except ValueError:
            return _invalid(f"invalid {edge}: {text!r} (expected RFC-3339)")
    if edges["end"] < edges["start"]:
        return _invalid("end should not be before start")
    token = query.get("page_token", "")
    return {"symbols": symbols, "letter": letter, "limit": int(limit), "sort": sort,
            "token": token, **edges}  # fmt: skip


def _page(
    exchange: Any, bars: Any, *, symbols: list[str], letter: str, limit: int, sort: str,
    token: str, start: int, end: int,
) -> tuple[dict[str, list[dict[str, Any]]], str | None]:  # fmt: skip
    """One page sorted by symbol then time (``limit`` counted across symbols) and the next
    page's token (base64 of ``SYMBOL|letter|time``, as Alpaca's decodes); ValueError when
    ``token`` is not one of ours."""
    ts = bars.ts_ns
    items = []
    for sym in symbols:
        if sym in bars.symbols:
            j = bars.symbols.index(sym)
            rows = np.flatnonzero((ts >= start) & (ts <= end) & np.isfinite(bars.close[:, j]))
            items += [(sym, int(i)) for i in (rows[::-1] if sort == "desc" else rows)]
    first = 0
    if token:
        try:
            sym, _, t = base64.b64decode(token, validate=True).decode().split("|")
            key = (sym, parse_ts_ns(t))
            first = 1 + next(k for k, (s, i) in enumerate(items) if (s, int(ts[i])) == key)
        except (ValueError, StopIteration) as e:
            raise ValueError(token) from e
    chunk = items[first : first + limit]
    rows: dict[int, dict[str, dict[str, Any]]] = {}
    page: dict[str, list[dict[str, Any]]] = {}
    for sym, i in chunk:
        if i not in rows:
            rows[i] = {m["S"]: m for m in exchange.bar_messages(i)}
        bar = {k: v for k, v in rows[i][sym].items() if k not in ("T", "S")}
        page.setdefault(sym, []).append(bar)
    next_token = None
    if first + limit < len(items):
        sym, i = chunk[-1]
        stamp = format_ts(int(ts[i])).replace("Z", ".000000000Z")
        next_token = base64.b64encode(f"{sym}|{letter}|{stamp}".encode()).decode()
    return page, next_token
