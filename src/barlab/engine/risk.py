"""RiskRules: one definition of the account's limits, applied by the kernel on every fill
(and later, verbatim, by the live bridge). Every order a rule refuses or resizes is kept in the
order log with the rule's reason code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from barlab.errors import RiskError

# Reason codes written by the kernel into the order log (int constants numba can read).
REASON_NONE = 0
REASON_CASH = 1
REASON_MAX_POSITION_SIZE = 2
REASON_MAX_PORTFOLIO_VALUE = 3
REASON_DAILY_LOSS_LIMIT = 4

REASON_NAMES = {
    REASON_NONE: "",
    REASON_CASH: "insufficient_cash",
    REASON_MAX_POSITION_SIZE: "max_position_size",
    REASON_MAX_PORTFOLIO_VALUE: "max_portfolio_value",
    REASON_DAILY_LOSS_LIMIT: "daily_loss_limit",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskRules:
    """The account's limits; ``None`` switches a rule off.

    Attributes
    ----------
    max_position_size : float or None
        Largest value of one symbol's position in dollars at the fill price, e.g. ``25_000``.
        A larger order is resized down to it.
    max_portfolio_value : float or None
        Largest gross exposure (sum of absolute position values) in dollars, e.g. ``100_000``.
        Orders that would exceed it are resized or refused.
    daily_loss_limit : float or None
        Dollars, e.g. ``2_000``: once equity at a bar's close is this far below the equity at
        the session's start, no order may increase exposure for the rest of that session.
    """

    max_position_size: float | None = None
    max_portfolio_value: float | None = None
    daily_loss_limit: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_position_size", "max_portfolio_value", "daily_loss_limit"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise RiskError(
                    f"risk.{name} must be a positive number of dollars or unset, got {value!r}"
                )

    def kernel_args(self) -> tuple[float, float, float]:
        """The limits as floats for the kernel (``inf`` = no limit)."""
        inf = math.inf
        return (
            inf if self.max_position_size is None else float(self.max_position_size),
            inf if self.max_portfolio_value is None else float(self.max_portfolio_value),
            inf if self.daily_loss_limit is None else float(self.daily_loss_limit),
        )
