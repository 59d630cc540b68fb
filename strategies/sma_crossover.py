"""Simple moving-average crossover on the close.

Long when the fast average crosses above the slow one, flat when it crosses below. With
``allow_short`` the strategy is always in the market from the first cross on, reversing on
each cross. A cross is strict: ``fast[t-1] < slow[t-1]`` and ``fast[t] > slow[t]`` (and the
mirror), so touching is not crossing.
"""

from __future__ import annotations

import numpy as np

from barlab import Signals, Strategy, StrategyError
from barlab.indicators import crossed_above, crossed_below, sma


class SmaCrossover(Strategy):
    fast: int = 10
    """Bars in the fast average, e.g. 10."""
    slow: int = 50
    """Bars in the slow average, e.g. 50 (must exceed ``fast``)."""
    allow_short: bool = False
    """Hold a short position between a down-cross and the next up-cross."""

    def validate(self) -> None:
        if self.fast < 1:
            raise StrategyError(f"fast must be >= 1, got {self.fast}")
        if self.fast >= self.slow:
            raise StrategyError(
                f"fast ({self.fast}) must be smaller than slow ({self.slow}); "
                "try --param fast=10 --param slow=50"
            )

    def signals(self, bars):
        fast = sma(bars.close, self.fast)
        slow = sma(bars.close, self.slow)
        up = crossed_above(fast, slow)
        down = crossed_below(fast, slow)
        target = np.full(bars.close.shape, np.nan)
        target[up] = 1.0
        target[down] = -1.0 if self.allow_short else 0.0
        return Signals(target=target)
