"""The Bars type: symbols x time as aligned 2-D arrays (pure; filled by data.panel)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from barlab.errors import DataError

TIMEFRAMES: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}
"""Supported bar sizes and their length in seconds."""

SYNTHETIC_SOURCES = frozenset({"demo"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Bars:
    """Aligned OHLCV bars for several symbols.

    Attributes
    ----------
    ts_ns : int64 array (n_bars,)
        Bar start times, nanoseconds since the epoch, UTC, strictly increasing.
    open, high, low, close, volume : float64 arrays (n_bars, n_symbols)
        C-contiguous; NaN where a symbol has no bar at that time.
    symbols : tuple of str
        Column order of the 2-D arrays, e.g. ``("AAPL", "MSFT")``.
    timeframe : str
        One of :data:`TIMEFRAMES`, e.g. ``"1m"``.
    source : str
        Where the bars came from (``"demo"``, ``"polygon"``, ...). ``"demo"`` is synthetic.
    periods_per_year : float
        Bars in a trading year for this timeframe, from the session calendar
        (98,280 for regular-hours 1-minute bars: 390 x 252), used to annualise metrics.
    """

    ts_ns: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    symbols: tuple[str, ...]
    timeframe: str
    source: str
    periods_per_year: float
    version: str = field(default="")
    """A content hash of the data (same bars, same version), recorded with every run."""
    requested: tuple[str, str] = ("", "")
    """The dates asked for (ISO ``start``, ``end``; the first and last bars may lie inside
    them); the data version hashes them, so a run records them to reload the same data."""

    def __post_init__(self) -> None:
        n, m = len(self.ts_ns), len(self.symbols)
        if self.ts_ns.dtype != np.int64 or self.ts_ns.ndim != 1:
            raise DataError(f"Bars.ts_ns must be a 1-D int64 array, got {self.ts_ns.dtype}")
        if n > 1 and not bool(np.all(np.diff(self.ts_ns) > 0)):
            raise DataError("Bars.ts_ns must be strictly increasing")
        for name in ("open", "high", "low", "close", "volume"):
            arr = getattr(self, name)
            if arr.shape != (n, m) or arr.dtype != np.float64 or not arr.flags.c_contiguous:
                raise DataError(
                    f"Bars.{name} must be a C-contiguous float64 array of shape {(n, m)}, "
                    f"got {arr.dtype} {arr.shape}"
                )
        negative = np.argwhere(self.volume < 0)  # NaN (a missing bar) compares False
        if negative.size:
            t, j = negative[0]
            raise DataError(
                f"Bars.volume must be >= 0 (NaN for a missing bar); {self.symbols[j]} has "
                f"{self.volume[t, j]:g} at bar {t} ({negative.shape[0]} negative in all): fix or "
                "drop those rows in the source data"
            )
        if self.timeframe not in TIMEFRAMES:
            raise DataError(
                f"unknown timeframe {self.timeframe!r}; use one of {', '.join(TIMEFRAMES)}"
            )

    @property
    def n_bars(self) -> int:
        return len(self.ts_ns)

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    @property
    def synthetic(self) -> bool:
        """True when the bars are made up (the demo market), never real prices."""
        return self.source in SYNTHETIC_SOURCES

    def slice(self, start: int, stop: int) -> Bars:
        """Rows ``start:stop`` as new Bars. A row range of a C-contiguous array is itself
        C-contiguous, so the prices are views of these bars' arrays, not copies: writing into
        one writes into both (``ts_ns`` is copied)."""
        return Bars(
            ts_ns=self.ts_ns[start:stop].copy(),
            open=np.ascontiguousarray(self.open[start:stop]),
            high=np.ascontiguousarray(self.high[start:stop]),
            low=np.ascontiguousarray(self.low[start:stop]),
            close=np.ascontiguousarray(self.close[start:stop]),
            volume=np.ascontiguousarray(self.volume[start:stop]),
            symbols=self.symbols,
            timeframe=self.timeframe,
            source=self.source,
            periods_per_year=self.periods_per_year,
            version=self.version,
            requested=self.requested,
        )

    def describe(self) -> dict[str, Any]:
        """What a saved run records about its bars: symbols, timeframe, source, synthetic,
        first and last bar times (ISO, UTC), bars, data version, requested dates and periods
        per year."""
        first_last = [_iso(t) for t in self.ts_ns[[0, -1]]] if self.n_bars else [None, None]
        return {
            "symbols": list(self.symbols),
            "timeframe": self.timeframe,
            "source": self.source,
            "synthetic": self.synthetic,
            "start": first_last[0],
            "end": first_last[1],
            "n_bars": self.n_bars,
            "data_version": self.version,
            "requested": list(self.requested),
            "periods_per_year": self.periods_per_year,
        }

    def __repr__(self) -> str:
        kind = "SYNTHETIC " if self.synthetic else ""
        return (
            f"Bars({kind}{self.source}, {self.timeframe}, {self.n_bars} bars x "
            f"{self.n_symbols} symbols {list(self.symbols)})"
        )


def _iso(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(int(ts_ns) / 1e9, tz=dt.UTC).isoformat()
