"""What the vendor providers (polygon.py, alpaca.py, finnhub.py) share: one rate-limited
:class:`~barlab.data.http.HttpClient` and its stats, the page loop, month-long pieces of a date
range and the checks every request passes. The vendors' URLs, parameters, cursors, JSON and
error hints stay in their own modules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import polars as pl
import requests

from barlab.bars import TIMEFRAMES
from barlab.data.http import HttpClient, HttpStats, TokenBucket
from barlab.errors import ConfigError, DataError, ProviderError


class VendorProvider:
    """The part of a vendor provider that talks HTTP (``bucket``, ``secrets`` and
    ``auth_hint`` as in :class:`barlab.data.http.HttpClient`).

    Parameters
    ----------
    vendor : str
        The name in messages and log lines, e.g. ``"polygon"``.
    base_url : str
        e.g. ``"https://api.polygon.io"``, or a local emulator's ``"http://127.0.0.1:8123"``.
    max_retries : int
        Retries on 429, 5xx and connection errors, e.g. ``6``.
    backoff_base_s : float
        First retry waits up to this many seconds (doubling after), e.g. ``1.0``.
    session : requests.Session, optional
        Shared connection pool; a new one when None.
    """

    VERSION: str

    def __init__(
        self,
        *,
        vendor: str,
        base_url: str,
        bucket: TokenBucket,
        secrets: tuple[str, ...],
        auth_hint: str | Mapping[int, str],
        max_retries: int,
        backoff_base_s: float,
        session: requests.Session | None,
    ) -> None:
        self.vendor = vendor
        self._http = HttpClient(
            provider=vendor,
            base_url=base_url,
            bucket=bucket,
            secrets=secrets,
            auth_hint=auth_hint,
            max_retries=max_retries,
            backoff_base_s=backoff_base_s,
            session=session,
        )

    @property
    def stats(self) -> HttpStats:
        """Requests, retries and rate-limit waits so far."""
        return self._http.stats

    def _get_object(
        self, url: str, *, params: Mapping[str, Any], headers: Mapping[str, str], where: str
    ) -> dict[str, Any]:
        """The JSON object at ``url``; any other JSON is a ProviderError naming ``where``."""
        body = self._http.get_json(url, params=params, headers=headers)
        if not isinstance(body, dict):
            raise ProviderError(
                f"{self.vendor} answered {where} with {type(body).__name__}, not an object"
            )
        return body

    def _pages(
        self,
        first: str | None,
        get: Callable[[str | None], dict[str, Any]],
        next_of: Callable[[dict[str, Any]], str | None],
        *,
        symbol: str,
        cursor: str,
        show: Callable[[str], str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Each page's body: ``get(first)``, then ``get(next_of(body))`` until ``next_of``
        gives nothing. A ``cursor`` (e.g. ``"next_url"``) sent twice is a ProviderError,
        with the cursor as ``show`` renders it, instead of an endless loop."""
        seen = {first}
        at = first
        while True:
            body = get(at)
            yield body
            at = next_of(body)
            if not at:
                return
            if at in seen:
                shown = f" ({show(at)})" if show else ""
                raise ProviderError(
                    f"{self.vendor} sent the same {cursor} twice for {symbol}{shown}; stopping "
                    "instead of looping (try again later)"
                )
            seen.add(at)


def check_rate(vendor: str, name: str, value: float, hint: str = "") -> None:
    """ConfigError unless ``value`` (a requests-per-period limit) is > 0."""
    if not value > 0:
        raise ConfigError(
            f"{vendor} {name} must be > 0, got {value}" + (f"; {hint}" if hint else "")
        )


def check_timeframe(timeframe: str, known: Mapping[str, Any]) -> None:
    """DataError unless the vendor knows ``timeframe`` (a key of ``known``)."""
    if timeframe not in known:
        raise DataError(f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}")


def months(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    """``start``..``end`` cut at month ends: at most one calendar month (31 days) per piece."""
    pieces = []
    first = start
    while first <= end:
        next_month = (first.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        last = min(end, next_month - dt.timedelta(days=1))
        pieces.append((first, last))
        first = next_month
    return pieces


def within(df: pl.DataFrame, lo_ns: int, hi_ns: int) -> pl.DataFrame:
    """The bars of ``df`` starting in [``lo_ns``, ``hi_ns``) (UTC nanoseconds)."""
    ts = pl.col("ts").dt.epoch("ns")
    return df.filter((ts >= lo_ns) & (ts < hi_ns))
