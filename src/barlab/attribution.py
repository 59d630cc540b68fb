"""Who did what when several strategies trade one account: orders, fees and P&L per strategy.

The definitions (``parts``: each child's signed part of the combined target, carried forward,
from :class:`barlab.combined.Contributions`):

- **Owners.** After bar r, the position in a symbol belongs to the children in proportion to
  their signed parts: ``share_k = part_k / sum(parts)``. The shares sum to 1; a child whose
  part leans against the others has a negative share (its short offsets their long). Where the
  parts sum to 0 the position should be flat, and whatever remains (an order refused, a
  partial fill) stays with the previous owners.
- **Orders.** An order from a change of the combined target at bar r is caused by the children
  whose parts changed at r; its fee is split by ``|change_k| / sum(|change|)``. An order that
  no target change made (an attached stop-loss, take-profit or trailing exit, the daily-loss
  flattening) belongs to the position's owners, its fee split by ``|share_k| / sum(|share|)``.
- **P&L.** Bar t's P&L in a symbol (from bar t-1's close to bar t's, fills at their prices,
  positions marked at the last close) is split in two: the gap from the previous close to
  t's open goes by the owners after bar t-2 (who held the position overnight into t), the rest
  by the owners after bar t-1 (whose instructions fill at t's open). Fees are taken off as
  above. So for every bar, summed over the strategies, P&L == change in the account's equity
  (to floating-point rounding, ~1e-9 of equity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from barlab.combined import ZERO

if TYPE_CHECKING:
    from barlab.bars import Bars
    from barlab.combined import Combined, Contributions

_TS = pl.Datetime("ns", "UTC")
EXIT_KINDS = ("stop_loss", "take_profit", "trailing_stop")
"""Orders the engine attaches to a position: owned by the position's owners."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribution:
    """Each strategy's share of a combined run.

    Attributes
    ----------
    names : tuple of str
        The strategies, e.g. ``("sma_crossover", "rsi_mean_reversion")``.
    weights : tuple of float
    pnl : float64 array (n_bars, K)
        Each strategy's P&L per bar, after fees (USD); the rows sum to the change in equity.
    fees : float64 array (n_bars, K)
        Each strategy's share of the fees paid per bar (USD, >= 0).
    orders : DataFrame
        The order log with ``strategies`` (list of str): who caused each order.
    """

    names: tuple[str, ...]
    weights: tuple[float, ...]
    pnl: np.ndarray
    fees: np.ndarray
    orders: pl.DataFrame

    def per_bar(self, ts_ns: np.ndarray) -> pl.DataFrame:
        """One row per bar and strategy: ``time``, ``strategy``, ``pnl`` and ``fees`` of that
        bar (USD; ``pnl`` is after fees)."""
        n, k = self.pnl.shape
        return pl.DataFrame(
            {
                "time": pl.Series(np.repeat(ts_ns, k), dtype=pl.Int64).cast(_TS),
                "strategy": pl.Series(np.tile(np.array(self.names, dtype=object), n).tolist(),
                                      dtype=pl.String),
                "pnl": self.pnl.ravel(),
                "fees": self.fees.ravel(),
            }
        )  # fmt: skip

    def summary(self, trades: pl.DataFrame, initial_cash: float) -> pl.DataFrame:
        """One row per strategy: ``strategy``, ``weight``, ``pnl`` (total USD after fees),
        ``fees``, ``return`` (pnl / starting cash: the strategies' returns sum to the
        account's), ``orders`` (orders it caused, any status) and ``trades`` (round trips
        opened by an order it caused)."""
        tagged = self.orders.explode("strategies")
        orders = dict(tagged.group_by("strategies").len().iter_rows())
        opened = _trade_openers(trades, self.orders)
        pnl = self.pnl.sum(axis=0)
        return pl.DataFrame(
            {
                "strategy": pl.Series(self.names, dtype=pl.String),
                "weight": list(self.weights),
                "pnl": pnl,
                "fees": self.fees.sum(axis=0),
                "return": pnl / float(initial_cash),
                "orders": [int(orders.get(name, 0)) for name in self.names],
                "trades": [int(opened.get(name, 0)) for name in self.names],
            },
            schema_overrides={"orders": pl.Int64, "trades": pl.Int64},
        )

    @classmethod
    def from_frame(
        cls, frame: pl.DataFrame, *, names: list[str], weights: list[float], orders: pl.DataFrame
    ) -> Attribution:
        """Read back what :meth:`per_bar` wrote."""
        k = len(names)
        pnl = frame["pnl"].to_numpy().reshape(-1, k)
        fees = frame["fees"].to_numpy().reshape(-1, k)
        return cls(names=tuple(names), weights=tuple(weights), pnl=pnl, fees=fees, orders=orders)


class LazyAttribution:
    """A combined run's :class:`Attribution`, computed on the first call and then kept;
    ``orders()`` gives the plain order log, :meth:`orders` the tagged one."""

    def __init__(
        self, strategy: Combined, bars: Bars, positions: np.ndarray,
        orders: Callable[[], pl.DataFrame],
    ) -> None:  # fmt: skip
        self._inputs = (strategy, bars, positions, orders)
        self._made: Attribution | None = None

    def __call__(self) -> Attribution:
        if self._made is None:
            strategy, bars, positions, orders = self._inputs
            self._made = attribute(
                strategy.contributions(bars), orders=orders(), positions=positions,
                open_=bars.open, close=bars.close, symbols=list(bars.symbols),
            )  # fmt: skip
        return self._made

    def orders(self) -> pl.DataFrame:
        """The order log with ``strategies``."""
        return self().orders


def attribute(
    contrib: Contributions,
    *,
    orders: pl.DataFrame,
    positions: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    symbols: list[str],
) -> Attribution:
    """Each strategy's orders, fees and P&L per bar in a combined run (definitions above).

    ``orders``: the run's order log (:func:`barlab.result.orders_frame`); ``positions``:
    shares held after each bar; ``open_``, ``close``: the bars' prices.
    """
    parts = contrib.parts
    k, n, m = parts.shape
    owners = owner_shares(parts)  # (K, n, m): after each bar
    start = np.full((k, 1, m), 1.0 / k)
    after_prev = np.concatenate([start, owners[:, :-1]], axis=1)  # owners after bar t-1
    after_prev2 = np.concatenate([start, after_prev[:, :-1]], axis=1)  # after bar t-2

    column = {s: j for j, s in enumerate(symbols)}
    j = np.array([column[s] for s in orders["symbol"].to_list()], dtype=np.int64)
    created = orders["created_bar"].to_numpy().astype(np.int64)
    filled = orders["fill_bar"].to_numpy().astype(np.int64)
    qty = orders["qty"].to_numpy()
    price = orders["price"].to_numpy()
    fee = orders["fee"].to_numpy()
    side = np.where(orders["side"].to_numpy() == "buy", 1.0, -1.0)

    split = order_split(contrib, orders, j, created, filled, after_prev)  # (n_orders, K)
    fees = np.zeros((n, k))
    np.add.at(fees, filled, split * fee[:, None])
    flows = np.zeros((n, m))  # cash paid for shares per bar and symbol (fees apart)
    done = qty > 0
    np.add.at(flows, (filled[done], j[done]), side[done] * qty[done] * price[done])

    mark = _ffill(close)
    value = np.where(positions != 0.0, positions * np.nan_to_num(mark), 0.0)
    value_prev = np.vstack([np.zeros((1, m)), value[:-1]])
    pos_prev = np.vstack([np.zeros((1, m)), positions[:-1]])
    mark_prev = np.vstack([np.full((1, m), np.nan), mark[:-1]])
    gross = value - value_prev - flows
    with np.errstate(invalid="ignore"):
        gap = np.where((pos_prev != 0.0) & np.isfinite(open_), pos_prev * (open_ - mark_prev), 0.0)
    gap = np.nan_to_num(gap)
    pnl = (
        np.einsum("ktj,tj->tk", after_prev2, gap)
        + np.einsum("ktj,tj->tk", after_prev, gross - gap)
        - fees
    )
    names = list(contrib.names)
    tags = [[names[i] for i in np.flatnonzero(row)] for row in split != 0.0]
    tagged = orders.with_columns(strategies=pl.Series(tags, dtype=pl.List(pl.String)))
    return Attribution(
        names=contrib.names, weights=contrib.weights, pnl=pnl, fees=fees, orders=tagged
    )


def owner_shares(parts: np.ndarray) -> np.ndarray:
    """``part_k / sum(parts)`` after each bar (K, n, m); where the parts sum to 0, the last
    owners before (equal shares before any)."""
    k, n, _ = parts.shape
    total = parts.sum(axis=0)
    given = np.abs(total) >= ZERO  # parts that cancel out own nothing: the last owners keep it
    rows = np.where(given, np.arange(n)[:, None], -1)
    last = np.maximum.accumulate(rows, axis=0)  # the last bar with owners, per symbol
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = parts / np.where(given, total, 1.0)
    held = np.take_along_axis(shares, np.maximum(last, 0)[None], axis=1)
    return np.where(last[None] >= 0, held, 1.0 / k)


def order_split(
    contrib: Contributions,
    orders: pl.DataFrame,
    j: np.ndarray,
    created: np.ndarray,
    filled: np.ndarray,
    owners_before_fill: np.ndarray,
) -> np.ndarray:
    """(n_orders, K): each strategy's share of each order (>= 0, rows sum to 1)."""
    parts = contrib.parts
    before = np.where(created[None] > 0, parts[:, np.maximum(created - 1, 0), j], 0.0)
    change = np.abs(parts[:, created, j] - before).T  # (n_orders, K)
    exits = orders["kind"].is_in(list(EXIT_KINDS)).to_numpy()
    from_target = ~np.isnan(contrib.target[created, j]) & ~exits
    moved = change.sum(axis=1)
    owners = np.abs(owners_before_fill[:, filled, j]).T
    held = owners.sum(axis=1)
    by_change = from_target & (moved > 0)
    with np.errstate(invalid="ignore", divide="ignore"):  # owners' shares sum to 1: held >= 1
        split = np.where(by_change[:, None], change / moved[:, None], owners / held[:, None])
    return split


def _trade_openers(trades: pl.DataFrame, orders: pl.DataFrame) -> dict[str, int]:
    """Round trips per strategy, each counted for the strategies of the fill that opened it
    (the last fill on its symbol at its entry bar)."""
    if trades.height == 0 or orders.height == 0:
        return {}
    fills = (
        orders.filter(pl.col("qty") > 0)
        .with_row_index("_row")
        .group_by("symbol", "fill_bar")
        .agg(pl.col("strategies").sort_by("_row").last())
    )
    opened = trades.select("symbol", pl.col("entry_bar").alias("fill_bar")).join(
        fills, on=["symbol", "fill_bar"], how="inner"
    )
    return dict(opened.explode("strategies").group_by("strategies").len().iter_rows())


def _ffill(x: np.ndarray) -> np.ndarray:
    """Each column's last finite value (NaN before the first): the engine's mark."""
    n = x.shape[0]
    rows = np.where(np.isfinite(x), np.arange(n)[:, None], -1)
    last = np.maximum.accumulate(rows, axis=0)
    held = np.take_along_axis(x, np.maximum(last, 0), axis=0)
    return np.where(last >= 0, held, np.nan)
