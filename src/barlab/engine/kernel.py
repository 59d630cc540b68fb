"""The numba simulation loop: the only place that walks bars one by one.

Conventions (the reference simulator in tests/reference/ states the same rules in plain Python):

- An instruction is a *target*: the fraction of the symbol's allocation to hold (+1 all of it
  long, -1 all of it short, 0 flat, NaN no instruction). The allocation is
  ``size_pct / n_symbols`` of the equity marked at the fill bar's open.
- An instruction from bar t's close is a market order filled at bar t+1's open (slippage applied);
  if the symbol has no bar then, it waits for the symbol's next bar. A newer instruction replaces
  a waiting one. The last bar's instructions are never filled.
- Within a bar, sells fill before buys, so a rebalance can use the cash the sells free.
- Buys never spend cash the account does not have; risk rules resize or refuse orders, and every
  such order is logged with its reason.
- Equity is cash plus positions marked at each bar's close (last known close where a symbol has no
  bar).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from barlab.engine.costs import affordable_qty_nb, fee_nb, fill_price_nb
from barlab.engine.risk import (
    REASON_CASH,
    REASON_DAILY_LOSS_LIMIT,
    REASON_MAX_DRAWDOWN,
    REASON_MAX_OPEN_POSITIONS,
    REASON_MAX_PORTFOLIO_VALUE,
    REASON_MAX_POSITION_SIZE,
    REASON_NONE,
)

ORDER_FILLED = 0
ORDER_RESIZED = 1  # filled, with fewer shares than asked (reason says why)
ORDER_REFUSED = 2  # nothing filled (reason says why)


@njit(cache=True)
def signals_to_target_nb(entries, exits, short_entries, short_exits, out):
    """Turn entry/exit booleans into targets (+1, -1, 0; NaN where nothing changes).

    An entry and an opposite signal on the same bar cancel out; an exit acts only on a position
    of its own direction.
    """
    n, m = entries.shape
    for j in range(m):
        state = 0
        for t in range(n):
            e = entries[t, j]
            x = exits[t, j]
            se = short_entries[t, j]
            sx = short_exits[t, j]
            new = state
            if e and not x and not se:
                new = 1
            elif se and not sx and not e:
                new = -1
            elif (state == 1 and x and not e) or (state == -1 and sx and not se):
                new = 0
            out[t, j] = np.nan if new == state else float(new)
            state = new


@njit(cache=True)
def _whole(qty, fractional):
    if fractional:
        return qty
    return float(int(qty))


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
def simulate_nb(
    open_,
    close,
    target,
    day_id,
    cash0,
    size_pct,
    rate,
    per_share,
    minimum,
    slippage_bps,
    fractional,
    max_position,
    max_gross,
    max_open,
    daily_loss,
    max_drawdown,
    equity,
    cash_out,
    positions,
    orders_i,
    orders_f,
    trades_i,
    trades_f,
):
    """Simulate one account over ``n`` bars and ``m`` symbols.

    Outputs are written in place: ``equity``/``cash_out`` (n,), ``positions`` (n, m) in shares,
    ``orders_i`` (k, 6) int64 [created_bar, fill_bar, symbol, side, status, reason],
    ``orders_f`` (k, 4) float64 [requested_qty, filled_qty, price, fee],
    ``trades_i`` (k, 5) int64 [symbol, direction, entry_bar, exit_bar, is_open],
    ``trades_f`` (k, 5) float64 [size, entry_price, exit_price, pnl, fees].
    Returns ``(n_orders, n_trades)``.
    """
    n, m = close.shape
    cash = cash0
    pos = np.zeros(m)
    last = np.full(m, np.nan)
    mark = np.zeros(m)
    pending = np.full(m, np.nan)
    pending_bar = np.zeros(m, dtype=np.int64)
    # the open trade of each symbol: index into trades_*, its buys, sells and fees so far
    trade_at = np.full(m, -1, dtype=np.int64)
    buy_qty = np.zeros(m)
    buy_val = np.zeros(m)
    sell_qty = np.zeros(m)
    sell_val = np.zeros(m)
    trade_fees = np.zeros(m)
    n_orders = 0
    n_trades = 0
    alloc = size_pct / m
    prev_equity = cash0
    day_start_equity = cash0
    halted = False
    peak = cash0
    stopped = False  # the max drawdown halt: for good

    for t in range(n):
        if t == 0 or day_id[t] != day_id[t - 1]:
            day_start_equity = prev_equity
            halted = False

        n_pending = 0
        for j in range(m):
            if not np.isnan(pending[j]) and np.isfinite(open_[t, j]):
                n_pending += 1
        if n_pending > 0:
            equity_open = cash
            for j in range(m):
                mark[j] = open_[t, j] if np.isfinite(open_[t, j]) else last[j]
                if pos[j] != 0.0:
                    equity_open += pos[j] * mark[j]
            for pass_side in (-1, 1):
                for j in range(m):
                    tg = pending[j]
                    if np.isnan(tg) or not np.isfinite(open_[t, j]):
                        continue
                    # size the target at the price the side that builds it would pay
                    size_side = 1 if tg > 0 else -1
                    px = fill_price_nb(open_[t, j], size_side, slippage_bps)
                    value = abs(tg) * alloc * max(equity_open, 0.0)
                    unit_cost = px * (1.0 + rate) + per_share
                    want = np.sign(tg) * _whole(value / unit_cost, fractional)
                    if want - pos[j] == 0.0:
                        pending[j] = np.nan
                        continue
                    side = 1 if want > pos[j] else -1
                    if side != pass_side:
                        continue
                    pending[j] = np.nan
                    px = fill_price_nb(open_[t, j], side, slippage_bps)
                    reason = REASON_NONE
                    new_pos = want
                    if abs(want) * px > max_position[j]:
                        new_pos = _limit_increase(
                            pos[j], want, _whole(max_position[j] / px, fractional)
                        )
                        reason = REASON_MAX_POSITION_SIZE
                    if (halted or stopped) and _increases(pos[j], new_pos):
                        new_pos = pos[j] if np.sign(new_pos) == np.sign(pos[j]) else 0.0
                        reason = REASON_MAX_DRAWDOWN if stopped else REASON_DAILY_LOSS_LIMIT
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
                        limited = _limit_increase(pos[j], new_pos, _whole(room / px, fractional))
                        if limited != new_pos:
                            new_pos = limited
                            reason = REASON_MAX_PORTFOLIO_VALUE
                    qty = abs(new_pos - pos[j]) if np.sign(new_pos - pos[j]) == side else 0.0
                    if side == 1 and qty > 0.0:
                        fee = fee_nb(qty, px, rate, per_share, minimum)
                        if qty * px + fee > cash:
                            qty = min(
                                qty,
                                affordable_qty_nb(cash, px, rate, per_share, minimum, fractional),
                            )
                            reason = REASON_CASH
                    requested = abs(want - pos[j])
                    o = n_orders
                    n_orders += 1
                    orders_i[o, 0] = pending_bar[j]
                    orders_i[o, 1] = t
                    orders_i[o, 2] = j
                    orders_i[o, 3] = side
                    orders_i[o, 5] = reason
                    orders_f[o, 0] = requested
                    orders_f[o, 1] = qty
                    orders_f[o, 2] = px
                    if qty <= 0.0:
                        orders_i[o, 4] = ORDER_REFUSED
                        orders_f[o, 1] = 0.0
                        orders_f[o, 3] = 0.0
                        continue
                    orders_i[o, 4] = ORDER_FILLED if qty == requested else ORDER_RESIZED
                    fee = fee_nb(qty, px, rate, per_share, minimum)
                    orders_f[o, 3] = fee
                    cash -= side * qty * px + fee
                    old = pos[j]
                    new = old + side * qty
                    # the part of the fill that closes the old position, then the part that opens
                    closing = min(qty, abs(old)) if old != 0.0 and np.sign(old) != side else 0.0
                    if closing > 0.0:
                        part_fee = fee * closing / qty
                        if side == 1:
                            buy_qty[j] += closing
                            buy_val[j] += closing * px
                        else:
                            sell_qty[j] += closing
                            sell_val[j] += closing * px
                        trade_fees[j] += part_fee
                        if closing == abs(old):
                            k = trade_at[j]
                            direction = trades_i[k, 1]
                            opened_val = buy_val[j] if direction == 1 else sell_val[j]
                            closed_val = sell_val[j] if direction == 1 else buy_val[j]
                            closed_qty = sell_qty[j] if direction == 1 else buy_qty[j]
                            trades_i[k, 3] = t
                            trades_i[k, 4] = 0
                            trades_f[k, 1] = opened_val / trades_f[k, 0]
                            trades_f[k, 2] = closed_val / closed_qty
                            trades_f[k, 3] = sell_val[j] - buy_val[j] - trade_fees[j]
                            trades_f[k, 4] = trade_fees[j]
                            trade_at[j] = -1
                    opening = qty - closing
                    if opening > 0.0:
                        part_fee = fee - (fee * closing / qty if closing > 0.0 else 0.0)
                        if trade_at[j] == -1:
                            k = n_trades
                            n_trades += 1
                            trade_at[j] = k
                            trades_i[k, 0] = j
                            trades_i[k, 1] = side
                            trades_i[k, 2] = t
                            trades_i[k, 3] = -1
                            trades_i[k, 4] = 1
                            trades_f[k, 0] = 0.0
                            buy_qty[j] = 0.0
                            buy_val[j] = 0.0
                            sell_qty[j] = 0.0
                            sell_val[j] = 0.0
                            trade_fees[j] = 0.0
                        k = trade_at[j]
                        trades_f[k, 0] += opening
                        if side == 1:
                            buy_qty[j] += opening
                            buy_val[j] += opening * px
                        else:
                            sell_qty[j] += opening
                            sell_val[j] += opening * px
                        trade_fees[j] += part_fee
                    pos[j] = new

        value = cash
        for j in range(m):
            c = close[t, j]
            if np.isfinite(c):
                last[j] = c
            if pos[j] != 0.0:
                value += pos[j] * last[j]
            positions[t, j] = pos[j]
            tg = target[t, j]
            if not np.isnan(tg):
                pending[j] = tg
                pending_bar[j] = t
        equity[t] = value
        cash_out[t] = cash
        prev_equity = value
        if value <= day_start_equity - daily_loss:
            halted = True
        peak = max(peak, value)
        if value <= peak * (1.0 - max_drawdown):
            stopped = True

    # trades still open at the end are marked at the last close
    for j in range(m):
        k = trade_at[j]
        if k >= 0:
            direction = trades_i[k, 1]
            opened_val = buy_val[j] if direction == 1 else sell_val[j]
            trades_f[k, 1] = opened_val / trades_f[k, 0]
            trades_f[k, 2] = last[j]
            trades_f[k, 3] = sell_val[j] - buy_val[j] + pos[j] * last[j] - trade_fees[j]
            trades_f[k, 4] = trade_fees[j]
            trades_i[k, 3] = n - 1
    return n_orders, n_trades
