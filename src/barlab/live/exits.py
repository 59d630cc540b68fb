"""Attached exits in live trading: the stop-loss and take-profit levels the bridge sends with an
entry as Alpaca bracket (both) or OTO (one) legs, by the engine's own rule
(:func:`barlab.engine.orders.exit_levels_nb`) on what the trader knows when it sends the entry:
the signal bar's close and the ATR over ``atr_window`` bars up to it.

Prices go to the broker on its tick (:func:`tick_price`): Alpaca refuses sub-penny prices
(api/alpaca-trading.md §2.1). A trailing exit cannot be a bracket leg at Alpaca, so
``trailing_stop`` / ``trailing_stop_atr`` are refused (:func:`check_live_exits`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from barlab.engine.orders import exit_levels_nb, tick_nb
from barlab.errors import ConfigError

INF = math.inf


def tick_price(price: float) -> float:
    """``price`` on Alpaca's increment (whole cents at or above $1, 1/100 cent below), by the
    engine's rule (:func:`barlab.engine.orders.tick_nb`), so both agree to the bit."""
    return float(tick_nb(price))


def check_live_exits(options: Any) -> None:
    """ConfigError naming the fix when ``options`` (BacktestOptions) ask for an exit the
    bridge cannot send as it is backtested."""
    for name in ("trailing_stop", "trailing_stop_atr"):
        if getattr(options, name, None) is not None:
            raise ConfigError(
                f"the live bridge cannot attach {name}: Alpaca takes a trailing stop only as "
                "a standalone order, never as a bracket leg, so it would not fill as the "
                f"backtest does; unset {name} (or --{name.replace('_', '-')}), or give the "
                "strategy a Signals.trail_stop exit order instead"
            )
    if options.fill_policy != "pessimistic" and has_exits(options):
        raise ConfigError(
            "the live bridge resolves a bar that reaches both the stop and the target as the "
            "stop (fill_policy='pessimistic'); the broker decides by the order of trades. Set "
            "fill_policy='pessimistic' (--fill-policy pessimistic)"
        )


def has_exits(options: Any) -> bool:
    names = ("stop_loss", "take_profit", "stop_loss_atr", "take_profit_atr")
    return any(getattr(options, n, None) is not None for n in names)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitRule:
    """The exits attached to every entry: fractions of the reference price (``stop_loss``,
    ``take_profit``, e.g. 0.02) or ATR multiples (``stop_loss_atr``, ``take_profit_atr``,
    e.g. 2.0; ATR over ``atr_window`` bars); None: off."""

    stop_loss: float | None = None
    take_profit: float | None = None
    stop_loss_atr: float | None = None
    take_profit_atr: float | None = None
    atr_window: int = 14

    @classmethod
    def of(cls, options: Any) -> ExitRule | None:
        """The rule of ``options`` (BacktestOptions), or None when it attaches no exit."""
        check_live_exits(options)
        if not has_exits(options):
            return None
        return cls(
            stop_loss=options.stop_loss, take_profit=options.take_profit,
            stop_loss_atr=getattr(options, "stop_loss_atr", None),
            take_profit_atr=getattr(options, "take_profit_atr", None),
            atr_window=int(getattr(options, "atr_window", 14)),
        )  # fmt: skip

    @property
    def needs_atr(self) -> bool:
        return self.stop_loss_atr is not None or self.take_profit_atr is not None

    def levels(self, direction: int, ref: float, atr: float) -> tuple[float | None, float | None]:
        """(stop, target) of a position of ``direction`` (+1 long, -1 short) entered from
        reference price ``ref`` (dollars: the signal bar's close) with ``atr`` (NaN: unknown);
        on the broker's tick, None where there is none."""

        def off(x: float | None) -> float:
            return INF if x is None else float(x)

        stop, kind, target = exit_levels_nb(
            direction, ref, ref, atr, off(self.stop_loss), off(self.take_profit), INF,
            off(self.stop_loss_atr), off(self.take_profit_atr), INF,
        )  # fmt: skip
        return (
            tick_price(stop) if kind != 0 and math.isfinite(stop) and stop > 0 else None,
            tick_price(target) if math.isfinite(target) and target > 0 else None,
        )


class RunningAtr:
    """The ATR per symbol over every bar seen so far: Wilder's, stepped bar by bar with the
    very operations of :func:`barlab.indicators.atr`, so that over the same bars from the same
    first bar (a replay) it equals the backtest's to the bit. A live start begins from its
    warm-up history, and converges to it by ``(1 - 1/window) ** bars`` (1e-6 after 200 bars
    for a window of 14).

    Parameters
    ----------
    n_symbols : int
    window : int
        True ranges averaged, e.g. 14.
    """

    def __init__(self, n_symbols: int, window: int) -> None:
        self.window = window
        self.prev_close = np.full(n_symbols, np.nan)
        self.state = np.zeros(n_symbols)
        self.seen = np.zeros(n_symbols, dtype=np.int64)
        self.value = np.full(n_symbols, np.nan)
        """The ATR at the last bar (NaN: unknown yet, or the symbol had no bar there)."""

    def update(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> None:
        """One bar time: each symbol's high, low and close (NaN: no bar)."""
        w = self.window
        for j in range(len(close)):
            h, lo, c = float(high[j]), float(low[j]), float(close[j])
            self.value[j] = math.nan
            if math.isnan(h) or math.isnan(lo) or math.isnan(c):
                continue
            pc = float(self.prev_close[j])
            self.prev_close[j] = c
            if math.isnan(pc):
                continue
            tr = max(h - lo, abs(h - pc), abs(lo - pc))
            k = int(self.seen[j]) + 1
            self.seen[j] = k
            if k < w:
                self.state[j] += tr
                continue
            if k == w:
                self.state[j] = (self.state[j] + tr) / w
            else:
                self.state[j] = (self.state[j] * (w - 1) + tr) / w
            self.value[j] = self.state[j]
