"""Exact order statistics by selection, as numba kernels: ``np.percentile`` (linear
interpolation) without sorting. Quickselect whose partitions do not branch on the data, and
for long series a strided sample that brackets the wanted ranks, so one pass counts the values
below the bracket and gathers those in it, and selection finishes in a few percent of the
data. :mod:`barlab.metrics_nb` uses them for the tail percentiles of every run."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_NB = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_NB)
def select_nb(a, k):
    """Reorder ``a`` in place so ``a[k]`` is its k-th smallest value; everything before is <=
    and everything after >= it. Quickselect whose partitions have no branch on the data (a
    coin flip to the branch predictor on returns: five times faster): one pass puts what is
    below the pivot first, a second one what equals it next, so runs of equal values (the zero
    returns of flat periods) cost one pass, not a quadratic walk."""
    lo, hi = 0, a.size
    while hi - lo > 16:
        mid = (lo + hi) // 2
        x, y, z = a[lo], a[mid], a[hi - 1]
        pivot = max(min(x, y), min(max(x, y), z))  # the median of three
        below = _partition_nb(a[lo:hi], pivot, False)
        if k < lo + below:
            hi = lo + below
            continue
        equal = _partition_nb(a[lo + below : hi], pivot, True)  # >= 1: the pivot is there
        if k < lo + below + equal:
            return
        lo += below + equal
    for i in range(lo, k + 1):  # a few values left: selection sort up to k
        least = i
        for j in range(i + 1, hi):
            if a[j] < a[least]:
                least = j
        a[i], a[least] = a[least], a[i]


@njit(**_NB)
def _partition_nb(a, pivot, equal):
    """Move the values below ``pivot`` (or, with ``equal``, at most ``pivot``) to the front
    of ``a``, in one pass without branches on them; returns how many there are."""
    front = 0
    for i in range(a.size):
        x = a[i]
        a[i] = a[front]
        a[front] = x
        front += (x <= pivot) if equal else (x < pivot)
    return front


@njit(**_NB)
def least_nb(a):
    """The smallest value of a non-empty NaN-free array (``a.min()``, which compiles slower)."""
    least = a[0]
    for i in range(1, a.size):
        least = a[i] if a[i] < least else least
    return least


SAMPLE = 4096  # values in the sample that brackets a rank


@njit(**_NB)
def sorted_sample_nb(v):
    """A sorted strided sample of ``v`` (empty when ``v`` is too small to need one)."""
    n = v.size
    return np.sort(v[:: n // SAMPLE]) if n > 4 * SAMPLE else np.empty(0)


@njit(**_NB)
def order_stats_nb(v, lo, sample, window):
    """``(a[lo], a[lo + 1])`` of ``a = sorted(v)`` (the second is NaN past the end).

    The sorted ``sample`` brackets rank ``lo`` between two values; one branch-free pass counts
    what lies below the bracket and gathers what lies in it (a few percent of ``v``) into
    ``window`` (scratch, ``v.size`` long), and quickselect finishes there. Without a sample,
    or when it misses (rare), quickselect runs over a copy of everything.
    """
    n = v.size
    size = sample.size
    if size:
        at = lo * size // n
        margin = 4 * int(math.sqrt(size))
        low = sample[max(0, at - margin)]
        high = sample[min(size - 1, at + margin)]
        below = 0
        k = 0
        for x in v:
            below += x < low
            window[k] = x
            k += (x >= low) & (x <= high)
        if below <= lo and lo + 1 < below + k:
            w = window[:k]
            select_nb(w, lo - below)
            return w[lo - below], least_nb(w[lo - below + 1 :])
    a = v.copy()
    select_nb(a, lo)
    if lo + 1 >= n:
        return a[lo], np.nan
    return a[lo], least_nb(a[lo + 1 :])


@njit(**_NB)
def _percentile(v, q, sample, window):
    if v.size == 0:
        return np.nan
    pos = q / 100.0 * (v.size - 1)
    below, above = order_stats_nb(v, math.floor(pos), sample, window)
    return lerp_nb(below, above, pos)


@njit(**_NB)
def percentile_nb(v, q):
    """``np.percentile(v, q)`` (linear interpolation) of NaN-free ``v``, by selection."""
    return _percentile(v, q, sorted_sample_nb(v), np.empty(v.size))


@njit(**_NB)
def sample_brackets_nb(v, lo_a, lo_b):
    """Values ``(low_a, high_a, low_b, high_b)`` that likely bracket ranks ``lo_a <= lo_b`` of
    ``sorted(v)``: order statistics of a strided sample, four standard errors of a rank either
    side (checked afterwards; a miss only costs time)."""
    n = v.size
    sample = v[:: n // SAMPLE].copy()
    size = sample.size
    ranks = np.empty(4, dtype=np.int64)
    for i in range(2):
        at = (lo_a if i == 0 else lo_b) * size // n
        q = at / size
        margin = int(4.0 * math.sqrt(size * q * (1.0 - q))) + 8
        ranks[2 * i] = max(0, at - margin)
        ranks[2 * i + 1] = min(size - 1, at + margin)
    order = np.arange(4)  # by rank: an insertion sort of four (np.argsort compiles a second)
    for i in range(1, 4):
        k = i
        while k > 0 and ranks[order[k - 1]] > ranks[order[k]]:
            order[k - 1], order[k] = order[k], order[k - 1]
            k -= 1
    values = np.empty(4)
    start = 0
    for i in order:  # ascending ranks: each selection narrows the next one's range
        select_nb(sample[start:], ranks[i] - start)
        start = ranks[i]
        values[i] = sample[start]
    return values[0], values[1], values[2], values[3]


@njit(**_NB)
def pair_in_window_nb(v, lo, below, window, k):
    """``(a[lo], a[lo + 1])`` of ``a = sorted(v)`` from the ``k`` values gathered in ``window``,
    ``below`` of ``v`` lying under them; by quickselect over all of ``v`` if the window
    misses rank ``lo`` or ``lo + 1``. The second is NaN past the end."""
    if not (below <= lo and lo + 1 < below + k):
        return order_stats_nb(v, lo, np.empty(0), window)
    w = window[:k]
    at = lo - below
    select_nb(w, at)
    return w[at], least_nb(w[at + 1 :])


@njit(**_NB)
def lerp_nb(below, above, pos):
    """np.percentile's linear interpolation between ranks floor(pos) and floor(pos) + 1."""
    t = pos - math.floor(pos)
    if t == 0.0 or math.isnan(above):
        return below
    diff = above - below
    return above - diff * (1.0 - t) if t >= 0.5 else below + diff * t
