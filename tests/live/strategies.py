"""Small strategies for the live tests: resting orders (limit, stop, trailing stop) on top of
the SMA crossover, and a fixed schedule of entries and exits by minute of the session."""

from __future__ import annotations

import numpy as np

from barlab import Signals, Strategy
from barlab.data.calendar import NEW_YORK
from barlab.strategies.sma_crossover import SmaCrossover


class LimitCrossover(SmaCrossover):
    """The crossover's entries as limit buys ``offset_bps`` under the close (on the cent),
    resting ``tif``; its exits as stop sells ``offset_bps`` under the close, or with
    ``stop_limit_bps`` as stop-limit sells whose limit sits that much under the stop. Causal:
    every price comes from the bar's own close."""

    offset_bps: float = 5.0
    stop_limit_bps: float = 0.0
    tif: str = "day"

    def signals(self, bars):
        target = SmaCrossover.signals(self, bars).target
        below = np.round(bars.close * (1.0 - self.offset_bps * 1e-4), 2)
        stop = np.where(target == 0, below, np.nan)
        limit = np.where(target > 0, below, np.nan)
        if self.stop_limit_bps > 0:
            floor = np.round(stop * (1.0 - self.stop_limit_bps * 1e-4), 2)
            limit = np.where(target == 0, floor, limit)
        return Signals(target=target, limit_price=limit, stop_price=stop, time_in_force=self.tif)


class TrailingCrossover(SmaCrossover):
    """The crossover's entries and exits as trailing stop orders ``trail`` behind the market
    (a fraction, e.g. 0.001)."""

    trail: float = 0.001

    def signals(self, bars):
        target = SmaCrossover.signals(self, bars).target
        trail = np.where(np.isnan(target), np.nan, self.trail)
        return Signals(target=target, trail_stop=trail)


class Schedule(Strategy):
    """Long entries and exits at fixed minutes of the session (minute 0 = 09:30 New York),
    per symbol in column order: ``"10,200;20"`` is entries at minutes 10 and 200 for the
    first symbol and 20 for the second. Causal, independent of the row index."""

    entries: str = ""
    exits: str = ""

    def signals(self, bars):
        minute = _session_minute(bars.ts_ns)
        shape = bars.close.shape
        return Signals(
            entries=_at(self.entries, minute, shape), exits=_at(self.exits, minute, shape)
        )


def _session_minute(ts_ns: np.ndarray) -> np.ndarray:
    import datetime as dt

    out = np.empty(len(ts_ns), dtype=np.int64)
    for k, ts in enumerate(ts_ns.tolist()):
        t = dt.datetime.fromtimestamp(ts / 1e9, tz=NEW_YORK)
        out[k] = (t.hour * 60 + t.minute) - (9 * 60 + 30)
    return out


def _at(spec: str, minute: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    flags = np.zeros(shape, dtype=bool)
    for j, part in enumerate(spec.split(";")[: shape[1]]):
        for m in filter(None, part.split(",")):
            flags[:, j] |= minute == int(m)
    return flags
