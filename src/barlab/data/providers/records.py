"""Bar objects with single-letter keys (``t o h l c v`` and optional ``vw n``), as Polygon and
Alpaca send them, into the canonical schema; and the list of them a page holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from barlab.data.schema import SCHEMA, normalize
from barlab.errors import ProviderError

REQUIRED = {"t": "ts", "o": "open", "h": "high", "l": "low", "c": "close", "v": "volume"}
OPTIONAL = {"vw": "vwap", "n": "n_trades"}


def frame(
    records: list[dict[str, Any]],
    *,
    vendor: str,
    symbol: str,
    ts_type: pl.DataType,
    to_utc_ns: Callable[[pl.Expr], pl.Expr],
) -> pl.DataFrame:
    """The bars in ``records``; ``t`` is read as ``ts_type`` and turned into UTC nanoseconds
    (or a UTC datetime) by ``to_utc_ns``. A bar lacking a required field, or a value that is not
    a number, is a ProviderError naming the vendor and the symbol."""
    if not records:
        return SCHEMA.to_frame()
    try:
        columns = {name: [bar[key] for bar in records] for key, name in REQUIRED.items()}
    except (KeyError, TypeError) as e:
        raise ProviderError(
            f"{vendor} bar for {symbol} lacks field {e}; expected t o h l c v"
        ) from e
    for key, name in OPTIONAL.items():
        columns[name] = [bar.get(key) for bar in records]
    types = {name: SCHEMA[name] for name in columns if name != "ts"}
    try:
        df = pl.DataFrame(columns, schema={"ts": ts_type, **types}, strict=False)
        return normalize(df.with_columns(to_utc_ns(pl.col("ts")).alias("ts")))
    except (pl.exceptions.PolarsError, TypeError, ValueError) as e:
        raise ProviderError(f"{vendor} bars for {symbol} cannot be read: {e}") from e


def bar_list(value: Any, what: str, expected: str) -> list[dict[str, Any]]:
    """The bar objects of one page: ``value`` is the page's list, or None (or absent) when it
    has none. Anything else is a ProviderError: "{what} are a dict, expected {expected}"."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProviderError(f"{what} are a {type(value).__name__}, expected {expected}")
    return value
