"""Momentum rotation: every few bars, hold the symbols that rose the most.

Every ``rebalance_bars`` bars the symbols are ranked by their return over the last
``lookback`` bars, and the ``top_k`` best are held with equal weights; the others are sold.
Between rebalances the targets are NaN (hold).

The weights follow the engine's sizing: each symbol is allotted ``size_pct / n_symbols`` of the
equity, and a target of ``w`` holds ``|w|`` times that allotment. Giving each chosen symbol
``w = n_symbols / top_k`` therefore puts ``size_pct / top_k`` of the equity in each, the whole
``size_pct`` across the ``top_k`` of them (with 10 symbols and ``top_k=2``: ``w = 5``, 50 % of
the account each). Fewer symbols than ``top_k`` with a return (too little history, or fewer
symbols in the bars) leave the rest in cash.

The rebalance rows are counted from the first bar: rows ``rebalance_bars - 1``,
``2 * rebalance_bars - 1``, ... from row ``lookback`` on; on regular-hours minute bars starting
at a session's open, ``rebalance_bars=390`` is each session's last bar, so the orders fill at
the next open. Ties go to the symbol listed first; missing bars carry the last close.
"""

from __future__ import annotations

import numpy as np

from barlab import Signals, Strategy, StrategyError
from barlab.indicators import ffill


class MomentumRotation(Strategy):
    lookback: int = 390 * 5
    """Bars of trailing return to rank by, e.g. 1950 (five sessions of minute bars)."""
    rebalance_bars: int = 390
    """Bars between rebalances, e.g. 390 (once a session on minute bars)."""
    top_k: int = 2
    """Symbols held after each rebalance, e.g. 2."""

    def validate(self) -> None:
        for name, example in (("lookback", 1950), ("rebalance_bars", 390), ("top_k", 2)):
            if getattr(self, name) < 1:
                raise StrategyError(
                    f"{name} must be >= 1, e.g. --param {name}={example}; got {getattr(self, name)}"
                )

    def signals(self, bars):
        close = ffill(bars.close)
        n, m = close.shape
        target = np.full((n, m), np.nan)
        rows = np.arange(self.rebalance_bars - 1, n, self.rebalance_bars)
        rows = rows[rows >= self.lookback]
        if len(rows) == 0 or m == 0:
            return Signals(target=target)
        with np.errstate(invalid="ignore", divide="ignore"):
            ret = close[rows] / close[rows - self.lookback] - 1.0
        ret[~np.isfinite(ret)] = np.nan
        best_first = np.argsort(-ret, axis=1, kind="stable")  # NaN (no return) sorts last
        weights = np.zeros((len(rows), m))
        np.put_along_axis(weights, best_first[:, : self.top_k], m / self.top_k, axis=1)
        weights[np.isnan(ret)] = 0.0
        target[rows] = weights
        return Signals(target=target)
