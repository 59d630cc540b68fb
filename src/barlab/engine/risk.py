"""RiskRules: one definition of the account's limits, applied by the kernel on every fill
(and later, verbatim, by the live bridge). Every order a rule refuses or resizes is kept in the
order log with the rule's reason code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from barlab.errors import RiskError

# Reason codes written by the kernel into the order log (int constants numba can read).
REASON_NONE = 0
REASON_CASH = 1
REASON_MAX_POSITION_SIZE = 2
REASON_MAX_PORTFOLIO_VALUE = 3
REASON_DAILY_LOSS_LIMIT = 4
REASON_MAX_OPEN_POSITIONS = 5
REASON_MAX_DRAWDOWN = 6
REASON_MAX_PARTICIPATION = 7
REASON_NO_SHORTING = 8

REASON_NAMES = {
    REASON_NONE: "",
    REASON_CASH: "insufficient_cash",
    REASON_MAX_POSITION_SIZE: "max_position_size",
    REASON_MAX_PORTFOLIO_VALUE: "max_portfolio_value",
    REASON_DAILY_LOSS_LIMIT: "daily_loss_limit",
    REASON_MAX_OPEN_POSITIONS: "max_open_positions",
    REASON_MAX_DRAWDOWN: "max_drawdown",
    REASON_MAX_PARTICIPATION: "max_participation",
    REASON_NO_SHORTING: "no_shorting",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskRules:
    """The account's limits; ``None`` switches a rule off.

    Attributes
    ----------
    max_position_size : float or None
        Largest value of one symbol's position in dollars at the fill price, e.g. ``25_000``.
        A larger order is resized down to it.
    max_position_size_per_symbol : dict of str to float
        Overrides of ``max_position_size`` for some symbols, e.g. ``{"TSLA": 10_000}``.
    max_portfolio_value : float or None
        Largest gross exposure (sum of absolute position values) in dollars, e.g. ``100_000``.
        Orders that would exceed it are resized or refused.
    max_open_positions : int or None
        Most symbols held at once, e.g. ``5``: an order that would open one more is refused.
    daily_loss_limit : float or None
        Dollars, e.g. ``2_000``: once equity at a bar's close is this far below the equity at
        the session's start, no order may increase exposure for the rest of that session.
    daily_loss_flatten : bool
        Also close every position at the next open when the daily loss limit is hit.
    max_drawdown : float or None
        Fraction, e.g. ``0.25``: once equity at a bar's close is this far below its peak, no
        order may increase exposure again (exits still fill): the strategy is halted.
    """

    max_position_size: float | None = None
    max_position_size_per_symbol: dict[str, float] = field(default_factory=dict)
    max_portfolio_value: float | None = None
    max_open_positions: int | None = None
    daily_loss_limit: float | None = None
    daily_loss_flatten: bool = False
    max_drawdown: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_position_size", "max_portfolio_value", "daily_loss_limit"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise RiskError(
                    f"risk.{name} must be a positive number of dollars or unset, got {value!r}"
                )
        for symbol, value in self.max_position_size_per_symbol.items():
            if not (value > 0 and math.isfinite(value)):
                raise RiskError(
                    f"risk.max_position_size_per_symbol.{symbol} must be a positive number of "
                    f"dollars, got {value!r}"
                )
        n = self.max_open_positions
        if n is not None and (isinstance(n, bool) or int(n) != n or n < 1):
            raise RiskError(f"risk.max_open_positions must be a whole number >= 1, got {n!r}")
        dd = self.max_drawdown
        if dd is not None and not 0 < dd < 1:
            raise RiskError(
                f"risk.max_drawdown is a fraction of the peak equity in (0, 1), e.g. 0.25, "
                f"got {dd!r}"
            )
        if (
            self.max_position_size is not None
            and self.max_portfolio_value is not None
            and self.max_position_size > self.max_portfolio_value
        ):
            raise RiskError(
                f"risk.max_position_size ({self.max_position_size:g}) exceeds "
                f"risk.max_portfolio_value ({self.max_portfolio_value:g}); one position can "
                "never be larger than the whole book: lower it or raise the portfolio limit"
            )

    def position_caps(self, symbols: tuple[str, ...] | list[str]) -> np.ndarray:
        """Dollar cap per symbol, in the order given (``inf`` = no cap)."""
        default = math.inf if self.max_position_size is None else float(self.max_position_size)
        return np.array([float(self.max_position_size_per_symbol.get(s, default)) for s in symbols])

    def kernel_args(self, symbols: tuple[str, ...] | list[str]) -> tuple:
        """The limits as the kernel takes them (``inf`` / a huge count = no limit)."""
        inf = math.inf
        return (
            self.position_caps(symbols),
            inf if self.max_portfolio_value is None else float(self.max_portfolio_value),
            len(symbols) if self.max_open_positions is None else int(self.max_open_positions),
            inf if self.daily_loss_limit is None else float(self.daily_loss_limit),
            bool(self.daily_loss_flatten),
            inf if self.max_drawdown is None else float(self.max_drawdown),
        )
