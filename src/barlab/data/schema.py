"""The canonical bar schema every provider answers in and the cache stores; normalize,
validate and resample frames of bars (polars).

One row is one bar of one symbol: ``ts`` is the bar's start (UTC, nanoseconds), prices are in
the quote currency (US dollars), ``volume`` in shares.
"""

from __future__ import annotations

import polars as pl

from barlab.bars import TIMEFRAMES
from barlab.errors import DataError

SCHEMA = pl.Schema(
    {
        "ts": pl.Datetime("ns", "UTC"),
        "open": pl.Float64,
        "high": pl.Float64,
        "low": pl.Float64,
        "close": pl.Float64,
        "volume": pl.Float64,
        "vwap": pl.Float64,
        "n_trades": pl.Int64,
        "extended": pl.Boolean,
    }
)
"""Column names and types of a frame of bars, in order; ``vwap`` and ``n_trades`` may be null.
``extended`` is True for bars outside regular trading hours (pre-market, after-hours), as
flagged from the NYSE calendar by :func:`barlab.data.calendar.extended_hours`."""

SCHEMA_VERSION = 2
"""Bumped whenever :data:`SCHEMA` or its meaning changes; cached files of another version
are stale."""

REQUIRED = ("ts", "open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")
NEW_YORK = "America/New_York"


def normalize(df: pl.DataFrame) -> pl.DataFrame:
    """Cast, select and sort ``df`` into :data:`SCHEMA`.

    ``ts`` may be a Datetime of any unit (naive values are taken as UTC; other time zones are
    converted) or an integer count of nanoseconds since the epoch. Missing ``vwap`` and
    ``n_trades`` become null columns; extra columns are dropped. Rows are sorted by ``ts``
    (stable), so :func:`validate` afterwards still catches duplicates.

    Raises
    ------
    DataError
        If a required column is missing or cannot be cast (e.g. prices given as text).
    """
    if not isinstance(df, pl.DataFrame):
        raise DataError(f"bars must be a polars DataFrame, got {type(df).__name__}")
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataError(
            f"bars lack column(s) {', '.join(missing)}; expected {', '.join(SCHEMA.names())}"
        )
    ts_type = df.schema["ts"]
    if isinstance(ts_type, pl.Datetime):
        ts = pl.col("ts")
        ts = ts.dt.replace_time_zone("UTC") if ts_type.time_zone is None else ts
        ts = ts.dt.convert_time_zone("UTC").dt.cast_time_unit("ns")
    elif ts_type.is_integer():
        ts = pl.col("ts").cast(pl.Int64).cast(pl.Datetime("ns", "UTC"))
    else:
        raise DataError(f"bars column ts is {ts_type}; expected a Datetime or integer nanoseconds")
    columns = [ts.alias("ts")]
    for name, dtype in list(SCHEMA.items())[1:]:
        col = pl.col(name) if name in df.columns else pl.lit(None)
        if name == "extended":
            col = col.fill_null(False)
        columns.append(col.cast(dtype, strict=True).alias(name))
    try:
        return df.select(columns).sort("ts", maintain_order=True)
    except pl.exceptions.PolarsError as e:
        raise DataError(f"bars cannot be cast to the canonical schema: {e}") from e


def _checks() -> list[tuple[str, pl.Expr]]:
    """(what is wrong, mask of the rows where it is) in the order they are reported."""
    hi_needed = pl.max_horizontal("open", "close")
    lo_needed = pl.min_horizontal("open", "close")
    dts = pl.col("ts").diff()
    checks = [("ts is null", pl.col("ts").is_null())]
    checks += [(f"{c} is null", pl.col(c).is_null()) for c in (*PRICES, "volume")]
    checks += [(f"{c} is not finite", ~pl.col(c).is_finite()) for c in (*PRICES, "volume")]
    checks += [(f"{c} is not positive", pl.col(c) <= 0) for c in PRICES]
    checks += [
        ("high is below max(open, close)", pl.col("high") < hi_needed),
        ("low is above min(open, close)", pl.col("low") > lo_needed),
        ("volume is negative", pl.col("volume") < 0),
        ("ts repeats the previous bar's (duplicate)", dts == 0),
        ("ts is before the previous bar's (unsorted)", dts < 0),
    ]
    return checks


def quarantine(df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split normalized bars into the clean ones and the bad ones, never dropping any.

    The bad frame has the columns of :data:`SCHEMA` plus ``reason`` (everything wrong with the
    bar, e.g. ``"high is below max(open, close); volume is negative"``). A bar that repeats the
    previous bar's time is bad; the first of them stays.
    """
    checks = _checks()
    reasons = [pl.when(expr.fill_null(False)).then(pl.lit(name)) for name, expr in checks]
    marked = df.with_columns(pl.concat_str(reasons, separator="; ", ignore_nulls=True).alias("r"))
    marked = marked.with_columns(
        pl.when(pl.col("r") == "").then(None).otherwise(pl.col("r")).alias("reason")
    ).drop("r")
    good = marked.filter(pl.col("reason").is_null()).drop("reason")
    return good, marked.filter(pl.col("reason").is_not_null())


def validate(df: pl.DataFrame, *, symbol: str, source: str) -> None:
    """Raise if ``df`` is not a clean frame of bars in :data:`SCHEMA`.

    Checks: the exact schema; no null or non-finite open/high/low/close/volume; prices > 0;
    ``high >= max(open, close)`` and ``low <= min(open, close)`` (exactly, no tolerance);
    volume >= 0; ``ts`` strictly increasing (no duplicates).

    Parameters
    ----------
    df : polars.DataFrame
        Bars of one symbol, e.g. from :func:`normalize`.
    symbol, source : str
        Named in the error, e.g. ``"AAPL"`` and ``"polygon"``.

    Raises
    ------
    DataError
        Naming the symbol, the source, the number of bad bars, and the first bad bar's time
        and everything wrong with it.
    """
    if df.schema != SCHEMA:
        got = ", ".join(f"{k}: {v}" for k, v in df.schema.items())
        raise DataError(
            f"{source} bars for {symbol} are not in the canonical schema (got {got}); "
            "pass them through barlab.data.schema.normalize first"
        )
    if df.height == 0:
        return
    checks = _checks()
    masks = df.select([expr.fill_null(False).alias(str(i)) for i, (_, expr) in enumerate(checks)])
    bad = masks.select(pl.any_horizontal(pl.all()).alias("bad"))["bad"]
    n_bad = int(bad.sum())
    if n_bad == 0:
        return
    row = int(bad.arg_max())  # type: ignore[arg-type]
    flags = masks.row(row)
    problems = "; ".join(name for (name, _), hit in zip(checks, flags, strict=True) if hit)
    values = df.row(row, named=True)
    shown = ", ".join(f"{k}={values[k]}" for k in (*PRICES, "volume"))
    raise DataError(
        f"{source} bars for {symbol} are invalid: {n_bad} bad bar(s), the first at "
        f"{values['ts']} (row {row}): {problems} ({shown}); these bars were not used - "
        "fix them at the source or drop them"
    )


def resample(df: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """Aggregate 1-minute bars into ``timeframe`` bars, aligned to the New York clock.

    Open is the first open, high the max, low the min, close the last close, volume and
    n_trades the sums, vwap the volume-weighted mean of the minute vwaps. Bars start on
    multiples of their length (5m at :00, :05, ...; 1h on the hour, so the 09:30-09:59
    minutes make the 09:00 bar), as Polygon labels them; a 1d bar is labelled 00:00 New York
    of its date (04:00 or 05:00 UTC). Periods without minutes produce no bar.

    Parameters
    ----------
    df : polars.DataFrame
        1-minute bars in :data:`SCHEMA`, sorted by ``ts``.
    timeframe : str
        One of ``"1m"`` (returned as is), ``"5m"``, ``"15m"``, ``"1h"``, ``"1d"``.
    """
    if timeframe not in TIMEFRAMES:
        raise DataError(f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}")
    if timeframe == "1m":
        return df
    every = {"5m": "5m", "15m": "15m", "1h": "1h", "1d": "1d"}[timeframe]
    start = pl.col("ts").dt.convert_time_zone(NEW_YORK).dt.truncate(every)
    has_vwap = pl.col("vwap").is_not_null()
    vwap_volume = pl.col("volume").filter(has_vwap).sum()
    out = (
        df.group_by(start.dt.convert_time_zone("UTC").alias("ts"))
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
            pl.when(vwap_volume > 0)
            .then((pl.col("vwap") * pl.col("volume")).filter(has_vwap).sum() / vwap_volume)
            .alias("vwap"),
            pl.when(pl.col("n_trades").is_not_null().any())
            .then(pl.col("n_trades").sum())
            .alias("n_trades"),
            pl.col("extended").all(),
        )
        .sort("ts")
    )
    return out.select([pl.col(c).cast(t) for c, t in SCHEMA.items()])
