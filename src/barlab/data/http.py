"""One HTTP layer for every network client (market data and the broker): a client-side token
bucket per provider, retries with exponential backoff and jitter, timeouts, vendor errors
translated into barlab's error tree, and API keys redacted from everything that leaves this
module.

The vendors rarely send ``Retry-After`` on 429; when they do (or ``X-RateLimit-Reset``), it is
honoured, otherwise the client backs off on its own.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from barlab.errors import AuthError, ProviderError, RateLimitError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (of 4+ characters) replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


class _RedactFilter(logging.Filter):
    """Scrubs secrets from urllib3's DEBUG lines, which print each request's path and query."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_URLLIB3_REDACTOR = _RedactFilter()


def backoff_s(
    attempt: int, *, base_s: float = 1.0, cap_s: float = 60.0, rng: random.Random
) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): exponential with full jitter."""
    return rng.uniform(0.0, min(cap_s, base_s * 2.0 ** (attempt - 1)))


@dataclass
class TokenBucket:
    """Allows ``per_minute`` requests a minute (bursts up to ``burst``), and at most
    ``per_second`` in any one second when given. Thread-safe.

    ``clock`` and ``sleep`` are injectable so tests run without waiting.
    """

    per_minute: float
    per_second: float | None = None
    burst: float | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _tokens: float = field(init=False)
    _stamp: float = field(init=False)
    _recent: list[float] = field(init=False, default_factory=list)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not self.per_minute > 0:
            raise ValueError(f"per_minute must be > 0, got {self.per_minute}")
        # no burst by default: a fresh client must not exceed the vendor's per-minute budget
        self.burst = self.burst or 1.0
        self._tokens = self.burst
        self._stamp = self.clock()

    def acquire(self) -> float:
        """Take one token, sleeping as long as needed; returns the seconds waited."""
        waited = 0.0
        with self._lock:
            while True:
                now = self.clock()
                rate = self.per_minute / 60.0
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * rate)
                self._stamp = now
                self._recent = [t for t in self._recent if now - t < 1.0]
                wait = 0.0
                if self._tokens < 1.0:
                    wait = (1.0 - self._tokens) / rate
                if self.per_second and len(self._recent) >= self.per_second:
                    wait = max(wait, 1.0 - (now - self._recent[0]))
                if wait <= 0.0:
                    self._tokens -= 1.0
                    self._recent.append(now)
                    return waited
                self.sleep(wait)
                waited += wait


@dataclass
class HttpStats:
    """What a client has done, for progress bars and tests."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    waited_s: float = 0.0


class HttpClient:
    """Talk to one vendor's HTTP API politely (GET JSON for market data, any method for the
    broker).

    Parameters
    ----------
    provider : str
        The vendor's name in messages, e.g. ``"polygon"``.
    base_url : str
        e.g. ``"https://api.polygon.io"``, or a local emulator's ``"http://127.0.0.1:8123"``.
    bucket : TokenBucket
        The client-side rate limit, e.g. ``TokenBucket(per_minute=5)`` for Polygon's free plan.
    secrets : iterable of str
        API keys to scrub from log lines, exceptions and URLs.
    auth_hint : str or mapping of status to str
        What to tell the user on 401/403, e.g. ``"check POLYGON_API_KEY"``, or one hint per
        status: ``{401: "check POLYGON_API_KEY", 403: "your plan does not cover this"}``.
    timeout_s : float
        Connect and read timeout per request, e.g. ``30``.
    max_retries : int
        Retries on 429, 5xx and connection errors before giving up, e.g. ``6``.
    """

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        bucket: TokenBucket,
        secrets: Iterable[str] = (),
        auth_hint: str | Mapping[int, str] = "",
        timeout_s: float = 30.0,
        max_retries: int = 6,
        backoff_base_s: float = 1.0,
        session: requests.Session | None = None,
        seed: int | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.bucket = bucket
        self.secrets = [s for s in secrets if s]
        _URLLIB3_REDACTOR.secrets.update(self.secrets)
        logging.getLogger("urllib3.connectionpool").addFilter(_URLLIB3_REDACTOR)
        self.auth_hint = auth_hint
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.session = session or requests.Session()
        self.stats = HttpStats()
        self._rng = random.Random(seed)

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def get_json(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """GET ``url`` (absolute, or a path under ``base_url``) and return its JSON body.

        Raises AuthError on 401/403, RateLimitError when 429 persists, ProviderError otherwise.
        """
        full = self.full_url(url)
        response = self.request("GET", url, params=params, headers=headers)
        status = response.status_code
        if status == 200:
            try:
                return response.json()
            except ValueError as e:
                raise ProviderError(
                    f"{self.provider} answered {self.redact(response.url)} with a body "
                    f"that is not JSON: {self.redact(response.text[:200])!r}"
                ) from e
        reason = f"HTTP {status}: {self.redact(vendor_message(response))}"
        if status in (401, 403):
            hint = self.auth_hint
            if isinstance(hint, Mapping):
                hint = hint.get(status, "")
            raise AuthError(f"{self.provider} refused {self._where(full)} ({reason}); {hint}")
        if status not in RETRY_STATUSES:
            raise ProviderError(f"{self.provider} {self._where(full)} failed ({reason})")
        raise self._exhausted(full, status, reason)

    def full_url(self, url: str) -> str:
        """``url`` if absolute, else ``base_url + url``."""
        return url if url.startswith(("http://", "https://")) else self.base_url + url

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        retry_statuses: frozenset[int] = RETRY_STATUSES,
        retry_errors: bool = True,
    ) -> requests.Response:
        """Send one request through the rate limit, retrying ``retry_statuses`` answers (and,
        with ``retry_errors``, timeouts and connection failures) with backoff.

        Returns the last response whatever its status (a retryable one once retries run out);
        raises ProviderError when no answer arrives. A POST that must not be repeated blindly
        passes ``retry_statuses=frozenset({429})`` and ``retry_errors=False``.
        """
        full = self.full_url(url)
        attempt = 0
        while True:
            self.stats.waited_s += self.bucket.acquire()
            self.stats.requests += 1
            started = time.perf_counter()
            response: requests.Response | None = None
            try:
                response = self.session.request(
                    method, full, params=params, json=json, headers=headers,
                    timeout=self.timeout_s,
                )  # fmt: skip
            except requests.RequestException as e:
                reason = f"{type(e).__name__}: {self.redact(str(e))}"
                status = None
                if not retry_errors:
                    raise ProviderError(
                        f"{self.provider} {method} {self._where(full)} failed ({reason})"
                    ) from None
            else:
                status = response.status_code
                log.info(
                    "%s %s %s -> %s in %.2f s",
                    self.provider, method, self.redact(response.url), status,
                    time.perf_counter() - started,
                )  # fmt: skip
                if status not in retry_statuses:
                    return response
                reason = f"HTTP {status}: {self.redact(vendor_message(response))}"
            attempt += 1
            if status == 429:
                self.stats.rate_limited += 1
            if attempt > self.max_retries:
                if response is not None:
                    return response
                raise self._exhausted(full, status, reason)
            self.stats.retries += 1
            wait = self._wait_s(attempt, response)
            log.warning(
                "%s %s; retry %d of %d in %.1f s",
                self.provider, reason, attempt, self.max_retries, wait,
            )  # fmt: skip
            self.stats.waited_s += wait
            self.bucket.sleep(wait)

    def _exhausted(self, full: str, status: int | None, reason: str) -> ProviderError:
        error = RateLimitError if status == 429 else ProviderError
        return error(
            f"{self.provider} {self._where(full)} still failing after "
            f"{self.max_retries} retries ({reason}); try again later"
            + (" or lower the requests per minute in the config" if status == 429 else "")
        )

    def _wait_s(self, attempt: int, response: requests.Response | None) -> float:
        if response is not None:
            retry_after = response.headers.get("Retry-After")
            if retry_after and retry_after.strip().isdigit():
                return float(retry_after)
            reset = response.headers.get("X-RateLimit-Reset")
            if reset and reset.strip().isdigit():
                return max(0.0, min(float(reset) - time.time(), 120.0))
        return backoff_s(attempt, base_s=self.backoff_base_s, rng=self._rng)

    def _where(self, url: str) -> str:
        return self.redact(url.split("?")[0])


def vendor_message(response: requests.Response) -> str:
    """The vendor's own words from an error body (``error``/``message``), or its start."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason or ""
    if isinstance(body, dict):
        for key in ("error", "message"):
            if isinstance(body.get(key), str):
                return body[key]
    return str(body)[:200]
