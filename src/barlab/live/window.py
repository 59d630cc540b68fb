"""The bridge's view of the market: a rolling, bounded window of Bars built bar time by bar time
from stream (or REST) bars, and the assembler that decides when a bar time is complete.

How long the window is: ``window_bars`` (``backtest live --window``) when given, else one more
than the strategy's own ``lookback`` (an int attribute, property or parameter: the bars of
history before a bar that its row depends on, e.g. ``lookback = 60`` for a 50-bar average plus
slack), else four times its largest integer parameter, at least 200; for a combination
(:func:`barlab.combine`), the longest of its children's. For the bridge's last row
to be the backtest's, the strategy must be causal, need no more history than that, and not
depend on its row index (a schedule counted from the first bar moves as the window rolls: give
such a strategy a window as long as the run, e.g. ``--window 2000``).
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np

from barlab.bars import TIMEFRAMES, Bars
from barlab.combined import Combined
from barlab.data.calendar import NEW_YORK, periods_per_year, sessions
from barlab.errors import ConfigError
from barlab.live.marketdata import Bar

MIN_WINDOW = 200


def default_window(strategy: Any) -> int:
    """Bars the rolling window keeps for ``strategy`` (see the module docstring)."""
    if isinstance(strategy, Combined):
        return max(default_window(child) for child in strategy.strategies)
    lookback = getattr(strategy, "lookback", None)
    if lookback is not None:
        if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback < 1:
            raise ConfigError(
                f"{type(strategy).__name__}.lookback must be a whole number of bars >= 1, "
                f"got {lookback!r}"
            )
        return int(lookback) + 1
    ints = [v for v in strategy.get_params().values() if isinstance(v, int) and v is not True]
    return max(MIN_WINDOW, 4 * max(ints, default=0))


class BarWindow:
    """The last ``size`` bar times for ``symbols`` as Bars (NaN where a symbol had no bar).

    Parameters
    ----------
    symbols : tuple of str
    timeframe : str
        e.g. ``"1m"``.
    size : int
        Most bar times kept, e.g. 200.
    source : str
        Labels the Bars (``"demo"`` keeps synthetic replays marked as such).
    """

    def __init__(self, symbols: tuple[str, ...], *, timeframe: str, size: int, source: str):
        if size < 1:
            raise ConfigError(f"the bridge's window must hold at least 1 bar, got {size}")
        self.symbols = symbols
        self.timeframe = timeframe
        self.source = source
        self.size = size
        self._col = {s: j for j, s in enumerate(symbols)}
        self._rows: deque[tuple[int, np.ndarray]] = deque(maxlen=size)
        self.last_close = np.full(len(symbols), np.nan)

    @property
    def last_ts(self) -> int | None:
        return self._rows[-1][0] if self._rows else None

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def last_row(self) -> np.ndarray:
        """The last bar time's open, high, low, close and volume per symbol, (5, n_symbols)
        (NaN where a symbol had no bar)."""
        return self._rows[-1][1]

    def push(self, ts_ns: int, bars: Iterable[Bar]) -> None:
        """Add bar time ``ts_ns`` (later than the last one) with its bars."""
        if self._rows and ts_ns <= self._rows[-1][0]:
            raise ValueError(f"bar time {ts_ns} is not after the window's last {self.last_ts}")
        row = np.full((5, len(self.symbols)), np.nan)
        for bar in bars:
            j = self._col.get(bar.symbol)
            if j is not None:
                row[:, j] = (bar.open, bar.high, bar.low, bar.close, bar.volume)
        seen = ~np.isnan(row[3])
        self.last_close[seen] = row[3][seen]
        self._rows.append((int(ts_ns), row))

    def bars(self) -> Bars:
        """The window as Bars (copies)."""
        ts = np.fromiter((r[0] for r in self._rows), dtype=np.int64, count=len(self._rows))
        stack = np.stack([r[1] for r in self._rows]) if self._rows else np.empty((0, 5, 0))
        arrays = {
            name: np.ascontiguousarray(stack[:, k, :]).reshape(len(ts), len(self.symbols))
            for k, name in enumerate(("open", "high", "low", "close", "volume"))
        }
        return Bars(
            ts_ns=ts, symbols=self.symbols, timeframe=self.timeframe, source=self.source,
            periods_per_year=periods_per_year(self.timeframe), **arrays,
        )  # fmt: skip


class BarAssembler:
    """Groups per-symbol bars into complete bar times.

    A bar time is complete once every symbol sent its bar, or once a later bar time shows up
    (a symbol that did not trade sends nothing), or, when ``flush`` is called, once it ended
    more than the grace period ago.
    """

    def __init__(self, symbols: tuple[str, ...]) -> None:
        self.symbols = frozenset(symbols)
        self._pending: dict[int, dict[str, Bar]] = {}
        self.done_until = -1
        """Bar times up to this one were handed out: later copies are ignored."""

    def add(self, bar: Bar) -> list[tuple[int, list[Bar]]]:
        """Take one bar; returns the bar times it completed, oldest first."""
        if bar.ts_ns <= self.done_until or bar.symbol not in self.symbols:
            return []
        self._pending.setdefault(bar.ts_ns, {})[bar.symbol] = bar
        ready = []
        newest = max(self._pending)
        for ts in sorted(self._pending):
            if ts < newest or set(self._pending[ts]) >= self.symbols:
                ready.append(ts)
            else:
                break
        return [self._take(ts) for ts in ready]

    def flush(self, before_ns: int) -> list[tuple[int, list[Bar]]]:
        """Hand out the incomplete bar times that start before ``before_ns``."""
        return [self._take(ts) for ts in sorted(self._pending) if ts < before_ns]

    def _take(self, ts: int) -> tuple[int, list[Bar]]:
        self.done_until = max(self.done_until, ts)
        return ts, list(self._pending.pop(ts).values())


class SessionClock:
    """Regular NYSE sessions by New York date (from :mod:`barlab.data.calendar`, cached): is a
    bar time in regular hours, and is it its session's last bar (the next one starts a new
    session, where the backtest lifts the day's loss halt before filling)."""

    def __init__(self, timeframe: str) -> None:
        self.daily = timeframe == "1d"
        self.bar_ns = TIMEFRAMES[timeframe] * 10**9
        self._days: dict[dt.date, tuple[int, int] | None] = {}

    def _session(self, ts_ns: int) -> tuple[int, int] | None:
        day = dt.datetime.fromtimestamp(ts_ns / 1e9, tz=NEW_YORK).date()
        if day not in self._days:
            found = sessions(day, day)
            self._days[day] = (
                (int(found.open_ns[0]), int(found.close_ns[0])) if len(found) else None
            )
        return self._days[day]

    def regular(self, ts_ns: int) -> bool:
        """The bar starting at ``ts_ns`` lies in a regular session."""
        if self.daily:
            return True
        hours = self._session(ts_ns)
        return hours is not None and hours[0] <= ts_ns < hours[1]

    def last_of_session(self, ts_ns: int) -> bool:
        """The bar starting at ``ts_ns`` ends its regular session (or is a daily bar)."""
        if self.daily:
            return True
        hours = self._session(ts_ns)
        return hours is not None and ts_ns + self.bar_ns >= hours[1]
