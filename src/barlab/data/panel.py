"""Many symbols from the cache into one aligned :class:`~barlab.bars.Bars`, filling the cache
from the source's provider where months are missing.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from barlab.bars import TIMEFRAMES, Bars
from barlab.data import calendar, download
from barlab.data.calendar import NS_PER_MINUTE
from barlab.data.providers import PROVIDERS, Provider, get_provider, provider_version
from barlab.data.store import SESSIONS, SOURCE_NAME, TICKER, Store
from barlab.errors import CacheError, DataError, DataRequestError, UsageError

if TYPE_CHECKING:
    from barlab.config import Config

__all__ = ["load_bars"]

log = logging.getLogger(__name__)

FIELDS = ("open", "high", "low", "close", "volume")
_GRID_MAX = 50_000_000  # minutes (~95 years); a wider span falls back to sorting


def load_bars(
    symbols: Sequence[str] | str,
    start: dt.date,
    end: dt.date,
    *,
    timeframe: str = "1m",
    source: str = "demo",
    data_dir: Path,
    session: str = "rth",
    config: Config | None = None,
) -> Bars:
    """Bars of ``symbols`` from ``start`` 00:00 to ``end`` 23:59:59 New York, aligned.

    Months missing from the cache under ``data_dir`` are fetched from the source first (one
    INFO log line per fill); then every symbol is read from the cache and the symbols are
    aligned on the union of their timestamps, with NaN where a symbol has no bar.

    Parameters
    ----------
    symbols : sequence of str, or str
        Upper-case tickers, e.g. ``["AAPL", "MSFT"]``; column order of the result.
    start, end : datetime.date
        New York dates, inclusive, e.g. ``date(2023, 1, 3)`` and ``date(2023, 12, 29)``.
    timeframe : str
        One of ``"1m"``, ``"5m"``, ``"15m"``, ``"1h"``, ``"1d"``.
    source : str
        ``"demo"`` (SYNTHETIC bars, made locally) or a vendor (``"polygon"``, ...) whose bars
        are read from the cache; sources in :data:`PROVIDERS` can fill it.
    data_dir : pathlib.Path
        Root of the cache, e.g. ``Path("data")``.
    session : str
        ``"rth"`` (regular trading hours, from the NYSE calendar) or ``"all"`` (extended hours
        too, where the source has them).
    config : Config, optional
        Connects vendor providers (base URL, rate limit); read from the usual places if None.

    Raises
    ------
    UsageError
        For a malformed symbol, date, timeframe or source, or ``start`` after ``end``.
    DataRequestError
        (a DataError, exit 2) If the range has no NYSE session or lies outside the calendar, or
        a demo symbol is unknown.
    DataError
        If months are missing for a source barlab cannot download from yet.
    CacheError
        If a cache file is unreadable (naming it).
    """
    syms = _check_symbols(symbols)
    start, end = _check_date(start, "start"), _check_date(end, "end")
    if start > end:
        raise UsageError(f"start {start} is after end {end}; swap them or fix one")
    if timeframe not in TIMEFRAMES:
        raise UsageError(
            f"timeframe {timeframe!r} is not supported; use one of {', '.join(TIMEFRAMES)}"
        )
    if not isinstance(source, str) or not SOURCE_NAME.match(source):
        raise UsageError(f"source {source!r} is not a source name, e.g. 'demo' or 'polygon'")
    if len(calendar.sessions(start, end)) == 0:
        raise DataRequestError(
            f"no trading days between {start} and {end} (the NYSE was closed: weekends and "
            "holidays); widen the range"
        )
    if session not in SESSIONS:
        raise UsageError(f"session {session!r} is not one of {', '.join(SESSIONS)}")
    store = Store(data_dir)
    key = {"source": source, "timeframe": timeframe, "start": start, "end": end}
    lock = threading.Lock()
    connected: list[Provider | None] = []

    def connect() -> Provider | None:
        # only when something is missing: a complete cache needs no API key
        with lock:
            if not connected:
                connected.append(get_provider(source, config))
            return connected[0]

    ts, arrays = _load_aligned(store, connect, syms, key, session)
    if len(ts) == 0:
        raise DataError(
            f"the {source} cache holds no {timeframe} bars for {', '.join(syms)} between {start} "
            f"and {end}; the source answered with none for these dates"
        )
    return Bars(
        ts_ns=ts,
        symbols=tuple(syms),
        timeframe=timeframe,
        source=source,
        periods_per_year=calendar.periods_per_year(timeframe),
        version=store.version(symbols=syms, **key),
        requested=(start.isoformat(), end.isoformat()),
        **arrays,
    )


def _load_aligned(
    store: Store,
    connect: Callable[[], Provider | None],
    syms: list[str],
    key: dict[str, Any],
    session: str,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Fill, read and align: the union of timestamps and one (n_bars, n_symbols) array per field.

    Parquet decoding, numpy and file I/O release the GIL, so symbols load side by side. Two
    passes (timestamps, then values straight into place) keep the peak memory near the size of
    the result instead of holding every symbol's columns and the result at once; symbols whose
    cached timestamps are known to be equal (same recorded hashes) have them read once, and the
    second pass trusts the recorded timestamp hashes (re-checked after the read: a file
    replaced in between is an error) instead of decoding the timestamps again.
    """

    def fill(sym: str) -> str:
        _fill(store, connect, sym, **key)
        return store.timestamps_key(symbol=sym, session=session, **key)

    def stamps(sym: str) -> np.ndarray:
        return _epoch_ns(store.read(symbol=sym, columns=["ts"], session=session, **key))

    with ThreadPoolExecutor(max_workers=min(8, 2 * (os.cpu_count() or 1))) as pool:
        ts_keys = list(pool.map(fill, syms))
        first_of: dict[str, str] = {}
        for k, sym in zip(ts_keys, syms, strict=True):
            first_of.setdefault(k, sym)
        read_once = dict(zip(first_of, pool.map(stamps, first_of.values()), strict=True))
        per_symbol = [read_once[k] for k in ts_keys]
        ts, rows = _union(per_symbol)
        shape = (len(ts), len(syms))
        dense = all(r is None for r in rows)
        arrays = {f: np.empty(shape) if dense else np.full(shape, np.nan) for f in FIELDS}

        def place(j: int) -> None:
            df = store.read(symbol=syms[j], columns=list(FIELDS), session=session, **key)
            same_key = store.timestamps_key(symbol=syms[j], session=session, **key) == ts_keys[j]
            if df.height != len(per_symbol[j]) or not same_key:
                raise CacheError(
                    f"the {key['source']} cache of {syms[j]} under {store.root} changed while "
                    "it was being read (another process filling it?); run again"
                )
            for f in FIELDS:  # month by month, straight from the decoded pages (no copy)
                first = 0
                for chunk in df[f].get_chunks():
                    last = first + len(chunk)
                    at = slice(first, last) if rows[j] is None else rows[j][first:last]
                    arrays[f][at, j] = chunk.to_numpy()
                    first = last

        list(pool.map(place, range(len(syms))))
    return ts, arrays


def _check_symbols(symbols: Sequence[str] | str) -> list[str]:
    items = [symbols] if isinstance(symbols, str) else list(symbols)
    if not items:
        raise UsageError("symbols: none given; pass tickers such as ['AAPL', 'MSFT']")
    for sym in items:
        if not isinstance(sym, str) or not TICKER.match(sym):
            fix = f"; write it as {sym.strip().upper()!r}" if isinstance(sym, str) else ""
            raise UsageError(
                f"symbol {sym!r} is not an upper-case ticker such as AAPL or BRK.B{fix}"
            )
    dupes = sorted({s for s in items if items.count(s) > 1})
    if dupes:
        raise UsageError(f"symbols: {', '.join(dupes)} listed more than once; list each once")
    return items


def _check_date(value: object, label: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise UsageError(f"{label}: {value!r} is not a datetime.date; e.g. date(2023, 1, 3)")


def _fill(
    store: Store,
    connect: Callable[[], Provider | None],
    symbol: str,
    *,
    source: str,
    timeframe: str,
    start: dt.date,
    end: dt.date,
) -> None:
    """Fetch the months of ``start``..``end`` the cache lacks (see :mod:`barlab.data.download`)."""
    version = provider_version(source)
    gaps = store.coverage(
        source=source, timeframe=timeframe, symbol=symbol, start=start, end=end,
        provider_version=version,
    )  # fmt: skip
    if version is not None:
        cap = download.last_complete_day(source)
        gaps = [g for g in gaps if cap is None or g.start <= cap]
    if not gaps:
        return
    missing = ", ".join(g.month for g in gaps)
    provider = connect() if version is not None else None
    if provider is None:
        raise DataError(
            f"{source} {timeframe} bars for {symbol} are not cached for {missing} "
            f"({gaps[0].reason}) under {store.root}; barlab cannot download from "
            f"{source!r} (it can from: {', '.join(PROVIDERS)}); for your own files use "
            "`backtest data import`"
        )
    log.info("%s %s: fetching %s from %s", symbol, timeframe, missing, source)
    download.fill(store, provider, symbol, source=source, timeframe=timeframe, start=start, end=end)


def _epoch_ns(df: pl.DataFrame) -> np.ndarray:
    return df["ts"].dt.epoch("ns").to_numpy()


def _union(stamps: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """The sorted union of sorted int64 arrays, and each array's rows in it (None: all rows)."""
    first = stamps[0]
    if all(s is first or np.array_equal(s, first) for s in stamps):
        return first.astype(np.int64, copy=False), [None] * len(stamps)
    nonempty = [s for s in stamps if len(s)]
    lo = min(int(s[0]) for s in nonempty)
    hi = max(int(s[-1]) for s in nonempty)
    on_grid = all(not np.any((s - lo) % NS_PER_MINUTE) for s in nonempty)
    if on_grid and (hi - lo) // NS_PER_MINUTE < _GRID_MAX:
        # Bars start on whole minutes: mark each minute once; no sort of all the stamps needed.
        seen = np.zeros((hi - lo) // NS_PER_MINUTE + 1, dtype=bool)
        for s in nonempty:
            seen[(s - lo) // NS_PER_MINUTE] = True
        rank = np.cumsum(seen) - 1
        union = lo + np.flatnonzero(seen).astype(np.int64) * NS_PER_MINUTE
        rows = [rank[(s - lo) // NS_PER_MINUTE] for s in stamps]
    else:
        union = np.unique(np.concatenate(stamps))
        rows = [np.searchsorted(union, s) for s in stamps]
    return union, [None if len(r) == len(union) else r for r in rows]
