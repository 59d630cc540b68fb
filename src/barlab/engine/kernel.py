"""The numba simulation loop: the only place that walks bars one by one.

Conventions (the reference simulator in tests/reference/ states the same rules in plain Python):

- An instruction is a *target* (NaN: no instruction; the sign is the side). How big a target
  is depends on the sizing: ``SIZE_EQUAL`` (the default) reads it as the fraction of the
  symbol's allocation to hold, the allocation being ``size_pct / n_symbols`` of the equity
  marked at the fill bar's open (+1 all of it long, -1 all of it short, 0 flat);
  ``SIZE_WEIGHT`` as a fraction of that equity; ``SIZE_NOTIONAL`` as dollars; ``SIZE_SHARES``
  as shares. Whole shares unless fractional. With ``size_on_signal`` (``size_on="signal"``)
  the target is sized instead when it is given, at bar t's close: equity marked at that close
  and the symbol's close (its last known close; slippage applied) as the price, which is what a
  live trader knows when it sends the order; the order then asks for those shares at the fill.
  Like a broker checking buying power at submit, the shares that add exposure (buys to open,
  sells to open a short) must then fit in Alpaca's buying power at that close: ``margin`` x
  equity less the gross exposure of the positions (a short uses power like a long; its
  proceeds are not spendable), symbol by symbol in column order, each order reserving what it
  adds at its check price (the close plus ``bp_buffer``, e.g. 0.03 as Alpaca's, or beyond that
  its stop; a buy's limit; a sell's limit if higher: engine/sizing.py); closing orders free
  nothing until they fill.
- An instruction from bar t's close is a market order filled at bar t+1's open (slippage applied);
  if the symbol has no bar then, it waits for the symbol's next bar. A newer instruction replaces
  a waiting one. The last bar's instructions are never filled.
- An order takes at most ``participation`` of its bar's volume: the rest waits for the next
  bars (the instruction stays pending until a newer one replaces it). Attached exits fill whole.
- Within a bar, sells fill before buys, so a rebalance can use the cash the sells free.
- Buys never spend cash the account does not have, unless ``margin`` > 1: then cash may go
  down to ``-(margin - 1)`` times the equity marked at the fill bar's open (buying power of
  ``margin`` x equity, e.g. 2 for Reg T). Risk rules resize or refuse orders, and every such
  order is logged with its reason.
- An instruction may carry a limit and/or a stop price, or a trail (engine/orders.py has the
  fill rules): it then rests from the next bar on. Limits are not slipped; stops fill at the
  worse of the open and the stop (slippage applied); a stop-limit fills in the triggering bar
  only within its limit, and rests as a limit order after; a trailing stop order's stop sits
  ``trail`` above the lowest low (buys) or below the highest high (sells) since the close it
  was given at, bars before the tested one. Time in force: ``gtc`` rests until filled or
  replaced (logged ``cancelled``), ``day`` until its first session ends (logged ``expired``).
- When equity falls ``daily_loss`` below the session's start, no order may add exposure for the
  rest of the session; with ``flatten_on_loss`` every position is also closed at the next open.
- Exits attached to every entry (``stop_loss``, ``take_profit``, ``trailing_stop`` as
  fractions of the entry's reference price, or of the best price since entry for the trailing
  stop; or the ``*_atr`` multiples of the ATR at the entry's signal bar) are checked on every
  bar from the entry bar on, after the open's fills: a bar that gaps through a level fills at
  its open, one that trades through it at the level (stops slipped; a take-profit is a limit
  order, never slipped). Stop-loss and take-profit levels are on the cent, as a broker takes
  them. The reference price is
  the fill bar's open (that open is the entry, so it is not a gap), or with ``size_on_signal``
  the signal bar's close, which a live trader sends its bracket from (the fill bar's open may
  then already be beyond a level). When a bar's range holds both the stop and the target, the
  declared fill policy decides (pessimistic: the stop) and the trade is counted as ambiguous.
  The trailing level follows the best high (low, for shorts) of the bars before.
- Equity is cash plus positions marked at each bar's close (last known close where a symbol has no
  bar).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from barlab.engine.closes import (
    any_held_nb,
    close_quiet_bars_nb,
    limits_nb,
    mark_to_close_nb,
)
from barlab.engine.costs import affordable_qty_nb, fee_nb, fill_price_nb, impact_bps_nb
from barlab.engine.held_exits import best_price_nb, exit_levels_of_nb, quiet_held_until_nb
from barlab.engine.instructions import (
    cell_nb,
    count_waiting_nb,
    fillable_nb,
    follow_trailing_nb,
    has_instruction_nb,
    log_unfilled_nb,
    next_instruction_nb,
    replace_pending_nb,
    resting_log_nb,
)
from barlab.engine.orders import (
    KIND_MARKET,
    KIND_STOP_LIMIT,
    KIND_TAKE_PROFIT,
    ORDER_EXPIRED,
    ORDER_FILLED,
    ORDER_PARTIAL,
    ORDER_REFUSED,
    ORDER_RESIZED,
    exit_fill_nb,
    intended_side_nb,
    order_kind_nb,
    order_px_nb,
    resting_fill_nb,
    stop_touched_nb,
    trailing_level_nb,
)
from barlab.engine.risk import (
    REASON_CASH,
    REASON_DAILY_LOSS_LIMIT,
    REASON_MAX_PARTICIPATION,
    REASON_NONE,
)
from barlab.engine.risk_nb import risk_target_nb
from barlab.engine.round_trips import book_nb, excursions_nb
from barlab.engine.sizing import (
    SIZE_SHARES,
    afford_at_signal_nb,
    buying_power_nb,
    gross_nb,
    want_nb,
    whole_nb,
)


@njit(cache=True, nogil=True)
def simulate_nb(
    open_,
    high,
    low,
    close,
    target,
    limit,
    stop,
    trail,
    day_orders,
    day_id,
    sizing,
    cash0,
    size_pct,
    size_on_signal,
    bp_buffer,
    margin,
    rate,
    per_share,
    per_order,
    minimum,
    maximum,
    slippage_bps,
    impact,
    participation,
    volume,
    fractional,
    allow_short,
    max_position,
    max_gross,
    max_open,
    daily_loss,
    flatten_on_loss,
    max_drawdown,
    stop_loss,
    take_profit,
    trailing_stop,
    stop_loss_atr,
    take_profit_atr,
    trailing_stop_atr,
    atr,
    optimistic,
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
    ``orders_i`` (k, 7) int64 [created_bar, fill_bar, symbol, side, status, reason, kind],
    ``orders_f`` (k, 4) float64 [requested_qty, filled_qty, price, fee],
    ``trades_i`` (k, 6) int64 [symbol, direction, entry_bar, exit_bar, is_open, ambiguous],
    ``trades_f`` (k, 7) float64 [size, entry_price, exit_price, pnl, fees, mae, mfe].
    Returns ``(n_orders, n_trades)``; ``n_orders`` is -1 when the order log was too small
    (partial fills can make more orders than instructions): run again with a bigger one.
    """
    n, m = close.shape
    cash = cash0
    pos = np.zeros(m)
    last = np.full(m, np.nan)
    mark = np.zeros(m)
    pending = np.full(m, np.nan)
    pending_bar = np.zeros(m, dtype=np.int64)
    pending_limit = np.full(m, np.nan)
    pending_stop = np.full(m, np.nan)
    pending_trail = np.full(m, np.nan)  # a trailing stop order's trail (fraction)
    pending_low = np.zeros(m)  # its watermarks: lowest low and highest high since placed
    pending_high = np.zeros(m)
    pending_ref = np.zeros(m)  # the close an instruction was given at
    pending_session = np.full(m, -1, dtype=np.int64)  # a day order's session, once it rests
    pending_flatten = np.zeros(m, dtype=np.bool_)  # closing orders of the daily loss limit
    pending_want = np.zeros(m)  # shares sized at the signal (size_on_signal)
    pending_reason = np.zeros(m, dtype=np.int64)  # why a signal-sized order was cut
    trade_at = np.full(m, -1, dtype=np.int64)
    flows = np.zeros((m, 5))
    seen = np.zeros((m, 2))  # highest and lowest price while a trade is open
    entry_px = np.zeros(m)  # the price exits are measured from
    entry_atr = np.zeros(m)  # the ATR at the entry's signal bar
    best = np.zeros(m)  # best price since entry (trailing stop), bars before this one
    stop_at = np.zeros(m)  # the levels of the exits attached to the open position
    stop_kind = np.zeros(m, dtype=np.int64)
    target_at = np.zeros(m)
    below = np.zeros(m)  # the quiet path's scratch for those levels
    above = np.zeros(m)
    entry_bar = np.zeros(m, dtype=np.int64)
    exits = (stop_loss, take_profit, trailing_stop, stop_loss_atr, take_profit_atr,
             trailing_stop_atr)  # fmt: skip
    has_exits = min(exits) < np.inf
    trails = min(trailing_stop, trailing_stop_atr) < np.inf  # exit levels move with the best price
    # counters start as int64, not as the literal 0: numba would compile every helper they are
    # passed to twice, once for the literal (seconds of a cold start)
    n_orders = np.int64(0)
    n_trades = np.int64(0)
    alloc = size_pct / m
    prev_equity = cash0
    day_start_equity = cash0
    halted = np.bool_(False)  # not the literal False either
    peak = cash0
    stopped = np.bool_(False)  # the max drawdown halt: for good
    n_waiting = 0  # symbols with an instruction waiting (none: no fills to look for)

    t = np.int64(0)
    while t < n:
        # The short path: while no instruction waits, no attached exit fires and the daily
        # loss limit flattens nothing, a bar without instructions only closes (marks, equity,
        # halts, the best prices of open positions). Most bars are such bars; keeping them out
        # of the long path below keeps them cheap.
        if not flatten_on_loss and n_waiting == 0:
            if has_exits and any_held_nb(pos):
                end = quiet_held_until_nb(
                    t, target, pos, open_, high, low, best, entry_px, entry_atr, stop_at,
                    stop_kind, target_at, exits, trails, optimistic, below, above,
                )  # fmt: skip
            else:
                end = next_instruction_nb(target, t)
            prev_equity, day_start_equity, halted, peak, stopped = close_quiet_bars_nb(
                t, end, cash, close, high, low, day_id, pos, last, seen, positions, equity,
                cash_out, daily_loss, max_drawdown, prev_equity, day_start_equity, halted, peak,
                stopped,
            )  # fmt: skip
            t = end
            if t == n:
                break
        if t == 0 or day_id[t] != day_id[t - 1]:  # a new session
            day_start_equity = prev_equity
            halted = False

        if n_waiting > 0 and fillable_nb(t, pending, open_):
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
                    lim = pending_limit[j]
                    stp = pending_stop[j]
                    trl = pending_trail[j]
                    lowest, highest = pending_low[j], pending_high[j]
                    if not np.isnan(trl):  # the stop it is sized at: its target's side
                        stp = trailing_level_nb(1 if tg > 0 else -1, lowest, highest, trl)
                    resting = not (np.isnan(lim) and np.isnan(stp) and np.isnan(trl))
                    if resting and day_orders and pass_side == -1:
                        if pending_session[j] == -1:
                            pending_session[j] = day_id[t]
                        elif day_id[t] != pending_session[j]:
                            kind, price = resting_log_nb(tg, pos[j], lim, stp, trl, lowest, highest)
                            n_orders = log_unfilled_nb(
                                orders_i, orders_f, n_orders, pending_bar[j], t, j,
                                intended_side_nb(tg, pos[j]), np.int64(ORDER_EXPIRED), kind, price,
                            )  # fmt: skip
                            if n_orders < 0:
                                return -1, n_trades
                            pending[j] = np.nan
                            continue
                    if size_on_signal:
                        want = pending_want[j]  # sized at the signal bar's close
                    else:  # size the target at the price the order would get
                        px = order_px_nb(open_[t, j], lim, stp, 1 if tg > 0 else -1, slippage_bps)
                        want = want_nb(
                            sizing, tg, equity_open, alloc, px, rate, per_share, fractional
                        )
                    if want - pos[j] == 0.0:
                        pending[j] = np.nan
                        continue
                    side = 1 if want > pos[j] else -1
                    if side != pass_side:
                        continue
                    kind = KIND_MARKET
                    base = open_[t, j]
                    protected = False  # a limit price: no slippage beyond it
                    if resting:
                        if not np.isnan(trl):  # the stop of the side it trades
                            stp = trailing_level_nb(side, lowest, highest, trl)
                            if np.isnan(stp):
                                continue  # no price seen since it was given: nothing to trail
                        kind = order_kind_nb(lim, stp, trl)
                        base, triggered, protected = resting_fill_nb(
                            side, open_[t, j], high[t, j], low[t, j], lim, stp
                        )
                        if not triggered:
                            if kind == KIND_STOP_LIMIT and stop_touched_nb(
                                side, high[t, j], low[t, j], stp
                            ):
                                pending_stop[j] = np.nan  # triggered, now a plain limit order
                            continue
                    pending[j] = np.nan
                    px = base if protected else fill_price_nb(base, side, slippage_bps)
                    reason = REASON_DAILY_LOSS_LIMIT if pending_flatten[j] else pending_reason[j]
                    new_pos, reason = risk_target_nb(
                        j, want, pos, mark, px, reason, allow_short, max_position[j], max_gross,
                        max_open, halted, stopped, fractional,
                    )  # fmt: skip
                    qty = abs(new_pos - pos[j]) if np.sign(new_pos - pos[j]) == side else 0.0
                    partial = False
                    if qty > participation * volume[t, j]:
                        qty = whole_nb(participation * volume[t, j], fractional)
                        reason = REASON_MAX_PARTICIPATION
                        partial = True
                        pending[j] = tg  # the rest waits for the next bars
                    if impact > 0.0 and qty > 0.0 and not protected:
                        bps = slippage_bps + impact_bps_nb(qty, volume[t, j], impact)
                        px = fill_price_nb(base, side, bps)
                    if side == 1 and qty > 0.0:
                        # cash, and with margin what may be borrowed against the equity
                        spendable = cash + (margin - 1.0) * max(equity_open, 0.0)
                        fee = fee_nb(qty, px, rate, per_share, per_order, minimum, maximum)
                        if qty * px + fee > spendable:
                            qty = min(
                                qty,
                                affordable_qty_nb(
                                    spendable, px, rate, per_share, per_order, minimum, maximum,
                                    fractional,
                                ),
                            )  # fmt: skip
                            reason = REASON_CASH
                    requested = abs(want - pos[j])
                    if n_orders == orders_i.shape[0]:  # partial fills outgrew the log
                        return -1, n_trades
                    o = n_orders
                    n_orders += 1
                    orders_i[o, 0] = pending_bar[j]
                    orders_i[o, 1] = t
                    orders_i[o, 2] = j
                    orders_i[o, 3] = side
                    orders_i[o, 5] = reason
                    orders_i[o, 6] = kind
                    orders_f[o, 0] = requested
                    orders_f[o, 1] = qty
                    orders_f[o, 2] = px
                    if qty <= 0.0:
                        orders_i[o, 4] = ORDER_REFUSED
                        orders_f[o, 1] = 0.0
                        orders_f[o, 3] = 0.0
                        continue
                    if partial:
                        orders_i[o, 4] = ORDER_PARTIAL
                    else:
                        orders_i[o, 4] = ORDER_FILLED if qty == requested else ORDER_RESIZED
                    fee = fee_nb(qty, px, rate, per_share, per_order, minimum, maximum)
                    orders_f[o, 3] = fee
                    cash -= side * qty * px + fee
                    old = pos[j]
                    pos[j] = old + side * qty
                    n_trades = book_nb(
                        j, t, side, qty, px, fee, old, trades_i, trades_f, n_trades, trade_at,
                        flows, seen,
                    )  # fmt: skip
                    if pos[j] != 0.0 and (old == 0.0 or np.sign(old) != np.sign(pos[j])):
                        # exits are measured from the open, or from the close a live trader
                        # sent the entry at
                        entry_px[j] = pending_ref[j] if size_on_signal else open_[t, j]
                        entry_atr[j] = cell_nb(atr, pending_bar[j], j)
                        best[j] = entry_px[j]
                        stop_at[j], stop_kind[j], target_at[j] = exit_levels_of_nb(
                            pos[j], entry_px[j], best[j], entry_atr[j], exits
                        )
                        entry_bar[j] = t

            n_waiting = count_waiting_nb(pending)

        if has_exits:
            for j in range(m):
                if pos[j] == 0.0 or not np.isfinite(open_[t, j]):
                    continue
                kind, level, ambiguous = exit_fill_nb(
                    1 if pos[j] > 0.0 else -1, open_[t, j], high[t, j], low[t, j], stop_at[j],
                    stop_kind[j], target_at[j], optimistic, size_on_signal or entry_bar[j] != t,
                )  # fmt: skip
                if kind == 0:
                    if trails:
                        best[j] = best_price_nb(pos[j], best[j], high[t, j], low[t, j])
                        stop_at[j], stop_kind[j], target_at[j] = exit_levels_of_nb(
                            pos[j], entry_px[j], best[j], entry_atr[j], exits
                        )
                    continue
                side = -1 if pos[j] > 0.0 else 1
                qty = abs(pos[j])
                # a take-profit is a limit order: never slipped (its level or a better open)
                px = level if kind == KIND_TAKE_PROFIT else fill_price_nb(level, side, slippage_bps)
                fee = fee_nb(qty, px, rate, per_share, per_order, minimum, maximum)
                if n_orders == orders_i.shape[0]:
                    return -1, n_trades
                o = n_orders
                n_orders += 1
                orders_i[o, 0] = t
                orders_i[o, 1] = t
                orders_i[o, 2] = j
                orders_i[o, 3] = side
                orders_i[o, 4] = ORDER_FILLED
                orders_i[o, 5] = REASON_NONE
                orders_i[o, 6] = kind
                orders_f[o, 0] = qty
                orders_f[o, 1] = qty
                orders_f[o, 2] = px
                orders_f[o, 3] = fee
                cash -= side * qty * px + fee
                if ambiguous:
                    trades_i[trade_at[j], 5] = 1
                old = pos[j]
                pos[j] = 0.0
                n_trades = book_nb(
                    j, t, side, qty, px, fee, old, trades_i, trades_f, n_trades, trade_at,
                    flows, seen,
                )  # fmt: skip

        if n_waiting > 0:  # resting trailing orders follow this bar
            follow_trailing_nb(t, high, low, pending, pending_trail, pending_low, pending_high)
        value = mark_to_close_nb(cash, close[t], high[t], low[t], pos, last, seen, positions[t])
        equity[t] = value
        cash_out[t] = cash
        prev_equity = value
        flatten = value <= day_start_equity - daily_loss and not halted and flatten_on_loss
        if flatten or has_instruction_nb(target, t):
            # what the broker lets new orders use (size_on_signal): Alpaca's buying power
            power = buying_power_nb(value, gross_nb(pos, last), margin) if size_on_signal else 0.0
            for j in range(m):
                tg = target[t, j]
                closing = flatten and pos[j] != 0.0
                if closing:
                    tg = 0.0  # the daily loss limit closes everything at the next open
                elif np.isnan(tg):
                    continue
                lim_j = np.nan if closing else cell_nb(limit, t, j)
                stp_j = np.nan if closing else cell_nb(stop, t, j)
                trl_j = np.nan if closing else cell_nb(trail, t, j)
                if not np.isnan(trl_j):  # a trailing stop order has no other price
                    lim_j = np.nan
                    stp_j = np.nan
                if size_on_signal:
                    if sizing != SIZE_SHARES and np.isnan(last[j]):
                        continue  # no price known yet to size it at: like no instruction
                    at = stp_j
                    if not np.isnan(trl_j):
                        at = trailing_level_nb(1 if tg > 0 else -1, last[j], last[j], trl_j)
                    px = order_px_nb(last[j], lim_j, at, 1 if tg > 0 else -1, slippage_bps)
                    want = want_nb(sizing, tg, value, alloc, px, rate, per_share, fractional)
                    pending_want[j], power = afford_at_signal_nb(
                        want, pos[j], last[j], lim_j, stp_j, bp_buffer, power, rate, per_share,
                        per_order, minimum, maximum, fractional,
                    )  # fmt: skip
                    pending_reason[j] = REASON_CASH if pending_want[j] != want else REASON_NONE
                n_orders = replace_pending_nb(
                    j, t, tg, lim_j, stp_j, trl_j, last[j], pos[j],
                    pending, pending_bar, pending_limit, pending_stop, pending_trail, pending_low,
                    pending_high, pending_ref, pending_session, orders_i, orders_f, n_orders,
                )  # fmt: skip
                if n_orders < 0:
                    return -1, n_trades
                pending_flatten[j] = closing
            n_waiting = count_waiting_nb(pending)
        halted, peak, stopped = limits_nb(
            value, day_start_equity, daily_loss, peak, max_drawdown, halted, stopped
        )
        t += 1

    # trades still open at the end are marked at the last close
    for j in range(m):
        k = trade_at[j]
        if k >= 0:
            long = trades_i[k, 1] == 1
            trades_f[k, 1] = (flows[j, 1] if long else flows[j, 3]) / trades_f[k, 0]
            trades_f[k, 2] = last[j]
            trades_f[k, 3] = flows[j, 3] - flows[j, 1] + pos[j] * last[j] - flows[j, 4]
            trades_f[k, 4] = flows[j, 4]
            trades_i[k, 3] = n - 1
            excursions_nb(k, trades_i, trades_f, seen[j, 0], seen[j, 1])
    return n_orders, n_trades
