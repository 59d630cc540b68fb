"""Alpaca's trade_updates WebSocket (``/stream``): order events as :class:`TradeUpdate`
records, reconnecting forever on :class:`~barlab.live.stream.ReconnectingStream`, with a hook
after each reconnect for the bridge to reconcile over REST (api/alpaca-trading.md §6, 11).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from barlab.errors import AuthError, BarlabError, BrokerError
from barlab.live.marketdata import parse_ts_ns
from barlab.live.stream import Connection, ReconnectingStream, StreamOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeUpdate:
    """One trade_updates event (api/alpaca-trading.md §6).

    ``order`` is the Order JSON after the event, as sent; ``price``/``qty`` (this execution)
    and ``position_qty`` (signed shares after it) are set on fills and partial fills.
    """

    event: str
    order: Mapping[str, Any]
    timestamp_ns: int | None
    price: Decimal | None = None
    qty: Decimal | None = None
    position_qty: Decimal | None = None
    execution_id: str | None = None

    @property
    def order_id(self) -> str:
        return str(self.order.get("id", ""))

    @property
    def client_order_id(self) -> str:
        return str(self.order.get("client_order_id") or "")


def parse_trade_update(data: Mapping[str, Any]) -> TradeUpdate:
    """The ``data`` of a trade_updates message; raises BrokerError when malformed."""
    try:
        stamp = data.get("timestamp")
        return TradeUpdate(
            event=str(data["event"]), order=dict(data["order"]),
            timestamp_ns=parse_ts_ns(stamp) if stamp else None,
            price=_decimal(data.get("price")), qty=_decimal(data.get("qty")),
            position_qty=_decimal(data.get("position_qty")),
            execution_id=data.get("execution_id"),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, InvalidOperation) as e:
        raise BrokerError(f"malformed trade_updates event ({type(e).__name__}: {e})") from e


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


class TradeUpdatesStream:
    """Alpaca's trade_updates WebSocket: order events to ``on_update``, reconnecting forever.

    Events sent while disconnected are lost (Alpaca has no replay), so after every reconnect
    ``on_reconnect()`` is called, once listening again, for the bridge to reconcile over REST.

    Parameters
    ----------
    url : str
        ``"wss://paper-api.alpaca.markets/stream"`` or an emulator's
        ``"ws://127.0.0.1:8123"`` (``/stream`` is appended to a bare host).
    key_id, secret_key : str
        The trading keys; never logged or shown.
    on_update : callable
        Called with each TradeUpdate on the stream's thread.
    on_reconnect : callable, optional
        Called with no arguments after each *re*connect (not the first connect).
    on_closed : callable, optional
        Called with None after stop(), or the error (an AuthError for bad keys) that ended it.
    options : StreamOptions, optional
    """

    def __init__(
        self,
        url: str,
        *,
        key_id: str,
        secret_key: str,
        on_update: Callable[[TradeUpdate], None],
        on_reconnect: Callable[[], None] | None = None,
        on_closed: Callable[[BarlabError | None], None] | None = None,
        options: StreamOptions | None = None,
    ) -> None:
        if not key_id or not secret_key:
            raise AuthError("trade_updates needs both key_id and secret_key; one is empty")
        self._keys = (key_id, secret_key)
        self._on_update = on_update
        self._on_reconnect = on_reconnect
        self._on_closed = on_closed
        self.malformed = 0
        self._stream = ReconnectingStream(
            stream_url(url, "/stream"), self, name="trade updates",
            secrets=self._keys, options=options, error_type=BrokerError,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"TradeUpdatesStream(url={self._stream.url!r})"

    def start(self) -> TradeUpdatesStream:
        self._stream.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stream.stop(timeout_s)

    def __enter__(self) -> TradeUpdatesStream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_connected(self, timeout_s: float = 10.0) -> None:
        """Block until listening; raises the error that stopped the stream, or TimeoutError."""
        self._stream.wait_connected(timeout_s)

    @property
    def connected(self) -> bool:
        return self._stream.connected

    @property
    def connections(self) -> int:
        return self._stream.connections

    @property
    def error(self) -> BarlabError | None:
        return self._stream.error

    def handshake(self, conn: Connection, *, reconnect: bool) -> None:
        key_id, secret_key = self._keys
        conn.send_json(
            {"action": "authenticate", "data": {"key_id": key_id, "secret_key": secret_key}}
        )
        reply = self._reply(conn, "authorization")
        if reply.get("status") != "authorized":
            raise AuthError(
                f"the trade_updates server at {self._stream.url} refused the keys "
                f"({reply.get('status', 'no status')}); check APCA_API_KEY_ID and "
                "APCA_API_SECRET_KEY, and that paper keys go to the paper host"
            )
        conn.send_json({"action": "listen", "data": {"streams": ["trade_updates"]}})
        reply = self._reply(conn, "listening", "authorization")
        if "trade_updates" not in (reply.get("streams") or ()):
            raise BrokerError(
                f"the trade_updates server at {self._stream.url} did not listen: {reply!r}"
            )
        if reconnect and self._on_reconnect is not None:
            self._on_reconnect()

    def on_message(self, message: Any) -> None:
        if not isinstance(message, dict) or message.get("stream") != "trade_updates":
            return
        try:
            update = parse_trade_update(message.get("data") or {})
        except BrokerError as e:
            self.malformed += 1
            log.warning("trade updates: skipping a message: %s", e)
            return
        try:
            self._on_update(update)
        except Exception:  # a bug in the consumer must not end the stream
            log.exception("trade updates: on_update raised on %s", update.event)

    def on_closed(self, error: BarlabError | None) -> None:
        if self._on_closed is not None:
            self._on_closed(error)

    def _reply(self, conn: Connection, *streams: str) -> dict[str, Any]:
        while True:
            message = conn.recv_json()
            if isinstance(message, dict) and message.get("stream") in streams:
                data = message.get("data") or {}
                if data.get("action") == "listen" and data.get("status") == "unauthorized":
                    raise AuthError("trade_updates refused to listen: not authorized")
                return data


def stream_url(url: str, path: str) -> str:
    """``url`` with ``path`` appended, unless it already has a path."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return url if parts.path not in ("", "/") else url.rstrip("/") + path
