"""NYSE trading sessions (holidays, early closes) and the bar counts that follow from them.

The calendar itself comes from ``exchange_calendars`` ("XNYS"), built once per process from
2000-01-01 and kept as plain numpy arrays; pandas never leaves this module.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from barlab.bars import TIMEFRAMES
from barlab.errors import DataError, DataRequestError

NEW_YORK = ZoneInfo("America/New_York")
CALENDAR_START = dt.date(2000, 1, 1)
"""The calendar is built from this date; earlier dates are outside its supported range."""

NS_PER_MINUTE = 60 * 10**9

_BARS_PER_DAY: dict[str, int] = {"1m": 390, "5m": 78, "15m": 26, "1h": 7, "1d": 1}
TRADING_DAYS_PER_YEAR = 252


@dataclass(frozen=True, slots=True)
class Sessions:
    """NYSE sessions in a date range, as aligned read-only arrays (one entry per session).

    Attributes
    ----------
    dates : datetime64[D] array (n,)
        Session dates (New York), e.g. ``2023-11-24``.
    open_ns, close_ns : int64 arrays (n,)
        Regular-hours open and close, nanoseconds since the epoch, UTC. An early close (13:00
        New York, e.g. the day after Thanksgiving) shows as a shorter session.
    """

    dates: np.ndarray
    open_ns: np.ndarray
    close_ns: np.ndarray

    def __len__(self) -> int:
        return len(self.dates)

    def __getitem__(self, key: slice | np.ndarray) -> Sessions:
        """The sessions selected by a slice, an index array or a boolean mask."""
        return Sessions(
            dates=self.dates[key], open_ns=self.open_ns[key], close_ns=self.close_ns[key]
        )

    @property
    def minutes(self) -> np.ndarray:
        """Regular-hours minutes per session (int64): 390 on a full day, 210 on an early close."""
        return (self.close_ns - self.open_ns) // NS_PER_MINUTE


@functools.lru_cache(maxsize=1)
def _calendar() -> tuple[Sessions, dt.date]:
    """Every session from 2000 to the end of next year, and that end (building takes ~1 s)."""
    import exchange_calendars as xcals

    end = dt.date(dt.date.today().year + 1, 12, 31)
    cal = xcals.get_calendar("XNYS", start=CALENDAR_START.isoformat(), end=end.isoformat())
    dates = cal.opens.index.values.astype("datetime64[D]")
    opens = cal.opens.values.astype("datetime64[ns]").astype(np.int64)
    closes = cal.closes.values.astype("datetime64[ns]").astype(np.int64)
    for arr in (dates, opens, closes):
        arr.setflags(write=False)  # shared by every caller through the cache
    return Sessions(dates=dates, open_ns=opens, close_ns=closes), end


def supported_range() -> tuple[dt.date, dt.date]:
    """First and last dates the calendar covers: 2000-01-01 to December 31 of next year."""
    return CALENDAR_START, _calendar()[1]


def sessions(start: dt.date, end: dt.date) -> Sessions:
    """NYSE sessions from ``start`` to ``end`` (New York dates, both inclusive).

    Parameters
    ----------
    start, end : datetime.date
        E.g. ``date(2023, 1, 1)`` and ``date(2023, 12, 31)`` (250 sessions).

    Returns
    -------
    Sessions
        Possibly empty (``len(s) == 0``) when the range holds only weekends and holidays;
        the caller says so ("no trading days between ...").

    Raises
    ------
    DataRequestError
        (a DataError) If the range reaches outside :func:`supported_range`.
    """
    first, last = supported_range()
    for label, day in (("start", start), ("end", end)):
        if not first <= day <= last:
            raise DataRequestError(
                f"{label} date {day} is outside the NYSE calendar barlab supports "
                f"({first} to {last}); choose dates in that range"
            )
    cal = _calendar()[0]
    lo = np.searchsorted(cal.dates, np.datetime64(start, "D"), side="left")
    hi = np.searchsorted(cal.dates, np.datetime64(end, "D"), side="right")
    return cal[lo:hi]


def extended_hours(ts_ns: np.ndarray, timeframe: str) -> np.ndarray:
    """True for bars that do not overlap a session's regular hours (pre-market, after-hours,
    or a day the exchange was closed); daily bars are never extended.

    A bar overlaps the session when it starts before the close and ends after the open, so the
    09:00 hour bar (09:30-10:00 trades) is regular, and the early closes and DST are the
    calendar's.
    """
    if timeframe == "1d" or len(ts_ns) == 0:
        return np.zeros(len(ts_ns), dtype=bool)
    bar_ns = TIMEFRAMES[timeframe] * 10**9
    first = dt.datetime.fromtimestamp(int(ts_ns.min()) // 10**9 - 86_400, tz=dt.UTC).date()
    last = dt.datetime.fromtimestamp(int(ts_ns.max()) // 10**9 + 86_400, tz=dt.UTC).date()
    lo, hi = supported_range()
    sess = sessions(min(max(first, lo), hi), max(min(last, hi), lo))
    if len(sess) == 0:
        return np.ones(len(ts_ns), dtype=bool)
    # the session whose close is the first after the bar's start
    i = np.searchsorted(sess.close_ns, ts_ns, side="right")
    inside = i < len(sess)
    i = np.minimum(i, len(sess) - 1)
    regular = inside & (ts_ns + bar_ns > sess.open_ns[i]) & (ts_ns < sess.close_ns[i])
    return ~regular


def periods_per_year(timeframe: str) -> float:
    """Bars in a trading year of regular hours (252 sessions), used to annualise statistics.

    1m: 390 x 252 = 98,280; 5m: 78 x 252; 15m: 26 x 252; 1h: 7 x 252 (hour bars start on the
    hour, so 09:30-16:00 spans 7 of them); 1d: 252. Early closes and extended hours are
    ignored: this is the convention, not a count of a particular year.
    """
    if timeframe not in _BARS_PER_DAY:
        raise DataError(f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}")
    return float(_BARS_PER_DAY[timeframe] * TRADING_DAYS_PER_YEAR)


def day_start_ns(day: dt.date) -> int:
    """00:00 New York on ``day``, in nanoseconds since the epoch (UTC)."""
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=NEW_YORK)
    return int(midnight.timestamp()) * 10**9
