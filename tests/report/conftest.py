"""Fixtures of the report tests: one busy demo run (risk rules on) and its bars."""

from __future__ import annotations

import pytest

import barlab
from barlab.bars import Bars
from tests.report.factories import Momentum, make_bars

DAYS = 25


@pytest.fixture(scope="session")
def demo_bars() -> Bars:
    return make_bars(390 * DAYS, ("AAA", "BBB"))


@pytest.fixture(scope="session")
def demo_result(demo_bars) -> barlab.Result:
    """25 sessions of two symbols; position and open-position limits refuse and resize orders."""
    return barlab.backtest(
        Momentum(lookback=30), demo_bars, max_position_size=40_000.0, max_open_positions=1
    )
