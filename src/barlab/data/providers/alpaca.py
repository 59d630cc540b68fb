"""Alpaca Market Data v2 historical stock bars (``GET /v2/stocks/bars``), extended hours
included, as barlab's canonical frame; the only module that knows Alpaca's JSON.

Keys travel in the ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY`` headers, never in a URL.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import polars as pl
import requests

from barlab.data.calendar import day_start_ns
from barlab.data.http import TokenBucket
from barlab.data.providers import records
from barlab.data.providers.vendor import VendorProvider, check_rate, check_timeframe, within
from barlab.data.schema import SCHEMA
from barlab.errors import AuthError, ConfigError, ProviderError

if TYPE_CHECKING:
    from barlab.config import Config

VERSION = "alpaca-1"
"""Changes whenever the same request would give other bars; cached Alpaca bars of another
version are fetched again."""

KEY_NAMES = ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY")
MAX_LIMIT = 10_000
"""Most bars Alpaca returns per page (alpaca-py's ``DATA_V2_MAX_LIMIT``)."""

_TIMEFRAMES = {"1m": "1Min", "5m": "5Min", "15m": "15Min", "1h": "1Hour", "1d": "1Day"}
_FEEDS = ("iex", "sip")
_ADJUSTMENTS = ("raw", "split", "dividend", "all")
_AUTH_HINT = (
    "check APCA_API_KEY_ID and APCA_API_SECRET_KEY (export them or put them in ./.env); "
    "they are the key pair of your Alpaca account, paper or live"
)


def connect(config: Config) -> AlpacaProvider:
    """An :class:`AlpacaProvider` from ``config.alpaca`` and the keys in the environment or
    ./.env; raises AuthError naming the variables that are missing."""
    from barlab.config import secrets

    found = secrets()
    missing = [name for name in KEY_NAMES if name not in found]
    if missing:
        raise AuthError(
            f"alpaca needs {' and '.join(missing)}: export them or put them in ./.env "
            "(the key pair from https://app.alpaca.markets; paper keys work for market data)"
        )
    section = config.alpaca
    return AlpacaProvider(
        key_id=found["APCA_API_KEY_ID"],
        secret_key=found["APCA_API_SECRET_KEY"],
        base_url=section.data_base_url,
        requests_per_minute=section.requests_per_minute,
        feed=section.feed,
        adjustment=section.adjustment,
    )


class AlpacaProvider(VendorProvider):
    """Historical bars from Alpaca Market Data v2.

    Parameters
    ----------
    key_id, secret_key : str
        The account's key pair ($APCA_API_KEY_ID, $APCA_API_SECRET_KEY).
    base_url : str
        ``"https://data.alpaca.markets"``, or a local emulator's ``"http://127.0.0.1:8123"``.
    requests_per_minute : float
        Client-side limit, e.g. ``200`` (the free plan's historical calls a minute).
    feed : str
        ``"iex"`` (free plans) or ``"sip"`` (all US exchanges; free plans only up to 15
        minutes ago).
    adjustment : str
        ``"raw"``, ``"split"``, ``"dividend"`` or ``"all"``.
    session, max_retries, backoff_base_s
        As for every vendor: see :class:`~barlab.data.providers.vendor.VendorProvider`.
    page_limit : int
        Bars asked for per page, 1 to 10,000 (default: the most Alpaca allows).
    """

    VERSION = VERSION

    def __init__(
        self,
        *,
        key_id: str,
        secret_key: str,
        base_url: str,
        requests_per_minute: float = 200.0,
        feed: str = "iex",
        adjustment: str = "split",
        session: requests.Session | None = None,
        max_retries: int = 6,
        backoff_base_s: float = 1.0,
        page_limit: int = MAX_LIMIT,
    ) -> None:
        if not key_id or not secret_key:
            raise AuthError(f"alpaca needs both {' and '.join(KEY_NAMES)}; one of them is empty")
        if feed not in _FEEDS:
            raise ConfigError(f"alpaca feed must be iex or sip, got {feed!r}")
        if adjustment not in _ADJUSTMENTS:
            raise ConfigError(
                f"alpaca adjustment must be {', '.join(_ADJUSTMENTS)}, got {adjustment!r}"
            )
        if not 1 <= page_limit <= MAX_LIMIT:
            raise ConfigError(f"alpaca page_limit must be 1 to {MAX_LIMIT}, got {page_limit}")
        check_rate("alpaca", "requests_per_minute", requests_per_minute, "the free plan allows 200")
        self.feed = feed
        self.adjustment = adjustment
        self.page_limit = page_limit
        self._headers = {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret_key}
        super().__init__(
            vendor="alpaca",
            base_url=base_url,
            bucket=TokenBucket(per_minute=requests_per_minute),
            secrets=(key_id, secret_key),
            auth_hint=_AUTH_HINT,
            max_retries=max_retries,
            backoff_base_s=backoff_base_s,
            session=session,
        )

    @property
    def provenance(self) -> dict[str, str]:
        """What the cache records about how these bars were asked for."""
        return {"feed": self.feed, "adjustment": self.adjustment}

    def __repr__(self) -> str:  # no keys in it
        return f"AlpacaProvider(base_url={self._http.base_url!r}, feed={self.feed!r})"

    def fetch(
        self, symbol: str, start: dt.date, end: dt.date, *, timeframe: str = "1m"
    ) -> pl.DataFrame:
        """Bars of ``symbol`` from ``start`` 00:00 to ``end`` 24:00 New York, extended hours
        included; following ``next_page_token`` until the last page.

        Parameters
        ----------
        symbol : str
            e.g. ``"AAPL"`` or ``"BRK.B"``.
        start, end : datetime.date
            New York dates, inclusive, e.g. 2024-03-01 and 2024-03-31 (a month of minute bars
            with extended hours is some 10,000 bars: one or two pages).
        timeframe : str
            ``"1m"``, ``"5m"``, ``"15m"``, ``"1h"`` or ``"1d"`` (stamped 00:00 New York).

        Returns
        -------
        polars.DataFrame
            In :data:`barlab.data.schema.SCHEMA`, sorted by ``ts``; empty when Alpaca has
            no bars (weekends, holidays, unknown symbols).
        """
        check_timeframe(timeframe, _TIMEFRAMES)
        if end < start:
            return SCHEMA.to_frame()
        lo = day_start_ns(start)
        hi = day_start_ns(end + dt.timedelta(days=1))
        params: dict[str, Any] = {
            "symbols": symbol,
            "timeframe": _TIMEFRAMES[timeframe],
            "start": _rfc3339(lo),
            "end": _rfc3339(hi - 10**9),  # Alpaca's end is inclusive; bars start on the minute
            "limit": self.page_limit,
            "feed": self.feed,
            "adjustment": self.adjustment,
            "sort": "asc",
        }
        pages = self._pages(
            None,
            lambda token: self._get(params | ({"page_token": token} if token else {}), symbol),
            lambda body: body.get("next_page_token"),
            symbol=symbol,
            cursor="next_page_token",
        )
        bars = [bar for body in pages for bar in _bars_of(body, symbol)]
        return within(_frame(bars, symbol), lo, hi)

    def _get(self, params: dict[str, Any], symbol: str) -> dict[str, Any]:
        path = "/v2/stocks/bars"
        try:
            return self._get_object(path, params=params, headers=self._headers, where=path)
        except ProviderError as e:
            # Free plans may not ask SIP for the last 15 minutes (403 now, 422 in older APIs):
            # a plan question, not a wrong key, so the generic key hint would mislead.
            if "subscription does not permit" in str(e):
                raise AuthError(
                    f"alpaca refused recent {symbol} bars from the SIP feed: the subscription "
                    "does not permit querying SIP data from the last 15 minutes (free plans); "
                    'set feed = "iex" in the [alpaca] section of backtest.toml, end the range '
                    "earlier, or use a paid plan for recent SIP data"
                ) from e
            raise


def _rfc3339(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns // 10**9, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bars_of(body: dict[str, Any], symbol: str) -> list[dict[str, Any]]:
    """The bars of ``symbol`` in one page: ``bars`` is a dict keyed by symbol on the multi
    endpoint, a list (or null when empty) on the single-symbol one."""
    bars = body.get("bars")
    if isinstance(bars, dict):
        bars = bars.get(symbol)
    return records.bar_list(bars, f"alpaca bars for {symbol}", "a list of objects")


def _frame(bars: list[dict[str, Any]], symbol: str) -> pl.DataFrame:
    """Alpaca bar objects (``t`` RFC-3339 with Z, ``o h l c v``, optional ``vw n``) as bars."""
    return records.frame(
        bars, vendor="alpaca", symbol=symbol, ts_type=pl.String,
        to_utc_ns=lambda t: t.str.to_datetime(time_unit="ns", time_zone="UTC"),
    )  # fmt: skip
