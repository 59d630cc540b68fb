"""Polygon.io / Massive aggregates (``GET /v2/aggs/ticker/{T}/range/{m}/{timespan}/{from}/{to}``)
as barlab's canonical frame, extended hours included; the only module that knows Polygon's JSON.

The key travels as ``Authorization: Bearer`` (or ``?apiKey=`` when asked) on every page:
Polygon's ``next_url`` never carries it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import polars as pl
import requests

from barlab.data.calendar import day_start_ns
from barlab.data.http import TokenBucket
from barlab.data.providers import records
from barlab.data.providers.vendor import (
    VendorProvider,
    check_rate,
    check_timeframe,
    months,
    within,
)
from barlab.errors import AuthError, ConfigError, DataRequestError, ProviderError

if TYPE_CHECKING:
    from barlab.config import Config

log = logging.getLogger(__name__)

VERSION = "polygon-1"
"""Changes whenever the same request would give other bars; cached Polygon bars of another
version are fetched again."""

KEY_NAME = "POLYGON_API_KEY"
MAX_LIMIT = 50_000
"""Most base aggregates Polygon scans per request (about 1.5 months of minutes)."""

_TIMESPANS = {
    "1m": (1, "minute"),
    "5m": (5, "minute"),
    "15m": (15, "minute"),
    "1h": (1, "hour"),
    "1d": (1, "day"),
}
_AUTHS = ("header", "query")
_MISSING_KEY = (
    f"{KEY_NAME} is not set; export it or put it in ./.env (get a key at polygon.io/massive.com)"
)
_AUTH_HINT = f"check {KEY_NAME} (export it or put it in ./.env); Polygon does not accept this key"
_PLAN_HINT = (
    "your Polygon plan does not cover this data (the free plan has about 2 years of history and "
    f"no same-day minute bars); ask for an older or shorter range, or set {KEY_NAME} to the key "
    "of a plan that covers it"
)
_NS_PER_MS = 1_000_000


def connect(config: Config) -> PolygonProvider:
    """A :class:`PolygonProvider` from ``config.polygon`` and $POLYGON_API_KEY (environment or
    ./.env); raises AuthError when the key is not set."""
    from barlab.config import secrets

    key = secrets().get(KEY_NAME)
    if not key:
        raise AuthError(_MISSING_KEY)
    section = config.polygon
    return PolygonProvider(
        api_key=key,
        base_url=section.base_url,
        requests_per_minute=section.requests_per_minute,
        adjusted=section.adjusted,
    )


class PolygonProvider(VendorProvider):
    """Historical bars from Polygon.io (now Massive) aggregates.

    Parameters
    ----------
    api_key : str
        $POLYGON_API_KEY.
    base_url : str
        ``"https://api.polygon.io"`` (or ``"https://api.massive.com"``), or a local emulator's
        ``"http://127.0.0.1:8123"``.
    requests_per_minute : float
        Client-side limit, e.g. ``5`` (the free plan); requests are spaced evenly, so no minute
        ever sees more than this many.
    adjusted : bool
        Split-adjusted prices (Polygon's default) or raw ones.
    session, max_retries, backoff_base_s
        As for every vendor: see :class:`~barlab.data.providers.vendor.VendorProvider`.
    auth : str
        ``"header"`` (``Authorization: Bearer``, as the official client) or ``"query"``
        (``?apiKey=``, for proxies that strip headers).
    clock, sleep : callable
        The rate limiter's time source and sleep, e.g. ``time.monotonic`` and ``time.sleep``;
        tests pass fakes.
    """

    VERSION = VERSION

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        requests_per_minute: float = 5.0,
        adjusted: bool = True,
        session: requests.Session | None = None,
        max_retries: int = 6,
        backoff_base_s: float = 1.0,
        auth: str = "header",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise AuthError(_MISSING_KEY)
        if auth not in _AUTHS:
            raise ConfigError(f"polygon auth must be header or query, got {auth!r}")
        check_rate("polygon", "requests_per_minute", requests_per_minute, "the free plan allows 5")
        self.adjusted = adjusted
        self.auth = auth
        if auth == "header":
            self._headers, self._auth_params = {"Authorization": f"Bearer {api_key}"}, {}
        else:
            self._headers, self._auth_params = {}, {"apiKey": api_key}
        super().__init__(
            vendor="polygon",
            base_url=base_url,
            bucket=TokenBucket(per_minute=requests_per_minute, clock=clock, sleep=sleep),
            secrets=(api_key,),
            # 403 is Polygon's answer to a valid key whose plan lacks the data
            auth_hint={401: _AUTH_HINT, 403: _PLAN_HINT},
            max_retries=max_retries,
            backoff_base_s=backoff_base_s,
            session=session,
        )

    @property
    def provenance(self) -> dict[str, str]:
        """What the cache records about how these bars were asked for."""
        return {"adjusted": str(self.adjusted).lower()}

    def __repr__(self) -> str:  # no key in it
        return f"PolygonProvider(base_url={self._http.base_url!r}, auth={self.auth!r})"

    def fetch(
        self, symbol: str, start: dt.date, end: dt.date, *, timeframe: str = "1m"
    ) -> pl.DataFrame:
        """Bars of ``symbol`` from ``start`` 00:00 to ``end`` 24:00 New York, extended hours
        included; minute and hour bars one calendar month per request, following
        ``next_url`` until the last page.

        Parameters
        ----------
        symbol : str
            e.g. ``"AAPL"`` or ``"BRK.B"`` (case-sensitive, as Polygon lists it).
        start, end : datetime.date
            New York dates, inclusive, e.g. 2024-03-01 and 2024-03-31 (up to about 20,000
            minute bars of a liquid stock with extended hours: one request).
        timeframe : str
            ``"1m"``, ``"5m"``, ``"15m"``, ``"1h"`` (on the hour) or ``"1d"`` (stamped
            00:00 New York).

        Returns
        -------
        polars.DataFrame
            In :data:`barlab.data.schema.SCHEMA`, sorted by ``ts``; empty when Polygon has
            no bars (weekends, holidays, unknown symbols).
        """
        check_timeframe(timeframe, _TIMESPANS)
        if end < start:
            raise DataRequestError(f"end {end} is before start {start}; swap them")
        multiplier, timespan = _TIMESPANS[timeframe]
        ranges = [(start, end)] if timespan == "day" else months(start, end)
        ticker = quote(symbol, safe="")
        results: list[dict[str, Any]] = []
        for first, last in ranges:
            if timespan == "day":
                window = f"{first.isoformat()}/{last.isoformat()}"
            else:  # exact New York bounds in ms: no doubt about the time zone of a date
                lo_ms = day_start_ns(first) // _NS_PER_MS
                hi_ms = day_start_ns(last + dt.timedelta(days=1)) // _NS_PER_MS
                window = f"{lo_ms}/{hi_ms - 1}"
            path = f"/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{window}"
            results.extend(self._results(path, symbol))
        df = _frame(results, symbol)
        return within(df, day_start_ns(start), day_start_ns(end + dt.timedelta(days=1)))

    def _results(self, path: str, symbol: str) -> list[dict[str, Any]]:
        """The ``results`` of ``path`` and of every ``next_url`` after it."""
        params: dict[str, Any] = {
            "adjusted": "true" if self.adjusted else "false",
            "sort": "asc",
            "limit": MAX_LIMIT,
        }
        results: list[dict[str, Any]] = []
        n_pages = 0
        pages = self._pages(
            path,
            # on later pages the cursor carries limit, sort and adjusted
            lambda url: self._get(str(url), params if url == path else {}),
            lambda body: self._follow(str(body["next_url"])) if body.get("next_url") else None,
            symbol=symbol,
            cursor="next_url",
            show=lambda url: self._http.redact(url.split("?")[0]),
        )
        for body in pages:
            results.extend(_results_of(body, symbol))
            n_pages += 1
        log.debug("polygon %s: %d bars in %d page(s)", path, len(results), n_pages)
        return results

    def _follow(self, next_url: str) -> str:
        """Where to GET ``next_url``: as is on our own host; otherwise its path and query on
        ``base_url``, as the official client does, so the key never goes to another host."""
        if next_url.startswith(self._http.base_url + "/"):
            return next_url
        parts = urlsplit(next_url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def _get(self, url: str, params: dict[str, Any]) -> dict[str, Any]:
        where = self._http.redact(url.split("?")[0])
        body = self._get_object(
            url, params={**params, **self._auth_params}, headers=self._headers, where=where
        )
        status = body.get("status")
        if status in ("ERROR", "NOT_AUTHORIZED"):
            said = self._http.redact(str(body.get("error") or body.get("message") or ""))
            if status == "NOT_AUTHORIZED":
                raise AuthError(f"polygon refused {where} ({said}); {_PLAN_HINT}")
            raise ProviderError(f"polygon {where} failed (status ERROR: {said}); try again later")
        return body


def _results_of(body: dict[str, Any], symbol: str) -> list[dict[str, Any]]:
    """The bars of one page; ``results`` is absent when there are none."""
    return records.bar_list(body.get("results"), f"polygon results for {symbol}", "a list")


def _frame(results: list[dict[str, Any]], symbol: str) -> pl.DataFrame:
    """Polygon aggregates (``t`` Unix ms bar start, ``o h l c v``, optional ``vw n``) as bars."""
    return records.frame(
        results, vendor="polygon", symbol=symbol, ts_type=pl.Int64,
        to_utc_ns=lambda t: t * _NS_PER_MS,
    )  # fmt: skip
