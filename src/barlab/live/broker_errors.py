"""Alpaca's failures as barlab errors: an HTTP status, Alpaca's 8-digit code and its message
become one class of the BrokerError tree (api/alpaca-trading.md §5, §11: status first, then
code, then message), and the entries of a 207 answer become :class:`BulkResult` records.
"""

from __future__ import annotations

from typing import Any

import requests

from barlab.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerRateLimitError,
    BrokerUnavailableError,
    DuplicateOrderError,
    InsufficientBuyingPowerError,
    NotFoundError,
    OrderRejectedError,
)
from barlab.live.broker_models import BulkResult, Order

KEY_HINT = "check APCA_API_KEY_ID and APCA_API_SECRET_KEY (environment or ./.env)"


def broker_error(status: int, body: dict[str, Any], where: str) -> BrokerError:
    """The BrokerError for an Alpaca failure: by HTTP status, then code, then message (§11)."""
    code = body.get("code") if isinstance(body.get("code"), int) else None
    said = str(body.get("message") or "")
    text = f"alpaca {where} refused: HTTP {status}" + (f" {code}" if code else "") + f" {said!r}"
    kind: type[BrokerError] = BrokerError
    hint = ""
    if status == 401 or (status == 403 and code is None):
        kind, hint = BrokerAuthError, KEY_HINT
    elif status == 403 and "buying power" in said:
        kind, hint = InsufficientBuyingPowerError, "use a smaller order or free buying power"
    elif status == 422 and "must be unique" in said.replace("client order id", "client_order_id"):
        kind, hint = DuplicateOrderError, "mint a new client_order_id for a new order"
    elif status in (400, 403, 422):
        kind = OrderRejectedError
    elif status == 404:
        kind = NotFoundError
    elif status == 429:
        kind, hint = BrokerRateLimitError, "slow down: Alpaca allows 200 requests a minute"
    elif status >= 500:
        kind, hint = BrokerUnavailableError, "Alpaca is failing; try again later"
    message = text + (f"; {hint}" if hint else "")
    return kind(message, status=status, code=code, broker_message=said)


def error_body(response: requests.Response) -> dict[str, Any]:
    """An error answer's ``{"code", "message", ...}`` (the text as the message if not JSON)."""
    try:
        body = response.json()
    except ValueError:
        return {"message": response.text[:200]}
    return body if isinstance(body, dict) else {"message": str(body)[:200]}


def bulk_result(entry: dict[str, Any], key: str) -> BulkResult:
    """One entry of a 207 answer, keyed by its ``key`` field ("id" or "symbol")."""
    status = int(entry.get("status", 0))
    body = entry.get("body") if isinstance(entry.get("body"), dict) else {}
    ok = status == 200
    return BulkResult(
        key=str(entry.get(key, "")), status=status,
        order=Order.from_json(body) if ok and body and "id" in body else None,
        error=None if ok else broker_error(status, body or {}, f"bulk {entry.get(key)}"),
    )  # fmt: skip
