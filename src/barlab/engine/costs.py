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
    commission_per_order : float
        Flat dollars on every fill, e.g. ``1.0``.
    commission_min : float
        Minimum commission in dollars per fill (applied only when a commission is charged).
    commission_max : float or None
        Most commission in dollars per fill, e.g. ``50.0``; None: no cap.
    slippage_bps : float
        Adverse price move on every fill in basis points of the price, e.g. ``1.0``:
        buys fill at ``open * (1 + 1e-4)``, sells at ``open * (1 - 1e-4)``.
    price_impact : float
        Volume-share slippage on top: a fill of ``q`` shares in a bar that traded ``V`` moves
        the price against the order by ``price_impact * min(q / V, 1) ** 2`` (a fraction;
        zipline's model), e.g. ``0.1``. 0: off; below 1.
    max_participation : float or None
        Most of a bar's volume one order may take, e.g. ``0.025`` (2.5 %): a larger order fills
        in part, and the rest waits for the next bars. None: no cap.
    """

    commission_rate: float = 0.0
    commission_per_share: float = 0.0
    commission_per_order: float = 0.0
    commission_min: float = 0.0
    commission_max: float | None = None
    slippage_bps: float = 1.0
    price_impact: float = 0.0
    max_participation: float | None = None

    def __post_init__(self) -> None:
        names = ("commission_rate", "commission_per_share", "commission_per_order",
                 "commission_min", "slippage_bps", "price_impact")  # fmt: skip
        for name in names:
            value = getattr(self, name)
            if not (value >= 0.0 and value < float("inf")):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.price_impact >= 1:
            raise ConfigError(f"price_impact must be below 1 (e.g. 0.1), got {self.price_impact!r}")
        if self.commission_max is not None and not self.commission_max >= self.commission_min:
            raise ConfigError(
                f"commission_max ({self.commission_max!r}) must be at least commission_min "
                f"({self.commission_min!r})"
            )
        if self.max_participation is not None and not 0 < self.max_participation <= 1:
            raise ConfigError(
                f"max_participation is a fraction of the bar's volume in (0, 1], e.g. 0.025, "
                f"got {self.max_participation!r}"
            )
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
def fee_nb(
    qty: float,
    price: float,
    rate: float,
    per_share: float,
    per_order: float,
    minimum: float,
    maximum: float,
) -> float:
    """Commission in dollars for a fill of ``qty`` shares (> 0) at ``price``."""
    fee = qty * price * rate + qty * per_share + per_order
    if fee > maximum:
        fee = maximum
    if fee > 0.0 and fee < minimum:
        fee = minimum
    return fee


@njit(cache=True)
def impact_bps_nb(qty: float, volume: float, impact: float) -> float:
    """Volume-share price impact of a fill, in basis points (0 when off or no volume)."""
    if impact <= 0.0 or not volume > 0.0:
        return 0.0
    share = min(qty / volume, 1.0)  # beyond the whole bar's volume the model says no more
    return impact * share * share * 1e4


@njit(cache=True)
def affordable_qty_nb(
    cash: float,
    price: float,
    rate: float,
    per_share: float,
    per_order: float,
    minimum: float,
    maximum: float,
    fractional: bool,
) -> float:
    """The most shares ``cash`` buys at ``price`` once the commission is paid (>= 0)."""
    if cash <= 0.0:
        return 0.0
    qty = (cash - per_order) / (price * (1.0 + rate) + per_share)
    fee = qty * price * rate + qty * per_share + per_order
    if fee > maximum:
        # the commission is capped: what is left after the cap buys shares
        qty = (cash - maximum) / price
    elif fee < minimum and (rate > 0.0 or per_share > 0.0 or per_order > 0.0):
        # the minimum commission applies: it comes off the cash first
        qty = (cash - minimum) / price
    if not fractional:
        qty = float(int(qty)) if qty > 0.0 else 0.0
    return max(qty, 0.0)
