"""Structured logs for the bridge on a server: one JSON object per line, keys scrubbed.

:class:`JsonFormatter` writes ``{"time", "level", "logger", "message", ...extra fields}``;
every string in it passes through :func:`barlab.data.http.redact` with the API keys from the
environment (or ``.env``) and every key an HTTP client registered, and extra fields whose
names say they hold a secret are masked whatever their value. The library adds no handlers:
the bridge's command calls :func:`configure_json_logging` once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from barlab.data.http import _URLLIB3_REDACTOR, redact

SECRET_WORDS = ("secret", "password", "token", "api_key", "apikey", "key_id", "authorization")
"""An extra field whose name contains one of these is logged as ``"***"``."""
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per log record.

    Parameters
    ----------
    secrets : iterable of str, optional
        Values to scrub besides the API keys of the environment and ``.env``
        (:func:`barlab.config.secrets`) and those the HTTP clients registered.
    static : mapping, optional
        Fields added to every line, e.g. ``{"strategy": "sma_crossover"}``.

    Example line::

        {"time": "2026-11-24T14:31:00.412Z", "level": "INFO", "logger": "barlab.live.bridge",
         "message": "order sent", "symbol": "AAPL", "qty": 10}
    """

    def __init__(
        self, *, secrets: Iterable[str] = (), static: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__()
        from barlab.config import secrets as env_secrets

        self._secrets = {s for s in secrets if s} | set(env_secrets().values())
        self._static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": _iso_ms(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **self._static,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = "***" if _secret_name(key) else value
        if record.exc_info:
            doc["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack_info"] = self.formatStack(record.stack_info)
        secrets = self._secrets | _URLLIB3_REDACTOR.secrets
        return json.dumps(_scrub(doc, secrets), default=str, allow_nan=False)


def configure_json_logging(
    level: str | int = "INFO",
    *,
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
    static: Mapping[str, Any] | None = None,
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) as JSON lines; returns the handler.

    Replaces the root logger's handlers (a container wants one stream, one format), and adds
    the HTTP redaction filter so urllib3's request lines are scrubbed too.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(secrets=secrets, static=static))
    handler.addFilter(_URLLIB3_REDACTOR)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler


def _secret_name(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS)


def _scrub(value: Any, secrets: set[str]) -> Any:
    """``value`` with every secret replaced by ``***`` in every string, recursively; NaN and
    infinity become strings (JSON has none)."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {str(k): _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_scrub(v, secrets) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bool | int | float | type(None)):
        return value
    return redact(str(value), secrets)


def _iso_ms(created: float) -> str:
    moment = dt.datetime.fromtimestamp(created, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
