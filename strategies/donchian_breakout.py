"""Donchian breakout with an ATR trailing stop, long only.

Enter long when the close breaks above the highest high of the ``entry_n`` bars before it
(``close[t] > upper[t-1]``: the channel includes its own bar, so the close is compared with the
previous bar's band). Exit when the close falls below the lowest low of the ``exit_n`` bars
before it, or below the trailing stop: the highest close since the entry signal minus
``atr_mult`` times the current ATR(``atr_n``). The stop depends on the path since entry, so a
small kernel walks the bars once, carrying each symbol's position and highest close.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from barlab import Signals, Strategy, StrategyError
from barlab.indicators import atr, donchian, ffill


@njit(cache=True)
def _breakout_target_nb(close, enter, leave, atr_now, atr_mult, out):
    """+1 on an entry signal while flat, 0 on an exit or stop while long, NaN otherwise.

    The stop is inactive while the ATR is still warming up (NaN)."""
    n, m = close.shape
    holding = np.zeros(m, dtype=np.bool_)
    best = np.zeros(m)
    for t in range(n):
        for j in range(m):
            out[t, j] = np.nan
            c = close[t, j]
            if np.isnan(c):
                continue
            if not holding[j]:
                if enter[t, j]:
                    holding[j] = True
                    best[j] = c
                    out[t, j] = 1.0
                continue
            best[j] = max(best[j], c)
            if leave[t, j] or c < best[j] - atr_mult * atr_now[t, j]:
                holding[j] = False
                out[t, j] = 0.0


def previous(x: np.ndarray) -> np.ndarray:
    """The value at each symbol's previous present bar (NaN before it)."""
    out = np.full(x.shape, np.nan)
    out[1:] = ffill(x)[:-1]
    return out


class DonchianBreakout(Strategy):
    entry_n: int = 55
    """Bars in the entry channel (highest high), e.g. 55."""
    exit_n: int = 20
    """Bars in the exit channel (lowest low), e.g. 20."""
    atr_n: int = 14
    """Bars in the ATR of the trailing stop (Wilder's smoothing), e.g. 14."""
    atr_mult: float = 3.0
    """Trailing stop distance below the highest close since entry, in ATRs, e.g. 3.0."""

    def validate(self) -> None:
        for name, example in (("entry_n", 55), ("exit_n", 20), ("atr_n", 14)):
            if getattr(self, name) < 1:
                raise StrategyError(
                    f"{name} must be >= 1 bar, e.g. --param {name}={example}; "
                    f"got {getattr(self, name)}"
                )
        if not 0 < self.atr_mult < np.inf:
            raise StrategyError(
                f"atr_mult must be a positive number of ATRs, e.g. --param atr_mult=3; "
                f"got {self.atr_mult}"
            )

    def signals(self, bars):
        close = bars.close
        with np.errstate(invalid="ignore"):
            enter = close > previous(donchian(bars.high, bars.low, self.entry_n).upper)
            leave = close < previous(donchian(bars.high, bars.low, self.exit_n).lower)
        target = np.empty(close.shape)
        _breakout_target_nb(
            close, enter, leave, atr(bars.high, bars.low, close, self.atr_n), self.atr_mult, target
        )
        return Signals(target=target)
