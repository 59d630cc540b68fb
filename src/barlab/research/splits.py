"""Walk-forward windows: period strings (``6M``, ``20D``) and the folds they cut from the bars.

Windows are cut on whole trading sessions (New York dates of the bars, never mid-session).
Every window edge is measured from one origin date: fold k tests from ``origin + train + k*step``
to ``origin + train + k*step + test``, so with ``step == test`` (the default) each test window
starts exactly where the previous one ended and no session is lost to month-end rounding.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

import numpy as np

from barlab.engine.backtest import session_ids
from barlab.errors import ConfigError

_UNITS = {"D": "trading sessions", "W": "weeks", "M": "months", "Y": "years"}
_PERIOD = re.compile(r"([0-9]+)([DWMY])")
_HINT = "use a whole number and a unit: 20D (trading sessions), 2W (weeks), 6M (months), 1Y (years)"


@dataclass(frozen=True, slots=True)
class Offset:
    """A distance in calendar months, calendar days and trading sessions (applied in that
    order). ``6M`` is ``Offset(months=6)``, ``2W`` is ``Offset(days=14)``, ``20D`` is
    ``Offset(sessions=20)``."""

    months: int = 0
    days: int = 0
    sessions: int = 0

    def __add__(self, other: Offset) -> Offset:
        return Offset(
            self.months + other.months, self.days + other.days, self.sessions + other.sessions
        )

    def __mul__(self, k: int) -> Offset:
        return Offset(self.months * k, self.days * k, self.sessions * k)


def parse_period(text: str, name: str = "period") -> Offset:
    """``"6M"`` -> 6 months, ``"1Y"`` -> 12 months, ``"2W"`` -> 14 days, ``"20D"`` -> 20 trading
    sessions. Strict: upper-case unit, positive whole number, nothing else (``6m`` is refused:
    a lower-case m means minutes elsewhere in barlab)."""
    if not isinstance(text, str):
        raise ConfigError(f"{name} must be a string such as '6M', got {text!r}; {_HINT}")
    match = _PERIOD.fullmatch(text.strip())
    if match is None:
        hint = ""
        if re.fullmatch(r"[0-9]+[dwmy]", text.strip()):
            hint = f" (did you mean {text.strip().upper()}? units are upper-case)"
        raise ConfigError(f"{name} {text!r} is not a period{hint}; {_HINT}")
    n, unit = int(match.group(1)), match.group(2)
    if n == 0:
        raise ConfigError(f"{name} {text!r} is empty; {_HINT}")
    return {
        "D": Offset(sessions=n),
        "W": Offset(days=7 * n),
        "M": Offset(months=n),
        "Y": Offset(months=12 * n),
    }[unit]


@dataclass(frozen=True, slots=True)
class Fold:
    """One walk-forward fold as bar rows: train ``[train_start, test_start)``, test
    ``[test_start, test_end)`` (row indices into the bars, end exclusive)."""

    index: int
    train_start: int
    test_start: int
    test_end: int


def _add_months(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _edge(origin: dt.date, offset: Offset, days: np.ndarray) -> dt.date:
    """``origin`` moved by ``offset``; sessions are counted in ``days`` (the data's sessions,
    numpy datetime64[D]) and, past the data, on weekdays."""
    edge = _add_months(origin, offset.months) + dt.timedelta(days=offset.days)
    if offset.sessions:
        i = int(np.searchsorted(days, np.datetime64(edge, "D"))) + offset.sessions
        if i < len(days):
            return days[i].astype(dt.date)
        past = np.datetime64(_next_weekday(days[-1].astype(dt.date)), "D")
        return np.busday_offset(past, i - len(days), roll="forward").astype(dt.date)
    return edge


def make_folds(
    ts_ns: np.ndarray,
    *,
    train: str,
    test: str,
    step: str | None = None,
    anchored: bool = False,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> list[Fold]:
    """The folds of a walk-forward over bars stamped ``ts_ns`` (int64 ns UTC).

    Parameters
    ----------
    train, test, step : str
        Periods (see :func:`parse_period`): ``train="6M"``, ``test="1M"``; ``step`` defaults to
        ``test`` and may not be shorter (test windows would overlap).
    anchored : bool
        False: the train window rolls forward by ``step``; True: it always starts at the origin
        and grows.
    start, end : date, optional
        The calendar span the windows are cut from (default: the first session of the bars,
        and the last one with the weekend after it). ``start=2023-01-01`` makes ``6M``
        windows start on the 1st of a month even when the first session is the 3rd. A fold
        is kept only when its test window ends by ``end`` (a last, partial window is dropped).

    Raises ConfigError when the data is too short for one fold, naming both spans.
    """
    train_o, test_o = parse_period(train, "train"), parse_period(test, "test")
    step_o = test_o if step is None else parse_period(step, "step")
    bar_days = session_ids(np.asarray(ts_ns, dtype=np.int64))
    days = np.unique(bar_days).astype("datetime64[D]")
    if len(days) == 0:
        raise ConfigError("walk-forward needs bars; the data is empty")
    first, last = days[0].astype(dt.date), days[-1].astype(dt.date)
    origin = start or first
    # the data covers its last session and the weekend after it (a Friday's data completes a
    # window ending on the Monday)
    stop = (end + dt.timedelta(days=1)) if end else _next_weekday(last)
    if _edge(origin, train_o + step_o, days) < _edge(origin, train_o + test_o, days):
        raise ConfigError(
            f"step {step} is shorter than test {test}: the test windows would overlap; "
            "use a step at least as long as the test window (default: step = test)"
        )
    folds: list[Fold] = []
    k = 0
    while True:
        test_start = _edge(origin, train_o + step_o * k, days)
        test_end = _edge(origin, train_o + step_o * k + test_o, days)
        if test_end > stop:
            break
        train_start = origin if anchored else _edge(origin, step_o * k, days)
        rows = np.searchsorted(
            bar_days, [_day(train_start), _day(test_start), _day(test_end)], side="left"
        )
        if rows[0] < rows[1] < rows[2]:
            folds.append(Fold(len(folds), int(rows[0]), int(rows[1]), int(rows[2])))
        k += 1
    if not folds:
        raise ConfigError(_too_short(train, test, origin, test_end, first, last, len(days)))
    return folds


def _next_weekday(day: dt.date) -> dt.date:
    return np.busday_offset(np.datetime64(day, "D") + 1, 0, roll="forward").astype(dt.date)


def _day(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def _too_short(
    train: str, test: str, origin: dt.date, needed: dt.date, first: dt.date, last: dt.date, n: int
) -> str:
    span = _describe(train, test)
    months = ((last - first).days + 1) / 30.44
    return (
        f"train {train} + test {test} needs at least {span} of bars (from {origin} to "
        f"{needed - dt.timedelta(days=1)}); the data has {n} sessions (about {months:.1f} months) "
        f"from {first} to {last}: load a longer range or shorten the train or test window"
    )


def _describe(train: str, test: str) -> str:
    a, b = _PERIOD.fullmatch(train.strip()), _PERIOD.fullmatch(test.strip())
    assert a is not None and b is not None
    if a.group(2) == b.group(2):
        return f"{int(a.group(1)) + int(b.group(1))} {_UNITS[a.group(2)]}"
    return f"{train} + {test}"
