"""Polygon.io / Massive aggregates emulator, after ../shared/api/market-data.md sections 1
and 5: both auth forms, 401/403/429 bodies as observed, ``limit`` over base aggregates with
``next_url`` pages that never carry the key, empty ranges without ``results``, minute, hour
and day bars (day bars stamped 00:00 New York), volumes as floats.

Serve it with :class:`tests.emulators.base.Emulator`::

    with Emulator(polygon_app(today=dt.date(2024, 6, 14))) as em:
        PolygonProvider(api_key="test-key", base_url=em.url, ...)
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import numpy as np
import polars as pl

from barlab.data import calendar
from barlab.data.calendar import day_start_ns
from tests.emulators.base import Budgets, Reply, Request, vendor_bars

TEST_KEYS: Mapping[str, str] = MappingProxyType({"test-key": "paid"})
"""API key -> plan (``"free"`` or ``"paid"``)."""
PLAN_REQUESTS_PER_MINUTE: Mapping[str, float | None] = MappingProxyType({"free": 5.0, "paid": None})
"""Plan -> requests a minute allowed per key (None: unlimited)."""

DEFAULT_LIMIT = 5_000
MAX_LIMIT = 50_000
FREE_HISTORY_YEARS = 2
MISSING_KEY = "API Key was not provided"
UNKNOWN_KEY = "Unknown API Key"
PLAN_TIMEFRAME = (
    "Your plan doesn't include this data timeframe. Please upgrade your plan at "
    "https://polygon.io/pricing"
)
RATE_LIMITED = (
    "You've exceeded the maximum requests per minute, please wait or upgrade your "
    "subscription to continue. https://polygon.io/pricing"
)
COLUMNS = ("ts", "open", "high", "low", "close", "volume", "vwap", "n_trades")
"""The columns of the bars the emulator holds (what a Polygon aggregate carries)."""

_UNIT_NS = {"minute": 60 * 10**9, "hour": 3600 * 10**9}
_EVERY = {"minute": "m", "hour": "h", "day": "d"}
_NY = "America/New_York"


def minute_bars(
    symbol: str, start: dt.date, end: dt.date, *, bad_days: frozenset[dt.date] = frozenset()
) -> pl.DataFrame:
    """The 1-minute bars the emulator holds for New York dates ``start``..``end``.

    Made one calendar month at a time by :func:`tests.emulators.base.vendor_bars`, so the bars
    of a day are the same whatever range is asked (vendor_bars drops every 97th minute *of
    the range it is given*). Dates outside the NYSE calendar barlab knows have no bars.
    """
    first_ok, last_ok = calendar.supported_range()
    start, end = max(start, first_ok), min(end, last_ok)
    frames = []
    month = start.replace(day=1)
    while month <= end:
        frames.append(_month_bars(symbol, month, bad_days))
        month = (month + dt.timedelta(days=32)).replace(day=1)
    if not frames:
        return _empty()
    df = pl.concat(frames)
    day = df["ts"].dt.convert_time_zone(_NY).dt.date()
    return df.filter((day >= start) & (day <= end))


@functools.lru_cache(maxsize=64)
def _month_bars(symbol: str, month: dt.date, bad_days: frozenset[dt.date]) -> pl.DataFrame:
    last = (month + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    last = min(last, calendar.supported_range()[1])
    df = vendor_bars(symbol, month, last, bad_days=bad_days)
    return df.select(COLUMNS) if df.height else _empty()


def _empty() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "ts": pl.Datetime("ns", "UTC"),
            **{c: pl.Float64 for c in COLUMNS[1:7]},
            "n_trades": pl.Int64,
        }
    )


def polygon_app(
    *,
    keys: Mapping[str, str] = TEST_KEYS,
    today: dt.date | None = None,
    requests_per_minute: Mapping[str, float | None] = PLAN_REQUESTS_PER_MINUTE,
    burst_429: int = 0,
    burst_500: int = 0,
    max_limit: int = MAX_LIMIT,
    status: str = "OK",
    bad_days: frozenset[dt.date] = frozenset(),
    clock: Callable[[], float] = time.monotonic,
) -> PolygonApp:
    """An app for :class:`tests.emulators.base.Emulator` answering Polygon's aggregates.

    Parameters
    ----------
    keys : mapping
        API key -> plan, ``"free"`` or ``"paid"``, e.g. ``{"test-key": "paid"}``.
    today : datetime.date, optional
        The emulator's today (New York): it holds no bars after it, and the free plan sees
        about 2 years back and nothing from today on. Default: the real today.
    requests_per_minute : mapping
        Plan -> requests a minute per key, over a sliding minute (None: unlimited); free 5.
    burst_429, burst_500 : int
        The first ``burst_429`` authenticated requests get 429 (no Retry-After), the next
        ``burst_500`` get 500.
    max_limit : int
        Cap on ``limit`` (Polygon's is 50,000); small values force many pages.
    status : str
        ``status`` of successful bodies: ``"OK"``, or ``"DELAYED"`` as on delayed plans.
    bad_days : frozenset of datetime.date
        Passed to vendor_bars: one bar with high < close and one with negative volume a day.
    clock : callable
        Seconds, for the rate limit (tests pass a fake).
    """
    return PolygonApp(
        keys=dict(keys),
        today=today,
        requests_per_minute=dict(requests_per_minute),
        burst_429=burst_429,
        burst_500=burst_500,
        max_limit=max_limit,
        status=status,
        bad_days=bad_days,
        clock=clock,
    )


@dataclass(kw_only=True)
class PolygonApp:
    """The emulator: its options (see :func:`polygon_app`) and state; called once a request."""

    keys: dict[str, str]
    today: dt.date | None
    requests_per_minute: dict[str, float | None]
    burst_429: int
    burst_500: int
    max_limit: int
    status: str
    bad_days: frozenset[dt.date]
    clock: Callable[[], float]
    _budgets: Budgets = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._budgets = Budgets(self.clock)

    @property
    def authenticated(self) -> int:
        """Requests with a known key so far (the scripted bursts count these)."""
        return self._budgets.counted

    def __call__(self, request: Request) -> Reply:
        key = request.query.get("apiKey") or _bearer(request.headers.get("authorization", ""))
        if not key:
            return _error(401, "ERROR", error=MISSING_KEY)
        plan = self.keys.get(key)
        if plan is None:
            return _error(401, "ERROR", error=UNKNOWN_KEY)
        refused = self._throttle(key, plan)
        if refused is not None:
            return refused
        try:
            query = _Query.parse(request, max_limit=self.max_limit)
        except ValueError as e:
            return _error(400, "ERROR", error=str(e))
        if query is None:
            return _error(404, "NOT_FOUND", message="Data not found.")
        if plan == "free" and not self._free_covers(query.lo_ns, query.hi_ns):
            return _error(403, "NOT_AUTHORIZED", message=PLAN_TIMEFRAME)
        return Reply(200, self._aggregates(query, request.headers.get("host", "127.0.0.1")))

    def _today(self) -> dt.date:
        return self.today or dt.datetime.now(calendar.NEW_YORK).date()

    def _throttle(self, key: str, plan: str) -> Reply | None:
        """The scripted bursts, then the per-key sliding-minute budget."""

        def scripted(n: int) -> Reply | None:
            if n <= self.burst_429:
                return _error(429, "ERROR", error=RATE_LIMITED)
            if n <= self.burst_429 + self.burst_500:
                return _error(500, "ERROR", error="Internal server error")
            return None

        return self._budgets.check(
            key,
            per_minute=self.requests_per_minute.get(plan),
            scripted=scripted,
            refused=lambda: _error(429, "ERROR", error=RATE_LIMITED),
        )

    def _free_covers(self, lo_ns: int, hi_ns: int) -> bool:
        """The free plan: about 2 years back, nothing from today on."""
        today = self._today()
        try:
            earliest = today.replace(year=today.year - FREE_HISTORY_YEARS)
        except ValueError:  # Feb 29
            earliest = today.replace(year=today.year - FREE_HISTORY_YEARS, day=28)
        return lo_ns >= day_start_ns(earliest) and hi_ns <= day_start_ns(today)

    def _aggregates(self, q: _Query, host: str) -> dict[str, Any]:
        base = self._base(q)
        page, next_window = _page(base, q.limit, q.sort)
        bars = page if q.rolls_up_nothing else _roll_up(page)
        if q.sort == "desc":
            bars = bars.reverse()
        body: dict[str, Any] = {
            "ticker": q.ticker,
            "queryCount": page.height,
            "resultsCount": bars.height,
            "adjusted": q.adjusted,
        }
        if bars.height:
            body["results"] = _results(bars)
        body["status"] = self.status
        body["request_id"] = uuid.uuid4().hex
        if next_window is not None:
            body["next_url"] = q.next_url(host, base, next_window)
        return body

    def _base(self, q: _Query) -> pl.DataFrame:
        """Base aggregates of the request (minutes; days for day bars), with their window;
        none after today."""
        first = _ny_date(q.lo_ns)
        last = min(_ny_date(q.hi_ns - 1), self._today())
        df = minute_bars(q.ticker, first, last, bad_days=self.bad_days)
        ts = pl.col("ts").dt.epoch("ns")
        df = df.filter((ts >= q.lo_ns) & (ts < q.hi_ns))
        if q.timespan == "day":
            df = _roll_up(_with_window(df, "1d"))
        return _with_window(df, f"{q.multiplier}{_EVERY[q.timespan]}")


@dataclass(frozen=True, kw_only=True)
class _Query:
    """One aggregates request, parsed and snapped to its timespan (New York clock)."""

    ticker: str
    multiplier: int
    timespan: str
    raw_from: str
    raw_to: str
    lo_ns: int
    hi_ns: int
    limit: int
    sort: str
    adjusted: bool

    @property
    def rolls_up_nothing(self) -> bool:
        return self.multiplier == 1 and self.timespan in ("minute", "day")

    @classmethod
    def parse(cls, request: Request, *, max_limit: int) -> _Query | None:
        """None for a path that is not an aggregates path; ValueError for a bad parameter."""
        parts = [unquote(p) for p in request.path.strip("/").split("/")]
        if len(parts) != 9 or parts[:3] != ["v2", "aggs", "ticker"] or parts[4] != "range":
            return None
        ticker, multiplier, timespan, raw_from, raw_to = parts[3], *parts[5:]
        if not multiplier.isdigit() or int(multiplier) < 1:
            raise ValueError(f"multiplier must be a positive integer, got {multiplier!r}")
        if timespan not in _EVERY:
            raise ValueError(f"timespan must be minute, hour or day here, got {timespan!r}")
        options = dict(request.query)
        if "cursor" in options:
            options.update(_decode_cursor(options["cursor"]))
        limit = options.get("limit", str(DEFAULT_LIMIT))
        if not limit.isdigit() or int(limit) < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        sort = options.get("sort", "asc")
        if sort not in ("asc", "desc"):
            raise ValueError(f"sort must be asc or desc, got {sort!r}")
        adjusted = options.get("adjusted", "true").lower()
        if adjusted not in ("true", "false"):
            raise ValueError(f"adjusted must be true or false, got {adjusted!r}")
        return cls(
            ticker=ticker,
            multiplier=int(multiplier),
            timespan=timespan,
            lo_ns=_bound(raw_from, timespan, end=False),
            hi_ns=_bound(raw_to, timespan, end=True),
            raw_from=raw_from,
            raw_to=raw_to,
            limit=min(int(limit), MAX_LIMIT, max_limit),
            sort=sort,
            adjusted=adjusted == "true",
        )

    def next_url(self, host: str, base: pl.DataFrame, window_ns: int) -> str:
        """The next page: ``from`` (asc) or ``to`` (desc) moved to ``window_ns``'s window."""
        frm, to = self.raw_from, self.raw_to
        if self.sort == "asc":
            frm = str(window_ns // 10**6)
        else:  # the last base aggregate of that window, which the end snaps past
            in_window = base.filter(pl.col("win").dt.epoch("ns") == window_ns)
            to = str(in_window["ts"].dt.epoch("ms").max())
        cursor = f"limit={self.limit}&sort={self.sort}&adjusted={str(self.adjusted).lower()}"
        token = base64.urlsafe_b64encode(cursor.encode()).decode().rstrip("=")
        path = f"/v2/aggs/ticker/{quote(self.ticker, safe='')}/range/{self.multiplier}"
        return f"http://{host}{path}/{self.timespan}/{frm}/{to}?cursor={token}"


def _bearer(header: str) -> str:
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _error(status: int, label: str, **message: str) -> Reply:
    return Reply(status, {"status": label, "request_id": uuid.uuid4().hex, **message})


def _decode_cursor(token: str) -> dict[str, str]:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except ValueError as e:
        raise ValueError(f"cursor {token!r} is not valid") from e
    return dict(parse_qsl(text))


def _bound(text: str, timespan: str, *, end: bool) -> int:
    """``from``/``to`` (``YYYY-MM-DD`` or Unix ms) in ns, snapped to the start (``from``) or
    the end (``to``, inclusive) of its timespan unit."""
    if text.isdigit():
        ns = int(text) * 10**6
        if timespan == "day":
            day = _ny_date(ns)
        else:  # New York is a whole number of hours from UTC: snap in UTC
            unit = _UNIT_NS[timespan]
            return ns - ns % unit + (unit if end else 0)
    else:
        try:
            day = dt.date.fromisoformat(text)
        except ValueError as e:
            raise ValueError(f"could not parse {text!r}: use YYYY-MM-DD or Unix ms") from e
    return day_start_ns(day + dt.timedelta(days=1)) if end else day_start_ns(day)


def _ny_date(ns: int) -> dt.date:
    return dt.datetime.fromtimestamp(ns / 10**9, tz=calendar.NEW_YORK).date()


def _with_window(df: pl.DataFrame, every: str) -> pl.DataFrame:
    """``df`` plus ``win``: the start of each bar's ``every`` window on the New York clock."""
    ny = pl.col("ts").dt.convert_time_zone(_NY)
    return df.with_columns(ny.dt.truncate(every).dt.convert_time_zone("UTC").alias("win"))


def _page(base: pl.DataFrame, limit: int, sort: str) -> tuple[pl.DataFrame, int | None]:
    """At most ``limit`` base aggregates, cut between windows (one whole window at least),
    from the start (asc) or the end (desc); and the window the next page starts with."""
    n = base.height
    if n <= limit:
        return base, None
    win = base["win"].dt.epoch("ns").to_numpy()
    if sort == "asc":
        cut = limit
        if win[cut - 1] == win[cut]:
            cut = int(np.searchsorted(win, win[cut], side="left"))
        if cut == 0:
            cut = int(np.searchsorted(win, win[0], side="right"))
        return base[:cut], (int(win[cut]) if cut < n else None)
    cut = n - limit
    if win[cut - 1] == win[cut]:
        cut = int(np.searchsorted(win, win[cut], side="right"))
    if cut == n:
        cut = int(np.searchsorted(win, win[-1], side="left"))
    return base[cut:], (int(win[cut - 1]) if cut > 0 else None)


def _roll_up(df: pl.DataFrame) -> pl.DataFrame:
    """One bar per ``win``: first open, max high, min low, last close, summed volume and
    trades, volume-weighted vwap; stamped with the window's start."""
    has_vwap = pl.col("vwap").is_not_null()
    vwap_volume = pl.col("volume").filter(has_vwap).sum()
    return (
        df.group_by("win", maintain_order=True)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
            pl.when(vwap_volume > 0)
            .then((pl.col("vwap") * pl.col("volume")).filter(has_vwap).sum() / vwap_volume)
            .alias("vwap"),
            pl.col("n_trades").sum(),
        )
        .with_columns(pl.col("win").alias("ts"))
    )


def _results(bars: pl.DataFrame) -> list[dict[str, Any]]:
    """Polygon's ``results``: ``t`` Unix ms of the bar start, ``v`` a float (``1200.0``)."""
    out = []
    cols = bars.select(
        pl.col("ts").dt.epoch("ms").alias("t"),
        "open",
        "high",
        "low",
        "close",
        "volume",
        "vwap",
        "n_trades",
    )
    for t, o, h, lo, c, v, vw, n in cols.iter_rows():
        bar = {"v": float(v), "vw": vw, "o": o, "c": c, "h": h, "l": lo, "t": t, "n": n}
        out.append({k: x for k, x in bar.items() if x is not None})
    return out
