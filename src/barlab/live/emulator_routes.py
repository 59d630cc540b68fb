"""The trading routes of the paper emulator: each parses an aiohttp request, calls the
:class:`~barlab.live.exchange.PaperExchange` (on the loop thread) and answers with Alpaca's
status codes (200, 204, 207; 400/403/404/422 bodies from ExchangeRejection).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from barlab.live.exchange import PaperExchange
from barlab.live.wire import ExchangeRejection, parse_decimal


async def handle_rejections(
    handler: Callable[..., Any], request: web.Request
) -> web.StreamResponse:
    """Run ``handler``; an ExchangeRejection becomes its ``{"code","message",...}`` answer."""
    try:
        return await handler(request)
    except ExchangeRejection as e:
        return web.json_response(e.body(), status=e.status)


def _exchange(request: web.Request) -> PaperExchange:
    from barlab.live.emulator import EXCHANGE

    return request.app[EXCHANGE]


async def _body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"null")
    except ValueError:
        raise ExchangeRejection(400, 40010000, "failed to decode request body") from None


def _ok(payload: Any, status: int = 200) -> web.Response:
    return web.json_response(payload, status=status)


async def submit(request: web.Request) -> web.Response:
    return _ok(_exchange(request).submit_order(await _body(request)))


async def list_orders(request: web.Request) -> web.Response:
    return _ok(_exchange(request).list_orders(**dict(request.query)))


async def cancel_all(request: web.Request) -> web.Response:
    return _ok(_exchange(request).cancel_all_orders(), 207)


async def by_client_id(request: web.Request) -> web.Response:
    coid = request.query.get("client_order_id")
    if not coid:
        raise ExchangeRejection(422, 40010001, "client_order_id is required")
    return _ok(_exchange(request).get_order_by_client_id(coid))


async def get_order(request: web.Request) -> web.Response:
    nested = request.query.get("nested") == "true"
    return _ok(_exchange(request).get_order(request.match_info["order_id"], nested=nested))


async def replace(request: web.Request) -> web.Response:
    order_id = request.match_info["order_id"]
    return _ok(_exchange(request).replace_order(order_id, await _body(request)))


async def cancel(request: web.Request) -> web.Response:
    _exchange(request).cancel_order(request.match_info["order_id"])
    return web.Response(status=204)


async def positions(request: web.Request) -> web.Response:
    return _ok(_exchange(request).list_positions())


async def position(request: web.Request) -> web.Response:
    return _ok(_exchange(request).get_position(request.match_info["symbol"]))


async def close_position(request: web.Request) -> web.Response:
    query = request.query
    qty = parse_decimal(query.get("qty"), "qty")
    percentage = parse_decimal(query.get("percentage"), "percentage")
    order = _exchange(request).close_position(
        request.match_info["symbol"], qty=qty, percentage=percentage
    )
    return _ok(order)


async def close_all(request: web.Request) -> web.Response:
    cancel_orders = request.query.get("cancel_orders", "false").lower() == "true"
    return _ok(_exchange(request).close_all_positions(cancel_orders=cancel_orders), 207)


async def account(request: web.Request) -> web.Response:
    return _ok(_exchange(request).account())


async def clock(request: web.Request) -> web.Response:
    return _ok(_exchange(request).clock_json())


async def calendar(request: web.Request) -> web.Response:
    ex = _exchange(request)
    today = dt.datetime.fromtimestamp(ex.now_ns // 10**9, tz=dt.UTC).date()
    try:
        start = dt.date.fromisoformat(request.query.get("start") or today.isoformat())
        end = dt.date.fromisoformat(request.query.get("end") or start.isoformat())
    except ValueError:
        raise ExchangeRejection(422, 40010001, "start and end must be YYYY-MM-DD") from None
    return _ok(ex.calendar_json(start, end))


ROUTES: list[tuple[str, str, Callable[..., Any]]] = [
    ("POST", "/v2/orders", submit),
    ("GET", "/v2/orders", list_orders),
    ("DELETE", "/v2/orders", cancel_all),
    ("GET", "/v2/orders:by_client_order_id", by_client_id),
    ("GET", "/v2/orders/{order_id}", get_order),
    ("PATCH", "/v2/orders/{order_id}", replace),
    ("DELETE", "/v2/orders/{order_id}", cancel),
    ("GET", "/v2/positions", positions),
    ("DELETE", "/v2/positions", close_all),
    ("GET", "/v2/positions/{symbol}", position),
    ("DELETE", "/v2/positions/{symbol}", close_position),
    ("GET", "/v2/account", account),
    ("GET", "/v2/clock", clock),
    ("GET", "/v2/calendar", calendar),
]
"""(method, path, handler) of every trading route."""
