"""The Parquet cache of bars: one file per source, timeframe, symbol and month.

Layout (the source is part of the key, so synthetic bars can never be read back as real)::

    <root>/bars/source=<source>/timeframe=<tf>/symbol=<SYM>/<YYYY-MM>.parquet

A month is a New York calendar month. Each file records in its Parquet key-value metadata
(keys ``barlab.*``) its key, the date range the provider was asked for and answered
(``coverage_start``/``coverage_end``: an empty but covered month is not a missing one), when it
was fetched, a SHA-256 of its bars and the schema version. Writes are atomic (temporary file in
the same directory, fsync, rename, fsync of the directory).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from barlab.atomic import fsync
from barlab.bars import TIMEFRAMES
from barlab.data.calendar import day_start_ns
from barlab.data.schema import SCHEMA, SCHEMA_VERSION, validate
from barlab.errors import CacheError, DataError

SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,31}$")
"""What a source may be called (it becomes a directory name): ``demo``, ``polygon``."""
TICKER = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
"""What a symbol may look like: upper-case tickers such as ``AAPL`` or ``BRK.B``."""
SESSIONS = ("rth", "all")
"""Which bars a read returns: regular trading hours only, or extended hours too."""
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_TMP_SUFFIX = ".tmp"
_STALE_TMP_S = 3600.0  # a temp file this old is stray even if its process id is reused
_FIX = "delete it and run again (it will be fetched again)"
# Measured on demo minute bars: LZ4 decodes ~35 % faster than zstd; with these encodings the
# files are also smaller (a month of 1m bars: ~175 kB). Prices repeat (whole cents) and suit
# dictionaries; timestamps step by a minute and suit deltas.
_PARQUET_OPTIONS = {
    "compression": "lz4",
    "use_dictionary": ["open", "high", "low", "close", "vwap"],
    "column_encoding": {
        "ts": "DELTA_BINARY_PACKED",
        "volume": "BYTE_STREAM_SPLIT",
        "n_trades": "DELTA_BINARY_PACKED",
    },
}


@dataclass(frozen=True, slots=True, kw_only=True)
class MonthFile:
    """What a cached month file says about itself (from its Parquet footer)."""

    path: Path
    source: str
    timeframe: str
    symbol: str
    month: str
    coverage_start: dt.date
    coverage_end: dt.date
    fetched_at: str
    content_hash: str
    ts_hash: str
    schema_version: int
    provider_version: str
    n_bars: int
    n_extended: int
    """Bars outside regular trading hours (a regular-hours read can skip the flag when 0)."""
    provenance: dict[str, str]
    """How the provider was asked, e.g. ``{"adjusted": "true"}`` or ``{"feed": "iex"}``."""


@dataclass(frozen=True, slots=True)
class Gap:
    """Part of a requested range that the cache cannot answer, within one month."""

    month: str
    start: dt.date
    end: dt.date
    reason: str
    """E.g. ``"missing"`` or ``"covers only 2023-01-01 to 2023-01-15"``."""


def months(start: dt.date, end: dt.date) -> list[str]:
    """The months ``"YYYY-MM"`` that ``start``..``end`` touches, in order."""
    out, y, m = [], start.year, start.month
    while (y, m) <= (end.year, end.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def month_days(month: str) -> tuple[dt.date, dt.date]:
    """First and last day of ``month`` (``"2023-02"`` -> 2023-02-01, 2023-02-28)."""
    match = _MONTH.match(month)
    if not match:
        raise DataError(f"month {month!r} is not YYYY-MM, e.g. 2023-01")
    y, m = int(match[1]), int(match[2])
    nxt = dt.date(y + 1, 1, 1) if m == 12 else dt.date(y, m + 1, 1)
    return dt.date(y, m, 1), nxt - dt.timedelta(days=1)


def content_hash(bars: pl.DataFrame) -> str:
    """SHA-256 (hex) of the values of ``bars`` in :data:`SCHEMA`, nulls included.

    Stable across library versions: it hashes little-endian column buffers, not a file.
    """
    h = hashlib.sha256(f"barlab-bars/{SCHEMA_VERSION}/{bars.height}".encode())
    for name, dtype in SCHEMA.items():
        col = bars[name].dt.epoch("ns") if name == "ts" else bars[name]
        h.update(name.encode())
        if col.null_count():
            h.update(b"nulls" + col.is_null().to_numpy().tobytes())
        kind = "<i8" if dtype in (pl.Int64, pl.Datetime("ns", "UTC")) else "<f8"
        h.update(np.ascontiguousarray(col.fill_null(0).to_numpy(), dtype=kind).tobytes())
    return h.hexdigest()


def _ts_hash(bars: pl.DataFrame) -> str:
    ts = bars["ts"].dt.epoch("ns").to_numpy()
    return hashlib.sha256(np.ascontiguousarray(ts, dtype="<i8").tobytes()).hexdigest()


# path -> ((size, mtime_ns, inode), footer, its barlab metadata); ~10 KB an entry
_FOOTERS: dict[Path, tuple[tuple[int, int, int], pq.FileMetaData, MonthFile]] = {}
_FOOTERS_MAX = 8192


class Store:
    """The bar cache under ``root`` (e.g. ``Path("data")``).

    Parsed footers are cached for the process (keyed by path, size, mtime and inode, so a
    rewritten file is parsed again), so :meth:`coverage`, :meth:`read` and :meth:`version`,
    and later loads of the same files (a notebook), parse each footer once.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._paths: dict[tuple[str, str, str, str], Path] = {}

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def path(self, *, source: str, timeframe: str, symbol: str, month: str) -> Path:
        """Where the month's file lives (whether or not it exists)."""
        key = (source, timeframe, symbol, month)
        found = self._paths.get(key)
        if found is None:  # checked and built once: loading 100 symbol-years asks ~5,000 times
            _check_key(source, timeframe, symbol)
            month_days(month)
            found = self._paths[key] = (
                self.root / "bars" / f"source={source}" / f"timeframe={timeframe}"
                / f"symbol={symbol}" / f"{month}.parquet"
            )  # fmt: skip
        return found

    # -- writing ------------------------------------------------------------------------------

    def write_month(
        self,
        bars: pl.DataFrame,
        *,
        source: str,
        timeframe: str,
        symbol: str,
        month: str,
        coverage_start: dt.date,
        coverage_end: dt.date,
        fetched_at: dt.datetime | None = None,
        provider_version: str = "",
        provenance: dict[str, str] | None = None,
    ) -> MonthFile:
        """Cache one month of bars atomically, replacing any earlier file.

        Parameters
        ----------
        bars : polars.DataFrame
            Valid bars in :data:`SCHEMA` (possibly none) whose New York dates lie in
            ``coverage_start``..``coverage_end``.
        source, timeframe, symbol, month : str
            The key, e.g. ``"demo"``, ``"1m"``, ``"AAPL"``, ``"2023-01"``.
        coverage_start, coverage_end : datetime.date
            The dates (within ``month``, inclusive) the provider was asked for and answered.
        fetched_at : datetime.datetime, optional
            When the provider answered (UTC); now if not given.
        provider_version : str
            The provider's generator/format version (e.g. the demo market's ``VERSION``);
            :meth:`coverage` treats files of another version as stale.
        """
        path = self.path(source=source, timeframe=timeframe, symbol=symbol, month=month)
        first, last = month_days(month)
        if not first <= coverage_start <= coverage_end <= last:
            raise DataError(
                f"coverage {coverage_start} to {coverage_end} must lie within month {month} "
                f"({first} to {last}) and start before it ends"
            )
        validate(bars, symbol=symbol, source=source)
        lo, hi = day_start_ns(coverage_start), day_start_ns(coverage_end + dt.timedelta(days=1))
        ts = bars["ts"].dt.epoch("ns")
        if bars.height and (int(ts[0]) < lo or int(ts[-1]) >= hi):
            raise DataError(
                f"{source} bars for {symbol} run from {bars['ts'][0]} to {bars['ts'][-1]}, "
                f"outside the covered dates {coverage_start} to {coverage_end} (New York); "
                "split them by month before caching"
            )
        fetched = (fetched_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        meta = {
            "source": source,
            "timeframe": timeframe,
            "symbol": symbol,
            "month": month,
            "coverage_start": coverage_start.isoformat(),
            "coverage_end": coverage_end.isoformat(),
            "fetched_at": fetched.isoformat(timespec="seconds"),
            "content_hash": content_hash(bars),
            "ts_hash": _ts_hash(bars),
            "schema_version": str(SCHEMA_VERSION),
            "provider_version": provider_version,
            "n_bars": str(bars.height),
            "n_extended": str(int(bars["extended"].sum())),
            "provenance": json.dumps(provenance or {}, sort_keys=True),
        }
        table = bars.to_arrow().replace_schema_metadata({f"barlab.{k}": v for k, v in meta.items()})
        _write_atomic(table, path)
        info = self.info(source=source, timeframe=timeframe, symbol=symbol, month=month)
        assert info is not None  # just written
        return info

    def quarantine_path(self, *, source: str, timeframe: str, symbol: str, month: str) -> Path:
        """Where the month's quarantined (bad) bars live, beside the cache proper."""
        bars = self.path(source=source, timeframe=timeframe, symbol=symbol, month=month)
        return self.root / "quarantine" / bars.relative_to(self.root / "bars")

    def write_quarantine(
        self, bad: pl.DataFrame, *, source: str, timeframe: str, symbol: str, month: str
    ) -> None:
        """Keep the bars a provider sent that failed validation, with their ``reason``
        (replacing the month's earlier quarantine; an empty frame removes it)."""
        path = self.quarantine_path(source=source, timeframe=timeframe, symbol=symbol, month=month)
        if bad.height == 0:
            path.unlink(missing_ok=True)
            return
        _write_atomic(bad.to_arrow(), path)

    def read_quarantine(self, *, source: str, timeframe: str, symbol: str) -> pl.DataFrame:
        """All quarantined bars of one symbol (empty if none), with their ``reason``."""
        path = self.quarantine_path(
            source=source, timeframe=timeframe, symbol=symbol, month="2000-01"
        )
        files = sorted(path.parent.glob("[0-9]*.parquet"))
        if not files:
            return SCHEMA.to_frame().with_columns(pl.lit(None, pl.String).alias("reason"))
        try:
            return pl.concat([pl.read_parquet(f) for f in files])
        except (OSError, pl.exceptions.PolarsError) as e:
            raise CacheError(f"quarantine files under {path.parent} are unreadable ({e})") from e

    def keys(self) -> list[tuple[str, str, str, str]]:
        """(source, timeframe, symbol, month) of every cached month file, sorted."""
        out = []
        for path in sorted((self.root / "bars").glob("source=*/timeframe=*/symbol=*/*.parquet")):
            if not path.name.startswith("."):
                source, timeframe, symbol = (p.name.split("=", 1)[1] for p in path.parents[2::-1])
                out.append((source, timeframe, symbol, path.stem))
        return out

    # -- reading ------------------------------------------------------------------------------

    def info(self, *, source: str, timeframe: str, symbol: str, month: str) -> MonthFile | None:
        """The month file's metadata, or None if it is not cached."""
        found = self._footer(source=source, timeframe=timeframe, symbol=symbol, month=month)
        return None if found is None else found[1]

    def coverage(
        self,
        *,
        source: str,
        timeframe: str,
        symbol: str,
        start: dt.date,
        end: dt.date,
        provider_version: str | None = None,
        provenance: dict[str, str] | None = None,
    ) -> list[Gap]:
        """The parts of ``start``..``end`` (New York dates) the cache cannot answer, by month.

        A month is a gap if its file is missing, covers less of the range than asked, was
        written with another schema version or (when ``provider_version`` is given) by another
        version of the provider, or (when ``provenance`` is given) asked for differently, e.g.
        unadjusted. An empty list means :meth:`read` has everything.
        """
        gaps = []
        for month in months(start, end):
            first, last = month_days(month)
            need_start, need_end = max(start, first), min(end, last)
            info = self.info(source=source, timeframe=timeframe, symbol=symbol, month=month)
            if info is None:
                reason = "missing"
            elif info.schema_version != SCHEMA_VERSION:
                reason = f"written with schema version {info.schema_version}, now {SCHEMA_VERSION}"
            elif provider_version is not None and info.provider_version != provider_version:
                reason = (
                    f"written by provider version {info.provider_version!r}, "
                    f"now {provider_version!r}"
                )
            elif provenance is not None and info.provenance != provenance:
                reason = f"cached as {info.provenance}, asked as {provenance}"
            elif info.coverage_start > need_start or info.coverage_end < need_end:
                reason = f"covers only {info.coverage_start} to {info.coverage_end}"
            else:
                continue
            gaps.append(Gap(month, need_start, need_end, reason))
        return gaps

    def read(
        self,
        *,
        source: str,
        timeframe: str,
        symbol: str,
        start: dt.date,
        end: dt.date,
        columns: Sequence[str] | None = None,
        session: str = "all",
    ) -> pl.DataFrame:
        """Cached bars from ``start`` 00:00 to ``end`` 24:00 New York, in :data:`SCHEMA`.

        Months that are not cached contribute nothing: check :meth:`coverage` first.
        ``columns`` (e.g. ``["ts", "close"]``) reads only those, in that order.
        ``session="rth"`` keeps regular-hours bars only (``extended`` False).

        Raises
        ------
        CacheError
            If a file is unreadable, corrupt or not in the canonical schema (naming the file).
        """
        names = list(SCHEMA.names() if columns is None else columns)
        unknown = [c for c in names if c not in SCHEMA]
        if unknown:
            raise DataError(f"no column(s) {unknown} in bars; choose from {SCHEMA.names()}")
        if session not in SESSIONS:
            raise DataError(f"session must be one of {', '.join(SESSIONS)}, got {session!r}")
        wanted = names if "ts" in names else ["ts", *names]
        footers = [
            found
            for month in months(start, end)
            if (found := self._footer(source=source, timeframe=timeframe, symbol=symbol,
                                      month=month)) is not None
        ]  # fmt: skip
        # files without extended-hours bars need no filtering on the flag
        filter_session = session == "rth" and any(info.n_extended for _, info in footers)
        if filter_session and "extended" not in wanted:
            wanted = [*wanted, "extended"]
        tables = [_read_table(info.path, md, wanted) for md, info in footers]
        if not tables:
            return SCHEMA.to_frame().select(names)
        df = pl.from_arrow(pa.concat_tables(tables), rechunk=False)  # a chunk per month
        assert isinstance(df, pl.DataFrame)
        lo, hi = day_start_ns(start), day_start_ns(end + dt.timedelta(days=1))
        stamps = df["ts"].dt.epoch("ns")
        inside = df.height == 0 or (int(stamps[0]) >= lo and int(stamps[-1]) < hi)
        if inside and not filter_session:  # sorted bars of whole months: nothing to cut
            return df.select(names)
        ts = pl.col("ts").dt.epoch("ns")
        keep = (ts >= lo) & (ts < hi)
        if filter_session:
            keep = keep & ~pl.col("extended")
        return df.filter(keep).select(names)

    def version(
        self,
        *,
        source: str,
        timeframe: str,
        symbols: list[str] | tuple[str, ...],
        start: dt.date,
        end: dt.date,
    ) -> str:
        """A data version (16 hex digits): same key, range and cached contents, same version.

        Made from the content hashes of the month files the range touches, so it is cheap (no
        bars are read) and changes whenever any of those files is re-fetched with other bars.
        """
        h = hashlib.sha256(f"{SCHEMA_VERSION}|{source}|{timeframe}|{start}|{end}".encode())
        for symbol in symbols:
            for month in months(start, end):
                info = self.info(source=source, timeframe=timeframe, symbol=symbol, month=month)
                h.update(f"\n{symbol}|{month}|{info.content_hash if info else '-'}".encode())
        return h.hexdigest()[:16]

    def timestamps_key(
        self,
        *,
        source: str,
        timeframe: str,
        symbol: str,
        start: dt.date,
        end: dt.date,
        session: str = "all",
    ) -> str:
        """A key shared by symbols whose cached bars in the range start at the same times.

        From hashes recorded at write time, so no bars are read: symbols with equal keys need
        their timestamps read only once (:func:`barlab.data.panel.load_bars` relies on it).
        """
        h = hashlib.sha256(f"{source}|{timeframe}|{start}|{end}|{session}".encode())
        for month in months(start, end):
            info = self.info(source=source, timeframe=timeframe, symbol=symbol, month=month)
            h.update(f"|{info.ts_hash if info else '-'}".encode())
        return h.hexdigest()

    def verify(self, *, source: str, timeframe: str, symbol: str) -> int:
        """Re-hash every cached month of one symbol; return how many files were checked.

        Raises
        ------
        CacheError
            Naming the first file whose bars no longer match the hash recorded when written.
        """
        folder = self.path(source=source, timeframe=timeframe, symbol=symbol, month="2000-01")
        files = sorted(p for p in folder.parent.glob("*.parquet") if not p.name.startswith("."))
        for path in files:
            info = self.info(source=source, timeframe=timeframe, symbol=symbol, month=path.stem)
            assert info is not None
            df = self.read(
                source=source, timeframe=timeframe, symbol=symbol,
                start=info.coverage_start, end=info.coverage_end,
            )  # fmt: skip
            if content_hash(df) != info.content_hash:
                raise CacheError(f"cache file {path} does not match its recorded hash; {_FIX}")
        return len(files)

    def _footer(
        self, *, source: str, timeframe: str, symbol: str, month: str
    ) -> tuple[pq.FileMetaData, MonthFile] | None:
        """The parsed footer of a month's file (None if absent), checked against its key."""
        path = self.path(source=source, timeframe=timeframe, symbol=symbol, month=month)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise CacheError(f"cache file {path} cannot be read ({e}); {_FIX}") from e
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
        cached = _FOOTERS.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1], cached[2]
        try:
            md = pq.read_metadata(path)
        except (OSError, pa.ArrowException) as e:
            raise CacheError(f"cache file {path} is unreadable or corrupt ({e}); {_FIX}") from e
        info = _month_file(path, md)
        if (info.source, info.timeframe, info.symbol, info.month) != (
            source, timeframe, symbol, month,
        ):  # fmt: skip
            raise CacheError(
                f"cache file {path} holds {info.source} {info.timeframe} bars of {info.symbol} "
                f"for {info.month}, not what its place says (it was moved or copied); {_FIX}"
            )
        if len(_FOOTERS) >= _FOOTERS_MAX:
            _FOOTERS.clear()  # a bound, not an LRU: a few ms to parse them again
        _FOOTERS[path] = (stamp, md, info)
        return md, info


def _check_key(source: str, timeframe: str, symbol: str) -> None:
    if not isinstance(source, str) or not SOURCE_NAME.match(source):
        raise DataError(f"source {source!r} is not a source name, e.g. 'demo' or 'polygon'")
    if timeframe not in TIMEFRAMES:
        raise DataError(f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}")
    if not isinstance(symbol, str) or not TICKER.match(symbol):
        raise DataError(f"symbol {symbol!r} is not an upper-case ticker, e.g. AAPL or BRK.B")


@functools.cache
def _arrow_schema() -> pa.Schema:
    return SCHEMA.to_frame().to_arrow().schema.remove_metadata()


def _month_file(path: Path, md: pq.FileMetaData) -> MonthFile:
    raw = md.metadata or {}
    meta = {k.decode()[7:]: v.decode() for k, v in raw.items() if k.startswith(b"barlab.")}
    try:
        schema = md.schema.to_arrow_schema().remove_metadata()
    except (pa.ArrowException, ValueError) as e:
        raise CacheError(f"cache file {path} has an unreadable schema ({e}); {_FIX}") from e
    # a file of an older schema version is stale, not corrupt: coverage() asks for it again
    current = meta.get("schema_version") == str(SCHEMA_VERSION)
    if current and schema != _arrow_schema():
        raise CacheError(
            f"cache file {path} has columns {schema.names} or types other than barlab's bar "
            f"schema; {_FIX}"
        )
    try:
        return MonthFile(
            path=path,
            source=meta["source"],
            timeframe=meta["timeframe"],
            symbol=meta["symbol"],
            month=meta["month"],
            coverage_start=dt.date.fromisoformat(meta["coverage_start"]),
            coverage_end=dt.date.fromisoformat(meta["coverage_end"]),
            fetched_at=meta["fetched_at"],
            content_hash=meta["content_hash"],
            ts_hash=meta["ts_hash"],
            schema_version=int(meta["schema_version"]),
            provider_version=meta.get("provider_version", ""),
            n_bars=int(meta["n_bars"]),
            n_extended=int(meta.get("n_extended", "0")),
            provenance=json.loads(meta.get("provenance", "{}")),
        )
    except (KeyError, ValueError) as e:
        raise CacheError(
            f"cache file {path} lacks barlab's metadata ({e!r}); it was not written by barlab's "
            f"store; {_FIX}"
        ) from e


def _read_table(path: Path, md: pq.FileMetaData, columns: list[str]) -> pa.Table:
    try:
        table = pq.ParquetFile(path, metadata=md, page_checksum_verification=True).read(
            columns=columns, use_threads=False
        )
    except (OSError, pa.ArrowException) as e:
        raise CacheError(f"cache file {path} is unreadable or corrupt ({e}); {_FIX}") from e
    return table.replace_schema_metadata(None)


def _write_atomic(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` via a fsynced temporary file and a rename; no debris on error."""
    folder = path.parent
    tmp = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{_TMP_SUFFIX}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stray_temps(folder)
        with open(tmp, "wb") as f:
            pq.write_table(table, f, write_page_checksum=True, **_PARQUET_OPTIONS)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync(folder)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError | pa.ArrowException):
            raise CacheError(
                f"cannot write cache file {path}: {e}; check the free space and permissions "
                "of the data directory (nothing was left half-written)"
            ) from e
        raise


def _remove_stray_temps(folder: Path) -> None:
    """Delete temp files left by killed writers (their process is gone, or they are old)."""
    now = time.time()
    for tmp in folder.glob(f".*{_TMP_SUFFIX}"):
        try:
            pid = int(tmp.name.split(".")[-3])
        except (IndexError, ValueError):
            pid = -1
        try:
            if not _alive(pid) or now - tmp.stat().st_mtime > _STALE_TMP_S:
                tmp.unlink()
        except FileNotFoundError:
            pass  # its writer renamed or removed it meanwhile


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True
