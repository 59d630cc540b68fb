"""Finnhub stock candles (``GET /stock/candle``) as barlab's canonical frame; the only module
that knows Finnhub's JSON.

Candles are premium-only: free keys get 403. Intraday candles come at most a month per call,
so ranges are fetched one calendar month at a time. The key travels in the
``X-Finnhub-Token`` header, never in a URL.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import requests

from barlab.data.calendar import day_start_ns
from barlab.data.http import TokenBucket
from barlab.data.providers.vendor import (
    VendorProvider,
    check_rate,
    check_timeframe,
    months,
    within,
)
from barlab.data.schema import SCHEMA, normalize
from barlab.errors import AuthError, ProviderError

if TYPE_CHECKING:
    from barlab.config import Config

VERSION = "finnhub-1"
"""Changes whenever the same request would give other bars; cached Finnhub bars of another
version are fetched again."""

KEY_NAME = "FINNHUB_API_KEY"
_RESOLUTIONS = {"1m": "1", "5m": "5", "15m": "15", "1h": "60", "1d": "D"}
_AUTH_HINT = f"check {KEY_NAME} (export it or put it in ./.env)"
_PREMIUM = (
    "Finnhub stock candles need a premium plan (free keys get 403); use --source polygon or alpaca"
)
_ARRAYS = {"t": "ts", "o": "open", "h": "high", "l": "low", "c": "close", "v": "volume"}


def connect(config: Config) -> FinnhubProvider:
    """A :class:`FinnhubProvider` from ``config.finnhub`` and $FINNHUB_API_KEY (environment
    or ./.env); raises AuthError when the key is missing."""
    from barlab.config import secrets

    key = secrets().get(KEY_NAME)
    if not key:
        raise AuthError(
            f"finnhub needs {KEY_NAME}: export it or put it in ./.env (a key from "
            "https://finnhub.io/dashboard; stock candles need a premium plan)"
        )
    section = config.finnhub
    return FinnhubProvider(
        api_key=key,
        base_url=section.base_url,
        requests_per_minute=section.requests_per_minute,
        requests_per_second=section.requests_per_second,
    )


class FinnhubProvider(VendorProvider):
    """Historical candles from Finnhub.

    Parameters
    ----------
    api_key : str
        $FINNHUB_API_KEY, of a plan that includes stock candles.
    base_url : str
        ``"https://finnhub.io/api/v1"``, or an emulator's ``"http://127.0.0.1:8123/api/v1"``.
    requests_per_minute, requests_per_second : float
        Client-side limits, e.g. ``60`` (the free plan's) and ``30`` (Finnhub's cap on
        every plan).
    session, max_retries, backoff_base_s
        As for every vendor: see :class:`~barlab.data.providers.vendor.VendorProvider`.
    """

    VERSION = VERSION

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        requests_per_minute: float = 60.0,
        requests_per_second: float = 30.0,
        session: requests.Session | None = None,
        max_retries: int = 6,
        backoff_base_s: float = 1.0,
    ) -> None:
        if not api_key:
            raise AuthError(f"finnhub needs {KEY_NAME}; it is empty")
        check_rate("finnhub", "requests_per_minute", requests_per_minute)
        check_rate("finnhub", "requests_per_second", requests_per_second)
        self._headers = {"X-Finnhub-Token": api_key}
        super().__init__(
            vendor="finnhub",
            base_url=base_url,
            bucket=TokenBucket(per_minute=requests_per_minute, per_second=requests_per_second),
            secrets=(api_key,),
            auth_hint=_AUTH_HINT,
            max_retries=max_retries,
            backoff_base_s=backoff_base_s,
            session=session,
        )

    @property
    def provenance(self) -> dict[str, str]:
        """What the cache records: Finnhub adjusts daily bars for splits, not intraday ones."""
        return {"adjusted": "daily bars only"}

    def __repr__(self) -> str:  # no key in it
        return f"FinnhubProvider(base_url={self._http.base_url!r})"

    def fetch(
        self, symbol: str, start: dt.date, end: dt.date, *, timeframe: str = "1m"
    ) -> pl.DataFrame:
        """Candles of ``symbol`` from ``start`` 00:00 to ``end`` 24:00 New York.

        Parameters
        ----------
        symbol : str
            e.g. ``"AAPL"``.
        start, end : datetime.date
            New York dates, inclusive, e.g. 2024-01-01 and 2024-03-31 (three requests for
            intraday bars, one per calendar month; one for daily bars).
        timeframe : str
            ``"1m"``, ``"5m"``, ``"15m"``, ``"1h"`` or ``"1d"``. Finnhub adjusts daily candles
            for splits but not intraday ones.

        Returns
        -------
        polars.DataFrame
            In :data:`barlab.data.schema.SCHEMA` (``vwap`` and ``n_trades`` null: Finnhub has
            neither), sorted by ``ts``; empty when Finnhub answers ``no_data``.
        """
        check_timeframe(timeframe, _RESOLUTIONS)
        if end < start:
            return SCHEMA.to_frame()
        chunks = [(start, end)] if timeframe == "1d" else months(start, end)
        frames = []
        for first, last in chunks:
            lo = day_start_ns(first)
            hi = day_start_ns(last + dt.timedelta(days=1))
            params = {
                "symbol": symbol,
                "resolution": _RESOLUTIONS[timeframe],
                "from": lo // 10**9,
                "to": hi // 10**9 - 1,  # inclusive
            }
            frames.append(within(_frame(self._get(params), symbol), lo, hi))
        return pl.concat(frames)

    def _get(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            body = self._http.get_json("/stock/candle", params=params, headers=self._headers)
        except AuthError as e:
            # 403 (401 in older reports) with this body means the plan, not the key.
            if "have access to this resource" in str(e):
                raise AuthError(
                    f'{_PREMIUM} (finnhub: "You don\'t have access to this resource.")'
                ) from e
            raise
        if not isinstance(body, dict):
            raise ProviderError(f"finnhub answered /stock/candle with {type(body).__name__}")
        return body


def _frame(body: dict[str, Any], symbol: str) -> pl.DataFrame:
    """Finnhub's parallel arrays (``t`` Unix seconds of the bar start) as bars."""
    status = body.get("s")
    if status == "no_data":
        return SCHEMA.to_frame()
    if status != "ok":
        raise ProviderError(
            f"finnhub candles for {symbol} have status {status!r}; expected 'ok' or 'no_data'"
        )
    try:
        arrays = {name: body[key] for key, name in _ARRAYS.items()}
    except KeyError as e:
        raise ProviderError(f"finnhub candles for {symbol} lack array {e}") from e
    sizes = {k: len(v) if isinstance(v, list) else type(v).__name__ for k, v in arrays.items()}
    if len(set(sizes.values())) != 1 or not all(isinstance(n, int) for n in sizes.values()):
        shown = ", ".join(f"{k}: {n}" for k, n in sizes.items())
        raise ProviderError(f"finnhub candles for {symbol} are not equal-length arrays ({shown})")
    try:
        df = pl.DataFrame(
            {
                **{k: np.asarray(v, dtype=np.float64) for k, v in arrays.items() if k != "ts"},
                "ts": np.asarray(arrays["ts"], dtype=np.int64) * 10**9,
            }
        )
    except (TypeError, ValueError) as e:
        raise ProviderError(f"finnhub candles for {symbol} cannot be read: {e}") from e
    return normalize(df)
