"""The kernel's waiting instructions, one per symbol: the order a target becomes until it fills,
is replaced, or (a day order) expires. Arrays ``pending`` (the target, NaN: none) and its
``pending_*`` companions (the bar it was given at, its limit, stop, trail and the trail's
watermarks, the close it was given at, a day order's session) are the kernel's
(:func:`barlab.engine.kernel.simulate_nb`); these functions read and update them, and log the
orders that end unfilled."""

from __future__ import annotations

import numpy as np

from barlab.engine.jit import helper_nb
from barlab.engine.orders import (
    KIND_TRAILING_ORDER,
    ORDER_CANCELLED,
    intended_side_nb,
    order_kind_nb,
    trailing_level_nb,
)
from barlab.engine.risk import REASON_NONE


@helper_nb
def cell_nb(a, t, j):
    """``a[t, j]``, a dimension of length 1 broadcast: arrays a run does not use (limit or
    stop prices, trails, the ATR) are passed as one NaN cell, keeping one compiled kernel."""
    return a[min(t, a.shape[0] - 1), min(j, a.shape[1] - 1)]


@helper_nb
def resting_log_nb(tg, held, lim, stp, trail, lowest, highest):
    """(kind, price) a resting order is logged with when it ends unfilled: its limit or stop,
    or a trailing order's stop at that moment."""
    kind = order_kind_nb(lim, stp, trail)
    if kind == KIND_TRAILING_ORDER:
        return kind, trailing_level_nb(intended_side_nb(tg, held), lowest, highest, trail)
    return kind, lim if np.isnan(stp) else stp


@helper_nb
def replace_pending_nb(
    j, t, tg, lim, stp, trl, ref, held, pending, pending_bar, pending_limit, pending_stop,
    pending_trail, pending_low, pending_high, pending_ref, pending_session, orders_i, orders_f,
    n_orders,
):  # fmt: skip
    """Make ``tg`` symbol ``j``'s instruction from bar ``t`` (``ref``: the close it is given
    at); a resting order it replaces is logged as cancelled. Returns the order count (-1: the
    log is full)."""
    old_trl = pending_trail[j]
    if (
        not np.isnan(pending[j])
        and pending_bar[j] < t
        and not (np.isnan(pending_limit[j]) and np.isnan(pending_stop[j]) and np.isnan(old_trl))
    ):
        kind, price = resting_log_nb(
            pending[j], held, pending_limit[j], pending_stop[j], old_trl, pending_low[j],
            pending_high[j],
        )  # fmt: skip
        n_orders = log_unfilled_nb(
            orders_i, orders_f, n_orders, pending_bar[j], t, j, intended_side_nb(pending[j], held),
            np.int64(ORDER_CANCELLED), kind, price,  # int64: one compiled log_unfilled_nb
        )  # fmt: skip
    pending[j] = tg
    pending_bar[j] = t
    pending_limit[j] = lim
    pending_stop[j] = stp
    pending_trail[j] = trl
    pending_low[j] = ref  # a trailing order's watermarks start at the close it is given at
    pending_high[j] = ref
    pending_ref[j] = ref
    pending_session[j] = -1
    return n_orders


@helper_nb
def log_unfilled_nb(orders_i, orders_f, n_orders, created, t, j, side, status, kind, price):
    """Log an order that ends unfilled (cancelled or expired); -1 when the log is full."""
    if n_orders == orders_i.shape[0]:
        return -1
    o = n_orders
    orders_i[o, 0] = created
    orders_i[o, 1] = t
    orders_i[o, 2] = j
    orders_i[o, 3] = side
    orders_i[o, 4] = status
    orders_i[o, 5] = REASON_NONE
    orders_i[o, 6] = kind
    orders_f[o, 0] = 0.0
    orders_f[o, 1] = 0.0
    orders_f[o, 2] = price
    orders_f[o, 3] = 0.0
    return n_orders + 1


@helper_nb
def fillable_nb(t, pending, open_):
    """Does an instruction wait for a symbol that has a bar at ``t``?"""
    for j in range(pending.shape[0]):
        if not np.isnan(pending[j]) and np.isfinite(open_[t, j]):
            return True
    return False


@helper_nb
def count_waiting_nb(pending):
    """How many symbols have an instruction waiting (not NaN)."""
    n = 0
    for j in range(pending.shape[0]):
        if not np.isnan(pending[j]):
            n += 1
    return n


@helper_nb
def follow_trailing_nb(t, high, low, pending, pending_trail, pending_low, pending_high):
    """Move the watermarks of the resting trailing stop orders with bar ``t``."""
    for j in range(pending.shape[0]):
        if not np.isnan(pending_trail[j]) and not np.isnan(pending[j]):
            if np.isnan(pending_low[j]):  # given before the symbol's first close
                pending_low[j] = low[t, j]
                pending_high[j] = high[t, j]
            elif np.isfinite(high[t, j]):
                pending_low[j] = min(pending_low[j], low[t, j])
                pending_high[j] = max(pending_high[j], high[t, j])


@helper_nb
def has_instruction_nb(target, t):
    """Does bar ``t`` give an instruction (a target that is not NaN)?"""
    j = 0
    while j < target.shape[1] and np.isnan(target[t, j]):
        j += 1
    return j < target.shape[1]


@helper_nb
def next_instruction_nb(target, t):
    """The first bar from ``t`` on that gives an instruction (``n``: none). Over a slice, from
    0 (no index to check for a sign); one symbol's NaNs are skipped 16 at a time, in a loop
    without branches that the compiler vectorises."""
    rest = target[t:]
    rows, m = rest.shape
    start = 0
    if m == 1:
        while start + 16 <= rows:
            given = False
            for i in range(start, start + 16):
                given |= rest[i, 0] == rest[i, 0]  # not NaN
            if given:
                break
            start += 16
    for k in range(start, rows):
        for j in range(m):
            if not np.isnan(rest[k, j]):
                return t + k
    return target.shape[0]
