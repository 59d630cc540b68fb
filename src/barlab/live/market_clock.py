"""The paper emulator's market clock: which bars are regular-hours, which open or close a
session, and Alpaca's ``/v2/clock`` and ``/v2/calendar`` answers at a simulated time.

Sessions come from barlab's NYSE calendar (:mod:`barlab.data.calendar`), so holidays, early
closes and DST are the exchange's own.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from barlab.bars import TIMEFRAMES
from barlab.data.calendar import NEW_YORK, Sessions, extended_hours, sessions, supported_range
from barlab.live.wire import ts_et


class MarketClock:
    """Sessions around a replay's bars and each bar's place in them.

    Parameters
    ----------
    ts_ns : int64 array (n_bars,)
        Bar starts, nanoseconds UTC (``Bars.ts_ns``).
    timeframe : str
        e.g. ``"1m"``.

    Attributes
    ----------
    regular : bool array (n_bars,)
        The bar overlaps a regular session (09:30-16:00 New York, early closes included).
    first_of_session, last_of_session : bool arrays (n_bars,)
        The first and last regular bar of each session present in the bars.
    """

    def __init__(self, ts_ns: np.ndarray, timeframe: str) -> None:
        self.bar_ns = TIMEFRAMES[timeframe] * 10**9
        self.ts_ns = ts_ns
        lo, hi = supported_range()
        if len(ts_ns):
            first = _date(int(ts_ns[0])) - dt.timedelta(days=10)
            last = _date(int(ts_ns[-1])) + dt.timedelta(days=20)
        else:
            first = last = dt.date.today()
        self.sessions: Sessions = sessions(max(first, lo), min(last, hi))
        self.regular = ~extended_hours(ts_ns, timeframe)
        index = np.searchsorted(self.sessions.close_ns, ts_ns, side="right")
        self.first_of_session = np.zeros(len(ts_ns), dtype=bool)
        self.last_of_session = np.zeros(len(ts_ns), dtype=bool)
        rows = np.flatnonzero(self.regular)
        if len(rows):
            sess = index[rows]
            starts = np.r_[True, sess[1:] != sess[:-1]]
            ends = np.r_[sess[1:] != sess[:-1], True]
            self.first_of_session[rows[starts]] = True
            self.last_of_session[rows[ends]] = True

    def is_open(self, now_ns: int) -> bool:
        """True during a regular session at ``now_ns`` (open inclusive, close exclusive)."""
        i = int(np.searchsorted(self.sessions.close_ns, now_ns, side="right"))
        return i < len(self.sessions) and int(self.sessions.open_ns[i]) <= now_ns

    def session_close_ns(self, now_ns: int) -> int | None:
        """The close of the session in progress at ``now_ns``, or else of the next one: when a
        DAY order sent at ``now_ns`` expires. None past the calendar."""
        i = int(np.searchsorted(self.sessions.close_ns, now_ns, side="right"))
        return int(self.sessions.close_ns[i]) if i < len(self.sessions) else None

    def clock_json(self, now_ns: int) -> dict[str, Any]:
        """``GET /v2/clock``: ``{"timestamp", "is_open", "next_open", "next_close"}`` (ET)."""
        s = self.sessions
        i_open = int(np.searchsorted(s.open_ns, now_ns, side="right"))
        i_close = int(np.searchsorted(s.close_ns, now_ns, side="right"))
        next_open = int(s.open_ns[min(i_open, len(s) - 1)])
        next_close = int(s.close_ns[min(i_close, len(s) - 1)])
        return {
            "timestamp": ts_et(now_ns, fraction=True),
            "is_open": self.is_open(now_ns),
            "next_open": ts_et(next_open),
            "next_close": ts_et(next_close),
        }

    def calendar_json(self, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
        """``GET /v2/calendar``: one entry per session from ``start`` to ``end`` (inclusive)."""
        lo, hi = supported_range()
        s = sessions(max(start, lo), min(end + dt.timedelta(days=10), hi))
        out = []
        for k in range(len(s)):
            day = s.dates[k].astype(dt.date)
            if day > end:
                break
            settle = s.dates[k + 1].astype(dt.date) if k + 1 < len(s) else day
            out.append(
                {
                    "date": day.isoformat(),
                    "open": _hhmm(int(s.open_ns[k]), ":"),
                    "close": _hhmm(int(s.close_ns[k]), ":"),
                    "session_open": "0400",
                    "session_close": "2000",
                    "settlement_date": settle.isoformat(),
                }
            )
        return out


def _date(ts_ns: int) -> dt.date:
    return dt.datetime.fromtimestamp(ts_ns // 10**9, tz=NEW_YORK).date()


def _hhmm(ts_ns: int, sep: str) -> str:
    return dt.datetime.fromtimestamp(ts_ns // 10**9, tz=NEW_YORK).strftime(f"%H{sep}%M")
