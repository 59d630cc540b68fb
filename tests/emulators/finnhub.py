"""Finnhub stock candles, emulated as ../shared/api/market-data.md sections 3 and 5 describe
them: token auth (query or header), premium-only access, parallel arrays, ``no_data``, the
one-month intraday cap and the 60/min + 30/s rate limits.

Checks run in Finnhub's order: auth, then the rate limits, then the plan, then the query.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import polars as pl

from barlab.data import calendar
from tests.emulators.base import App, Budgets, Reply, Request, market

PREMIUM_KEY = "cfinnhubpremium0123456789ab"
FREE_KEY = "cfinnhubfree000000000000000"
PATH = "/api/v1/stock/candle"
RESOLUTIONS = {"1": "1m", "5": "5m", "15": "15m", "60": "1h", "D": "1d"}
# Valid at Finnhub but not emulated (answered 422 here).
OTHER_RESOLUTIONS = ("30", "W", "M")
INTRADAY_CAP_S = 31 * 86_400

NO_TOKEN = Reply(429, {"error": "API limit reached. Please sign up for a free account."})
INVALID_KEY = Reply(401, {"error": "Invalid API key."})
NO_ACCESS = Reply(403, {"error": "You don't have access to this resource."})
RATE_LIMITED = Reply(
    429, {"error": "API limit reached. Please try again later. Remaining Limit: 0"}
)


def finnhub_app(
    *,
    keys: Mapping[str, bool] | None = None,
    per_minute: int = 60,
    per_second: int = 30,
    throttle: Collection[int] = (),
    clock: Callable[[], float] = time.monotonic,
    bad_days: frozenset[dt.date] = frozenset(),
) -> App:
    """An ``app(request) -> Reply`` serving ``/api/v1/stock/candle``.

    Parameters
    ----------
    keys
        API key -> premium (True) or not; only premium keys may read candles, as on the real
        service since 2024 (default: :data:`PREMIUM_KEY` premium, :data:`FREE_KEY` not).
    per_minute, per_second
        Requests a key may make in any 60 s / 1 s of ``clock`` (60/min on the free plan, 30/s
        on every plan); more answer 429, without Retry-After as at Finnhub.
    throttle
        Scripted 429 bursts: the numbers (1, 2, ...) of authenticated requests that answer 429
        whatever the budget, e.g. ``range(1, 4)`` for the first three.
    bad_days
        Days with a bad bar or two (see :func:`tests.emulators.base.vendor_bars`).
    """
    accepted = dict(keys) if keys is not None else {PREMIUM_KEY: True, FREE_KEY: False}
    throttled = frozenset(throttle)
    budgets = Budgets(clock)

    def app(request: Request) -> Reply:
        if request.path != PATH:
            return Reply(404, {"error": "Not Found"})
        key = request.query.get("token") or request.headers.get("x-finnhub-token", "")
        if not key:
            return NO_TOKEN  # Finnhub's odd answer to a missing token: 429, not 401
        if key not in accepted:
            return INVALID_KEY
        refused = budgets.check(
            key,
            per_minute=per_minute,
            per_second=per_second,
            scripted=lambda n: RATE_LIMITED if n in throttled else None,
            refused=lambda: RATE_LIMITED,
        )
        if refused is not None:
            return refused
        if not accepted[key]:
            return NO_ACCESS
        query = _parse(request.query)
        if isinstance(query, Reply):
            return query
        symbol, timeframe, start_s, end_s = query
        if timeframe != "1d":
            # "At most 1 month of intraday per call" (the spec): a longer range is answered
            # with its first 31 days only, silently, the way a cap looks to a client; so a
            # client that does not cut its ranges into months visibly loses bars in tests.
            end_s = min(end_s, start_s + INTRADAY_CAP_S - 1)
        return Reply(200, _candles(symbol, timeframe, start_s, end_s, bad_days))

    return app


def _invalid(message: str) -> Reply:
    # Finnhub's wording for bad parameters is not documented; the status and shape follow
    # its other errors ({"error": ...}).
    return Reply(422, {"error": message})


def _parse(query: dict[str, str]) -> tuple[str, str, int, int] | Reply:
    symbol = query.get("symbol", "")
    if not symbol:
        return _invalid("Missing symbol")
    resolution = query.get("resolution", "")
    if resolution in OTHER_RESOLUTIONS:
        return _invalid(f"resolution {resolution} is valid at Finnhub but not emulated")
    if resolution not in RESOLUTIONS:
        return _invalid("Wrong resolution")
    try:
        start_s, end_s = int(query["from"]), int(query["to"])
    except (KeyError, ValueError):
        return _invalid("from and to must be Unix seconds")
    return symbol, RESOLUTIONS[resolution], start_s, end_s


def _candles(
    symbol: str, timeframe: str, start_s: int, end_s: int, bad_days: frozenset[dt.date]
) -> dict[str, Any]:
    """Parallel arrays of the bars starting in [start_s, end_s] (both inclusive)."""
    if end_s < start_s:
        return {"s": "no_data"}
    first = dt.datetime.fromtimestamp(start_s, tz=calendar.NEW_YORK).date()
    last = dt.datetime.fromtimestamp(end_s, tz=calendar.NEW_YORK).date()
    bars = _market_arrays(symbol, first, last, timeframe, bad_days)
    bars = bars.filter((pl.col("t") >= start_s) & (pl.col("t") <= end_s))
    if bars.height == 0:
        return {"s": "no_data"}
    out: dict[str, Any] = {k: bars[k].to_list() for k in ("c", "h", "l", "o")}
    return {**out, "s": "ok", "t": bars["t"].to_list(), "v": bars["v"].to_list()}


@functools.lru_cache(maxsize=32)
def _market_arrays(
    symbol: str, first: dt.date, last: dt.date, timeframe: str, bad_days: frozenset[dt.date]
) -> pl.DataFrame:
    """:func:`market` in Finnhub's fields (``t`` Unix seconds, ``v`` integers)."""
    return market(symbol, first, last, timeframe, bad_days).select(
        pl.col("ts").dt.epoch("s").alias("t"),
        pl.col("open").alias("o"),
        pl.col("high").alias("h"),
        pl.col("low").alias("l"),
        pl.col("close").alias("c"),
        pl.col("volume").cast(pl.Int64).alias("v"),
    )
