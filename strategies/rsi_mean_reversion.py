"""RSI mean reversion: buy when the RSI falls into oversold, sell once it recovers.

Long when the RSI(n) of the close crosses below ``oversold``; flat when it crosses back above
``exit_level``. With ``allow_short`` the mirror trade runs too: short when it crosses above
``overbought``, covered when it crosses back below ``exit_level``. Crosses are strict and are
taken between a symbol's consecutive bars, so a missing bar neither makes nor hides one.
"""

from __future__ import annotations

from barlab import Signals, Strategy, StrategyError
from barlab.indicators import crossed_above, crossed_below, ffill, rsi


class RsiMeanReversion(Strategy):
    n: int = 14
    """Bars in the RSI (Wilder's smoothing, as TA-Lib), e.g. 14."""
    oversold: float = 30.0
    """Buy when the RSI crosses below this level, e.g. 30."""
    overbought: float = 70.0
    """Sell short when the RSI crosses above this level (only with ``allow_short``), e.g. 70."""
    exit_level: float = 50.0
    """Close the position when the RSI crosses back through this level, e.g. 50."""
    allow_short: bool = False
    """Also trade the mirror image, short from ``overbought``."""

    def validate(self) -> None:
        if self.n < 1:
            raise StrategyError(f"n must be >= 1 bar, e.g. --param n=14; got {self.n}")
        if not 0 < self.oversold < self.exit_level < self.overbought < 100:
            raise StrategyError(
                "the RSI levels must satisfy 0 < oversold < exit_level < overbought < 100; got "
                f"oversold={self.oversold}, exit_level={self.exit_level}, "
                f"overbought={self.overbought}; e.g. 30, 50, 70"
            )

    def signals(self, bars):
        level = ffill(rsi(bars.close, self.n))
        if not self.allow_short:
            return Signals(
                entries=crossed_below(level, self.oversold),
                exits=crossed_above(level, self.exit_level),
            )
        return Signals(
            entries=crossed_below(level, self.oversold),
            exits=crossed_above(level, self.exit_level),
            short_entries=crossed_above(level, self.overbought),
            short_exits=crossed_below(level, self.exit_level),
        )
