"""What the cache holds (``backtest data status``) and whether it is sound (``data verify``)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from barlab.data.schema import validate
from barlab.data.store import Store, content_hash, months
from barlab.errors import BarlabError


@dataclass(frozen=True, slots=True)
class StatusRow:
    source: str
    timeframe: str
    symbol: str
    first: str
    last: str
    bars: int
    quarantined: int
    missing_months: list[str]
    last_fetch: str
    size_bytes: int
    unreadable: int

    def cells(self) -> tuple[str, ...]:
        missing = ", ".join(self.missing_months[:3]) + (
            "..." if len(self.missing_months) > 3 else ""
        )
        bad = f" ({self.unreadable} unreadable)" if self.unreadable else ""
        return (
            self.source, self.timeframe, self.symbol, self.first, self.last,
            f"{self.bars:,}{bad}", f"{self.quarantined:,}", missing or "-",
            self.last_fetch[:16].replace("T", " "), f"{self.size_bytes / 1e6:.1f} MB",
        )  # fmt: skip


def status_rows(root: Path) -> list[StatusRow]:
    """One row per (source, timeframe, symbol) in the cache under ``root``."""
    store = Store(root)
    rows = []
    for (source, timeframe, symbol), group in itertools.groupby(store.keys(), key=lambda k: k[:3]):
        key = {"source": source, "timeframe": timeframe, "symbol": symbol}
        held = [k[3] for k in group]
        infos, unreadable, size = [], 0, 0
        for month in held:
            size += store.path(**key, month=month).stat().st_size
            try:
                info = store.info(**key, month=month)
            except BarlabError:
                unreadable += 1
                continue
            if info is not None:
                infos.append(info)
        quarantined = 0
        for q in store.quarantine_path(**key, month=held[0]).parent.glob("[0-9]*.parquet"):
            size += q.stat().st_size
            quarantined += pq.read_metadata(q).num_rows
        first = min((i.coverage_start for i in infos), default=None)
        last = max((i.coverage_end for i in infos), default=None)
        span = months(first, last) if first and last else []
        rows.append(
            StatusRow(
                source=source, timeframe=timeframe, symbol=symbol,
                first=str(first or "?"), last=str(last or "?"),
                bars=sum(i.n_bars for i in infos), quarantined=quarantined,
                missing_months=[m for m in span if m not in held],
                last_fetch=max((i.fetched_at for i in infos), default=""),
                size_bytes=size, unreadable=unreadable,
            )
        )  # fmt: skip
    return rows


def verify_all(root: Path) -> tuple[int, list[tuple[Path, str]]]:
    """Re-read every cached month file: footer, schema, bar invariants and recorded hash.

    Returns how many files were checked and, for each bad one, its path and what is wrong.
    """
    store = Store(root)
    problems: list[tuple[Path, str]] = []
    keys = store.keys()
    for source, timeframe, symbol, month in keys:
        key = {"source": source, "timeframe": timeframe, "symbol": symbol}
        path = store.path(**key, month=month)
        try:
            info = store.info(**key, month=month)
            assert info is not None
            bars = store.read(**key, start=info.coverage_start, end=info.coverage_end)
            validate(bars, symbol=symbol, source=source)
            if bars.height != info.n_bars or content_hash(bars) != info.content_hash:
                raise BarlabError("its bars do not match the hash recorded when it was written")
        except BarlabError as e:
            problems.append((path, str(e)))
    return len(keys), problems
