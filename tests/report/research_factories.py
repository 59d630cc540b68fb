"""A strategy with three parameters and the small runs the sweep and walk-forward pages are
tested on."""

from __future__ import annotations

import numpy as np

import barlab
from barlab.bars import Bars
from barlab.indicators import sma

NEVER = 100_000
"""A slow window longer than any test's bars: that combination never trades (NaN metrics)."""


class Crossover(barlab.Strategy):
    """Long (or short) while the fast mean of the close is above (below) the slow one."""

    fast: int = 5
    slow: int = 20
    short: bool = False

    def signals(self, bars: Bars) -> barlab.Signals:
        close = bars.close
        target = np.full(close.shape, np.nan)
        if self.slow < len(close):
            above = sma(close, self.fast) > sma(close, self.slow)
            target[self.slow :] = np.where(above, 1.0, -1.0 if self.short else 0.0)[self.slow :]
        return barlab.Signals(target=target)
