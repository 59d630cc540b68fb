"""Small frames of bars in the canonical schema, made by the tests."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from barlab.data.schema import SCHEMA
from barlab.data.store import Store

NS_PER_MIN = 60 * 10**9
# 2023-03-15 09:30 New York (EDT) = 13:30 UTC
OPEN_2023_03_15_NS = int(dt.datetime(2023, 3, 15, 13, 30, tzinfo=dt.UTC).timestamp()) * 10**9


def make_frame(
    n: int = 5, *, start_ns: int = OPEN_2023_03_15_NS, price: float = 100.0
) -> pl.DataFrame:
    """``n`` valid 1-minute bars from ``start_ns``: close rises a cent a minute."""
    close = price + 0.01 * np.arange(1, n + 1)
    open_ = close - 0.01
    return pl.DataFrame(
        {
            "ts": pl.Series(start_ns + np.arange(n, dtype=np.int64) * NS_PER_MIN).cast(
                pl.Datetime("ns", "UTC")
            ),
            "open": open_,
            "high": close + 0.02,
            "low": open_ - 0.02,
            "close": close,
            "volume": np.full(n, 1000.0),
            "vwap": close - 0.005,
            "n_trades": np.full(n, 10, dtype=np.int64),
            "extended": np.zeros(n, dtype=bool),
        },
        schema=SCHEMA,
    )


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "cache")
