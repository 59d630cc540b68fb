"""The numba kernels of :mod:`barlab.indicators` (see its conventions): they walk rows in the
outer loop and symbols in the inner one, the order the C-contiguous arrays are laid out in;
only ``sma`` also has a column-wise kernel, which is faster for a handful of symbols. Each
writes into ``out`` arrays its caller allocated, and releases the GIL."""

from __future__ import annotations

import numpy as np
from numba import njit

# the rolling standard deviation recomputes its sums exactly when an update leaves less than this
# fraction of them (the rest was lost to cancellation)
_CANCELLED = 1e-6


@njit(cache=True, nogil=True)
def _two_sum(a, b):
    # a + b = s + e exactly (Knuth's TwoSum): s the rounded sum, e what rounding dropped
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(cache=True, nogil=True)
def _add_exact(hi, lo, v):
    # the running sum hi + lo plus v, nothing rounded away: hi takes the rounded sum, lo
    # collects the errors (exactly, for values of like magnitude, e.g. prices)
    hi, e = _two_sum(hi, v)
    return hi, lo + e


# The moving sums are error-free (hi + lo, see _add_exact): the average of a window is then its
# exact sum rounded once and divided, whatever came before the window. A plain running sum
# carries rounding from every value that ever entered it, so a window's average would depend
# on where the series starts: the live bridge's rolling window and the backtest could differ
# in the last bit, and a cross where the two averages tie would go either way.


@njit(cache=True, nogil=True)
def sma_columns_nb(x, window, out):
    # one column at a time, state in registers: fastest for a few symbols
    n, m = x.shape
    buf = np.empty(window)
    for j in range(m):
        hi = lo = 0.0
        seen = 0
        slot = 0
        for t in range(n):
            v = x[t, j]
            if np.isnan(v):
                out[t, j] = np.nan
                continue
            if seen >= window:
                hi, lo = _add_exact(hi, lo, -buf[slot])
            buf[slot] = v
            hi, lo = _add_exact(hi, lo, v)
            seen += 1
            slot = slot + 1 if slot + 1 < window else 0
            out[t, j] = (hi + lo) / window if seen >= window else np.nan


@njit(cache=True, nogil=True)
def sma_rows_nb(x, window, out):
    # row by row (the arrays are C-contiguous), one ring buffer per column: for many symbols
    n, m = x.shape
    buf = np.empty((window, m))
    his = np.zeros(m)
    los = np.zeros(m)
    seen = np.zeros(m, dtype=np.int64)
    slots = np.zeros(m, dtype=np.int64)
    for t in range(n):
        for j in range(m):
            v = x[t, j]
            if np.isnan(v):
                out[t, j] = np.nan
                continue
            slot = slots[j]
            hi, lo = his[j], los[j]
            if seen[j] >= window:
                hi, lo = _add_exact(hi, lo, -buf[slot, j])
            buf[slot, j] = v
            his[j], los[j] = _add_exact(hi, lo, v)
            seen[j] += 1
            slots[j] = slot + 1 if slot + 1 < window else 0
            out[t, j] = (his[j] + los[j]) / window if seen[j] >= window else np.nan


@njit(cache=True, nogil=True)
def ema_nb(x, window, seed_at, out):
    """EMA with alpha 2/(window+1), first output at a column's ``seed_at``-th present value:
    the mean of the ``window`` values ending there (TA-Lib's seed)."""
    n, m = x.shape
    alpha = 2.0 / (window + 1.0)
    skip = seed_at - window  # present values before the seed's window
    state = np.zeros(m)
    seen = np.zeros(m, dtype=np.int64)
    for t in range(n):
        for j in range(m):
            v = x[t, j]
            if np.isnan(v):
                out[t, j] = np.nan
                continue
            k = seen[j] + 1
            seen[j] = k
            if k < seed_at:
                if k > skip:
                    state[j] += v
                out[t, j] = np.nan
                continue
            if k == seed_at:
                state[j] = (state[j] + v) / window
            else:
                state[j] = (v - state[j]) * alpha + state[j]
            out[t, j] = state[j]


@njit(cache=True, nogil=True)
def wma_nb(x, window, out):
    n, m = x.shape
    divisor = window * (window + 1) / 2.0
    buf = np.empty((window, m))
    total = np.zeros(m)  # plain sum of the window
    weighted = np.zeros(m)  # sum of weight * value, the newest value weighing ``window``
    seen = np.zeros(m, dtype=np.int64)
    slots = np.zeros(m, dtype=np.int64)
    for t in range(n):
        for j in range(m):
            v = x[t, j]
            if np.isnan(v):
                out[t, j] = np.nan
                continue
            k = seen[j]
            slot = slots[j]
            if k >= window:
                # sliding by one lowers every weight by one: the oldest value drops to 0
                weighted[j] += window * v - total[j]
                total[j] += v - buf[slot, j]
            else:
                weighted[j] += (k + 1) * v
                total[j] += v
            buf[slot, j] = v
            seen[j] = k + 1
            slots[j] = slot + 1 if slot + 1 < window else 0
            out[t, j] = weighted[j] / divisor if k + 1 >= window else np.nan


@njit(cache=True, nogil=True)
def rsi_nb(x, window, out):
    n, m = x.shape
    prev = np.full(m, np.nan)
    gain = np.zeros(m)
    loss = np.zeros(m)
    changes = np.zeros(m, dtype=np.int64)
    for t in range(n):
        for j in range(m):
            v = x[t, j]
            if np.isnan(v):
                out[t, j] = np.nan
                continue
            p = prev[j]
            prev[j] = v
            if np.isnan(p):
                out[t, j] = np.nan
                continue
            up = v - p if v > p else 0.0
            down = p - v if v < p else 0.0
            k = changes[j] + 1
            changes[j] = k
            if k < window:
                gain[j] += up
                loss[j] += down
                out[t, j] = np.nan
                continue
            if k == window:
                g = (gain[j] + up) / window
                lo = (loss[j] + down) / window
            else:
                g = (gain[j] * (window - 1) + up) / window
                lo = (loss[j] * (window - 1) + down) / window
            gain[j] = g
            loss[j] = lo
            total = g + lo
            out[t, j] = 100.0 * g / total if total > 0.0 else 0.0


@njit(cache=True, nogil=True)
def atr_nb(high, low, close, window, out):
    n, m = close.shape
    prev_close = np.full(m, np.nan)
    state = np.zeros(m)
    seen = np.zeros(m, dtype=np.int64)
    for t in range(n):
        for j in range(m):
            h = high[t, j]
            lo = low[t, j]
            c = close[t, j]
            if np.isnan(h) or np.isnan(lo) or np.isnan(c):
                out[t, j] = np.nan
                continue
            pc = prev_close[j]
            prev_close[j] = c
            if np.isnan(pc):
                out[t, j] = np.nan
                continue
            tr = max(h - lo, abs(h - pc), abs(lo - pc))
            k = seen[j] + 1
            seen[j] = k
            if k < window:
                state[j] += tr
                out[t, j] = np.nan
                continue
            if k == window:
                state[j] = (state[j] + tr) / window
            else:
                state[j] = (state[j] * (window - 1) + tr) / window
            out[t, j] = state[j]


@njit(cache=True, nogil=True)
def exact_moments_nb(buf, j, window):
    """Mean and sum of squared deviations of ``buf[:, j]``, two passes."""
    total = 0.0
    for i in range(window):
        total += buf[i, j]
    mean = total / window
    m2 = 0.0
    for i in range(window):
        d = buf[i, j] - mean
        m2 += d * d
    return mean, m2


@njit(cache=True, nogil=True)
def moments_nb(x, window, ddof, mean_out, std_out):
    """Rolling mean and standard deviation (divisor ``window - ddof``).

    Welford's update, replaced by an exact two-pass sum every ``window`` values and whenever an
    update cancels most of the sum (a large value leaving the window), so rounding never piles
    up; a window of identical values has exactly zero deviation.
    """
    n, m = x.shape
    buf = np.empty((window, m))
    mean = np.zeros(m)
    m2 = np.zeros(m)
    seen = np.zeros(m, dtype=np.int64)
    slots = np.zeros(m, dtype=np.int64)
    same = np.zeros(m, dtype=np.int64)  # length of the run of identical values ending here
    for t in range(n):
        for j in range(m):
            v = x[t, j]
            if np.isnan(v):
                mean_out[t, j] = np.nan
                std_out[t, j] = np.nan
                continue
            k = seen[j]
            slot = slots[j]
            last = slot - 1 if slot > 0 else window - 1
            same[j] = same[j] + 1 if k > 0 and buf[last, j] == v else 1
            if k < window:
                d = v - mean[j]
                mean[j] += d / (k + 1)
                m2[j] += d * (v - mean[j])
            else:
                old = buf[slot, j]
                d = v - old
                new_mean = mean[j] + d / window
                before = m2[j]
                m2[j] += d * (v - new_mean + old - mean[j])
                mean[j] = new_mean
                if m2[j] < _CANCELLED * before:
                    buf[slot, j] = v
                    mean[j], m2[j] = exact_moments_nb(buf, j, window)
            buf[slot, j] = v
            seen[j] = k + 1
            slot = slot + 1 if slot + 1 < window else 0
            slots[j] = slot
            if k + 1 < window:
                mean_out[t, j] = np.nan
                std_out[t, j] = np.nan
                continue
            if slot == 0:
                mean[j], m2[j] = exact_moments_nb(buf, j, window)
            if same[j] >= window:
                mean_out[t, j] = v
                std_out[t, j] = 0.0
            else:
                mean_out[t, j] = mean[j]
                std_out[t, j] = np.sqrt(max(m2[j], 0.0) / (window - ddof))


@njit(cache=True, nogil=True)
def zscore_nb(x, mean, std):
    """``(x - mean) / std`` into ``mean``; NaN where ``std`` is 0 or NaN."""
    n, m = x.shape
    for t in range(n):
        for j in range(m):
            s = std[t, j]
            mean[t, j] = (x[t, j] - mean[t, j]) / s if s > 0.0 else np.nan


@njit(cache=True, nogil=True)
def bands_nb(mid, std, upper, k):
    """``mid + k std`` into ``upper`` and ``mid - k std`` into ``std``."""
    n, m = mid.shape
    for t in range(n):
        for j in range(m):
            width = k * std[t, j]
            upper[t, j] = mid[t, j] + width
            std[t, j] = mid[t, j] - width


@njit(cache=True, nogil=True)
def rolling_extreme_nb(x, window, sign, out):
    """Rolling max (``sign`` 1.0) or min (-1.0) of the last ``window`` present values.

    van Herk / Gil-Werman: a column's present values form blocks of ``window``. A window ending
    inside a block spans the tail of the previous block and the head of this one, so its extreme
    is the larger of the previous block's suffix extreme (computed once, when that block filled)
    and this block's running extreme: O(1) per value with no data-dependent loop.
    """
    n, m = x.shape
    # slot p: this block's p-th value once seen, before that the previous block's extreme
    # from p to its end
    buf = np.empty((window, m))
    head = np.empty(m)  # extreme of this block so far
    pos = np.zeros(m, dtype=np.int64)  # where the next value goes in its block
    full = np.zeros(m, dtype=np.bool_)  # a whole block has been seen
    for t in range(n):
        for j in range(m):
            v = x[t, j]
            if np.isnan(v):
                out[t, j] = np.nan
                continue
            v = sign * v
            p = pos[j]
            head[j] = v if p == 0 else max(head[j], v)
            if p == window - 1:  # the block is the window
                out[t, j] = sign * head[j]
                buf[p, j] = v
                for q in range(window - 2, -1, -1):
                    buf[q, j] = max(buf[q, j], buf[q + 1, j])
                pos[j] = 0
                full[j] = True
            else:
                out[t, j] = sign * max(buf[p + 1, j], head[j]) if full[j] else np.nan
                buf[p, j] = v
                pos[j] = p + 1


@njit(cache=True, nogil=True)
def vwap_nb(price, volume, session, out):
    n, m = price.shape
    dollars = np.zeros(m)
    shares = np.zeros(m)
    for t in range(n):
        if t > 0 and session[t] != session[t - 1]:
            dollars[:] = 0.0
            shares[:] = 0.0
        for j in range(m):
            p = price[t, j]
            q = volume[t, j]
            if np.isnan(p) or np.isnan(q):
                out[t, j] = np.nan
                continue
            dollars[j] += p * q
            shares[j] += q
            out[t, j] = dollars[j] / shares[j] if shares[j] > 0.0 else np.nan


@njit(cache=True, nogil=True)
def ffill_nb(x, out):
    n, m = x.shape
    last = np.full(m, np.nan)
    for t in range(n):
        for j in range(m):
            v = x[t, j]
            if not np.isnan(v):
                last[j] = v
            out[t, j] = last[j]


@njit(cache=True, nogil=True)
def crossed_above_nb(a, b, out):
    # one column (1-D): a loop the compiler vectorises, a third of numpy's time
    if out.size:
        out[0] = False
    for t in range(1, out.size):
        out[t] = (a[t - 1] < b[t - 1]) & (a[t] > b[t])
