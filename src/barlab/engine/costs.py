"""Fees and slippage: one definition, used by the kernel (and later by the live bridge).

The defaults model Alpaca's commission-free US equities: no commission, 1 bp of slippage.
"""

from __future__ import annotations

from dataclasses import dataclass

from numba import njit

from barlab.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class Costs:
    """What a fill costs.

    Attributes
    ----------
    commission_rate : float
        Fraction of traded notional charged on every fill, e.g. ``0.001`` for 0.1 %.
    commission_per_share : float
        Dollars per share on every fill, e.g. ``0.005`` (Interactive Brokers' fixed plan).
    commission_min : float
        Minimum commission in dollars per fill (applied only when a commission is charged).
    slippage_bps : float
        Adverse price move on every fill in basis points of the price, e.g. ``1.0``:
        buys fill at ``open * (1 + 1e-4)``, sells at ``open * (1 - 1e-4)``.
    """

    commission_rate: float = 0.0
    commission_per_share: float = 0.0
    commission_min: float = 0.0
    slippage_bps: float = 1.0

    def __post_init__(self) -> None:
        for name in ("commission_rate", "commission_per_share", "commission_min", "slippage_bps"):
            value = getattr(self, name)
            if not (value >= 0.0 and value < float("inf")):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.commission_rate >= 0.5:
            raise ConfigError(
                f"commission_rate is a fraction of notional (0.001 = 0.1 %), got "
                f"{self.commission_rate!r}; did you mean {self.commission_rate / 100:g}?"
            )
        if self.slippage_bps >= 10_000:
            raise ConfigError(f"slippage_bps must be below 10000 (100 %), got {self.slippage_bps}")


@njit(cache=True)
def fill_price_nb(price: float, side: int, slippage_bps: float) -> float:
    """The price a market order of ``side`` (+1 buy, -1 sell) gets at ``price``."""
    return price * (1.0 + side * slippage_bps * 1e-4)


@njit(cache=True)
def fee_nb(qty: float, price: float, rate: float, per_share: float, minimum: float) -> float:
    """Commission in dollars for a fill of ``qty`` shares (> 0) at ``price``."""
    fee = qty * price * rate + qty * per_share
    if fee > 0.0 and fee < minimum:
        fee = minimum
    return fee


@njit(cache=True)
def affordable_qty_nb(
    cash: float, price: float, rate: float, per_share: float, minimum: float, fractional: bool
) -> float:
    """The most shares ``cash`` buys at ``price`` once the commission is paid (>= 0)."""
    if cash <= 0.0:
        return 0.0
    qty = cash / (price * (1.0 + rate) + per_share)
    if qty * price * rate + qty * per_share < minimum and (rate > 0.0 or per_share > 0.0):
        # the minimum commission applies: it comes off the cash first
        qty = (cash - minimum) / price
    if not fractional:
        qty = float(int(qty)) if qty > 0.0 else 0.0
    return max(qty, 0.0)
