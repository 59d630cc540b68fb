"""RiskRules: one definition of the account's limits, applied by the kernel on every fill
(and later, verbatim, by the live bridge). Every order a rule refuses or resizes is kept in the
order log with the rule's reason code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from barlab.engine.sizing import whole_nb
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


@njit(cache=True)
def _limit_increase(pos, new_pos, limit_qty):
    """Clamp ``new_pos`` so that any exposure it adds beyond ``pos`` stays within ``limit_qty``."""
    same_side = pos != 0.0 and np.sign(new_pos) == np.sign(pos)
    cap = max(limit_qty, abs(pos)) if same_side else limit_qty
    if abs(new_pos) > cap:
        return np.sign(new_pos) * cap
    return new_pos


@njit(cache=True)
def _increases(pos, new_pos):
    return abs(new_pos) > 0.0 and (np.sign(new_pos) != np.sign(pos) or abs(new_pos) > abs(pos))


@njit(cache=True)
def risk_target_nb(
    j, want, pos, mark, px, reason, allow_short, position_cap, max_gross, max_open, halted,
    stopped, fractional,
):  # fmt: skip
    """The position symbol ``j`` may move to when it asks for ``want`` shares at ``px``
    (dollars), under the risk rules (engine/risk.py), and the reason code of the last rule that
    limited it (``reason`` when none did). ``pos`` holds every symbol's shares and ``mark``
    their prices. The one definition of the rules: the kernel applies it at each fill and the
    live bridge before each order it sends."""
    new_pos = want
    if new_pos < 0.0 and not allow_short:
        new_pos = 0.0
        reason = REASON_NO_SHORTING
    if abs(new_pos) * px > position_cap:
        new_pos = _limit_increase(pos[j], new_pos, whole_nb(position_cap / px, fractional))
        reason = REASON_MAX_POSITION_SIZE
    if (halted or stopped) and _increases(pos[j], new_pos):
        new_pos = pos[j] if np.sign(new_pos) == np.sign(pos[j]) else 0.0
        reason = REASON_MAX_DRAWDOWN if stopped else REASON_DAILY_LOSS_LIMIT
    m = pos.shape[0]
    if pos[j] == 0.0 and new_pos != 0.0:
        n_open = 0
        for k in range(m):
            if pos[k] != 0.0:
                n_open += 1
        if n_open >= max_open:
            new_pos = 0.0
            reason = REASON_MAX_OPEN_POSITIONS
    if _increases(pos[j], new_pos) and max_gross < np.inf:
        gross_other = 0.0
        for k in range(m):
            if k != j and pos[k] != 0.0:
                gross_other += abs(pos[k]) * mark[k]
        room = max(max_gross - gross_other, 0.0)
        limited = _limit_increase(pos[j], new_pos, whole_nb(room / px, fractional))
        if limited != new_pos:
            new_pos = limited
            reason = REASON_MAX_PORTFOLIO_VALUE
    return new_pos, reason
