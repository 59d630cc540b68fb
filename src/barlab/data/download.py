"""Filling the cache from a provider: only what is missing, one month at a time, each month
written atomically with its provenance, bad bars quarantined, extended hours flagged.

Used by :func:`barlab.data.panel.load_bars` (fill on demand) and by ``backtest data download``
(many symbols, with progress and a failover order of sources).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from barlab.bars import SYNTHETIC_SOURCES
from barlab.data import calendar
from barlab.data.providers import Provider
from barlab.data.schema import normalize, quarantine
from barlab.data.store import Gap, Store, month_days
from barlab.errors import AuthError, DataError, ProviderError

log = logging.getLogger(__name__)


@dataclass
class Chunk:
    """One month of one symbol fetched and cached (what a progress bar counts)."""

    symbol: str
    month: str
    bars: int
    quarantined: int


@dataclass
class FillReport:
    """What filling one symbol did."""

    symbol: str
    source: str
    chunks: list[Chunk] = field(default_factory=list)
    error: str = ""

    @property
    def bars(self) -> int:
        return sum(c.bars for c in self.chunks)

    @property
    def quarantined(self) -> int:
        return sum(c.quarantined for c in self.chunks)


def last_complete_day(source: str, today: dt.date | None = None) -> dt.date | None:
    """The last day a vendor's bars can be complete (yesterday, New York); None for the demo
    market, which can make any day."""
    if source in SYNTHETIC_SOURCES:
        return None
    now = today or dt.datetime.now(calendar.NEW_YORK).date()
    return now - dt.timedelta(days=1)


def plan(
    store: Store,
    provider: Provider,
    symbol: str,
    *,
    source: str,
    timeframe: str,
    start: dt.date,
    end: dt.date,
    today: dt.date | None = None,
) -> list[Gap]:
    """The months of ``start``..``end`` the cache lacks for ``symbol`` (empty: nothing to do).

    Days after the last complete day are not asked for; the current month is therefore
    refreshed on the next run.
    """
    cap = last_complete_day(source, today)
    if cap is not None:
        end = min(end, cap)
    if end < start:
        return []
    return store.coverage(
        source=source, timeframe=timeframe, symbol=symbol, start=start, end=end,
        provider_version=provider.VERSION, provenance=getattr(provider, "provenance", None),
    )  # fmt: skip


def fill(
    store: Store,
    provider: Provider,
    symbol: str,
    *,
    source: str,
    timeframe: str,
    start: dt.date,
    end: dt.date,
    today: dt.date | None = None,
    on_chunk: Callable[[Chunk], None] | None = None,
) -> FillReport:
    """Fetch and cache every month of ``start``..``end`` that the cache lacks.

    Each month is asked for whole (up to the last complete day), so a month file always covers
    a known span; a process killed between months leaves the finished months in place, and the
    next call asks only for the rest.
    """
    report = FillReport(symbol=symbol, source=source)
    cap = last_complete_day(source, today)
    key = {"source": source, "timeframe": timeframe, "symbol": symbol}
    gaps = plan(
        store, provider, symbol, source=source, timeframe=timeframe, start=start, end=end,
        today=today,
    )  # fmt: skip
    for gap in gaps:
        first, last = month_days(gap.month)
        if cap is not None:
            last = min(last, cap)
        raw = provider.fetch(symbol, first, last, timeframe=timeframe)
        bars = normalize(raw)
        flags = calendar.extended_hours(bars["ts"].dt.epoch("ns").to_numpy(), timeframe)
        bars = bars.with_columns(extended=flags)
        good, bad = quarantine(bars)
        lo = calendar.day_start_ns(first)
        hi = calendar.day_start_ns(last + dt.timedelta(days=1))
        ts = good["ts"].dt.epoch("ns")
        if good.height and (int(ts[0]) < lo or int(ts[-1]) >= hi):
            raise DataError(
                f"{source} answered bars for {symbol} outside {first} to {last}; "
                "this is a bug in its provider module"
            )
        store.write_quarantine(bad.drop("extended"), month=gap.month, **key)
        store.write_month(
            good, month=gap.month, coverage_start=first, coverage_end=last,
            provider_version=provider.VERSION, provenance=getattr(provider, "provenance", None),
            **key,
        )  # fmt: skip
        if bad.height:
            log.warning(
                "%s %s %s: %d bad bar(s) quarantined (first: %s at %s)",
                source, symbol, gap.month, bad.height, bad["reason"][0], bad["ts"][0],
            )  # fmt: skip
        log.info(
            "cache fill: %s %s %s %s, %d bars", source, timeframe, symbol, gap.month, good.height
        )
        chunk = Chunk(symbol=symbol, month=gap.month, bars=good.height, quarantined=bad.height)
        report.chunks.append(chunk)
        if on_chunk is not None:
            on_chunk(chunk)
    return report


def fill_with_failover(
    store: Store,
    providers: list[tuple[str, Callable[[], Provider]]],
    symbol: str,
    *,
    timeframe: str,
    start: dt.date,
    end: dt.date,
    today: dt.date | None = None,
    on_chunk: Callable[[Chunk], None] | None = None,
) -> FillReport:
    """Fill ``symbol`` from the first source that works, in the order given.

    A symbol's series is never mixed: each source's bars live under their own key, and the
    report names the source that filled it (and why the ones before it failed).
    """
    failures = []
    for source, connect in providers:
        try:
            provider = connect()
            report = fill(
                store, provider, symbol, source=source, timeframe=timeframe, start=start,
                end=end, today=today, on_chunk=on_chunk,
            )  # fmt: skip
        except (ProviderError, AuthError) as e:
            failures.append(f"{source}: {e}")
            log.warning("%s failed for %s: %s", source, symbol, e)
            continue
        report.error = "; ".join(failures)
        return report
    return FillReport(symbol=symbol, source="", error="; ".join(failures))
