from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from barlab.data import calendar
from barlab.errors import DataError

NY = calendar.NEW_YORK


def ny_time(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).astimezone(NY)


def test_2023_has_250_sessions_with_two_early_closes():
    s = calendar.sessions(dt.date(2023, 1, 1), dt.date(2023, 12, 31))
    assert len(s) == 250
    assert s.dates.dtype == np.dtype("datetime64[D]")
    assert s.open_ns.dtype == s.close_ns.dtype == np.int64
    assert sorted(set(s.minutes.tolist())) == [210, 390]
    assert (s.minutes == 210).sum() == 2  # July 3 and November 24


def test_day_after_thanksgiving_closes_at_1300_new_york():
    s = calendar.sessions(dt.date(2023, 11, 24), dt.date(2023, 11, 24))
    assert len(s) == 1
    assert ny_time(int(s.open_ns[0])).time() == dt.time(9, 30)
    assert ny_time(int(s.close_ns[0])).time() == dt.time(13, 0)
    assert s.minutes[0] == 210


def test_regular_session_is_0930_to_1600_new_york_in_winter_and_summer():
    for day in (dt.date(2023, 1, 17), dt.date(2023, 7, 17)):
        s = calendar.sessions(day, day)
        assert ny_time(int(s.open_ns[0])).time() == dt.time(9, 30)
        assert ny_time(int(s.close_ns[0])).time() == dt.time(16, 0)


@pytest.mark.parametrize(
    "day",
    [
        "2023-01-02",  # New Year's Day observed
        "2023-04-07",  # Good Friday
        "2023-06-19",  # Juneteenth
        "2023-07-04",
        "2023-12-25",
        "2012-10-29",  # Hurricane Sandy
        "2001-09-11",
        "2025-01-09",  # national day of mourning (President Carter)
        "2023-03-18",  # a Saturday
    ],
)
def test_holidays_and_closures_have_no_session(day):
    d = dt.date.fromisoformat(day)
    assert len(calendar.sessions(d, d)) == 0


def test_a_range_of_only_holidays_and_weekend_is_empty_not_an_error():
    s = calendar.sessions(dt.date(2023, 12, 23), dt.date(2023, 12, 25))
    assert len(s) == 0
    assert len(s.minutes) == 0


def test_dates_outside_the_calendar_name_the_supported_range():
    first, last = calendar.supported_range()
    assert first == dt.date(2000, 1, 1)
    assert last >= dt.date.today()
    with pytest.raises(DataError, match=r"start date 1999-12-31 .*\(2000-01-01 to"):
        calendar.sessions(dt.date(1999, 12, 31), dt.date(2000, 1, 5))
    with pytest.raises(DataError, match="end date"):
        calendar.sessions(dt.date(2023, 1, 1), last + dt.timedelta(days=1))


def test_first_session_of_the_calendar():
    s = calendar.sessions(dt.date(2000, 1, 1), dt.date(2000, 1, 7))
    assert str(s.dates[0]) == "2000-01-03"


def test_cached_arrays_cannot_be_modified_by_a_caller():
    s = calendar.sessions(dt.date(2023, 1, 1), dt.date(2023, 1, 31))
    with pytest.raises(ValueError):
        s.open_ns[0] = 0


def test_sessions_can_be_sliced_and_masked():
    s = calendar.sessions(dt.date(2023, 1, 1), dt.date(2023, 12, 31))
    early = s[s.minutes == 210]
    assert [str(d) for d in early.dates] == ["2023-07-03", "2023-11-24"]
    assert len(s[:5]) == 5


@pytest.mark.parametrize(
    ("timeframe", "expected"),
    [("1m", 98_280), ("5m", 19_656), ("15m", 6_552), ("1h", 1_764), ("1d", 252)],
)
def test_periods_per_year(timeframe, expected):
    assert calendar.periods_per_year(timeframe) == expected


def test_periods_per_year_rejects_unknown_timeframe():
    with pytest.raises(DataError, match="unknown timeframe '2m'"):
        calendar.periods_per_year("2m")


def test_day_start_is_new_york_midnight_in_both_seasons():
    assert calendar.day_start_ns(dt.date(2023, 1, 17)) == 1_673_931_600 * 10**9  # 05:00 UTC
    assert calendar.day_start_ns(dt.date(2023, 7, 17)) == 1_689_566_400 * 10**9  # 04:00 UTC
