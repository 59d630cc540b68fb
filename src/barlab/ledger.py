"""Positions and realized/unrealized P&L per bar, from a run's fills.

Average-cost accounting per symbol: a fill that adds to a position moves its average price;
one that reduces it realizes ``(fill price - average price) x shares closed`` (mirrored for
shorts); one that flips it realizes the closed part and opens the rest at the fill price.
Fees are kept apart, so for every bar

    initial cash + sum over symbols of (realized + unrealized) - fees paid == equity

which the tests check against the engine's equity.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from barlab.indicators import ffill

_TS = pl.Datetime("ns", "UTC")


def pnl_arrays(
    fills: pl.DataFrame, positions: np.ndarray, mark: np.ndarray, symbols: list[str]
) -> dict[str, np.ndarray]:
    """``avg_price``, ``realized``, ``unrealized`` and ``fees`` (cumulative, USD) per bar and
    symbol, each shaped like ``positions``.

    ``fills``: the filled part of the order log in fill order, with ``fill_bar``, ``symbol``,
    ``side`` ("buy"/"sell"), ``qty`` (shares, > 0), ``price`` and ``fee``.
    """
    n, m = positions.shape
    avg = np.full((n, m), np.nan)
    realized = np.zeros((n, m))
    fees = np.zeros((n, m))
    column = {s: j for j, s in enumerate(symbols)}
    state = [(0.0, 0.0, 0.0, 0.0)] * m  # position, average price, realized, fees
    last = [0] * m  # first bar not yet written, per symbol
    for bar, sym, side, qty, price, fee in fills.select(
        "fill_bar", "symbol", "side", "qty", "price", "fee"
    ).iter_rows():
        j = column[sym]
        _fill_until(avg, realized, fees, j, last[j], bar, state[j])
        last[j] = bar
        pos, cost, done, paid = state[j]
        pos, cost, done = _apply(pos, cost, done, qty if side == "buy" else -qty, price)
        state[j] = (pos, cost, done, paid + fee)
    for j in range(m):
        _fill_until(avg, realized, fees, j, last[j], n, state[j])
    unrealized = np.where(positions != 0.0, positions * (mark - np.nan_to_num(avg)), 0.0)
    return {"avg_price": avg, "realized": realized, "unrealized": unrealized, "fees": fees}


def _fill_until(avg, realized, fees, j, start, stop, state) -> None:
    pos, cost, done, paid = state
    avg[start:stop, j] = cost if pos != 0.0 else np.nan
    realized[start:stop, j] = done
    fees[start:stop, j] = paid


def _apply(pos: float, cost: float, done: float, signed: float, price: float):
    """(position, average price, realized) after a fill of ``signed`` shares at ``price``."""
    if pos == 0.0 or (pos > 0) == (signed > 0):  # opening or adding
        new = pos + signed
        return new, (cost * abs(pos) + price * abs(signed)) / abs(new), done
    closed = min(abs(signed), abs(pos))
    done += (price - cost) * closed * (1.0 if pos > 0 else -1.0)
    new = pos + signed
    if new == 0.0:
        return 0.0, 0.0, done
    if (new > 0) == (pos > 0):  # reduced
        return new, cost, done
    return new, price, done  # flipped: the rest opens at the fill price


def pnl_frame(
    *,
    orders: pl.DataFrame,
    positions: np.ndarray,
    close: np.ndarray,
    ts_ns: np.ndarray,
    symbols: list[str],
) -> pl.DataFrame:
    """One row per bar and symbol: ``time``, ``symbol``, ``position`` (shares), ``avg_price``,
    ``mark`` (last close), ``realized``, ``unrealized``, ``fees`` (cumulative USD) and
    ``pnl`` (= realized + unrealized - fees)."""
    filled = orders.filter(pl.col("qty") > 0).sort("fill_bar", maintain_order=True)
    mark = ffill(close)  # the engine marks a position at its symbol's last known close
    cols = pnl_arrays(filled, positions, mark, symbols)
    n, m = positions.shape
    frame = pl.DataFrame(
        {
            "time": pl.Series(np.repeat(ts_ns, m), dtype=pl.Int64).cast(_TS),
            "symbol": np.tile(np.array(symbols, dtype=object), n).tolist(),
            "position": positions.ravel(),
            "avg_price": cols["avg_price"].ravel(),
            "mark": mark.ravel(),
            "realized": cols["realized"].ravel(),
            "unrealized": cols["unrealized"].ravel(),
            "fees": cols["fees"].ravel(),
        }
    )
    return frame.with_columns(pnl=pl.col("realized") + pl.col("unrealized") - pl.col("fees"))
