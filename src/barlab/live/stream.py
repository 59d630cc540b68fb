"""One reconnecting WebSocket client loop, shared by the market-data feed and the trade_updates
stream: connect, let the session authenticate and subscribe, read messages, and on any drop
reconnect with exponential backoff and jitter, until stopped or told the failure is final.

It runs the ``websockets`` sync client in one background thread per stream. A session says
what to send and how to read replies; this module only knows connections. Keys never appear
in its logs or errors (they travel in messages, and every error text is redacted).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from barlab.data.http import backoff_s, redact
from barlab.errors import AuthError, BarlabError, ConfigError, ProviderError

log = logging.getLogger(__name__)


class _RedactFilter(logging.Filter):
    """Scrubs keys from the websockets library's DEBUG lines, which print every frame: an
    auth frame is replaced whole (the library elides long frames, which could split a key
    past :func:`redact`), any other line has the keys replaced by ``***``."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if '"secret' in message or '"key' in message:
            record.msg, record.args = "%s", ("(an auth frame, not shown: it holds the keys)",)
        else:
            clean = redact(message, self.secrets)
            if clean != message:
                record.msg, record.args = clean, None
        return True


_FRAMES_FILTER = _RedactFilter()
frames_log = logging.getLogger(f"{__name__}.frames")
"""The websockets library's own log of every connection (DEBUG: each frame), keys scrubbed."""
frames_log.addFilter(_FRAMES_FILTER)


class Reconnect(Exception):
    """Raised by a session when the connection must be dropped and made again (an auth
    timeout, a connection limit, a slow-client kick); the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamOptions:
    """How a stream connects and reconnects.

    Parameters
    ----------
    backoff_base_s : float
        First reconnect waits up to this long, doubling each failed attempt, e.g. ``1.0``
        (``0.05`` in tests).
    backoff_cap_s : float
        Longest wait between attempts, e.g. ``30``.
    open_timeout_s : float
        TCP + WebSocket handshake timeout, e.g. ``10``.
    reply_timeout_s : float
        How long to wait for each auth/subscribe reply, e.g. ``10``.
    ping_interval_s, ping_timeout_s : float or None
        Keep-alive pings (alpaca-py pings every 10 s); a missing pong drops the connection.
    max_attempts : int or None
        Consecutive failed attempts before giving up for good; None retries forever.
    seed : int or None
        Seeds the jitter, for reproducible tests.
    """

    backoff_base_s: float = 1.0
    backoff_cap_s: float = 30.0
    open_timeout_s: float = 10.0
    reply_timeout_s: float = 10.0
    ping_interval_s: float | None = 10.0
    ping_timeout_s: float | None = 30.0
    max_attempts: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("backoff_base_s", "backoff_cap_s", "open_timeout_s", "reply_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0 seconds, got {getattr(self, name)!r}")


class Connection:
    """One open WebSocket: JSON out as text frames, JSON in from text or binary frames."""

    def __init__(self, ws: Any, *, reply_timeout_s: float) -> None:
        self._ws = ws
        self.reply_timeout_s = reply_timeout_s

    def send_json(self, message: Any) -> None:
        self._ws.send(json.dumps(message))

    def recv_json(self, timeout_s: float | None = None) -> Any:
        """The next message decoded (binary frames are UTF-8 JSON too); raises Reconnect
        when nothing arrives within ``timeout_s`` (default: the reply timeout)."""
        try:
            raw = self._ws.recv(timeout=timeout_s or self.reply_timeout_s)
        except TimeoutError as e:
            raise Reconnect(f"no reply within {timeout_s or self.reply_timeout_s:g} s") from e
        return decode(raw)


def decode(raw: str | bytes) -> Any:
    try:
        return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, ValueError) as e:
        raise Reconnect(f"the server sent a frame that is not JSON: {raw[:80]!r}") from e


class Session(Protocol):
    """What a stream speaks over each connection."""

    def handshake(self, conn: Connection, *, reconnect: bool) -> None:
        """Authenticate and subscribe; raise a BarlabError to stop for good, Reconnect (or
        let a connection error through) to try again."""

    def on_message(self, message: Any) -> None:
        """One decoded server message, on the stream's thread."""

    def on_closed(self, error: BarlabError | None) -> None:
        """The stream stopped: None after stop(), else the error that ended it."""


class ReconnectingStream:
    """Runs ``session`` over ``url`` in a background thread, reconnecting until stopped.

    Parameters
    ----------
    url : str
        e.g. ``"wss://stream.data.alpaca.markets/v2/iex"`` or ``"ws://127.0.0.1:8123/stream"``.
    session : Session
        The protocol spoken on each connection.
    name : str
        The stream's name in logs, thread names and errors, e.g. ``"market data"``.
    secrets : iterable of str
        Scrubbed from every log line and error.
    headers : mapping, optional
        Extra handshake headers.
    options : StreamOptions
    error_type : type
        What a final connection failure raises, e.g. ``ProviderError`` for market data,
        ``BrokerError`` for trade updates.
    """

    def __init__(
        self,
        url: str,
        session: Session,
        *,
        name: str,
        secrets: Iterable[str] = (),
        headers: Mapping[str, str] | None = None,
        options: StreamOptions | None = None,
        error_type: type[BarlabError] = ProviderError,
    ) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise ConfigError(f"{name} url must start with ws:// or wss://, got {url!r}")
        self.url = url
        self.name = name
        self.options = options or StreamOptions()
        self._session = session
        self._secrets = [s for s in secrets if s]
        _FRAMES_FILTER.secrets.update(self._secrets)
        self._headers = dict(headers or {})
        self._error_type = error_type
        self._rng = random.Random(self.options.seed)
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._ws: Any = None
        self._thread: threading.Thread | None = None
        self.error: BarlabError | None = None
        self.connections = 0
        """Successful handshakes so far (1 after the first connect, 2 after one reconnect)."""

    def __repr__(self) -> str:
        return f"ReconnectingStream({self.name!r}, url={self.url!r})"

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"the {self.name} stream was already started")
        self._thread = threading.Thread(target=self._run, name=f"barlab-{self.name}", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._done.is_set()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float = 10.0) -> None:
        """Block until subscribed; re-raises the error that stopped the stream, or raises
        TimeoutError when not connected within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not self._connected.wait(0.01):
            if self._done.is_set():
                raise self.error or RuntimeError(f"the {self.name} stream was stopped")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {self.name} connection to {self.url} in {timeout_s:g} s")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close the connection and join the thread (idempotent)."""
        self._stop.set()
        with self._lock:
            ws = self._ws
        if ws is not None:
            ws.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("%s thread still running %g s after stop()", self.name, timeout_s)

    def _run(self) -> None:
        attempt = 0
        try:
            while not self._stop.is_set():
                if self._connect_once():
                    attempt = 0
                if self._stop.is_set():
                    break
                attempt += 1
                if self.options.max_attempts is not None and attempt > self.options.max_attempts:
                    raise ConnectionError(
                        f"{self.name}: no connection to {self.url} after "
                        f"{self.options.max_attempts} attempts; check that the server is up"
                    )
                wait = backoff_s(
                    attempt,
                    base_s=self.options.backoff_base_s,
                    cap_s=self.options.backoff_cap_s,
                    rng=self._rng,
                )
                log.info("%s: reconnecting in %.2f s (attempt %d)", self.name, wait, attempt)
                self._stop.wait(wait)
        except BarlabError as e:
            self.error = e
        except ConnectionError as e:
            self.error = self._error_type(str(e))
        except Exception as e:  # a bug in a session: end the stream, loudly, not silently
            log.exception("%s stream failed", self.name)
            self.error = self._error_type(
                f"{self.name} stream failed: {type(e).__name__}: {self._redact(str(e))}"
            )
        finally:
            self._connected.clear()
            self._done.set()
            self._session.on_closed(self.error)

    def _connect_once(self) -> bool:
        """One connection's life; True when its handshake succeeded. Raises BarlabError when
        the failure is final."""
        from websockets.exceptions import InvalidStatus, InvalidURI, WebSocketException
        from websockets.sync.client import connect

        handshaken = False
        try:
            ws = connect(
                self.url,
                additional_headers=self._headers or None,
                open_timeout=self.options.open_timeout_s,
                ping_interval=self.options.ping_interval_s,
                ping_timeout=self.options.ping_timeout_s,
                close_timeout=2.0,
                proxy=None,
                logger=frames_log,
            )
            with self._lock:
                self._ws = ws
            if self._stop.is_set():
                ws.close()
                return False
            with ws:
                conn = Connection(ws, reply_timeout_s=self.options.reply_timeout_s)
                self._session.handshake(conn, reconnect=self.connections > 0)
                handshaken = True
                self.connections += 1
                self._connected.set()
                log.info("%s: connected to %s", self.name, self.url)
                self._read(ws)
        except InvalidURI as e:
            raise ConfigError(f"{self.name} url {self.url!r} is not valid: {e}") from e
        except InvalidStatus as e:
            status = e.response.status_code
            if status in (401, 403):
                raise AuthError(
                    f"{self.name} server at {self.url} refused the keys (HTTP {status})"
                ) from e
            self._warn(f"HTTP {status} on connect")
        except (Reconnect, WebSocketException, OSError) as e:
            if not self._stop.is_set():
                self._warn(f"{type(e).__name__}: {e}")
        finally:
            self._connected.clear()
            with self._lock:
                self._ws = None
        return handshaken

    def _read(self, ws: Any) -> None:
        while not self._stop.is_set():
            try:
                raw = ws.recv(timeout=0.25)
            except TimeoutError:
                continue
            self._session.on_message(decode(raw))

    def _warn(self, reason: str) -> None:
        log.warning("%s: connection to %s lost: %s", self.name, self.url, self._redact(reason))

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)
