"""The machinery the vendor emulators share: a real HTTP server on 127.0.0.1, per-key rate
budgets, and a market of bars that looks like a vendor's (extended hours, missing minutes, the
odd bad bar).

Each emulator (polygon.py, alpaca.py, finnhub.py) is an ``app(request) -> Reply`` function
speaking its vendor's formats from ../shared/api/market-data.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import polars as pl

from barlab.data import calendar
from barlab.data.providers import demo
from barlab.data.schema import normalize, resample


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


App = Callable[[Request], Reply]


class Emulator:
    """Serves ``app`` on 127.0.0.1 (a free port) in a background thread.

    ``requests`` records every request received, in order, for tests to count.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self.requests: list[Request] = []
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                request = Request(
                    method="GET",
                    path=parts.path,
                    query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                )
                emulator.requests.append(request)
                reply = emulator.app(request)
                body = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                # the client may be gone (a test killed it): nothing to answer then
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Emulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class Budgets:
    """Per-key sliding-minute (and optionally one-second) request budgets on ``clock``, as the
    vendors keep them; thread-safe. ``counted`` numbers the requests checked (1, 2, ...), so
    that an emulator can script failures by number."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.counted = 0
        self._windows: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(
        self,
        key: str,
        *,
        per_minute: float | None,
        per_second: float | None = None,
        scripted: Callable[[int], Reply | None] = lambda n: None,
        refused: Callable[[], Reply],
    ) -> Reply | None:
        """None when ``key`` may make this request (then it counts against the budgets);
        otherwise ``scripted(counted)`` when that is a reply, or ``refused()`` when ``key``
        made ``per_minute`` requests in the last 60 s or ``per_second`` in the last 1 s.
        A ``per_minute`` of None is no budget at all."""
        with self._lock:
            self.counted += 1
            reply = scripted(self.counted)
            if reply is not None or per_minute is None:
                return reply
            now = self.clock()
            window = self._windows.setdefault(key, deque())
            while window and now - window[0] >= 60.0:
                window.popleft()
            last_second = sum(1 for t in window if now - t < 1.0)
            if len(window) >= per_minute or (per_second is not None and last_second >= per_second):
                return refused()
            window.append(now)
            return None


NS_MIN = 60 * 10**9


def vendor_bars(
    symbol: str,
    start: dt.date,
    end: dt.date,
    *,
    extended_hours: bool = True,
    missing_every: int = 97,
    bad_days: frozenset[dt.date] = frozenset(),
) -> pl.DataFrame:
    """1-minute bars as a vendor would have them for ``start``..``end`` (New York dates).

    Regular-hours bars are the demo market's, less every ``missing_every``-th minute (no trade,
    no bar). With ``extended_hours``, sparse pre-market (04:00-09:30) and after-hours
    (16:00-20:00) bars are added. On each day in ``bad_days`` one bar has high < close and
    another a negative volume, for quarantine tests. Unknown symbols (not in the demo universe)
    have no bars at all.
    """
    if symbol not in demo.SYMBOLS:
        return demo.fetch("AAPL", start, start).drop("extended").clear()
    rth = demo.fetch(symbol, start, end).drop("extended")  # vendors send no session flag
    if rth.height == 0:
        return rth
    minute = rth["ts"].dt.epoch("ns").to_numpy() // NS_MIN  # the same minutes, any range asked
    rth = rth.filter(pl.Series(minute % missing_every != missing_every // 2))
    frames = [rth]
    if extended_hours:
        day_first = rth.group_by(rth["ts"].dt.date().alias("d"), maintain_order=True).agg(
            pl.col("ts").min().alias("first"),
            pl.col("ts").max().alias("last"),
            pl.col("open").first().alias("o"),
            pl.col("close").last().alias("c"),
        )
        rows = []
        for d in day_first.iter_rows(named=True):
            first = d["first"].timestamp() * 10**9
            last = d["last"].timestamp() * 10**9
            for k in range(1, 330, 7):  # 04:00..09:29 before the open, every 7th minute
                rows.append((int(first - k * NS_MIN), d["o"]))
            for k in range(1, 240, 5):  # 16:00..19:59 after the close
                rows.append((int(last + k * NS_MIN), d["c"]))
        ts = np.array([r[0] for r in rows], dtype=np.int64)
        px = np.array([r[1] for r in rows])
        wiggle = 1 + 0.0004 * np.sin(ts // NS_MIN % 1440)  # the same for a minute, any range
        ext = pl.DataFrame(
            {
                "ts": pl.Series(ts).cast(pl.Datetime("ns", "UTC")),
                "open": px,
                "high": px * (1 + 0.0008) * wiggle,
                "low": px * (1 - 0.0008) * wiggle,
                "close": px * wiggle,
                "volume": np.full(len(px), 120.0),
                "vwap": px * wiggle,
                "n_trades": np.full(len(px), 3, dtype=np.int64),
            }
        ).with_columns(pl.col("high").clip(lower_bound=pl.max_horizontal("open", "close")))
        ext = ext.with_columns(pl.col("low").clip(upper_bound=pl.min_horizontal("open", "close")))
        frames.append(ext.select(rth.columns).cast(dict(rth.schema)))
    out = pl.concat(frames).sort("ts")
    if bad_days:
        day = out["ts"].dt.convert_time_zone("America/New_York").dt.date()
        for bad in sorted(bad_days):
            idx = np.flatnonzero((day == bad).to_numpy())
            if len(idx) >= 2:
                high = out["high"].to_numpy().copy()
                vol = out["volume"].to_numpy().copy()
                high[idx[len(idx) // 2]] = out["close"][int(idx[len(idx) // 2])] * 0.99
                vol[idx[len(idx) // 2 + 1]] = -5.0
                out = out.with_columns(pl.Series("high", high), pl.Series("volume", vol))
    return out


def parse_day(text: str) -> dt.date:
    """``YYYY-MM-DD`` or Unix milliseconds (as Polygon's path accepts)."""
    if text.isdigit():
        return dt.datetime.fromtimestamp(int(text) / 1000, tz=dt.UTC).date()
    return dt.date.fromisoformat(text)


def market(
    symbol: str,
    first: dt.date,
    last: dt.date,
    timeframe: str = "1m",
    bad_days: frozenset[dt.date] = frozenset(),
) -> pl.DataFrame:
    """The bars a vendor has for New York dates ``first``..``last`` (columns of
    :func:`vendor_bars`, aggregated to ``timeframe``).

    Made one day at a time, so that a day's bars do not depend on the range asked for (a
    vendor's do not; ``vendor_bars`` over a range varies its extended-hours prices with it).
    """
    lo, hi = calendar.supported_range()
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    frames = [_day(symbol, d, d in bad_days) for d in days if lo <= d <= hi]
    minutes = pl.concat(frames) if frames else _day(symbol, lo, False).clear()
    return resample(normalize(minutes), timeframe)


@functools.lru_cache(maxsize=4096)
def _day(symbol: str, day: dt.date, bad: bool) -> pl.DataFrame:
    return vendor_bars(symbol, day, day, bad_days=frozenset({day} if bad else ()))
