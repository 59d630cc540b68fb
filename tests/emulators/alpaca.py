"""Alpaca Market Data v2 historical stock bars, emulated as ../shared/api/market-data.md
sections 2 and 5 describe them: header auth, the multi-symbol and single-symbol bars
endpoints, ``next_page_token`` pagination, the free plan's SIP recency rule and 429s.

Checks run in Alpaca's order: auth, then the rate limit, then the query, then the plan.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import re
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import polars as pl

from barlab.data import calendar
from tests.emulators.base import App, Budgets, Reply, Request, market

KEY_ID = "PKTEST0123456789ABCD"
SECRET_KEY = "sEcReT/alpaca+0123456789abcdefghijKLMNOP"
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
FEEDS = ("iex", "sip", "delayed_sip", "otc", "boats", "overnight")
ADJUSTMENTS = ("raw", "split", "dividend", "all")
SIP_DELAY = dt.timedelta(minutes=15)
# Timeframes whose bars the emulator makes; others valid at Alpaca are answered 422.
TIMEFRAMES = {"1Min": "1m", "5Min": "5m", "15Min": "15m", "1Hour": "1h", "1Day": "1d"}

FORBIDDEN = Reply(403, {"message": "forbidden."})
RECENT_SIP = Reply(403, {"message": "subscription does not permit querying recent SIP data"})
RATE_LIMITED = Reply(429, {"code": 42910000, "message": "rate limit exceeded"})
_SINGLE = re.compile(r"^/v2/stocks/([^/]+)/bars$")
_VALID_TIMEFRAME = re.compile(
    r"([1-9]|[1-5]\d)(Min|T)|([1-9]|1\d|2[0-3])(Hour|H)|1(Day|D)|1(Week|W)|(1|2|3|6|12)(Month|M)"
)


def alpaca_app(
    *,
    keys: Mapping[str, str] | None = None,
    per_minute: int = 200,
    throttle: Collection[int] = (),
    plan: str = "free",
    now: dt.datetime | None = None,
    clock: Callable[[], float] = time.monotonic,
    bad_days: frozenset[dt.date] = frozenset(),
) -> App:
    """An ``app(request) -> Reply`` serving ``/v2/stocks/bars`` and ``/v2/stocks/{sym}/bars``.

    Parameters
    ----------
    keys
        Key id -> secret key accepted (default: :data:`KEY_ID` -> :data:`SECRET_KEY`).
    per_minute
        Requests a key may make in any 60 s of ``clock`` (200 on the free plan, 10,000 paid);
        more answer 429 "rate limit exceeded", without Retry-After as at Alpaca.
    throttle
        Scripted 429 bursts: the numbers (1, 2, ...) of authenticated requests that answer 429
        whatever the budget, e.g. ``range(1, 4)`` for the first three.
    plan
        ``"free"``: ``feed=sip`` with ``end`` after ``now`` - 15 min is refused with 403;
        ``"paid"``: allowed.
    now
        The emulator's wall clock for the recency rule (default: the real time).
    bad_days
        Days with a bad bar or two (see :func:`tests.emulators.base.vendor_bars`).
    """
    accepted = dict(keys) if keys is not None else {KEY_ID: SECRET_KEY}
    throttled = frozenset(throttle)
    budgets = Budgets(clock)

    def app(request: Request) -> Reply:
        single = _SINGLE.match(request.path)
        if request.path != "/v2/stocks/bars" and not single:
            return Reply(404, {"message": "Not Found"})
        key_id = request.headers.get("apca-api-key-id", "")
        if not key_id or accepted.get(key_id) != request.headers.get("apca-api-secret-key"):
            return FORBIDDEN
        refused = budgets.check(
            key_id,
            per_minute=per_minute,
            scripted=lambda n: RATE_LIMITED if n in throttled else None,
            refused=lambda: RATE_LIMITED,
        )
        if refused is not None:
            return refused
        query = dict(request.query)
        if single:
            query["symbols"] = single.group(1)
        wall = now or dt.datetime.now(dt.UTC)
        parsed = _parse(query, wall)
        if isinstance(parsed, Reply):
            return parsed
        if plan == "free" and parsed["feed"] == "sip" and parsed["end"] > wall - SIP_DELAY:
            return RECENT_SIP
        page, token = _page(parsed, bad_days)
        if isinstance(page, Reply):
            return page
        if single:  # bars: a list, or null when empty (reported, not documented)
            sym = parsed["symbols"][0]
            return Reply(200, {"bars": page.get(sym), "symbol": sym, "next_page_token": token})
        return Reply(200, {"bars": page, "next_page_token": token})

    return app


def _invalid(message: str) -> Reply:
    return Reply(422, {"code": 42210000, "message": message})


def _parse(query: dict[str, str], wall: dt.datetime) -> dict[str, Any] | Reply:
    """The query's values, or the 422 Alpaca answers to an invalid one."""
    symbols = sorted({s for s in query.get("symbols", "").split(",") if s})
    if not symbols:
        return _invalid("missing symbols")
    timeframe = query.get("timeframe", "")
    if not _VALID_TIMEFRAME.fullmatch(timeframe):
        return _invalid(f"invalid timeframe: {timeframe!r}")
    if timeframe not in TIMEFRAMES:
        return _invalid(f"timeframe {timeframe} is valid at Alpaca but not emulated")
    raw_limit = query.get("limit") or str(DEFAULT_LIMIT)
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        return _invalid(f"invalid limit: {raw_limit!r} (expected 1 to {MAX_LIMIT})")
    day_start = dt.datetime.fromtimestamp(
        calendar.day_start_ns(wall.astimezone(calendar.NEW_YORK).date()) / 1e9, tz=dt.UTC
    )
    times = {}
    for name, default in (("start", day_start), ("end", wall)):
        text = query.get(name)
        try:
            value = dt.datetime.fromisoformat(text) if text else default
        except ValueError:
            return _invalid(f"invalid {name}: {text!r} (expected RFC-3339)")
        times[name] = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if times["end"] < times["start"]:
        return _invalid("end should not be before start")
    choices = {
        "feed": (FEEDS, "iex"),
        "adjustment": (ADJUSTMENTS, "raw"),
        "sort": (("asc", "desc"), "asc"),
    }
    picked = {}
    for name, (allowed, default) in choices.items():
        picked[name] = query.get(name) or default
        if picked[name] not in allowed:
            return _invalid(f"invalid {name}: {picked[name]!r}")
    return {
        "symbols": symbols,
        "timeframe": TIMEFRAMES[timeframe],
        "tf_letter": timeframe.lstrip("0123456789")[0],
        "limit": int(raw_limit),
        "page_token": query.get("page_token", ""),
        **times,
        **picked,
    }


def _page(q: dict[str, Any], bad_days: frozenset[dt.date]) -> tuple[Any, str | None]:
    """One page of bars sorted by symbol, then time, ``limit`` counted across symbols; and the
    token of the next page (None on the last)."""
    lo = int(q["start"].timestamp() * 10**9)
    hi = int(q["end"].timestamp() * 10**9)
    items = []
    for sym in q["symbols"]:
        bars = _json_bars(sym, q["timeframe"], lo, hi, bad_days)
        items += [(sym, bar) for bar in (bars[::-1] if q["sort"] == "desc" else bars)]
    first = 0
    if q["page_token"]:
        # Alpaca's token decodes to SYMBOL|timeframe letter|last bar's time: resume after it.
        try:
            sym, _, t = base64.b64decode(q["page_token"], validate=True).decode().split("|")
            t = t.replace(".000000000Z", "Z")
            first = 1 + next(i for i, (s, b) in enumerate(items) if s == sym and b["t"] == t)
        except (ValueError, StopIteration):
            return _invalid(f"invalid page_token: {q['page_token']!r}"), None
    chunk = items[first : first + q["limit"]]
    page: dict[str, list[dict[str, Any]]] = {}
    for sym, bar in chunk:
        page.setdefault(sym, []).append(bar)
    token = None
    if first + q["limit"] < len(items):
        sym, bar = chunk[-1]
        last = bar["t"].replace("Z", ".000000000Z")
        token = base64.b64encode(f"{sym}|{q['tf_letter']}|{last}".encode()).decode()
    return page, token


@functools.lru_cache(maxsize=32)  # pages of one query share it
def _json_bars(
    symbol: str, timeframe: str, lo_ns: int, hi_ns: int, bad_days: frozenset[dt.date]
) -> tuple[dict[str, Any], ...]:
    """Alpaca bar objects of ``symbol`` starting in [lo_ns, hi_ns] (both inclusive)."""
    first = dt.datetime.fromtimestamp(lo_ns / 1e9, tz=calendar.NEW_YORK).date()
    last = dt.datetime.fromtimestamp(hi_ns / 1e9, tz=calendar.NEW_YORK).date()
    bars = _market_json(symbol, first, last, timeframe, bad_days)
    ts = bars["ts"].dt.epoch("ns")
    return tuple(bars.filter((ts >= lo_ns) & (ts <= hi_ns)).drop("ts").to_dicts())


@functools.lru_cache(maxsize=32)
def _market_json(
    symbol: str, first: dt.date, last: dt.date, timeframe: str, bad_days: frozenset[dt.date]
) -> pl.DataFrame:
    """:func:`market` in Alpaca's bar fields (``t`` RFC-3339 with Z; ``v``, ``n`` integers),
    beside ``ts`` for filtering."""
    return market(symbol, first, last, timeframe, bad_days).select(
        pl.col("ts"),
        pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("t"),
        pl.col("open").alias("o"),
        pl.col("high").alias("h"),
        pl.col("low").alias("l"),
        pl.col("close").alias("c"),
        pl.col("volume").cast(pl.Int64).alias("v"),
        pl.col("n_trades").alias("n"),
        pl.col("vwap").alias("vw"),
    )
