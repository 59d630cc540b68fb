"""Your own bars (CSV or Parquet OHLCV) into the cache, stored as source ``import``.

Columns are found by name, case-insensitively: a time (``timestamp``, ``datetime``, ``date``,
``time`` or ``t``), ``open``/``o``, ``high``/``h``, ``low``/``l``, ``close``/``c``,
``volume``/``v`` (``vwap`` and ``n_trades`` optional). Times with a zone or offset are taken as
given; naive ones are New York time; a plain date is that day's 00:00 New York (daily bars).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from barlab.data import calendar
from barlab.data.schema import normalize, quarantine
from barlab.data.store import Store, month_days, months
from barlab.errors import DataError, UsageError

SOURCE = "import"
VERSION = "import-1"
_NAMES = {
    "ts": ("timestamp", "datetime", "date", "time", "t", "ts"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "v"),
    "vwap": ("vwap", "vw"),
    "n_trades": ("n_trades", "trades", "n"),
}


@dataclass(frozen=True, slots=True)
class ImportReport:
    symbol: str
    bars: int
    quarantined: int
    first: dt.date
    last: dt.date
    months: int


def read_table(path: Path) -> pl.DataFrame:
    """The file's columns as text (CSV) or as stored (Parquet)."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pl.read_parquet(path)
        return pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as e:
        raise DataError(f"{path} cannot be read as {path.suffix or 'CSV'}: {e}") from e


def to_bars(raw: pl.DataFrame, path: Path) -> pl.DataFrame:
    """Columns found and parsed; a value that does not parse names its line and column."""
    lower = {c.lower().strip(): c for c in raw.columns}
    picked = {}
    for field, names in _NAMES.items():
        found = next((lower[n] for n in names if n in lower), None)
        if found is None and field not in ("vwap", "n_trades"):
            raise DataError(
                f"{path}: no {field} column (looked for {', '.join(names)}); found "
                f"{', '.join(raw.columns)}"
            )
        if found is not None:
            picked[field] = found
    out = {}
    for field, column in picked.items():
        series = raw[column]
        parsed = _parse_time(series) if field == "ts" else _parse_number(series, field)
        failed = parsed.is_null() & series.is_not_null()
        if failed.any():
            row = int(failed.arg_max())  # type: ignore[arg-type]
            line = row + 2 if path.suffix.lower() not in (".parquet", ".pq") else row + 1
            what = (
                "time (e.g. 2023-01-03 or 2023-01-03T09:30:00-05:00)" if field == "ts" else "number"
            )
            raise DataError(
                f"{path} line {line}, column {column!r}: {series[row]!r} is not a {what}; "
                "fix the file and import it again"
            )
        out[field] = parsed
    return normalize(pl.DataFrame(out))


def _parse_number(series: pl.Series, field: str) -> pl.Series:
    kind = pl.Int64 if field == "n_trades" else pl.Float64
    if series.dtype == pl.String:
        return series.str.strip_chars().cast(kind, strict=False)
    return series.cast(kind, strict=False)


def _parse_time(series: pl.Series) -> pl.Series:
    if isinstance(series.dtype, pl.Datetime):
        ts = (
            series if series.dtype.time_zone else series.dt.replace_time_zone(calendar.NEW_YORK.key)
        )
        return ts.dt.convert_time_zone("UTC").dt.cast_time_unit("ns")
    if series.dtype == pl.Date:
        series = series.cast(pl.String)
    text = series.cast(pl.String).str.strip_chars()
    with_zone = text.str.to_datetime(time_zone="UTC", strict=False, time_unit="ns")
    naive = text.str.to_datetime(strict=False, time_unit="ns").dt.replace_time_zone(
        calendar.NEW_YORK.key, ambiguous="earliest", non_existent="null"
    )
    has_zone = text.str.contains(r"(Z|[+-]\d\d:?\d\d)$")
    return (
        pl.DataFrame({"z": with_zone, "n": naive.dt.convert_time_zone("UTC"), "h": has_zone})
        .select(pl.when(pl.col("h")).then(pl.col("z")).otherwise(pl.col("n")).alias("ts"))
        .to_series()
    )


def import_file(path: Path, *, symbol: str, timeframe: str, store: Store) -> ImportReport:
    """Validate ``path`` and cache its bars under source ``import``, month by month.

    Bad bars are quarantined with their reason, never dropped silently. The months from the
    first bar's to the last bar's count as covered (the file is all there is); importing again
    replaces those months.
    """
    bars = to_bars(read_table(path), path)
    if bars.height == 0:
        raise DataError(f"{path} holds no bars")
    flags = calendar.extended_hours(bars["ts"].dt.epoch("ns").to_numpy(), timeframe)
    good, bad = quarantine(bars.with_columns(extended=flags))
    ny_day = pl.col("ts").dt.convert_time_zone(calendar.NEW_YORK.key).dt.date()
    day = bars.select(ny_day.alias("d"))["d"]
    first, last = day.min(), day.max()
    assert isinstance(first, dt.date) and isinstance(last, dt.date)
    key = {"source": SOURCE, "timeframe": timeframe, "symbol": symbol}
    good_day = good.select(ny_day.alias("d"))["d"]
    bad_day = bad.select(ny_day.alias("d"))["d"]
    spanned = months(first, last)
    for month in spanned:
        lo, hi = month_days(month)
        store.write_quarantine(
            bad.filter((bad_day >= lo) & (bad_day <= hi)).drop("extended"), month=month, **key
        )
        store.write_month(
            good.filter((good_day >= lo) & (good_day <= hi)), month=month, coverage_start=lo,
            coverage_end=hi, provider_version=VERSION, **key,
        )  # fmt: skip
    return ImportReport(symbol, good.height, bad.height, first, last, len(spanned))
