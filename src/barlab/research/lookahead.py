"""The look-ahead check: do a strategy's signals change when later bars are added?

A causal strategy's row t uses rows <= t only, so its signals on the first k bars equal the
first k rows of its signals on all the bars. :func:`check_lookahead` recomputes the signals on
a planned set of prefixes, compares every Signals field bit for bit (NaN equals NaN; the pure
zone is deterministic) and, once a prefix differs, bisects to the earliest bar that differs.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from barlab.bars import Bars
from barlab.engine.backtest import session_ids
from barlab.errors import BarlabError, StrategyError, UsageError
from barlab.strategy import Signals, Strategy

ARRAYS = ("entries", "exits", "short_entries", "short_exits", "target", "limit_price", "stop_price")
"""The Signals arrays compared, in the order a tie on the same bar and symbol is reported."""
SCALARS = ("size_type", "time_in_force")
N_STRATA = 32
"""The full check tries one random cutoff in each of this many equal slices of the bars, and as
many random session boundaries; with the short prefixes and the session boundaries at doubling
distances, about 120 prefixes costing some 30 to 50 signal computations on all the bars."""
SHORT_SHARE = 64
"""Every check also tries the short prefixes 1, 2, 3, 4, 6, 8, ... up to n_bars / 64 bars:
nearly free, and they catch statistics of the whole sample (a full-sample max or mean)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LookaheadBar:
    """The earliest bar found whose signal changes when later bars are added.

    Attributes
    ----------
    bar : int
        Row of the bars, 0 = the first bar.
    ts_ns : int
        The bar's start time, nanoseconds since the epoch, UTC.
    symbol : str
        The column, e.g. ``"AAPL"``.
    field : str
        The Signals field, e.g. ``"target"`` or ``"entries"``.
    full_value, prefix_value : bool, float, str or None
        The field's value at that bar computed from all the bars and from the first
        ``prefix_bars`` bars (NaN = no instruction; None = the field was not given).
    prefix_bars : int
        The length of the prefix that exposed it (always > ``bar``).
    """

    bar: int
    ts_ns: int
    symbol: str
    field: str
    full_value: Any
    prefix_value: Any
    prefix_bars: int

    @property
    def time(self) -> str:
        """The bar's start time, ISO 8601 UTC, e.g. ``"2023-01-03T14:31:00Z"``."""
        seconds, ns = divmod(int(self.ts_ns), 10**9)
        stamp = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{stamp}{f'.{ns:09d}' if ns else ''}Z"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes null)."""
        return {
            "bar": self.bar, "time": self.time, "ts_ns": self.ts_ns, "symbol": self.symbol,
            "field": self.field, "full_value": _json_value(self.full_value),
            "prefix_value": _json_value(self.prefix_value), "prefix_bars": self.prefix_bars,
        }  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class LookaheadReport:
    """What :func:`check_lookahead` found.

    Attributes
    ----------
    strategy : str
        The strategy's label and parameters, e.g. ``"sma_crossover(fast=10, slow=50)"``.
    n_bars : int
        Bars in the full data.
    data_version : str
        The bars' content hash (``Bars.version``; empty for bars made in memory).
    n_checked : int
        Prefixes whose signals were recomputed and compared (cutoffs tried, bisection included).
    mode : str
        ``"full"``, ``"sampled"`` or ``"cutoffs"`` (the caller chose them).
    seed : int
        Seed of the random cutoffs.
    first : LookaheadBar or None
        The earliest offending bar found; None when clean.
    elapsed_s : float
        Wall time of the check, seconds.
    """

    strategy: str
    n_bars: int
    data_version: str
    n_checked: int
    mode: str
    seed: int
    first: LookaheadBar | None
    elapsed_s: float

    @property
    def clean(self) -> bool:
        """True when no prefix changed any signal."""
        return self.first is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``--json``, run.json and the promotion record."""
        return {
            "clean": self.clean, "strategy": self.strategy, "n_bars": self.n_bars,
            "data_version": self.data_version, "n_checked": self.n_checked, "mode": self.mode,
            "seed": self.seed, "elapsed_s": round(self.elapsed_s, 4),
            "first": None if self.first is None else self.first.to_dict(),
        }  # fmt: skip

    def __str__(self) -> str:
        done = f"{self.n_checked} prefixes, {self.mode} check, {self.elapsed_s:.2f} s"
        if self.first is None:
            return (
                f"no look-ahead found in {self.n_checked} prefixes of {self.n_bars:,} bars "
                f"({self.strategy}, {self.mode} check, {self.elapsed_s:.2f} s)"
            )
        f = self.first
        return (
            f"look-ahead in {self.strategy}: bar {f.bar:,} ({f.time}) {f.symbol} {f.field} is "
            f"{_show(f.full_value)} with all {self.n_bars:,} bars but {_show(f.prefix_value)} "
            f"with the first {f.prefix_bars:,}: that signal uses later bars ({done})"
        )


def check_lookahead(
    strategy: Strategy,
    bars: Bars,
    *,
    cutoffs: Any = None,
    n_samples: int | None = None,
    seed: int = 0,
) -> LookaheadReport:
    """Recompute ``strategy``'s signals on prefixes of ``bars`` and report the earliest bar
    whose signal changes when later bars are added.

    Parameters
    ----------
    strategy : Strategy
        e.g. ``SmaCrossover(fast=10, slow=50)``.
    bars : Bars
        The data to check on, e.g. a year of minute bars (98,280 rows per symbol).
    cutoffs : iterable of int, optional
        Prefix lengths to try, in bars (1 to n_bars - 1). Default: planned (see below).
    n_samples : int, optional
        The cheap sampled check: this many random cutoffs (half of them session boundaries)
        besides the short prefixes, about ``n_samples / 2 + 1`` signal computations on all the
        bars; e.g. 4, as every ``backtest run`` does. None: the full check, short prefixes,
        session boundaries and one random cutoff in each of 32 slices (about 120 prefixes, some 30
        to 50 computations on all the bars: 0.2 to 0.6 s on a year of 1-minute bars of 4
        symbols for the example strategies).
    seed : int
        Seed of the random cutoffs; the same seed tries the same prefixes.

    Once a prefix differs, the cutoffs between it and the nearest clean one below are bisected,
    so the bar reported is exact for leaks whose reach does not shrink as bars are added
    (shifted series, centred windows, full-sample statistics); otherwise it is the earliest
    among the prefixes tried.
    """
    started = time.perf_counter()
    if not isinstance(strategy, Strategy):
        raise StrategyError(
            f"check_lookahead() takes a Strategy instance, got {type(strategy).__name__}; "
            "e.g. SmaCrossover(fast=10, slow=50)"
        )
    plan = plan_cutoffs(bars, cutoffs=cutoffs, n_samples=n_samples, seed=seed)
    prefixes = _Prefixes(strategy, bars)
    for k in plan:
        prefixes.compare(int(k))
    prefixes.bisect()
    return LookaheadReport(
        strategy=repr(strategy).replace(type(strategy).__name__, strategy.label(), 1),
        n_bars=bars.n_bars,
        data_version=bars.version,
        n_checked=len(prefixes.found),
        mode="cutoffs" if cutoffs is not None else "sampled" if n_samples else "full",
        seed=seed,
        first=prefixes.earliest_bar(),
        elapsed_s=time.perf_counter() - started,
    )


def plan_cutoffs(
    bars: Bars, *, cutoffs: Any = None, n_samples: int | None = None, seed: int = 0
) -> np.ndarray:
    """The prefix lengths :func:`check_lookahead` tries first (sorted, unique, int64)."""
    n = bars.n_bars
    if cutoffs is not None and n_samples is not None:
        raise UsageError("check_lookahead: give cutoffs or n_samples, not both")
    if cutoffs is not None:
        ks = np.unique(np.asarray(list(cutoffs), dtype=np.int64))
        bad = ks[(ks < 1) | (ks >= n)]
        if len(bad):
            raise UsageError(
                f"cutoffs are prefix lengths in bars, from 1 to {n - 1} for these {n:,} bars; "
                f"got {bad[0]}"
            )
        return ks
    if n_samples is not None and (isinstance(n_samples, bool) or n_samples < 1):
        raise UsageError(f"n_samples must be a positive number of cutoffs, e.g. 4; got {n_samples}")
    if n < 2:
        return np.empty(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    sid = session_ids(bars.ts_ns)
    starts = np.flatnonzero(sid[1:] != sid[:-1]) + 1  # the first rows of sessions 2, 3, ...
    picks = [_doubling(max(1, n // SHORT_SHARE))]
    if n_samples is not None:
        for i in range(n_samples):
            use_session = i % 2 == 0 and len(starts)
            picks.append([rng.choice(starts) if use_session else rng.integers(1, n)])
    else:
        picks += [_doubling(n - 1), [n - 1], starts[_doubling(len(starts)) - 1]]
        picks.append(rng.choice(starts, size=min(N_STRATA, len(starts)), replace=False))
        edges = np.unique(np.linspace(1, n, N_STRATA + 1).astype(np.int64))
        picks.append(rng.integers(edges[:-1], edges[1:]))  # one in each slice
    return np.unique(np.concatenate([np.asarray(p, dtype=np.int64) for p in picks]))


def _doubling(limit: int) -> np.ndarray:
    """1, 2, 3, 4, 6, 8, 11, 16, ... up to ``limit``: about two per doubling (empty if < 1)."""
    if limit < 1:
        return np.empty(0, dtype=np.int64)
    count = 2 * int(math.log2(limit)) + 2
    return np.unique(np.geomspace(1, limit, count).round().astype(np.int64))


class _Prefixes:
    """The full signals, and every prefix compared with them: ``found[k]`` is the first
    difference on the first k bars (row, column, field, the prefix's value there), or None."""

    def __init__(self, strategy: Strategy, bars: Bars) -> None:
        self.strategy = strategy
        self.bars = bars
        self.full = _signals(strategy, bars)
        self.found: dict[int, tuple[int, int, str, Any] | None] = {}

    def compare(self, k: int) -> tuple[int, int, str, Any] | None:
        if k not in self.found:
            part = _signals(self.strategy, self.bars.slice(0, k), n_full=self.bars.n_bars)
            diff = first_difference(self.full, part, k)
            self.found[k] = None if diff is None else (*diff, _value(part, *diff))
        return self.found[k]

    def earliest(self) -> tuple[int, tuple[int, int, str, Any]] | None:
        """The prefix exposing the earliest bar (the shortest such prefix on a tie)."""
        hits = [(d[0], k) for k, d in self.found.items() if d is not None]
        if not hits:
            return None
        _, k = min(hits)
        return k, self.found[k]  # type: ignore[return-value]

    def bisect(self) -> None:
        """Between the earliest hit and the nearest clean prefix below it, find the shortest
        prefix that differs (log2 of the gap more computations)."""
        hit = self.earliest()
        if hit is None:
            return
        hi = hit[0]
        lo = max((k for k, d in self.found.items() if d is None and k < hi), default=0)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.compare(mid) is None:
                lo = mid
            else:
                hi = mid

    def earliest_bar(self) -> LookaheadBar | None:
        hit = self.earliest()
        if hit is None:
            return None
        k, (row, col, name, prefix_value) = hit
        return LookaheadBar(
            bar=row, ts_ns=int(self.bars.ts_ns[row]), symbol=self.bars.symbols[col], field=name,
            full_value=_value(self.full, row, col, name), prefix_value=prefix_value,
            prefix_bars=k,
        )  # fmt: skip


def first_difference(full: Signals, part: Signals, k: int) -> tuple[int, int, str] | None:
    """The first (row, column, field) where ``part`` (signals on k bars) differs from the first
    k rows of ``full``; None when they agree bit for bit (NaN equals NaN)."""
    best: tuple[int, int, str] | None = None
    for name in SCALARS:
        if getattr(full, name) != getattr(part, name):
            return 0, 0, name
    for name in ARRAYS:
        a, b = getattr(full, name), getattr(part, name)
        if a is None and b is None:
            continue
        if a is None or b is None:
            found = (0, 0, name)
        else:
            differ = _differ(a[:k], b)
            rows = np.flatnonzero(differ.any(axis=1))
            if not len(rows):
                continue
            found = (int(rows[0]), int(np.flatnonzero(differ[rows[0]])[0]), name)
        if best is None or found[:2] < best[:2]:
            best = found
    return best


def _differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    differ = a != b
    if np.issubdtype(a.dtype, np.floating) and np.issubdtype(b.dtype, np.floating):
        differ &= ~(np.isnan(a) & np.isnan(b))
    return differ


def _signals(strategy: Strategy, bars: Bars, *, n_full: int | None = None) -> Signals:
    """``strategy.signals(bars)``, checked; errors name the prefix length that caused them."""
    where = f"the first {bars.n_bars:,} of {n_full:,} bars" if n_full else "all the bars"
    label = strategy.label()
    try:
        signals = strategy.signals(bars)
        if not isinstance(signals, Signals):
            raise StrategyError(f"signals() must return Signals, got {type(signals).__name__}")
        signals.check(bars.close.shape)
    except Exception as e:
        why = str(e) if isinstance(e, BarlabError) else f"{type(e).__name__}: {e}"
        raise StrategyError(
            f"look-ahead check: {label}.signals failed on {where} ({why}); a strategy must "
            "accept any number of bars (the live bridge runs it on a rolling window)"
        ) from e
    return signals


def _value(signals: Signals, row: int, col: int, name: str) -> Any:
    """The field's value at (row, col) as a Python scalar; None when the field is absent."""
    value = getattr(signals, name)
    return value if value is None or isinstance(value, str) else value[row, col].item()


def _show(value: Any) -> str:
    if value is None:
        return "absent"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return repr(value) if isinstance(value, str) else str(value)


def _json_value(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value
