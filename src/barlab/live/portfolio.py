"""The paper emulator's book: cash, positions per symbol (signed shares, average entry price),
the prices they are marked at, and the Position and Account JSON of the trading API (§3-4).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from barlab.data.calendar import NEW_YORK
from barlab.live.wire import asset_id, dec, ts_utc

ACCOUNT_ID = "7c2c7a8e-1f0b-4c55-8a39-2a9d5e2b6f10"
ACCOUNT_NUMBER = "PA0BARLAB001"


@dataclass(slots=True)
class Holding:
    """One symbol's position: ``qty`` shares (negative: short), ``avg_price`` dollars."""

    qty: float
    avg_price: float


class Portfolio:
    """Cash and positions, marked at each symbol's last close.

    Parameters
    ----------
    symbols : tuple of str
        The tradable symbols, e.g. ``("AAPL", "MSFT")``.
    cash : float
        Starting cash in dollars, e.g. ``100_000``.
    multiplier : float
        Buying power per dollar of equity: 1 (cash account), 2 or 4 (margin).
    """

    def __init__(self, symbols: tuple[str, ...], *, cash: float, multiplier: float) -> None:
        self.symbols = symbols
        self.cash = float(cash)
        self.multiplier = float(multiplier)
        self.holdings: dict[int, Holding] = {}
        self.last_price = np.full(len(symbols), np.nan)
        self.lastday_price = np.full(len(symbols), np.nan)
        self.last_equity = float(cash)

    def qty(self, col: int) -> float:
        held = self.holdings.get(col)
        return held.qty if held else 0.0

    def apply_fill(self, col: int, side: int, qty: float, price: float) -> float:
        """Book ``qty`` shares bought (``side`` +1) or sold (-1) at ``price``; the new position."""
        self.cash -= side * qty * price
        held = self.holdings.get(col) or Holding(0.0, 0.0)
        old, new = held.qty, round(held.qty + side * qty, 9)
        if new == 0.0:
            self.holdings.pop(col, None)
            return 0.0
        if old == 0.0 or (old > 0) != (new > 0):
            held.avg_price = price  # opened, or flipped through zero: the rest is new
        elif abs(new) > abs(old):
            held.avg_price = (abs(old) * held.avg_price + qty * price) / abs(new)
        held.qty = new
        self.holdings[col] = held
        return new

    def mark(self, col: int) -> float:
        """The price a symbol is marked at: its last close (its entry price before any bar)."""
        price = self.last_price[col]
        if np.isnan(price) and col in self.holdings:
            return self.holdings[col].avg_price
        return float(price)

    def market_values(self) -> tuple[float, float]:
        """(long market value >= 0, short market value <= 0) in dollars."""
        long_mv = short_mv = 0.0
        for col, held in self.holdings.items():
            value = held.qty * self.mark(col)
            if value >= 0:
                long_mv += value
            else:
                short_mv += value
        return long_mv, short_mv

    def equity(self) -> float:
        long_mv, short_mv = self.market_values()
        return self.cash + long_mv + short_mv

    def buying_power(self, reserved: float) -> float:
        """Dollars new exposure may use: equity x multiplier, less the gross positions and what
        open orders reserve (``reserved``), never below 0."""
        long_mv, short_mv = self.market_values()
        return max(0.0, self.equity() * self.multiplier - (long_mv - short_mv) - reserved)

    def position_json(self, col: int, *, held_for_orders: float) -> dict[str, Any]:
        """The Position object; every number a decimal string, shorts negative."""
        held = self.holdings[col]
        price = self.mark(col)
        lastday = float(self.lastday_price[col])
        if np.isnan(lastday):
            lastday = held.avg_price
        market_value = held.qty * price
        cost_basis = held.qty * held.avg_price
        pl = market_value - cost_basis
        intraday_basis = held.qty * lastday
        return {
            "asset_id": asset_id(self.symbols[col]),
            "symbol": self.symbols[col],
            "exchange": "NASDAQ",
            "asset_class": "us_equity",
            "asset_marginable": True,
            "qty": dec(held.qty),
            "qty_available": dec(round(held.qty - math.copysign(held_for_orders, held.qty), 9)),
            "side": "long" if held.qty > 0 else "short",
            "avg_entry_price": dec(held.avg_price),
            "market_value": dec(market_value),
            "cost_basis": dec(cost_basis),
            "unrealized_pl": dec(pl),
            "unrealized_plpc": dec(pl / abs(cost_basis) if cost_basis else 0.0),
            "unrealized_intraday_pl": dec(market_value - intraday_basis),
            "unrealized_intraday_plpc": dec(
                (market_value - intraday_basis) / abs(intraday_basis) if intraday_basis else 0.0
            ),
            "current_price": dec(price),
            "lastday_price": dec(lastday),
            "change_today": dec(price / lastday - 1.0 if lastday else 0.0),
        }

    def account_json(self, *, reserved: float, now_ns: int, shorting: bool) -> dict[str, Any]:
        """The Account object (without the PDT fields removed on 2026-07-06)."""
        long_mv, short_mv = self.market_values()
        equity = self.equity()
        bp = self.buying_power(reserved)
        today = dt.datetime.fromtimestamp(now_ns // 10**9, tz=NEW_YORK).date()
        return {
            "id": ACCOUNT_ID, "account_number": ACCOUNT_NUMBER, "status": "ACTIVE",
            "crypto_status": "INACTIVE", "currency": "USD",
            "cash": dec(self.cash), "portfolio_value": dec(equity), "equity": dec(equity),
            "last_equity": dec(self.last_equity), "buying_power": dec(bp),
            "regt_buying_power": dec(bp),
            "non_marginable_buying_power": dec(max(0.0, self.cash - reserved)),
            "options_buying_power": dec(max(0.0, self.cash - reserved)),
            "long_market_value": dec(long_mv), "short_market_value": dec(short_mv),
            "initial_margin": dec(0.5 * (long_mv - short_mv)),
            "maintenance_margin": dec(0.3 * (long_mv - short_mv)),
            "last_maintenance_margin": "0", "sma": dec(self.last_equity),
            "multiplier": dec(self.multiplier), "accrued_fees": "0",
            "pending_transfer_in": "0", "pending_transfer_out": "0",
            "intraday_adjustments": "0", "balance_asof": today.isoformat(),
            "shorting_enabled": shorting, "trading_blocked": False,
            "transfers_blocked": False, "account_blocked": False,
            "trade_suspended_by_user": False, "options_approved_level": 0,
            "options_trading_level": 0, "created_at": ts_utc(1_704_067_200 * 10**9),
        }  # fmt: skip
