"""Indicators over 2-D arrays (n_bars, n_symbols), computed in numba.

Conventions shared by every indicator here:

- NaN marks a missing bar: it is skipped (a window counts the last ``window`` *present* bars of
  its column) and the output at that row is NaN too.
- Causal: row t depends on rows <= t only, so a signal built from them can act on bar t+1.
- ``sma`` is exact per window (its window's sum, rounded once): the same value wherever the
  series starts, which is what lets the live bridge's rolling window match the backtest.
- Warm-up rows, before a column has enough present bars, are NaN.
- 1-D inputs (one symbol) are accepted and give 1-D outputs.
- Definitions follow TA-Lib's defaults where TA-Lib has the indicator (EMA seeded with an SMA,
  Wilder's smoothing for RSI and ATR, population standard deviation for Bollinger bands); each
  docstring says where they differ.

The kernels are in :mod:`barlab.indicators_nb`; this module checks inputs, allocates outputs and
shares them across a sweep's combinations (:class:`SharedResults`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from numbers import Real
from typing import NamedTuple

import numpy as np

from barlab import indicators_nb as nb
from barlab.errors import StrategyError

# -- validation -------------------------------------------------------------------------------


def _window(fn: str, value: object, *, name: str = "window", minimum: int = 1, eg: int = 20) -> int:
    number = float(value) if isinstance(value, Real) and not isinstance(value, bool) else np.nan
    if not (np.isfinite(number) and number.is_integer() and number >= minimum):
        raise StrategyError(
            f"{fn} {name} must be a whole number >= {minimum}, e.g. {name}={eg}; got {value!r}"
        )
    return int(number)


def _array(fn: str, x: object, name: str = "x") -> np.ndarray:
    try:
        arr = np.ascontiguousarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise StrategyError(
            f"{fn} takes a float array for {name}, e.g. bars.close; got {type(x).__name__}"
        ) from e
    if arr.ndim not in (1, 2):
        raise StrategyError(
            f"{fn} takes {name} as (n_bars,) or (n_bars, n_symbols), e.g. bars.close; "
            f"got shape {arr.shape}"
        )
    return arr


def _arrays(fn: str, **named: object) -> list[np.ndarray]:
    arrays = [_array(fn, x, name) for name, x in named.items()]
    shapes = {name: a.shape for name, a in zip(named, arrays, strict=True)}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{k} {v}" for k, v in shapes.items())
        raise StrategyError(
            f"{fn} needs arrays of one shape, e.g. bars.high and bars.low; got {listed}"
        )
    return arrays


def _run(kernel, inputs: list[np.ndarray], *scalars: object, n_out: int = 1) -> list[np.ndarray]:
    """Call ``kernel(*inputs2d, *scalars, *outputs)``; outputs take the inputs' shape.

    Inside :func:`shared_results`, the outputs for the same inputs (the same array objects,
    e.g. ``bars.close``) and scalars are computed once and shared, read-only.
    """

    def compute() -> list[np.ndarray]:
        shape = inputs[0].shape
        two_d = [a if a.ndim == 2 else a[:, None] for a in inputs]
        outs = [np.empty(two_d[0].shape) for _ in range(n_out)]
        kernel(*two_d, *scalars, *outs)
        return [o.reshape(shape) for o in outs]

    cache = _SHARED.get()
    if cache is None:
        return compute()
    return cache.get((kernel, *map(id, inputs), *scalars), inputs, compute)


class SharedResults:
    """Indicator outputs computed once and shared by every combination of a sweep.

    Keyed by the kernel, the identity of its input arrays (kept alive by the entry, so an id
    is never reused while cached) and its scalar arguments; the least recently used entries
    go first once the outputs exceed ``max_bytes``. Thread-safe: two threads asking for the
    same missing entry may both compute it, and one result is kept.
    """

    def __init__(self, max_bytes: float) -> None:
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple, tuple[list[np.ndarray], list[np.ndarray]]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(
        self, key: tuple, inputs: list[np.ndarray], compute: Callable[[], list[np.ndarray]]
    ) -> list[np.ndarray]:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return found[1]
            self.misses += 1
        outs = compute()
        for o in outs:
            o.flags.writeable = False  # shared: a strategy must not change them in place
        size = sum(o.nbytes for o in outs)
        with self._lock:
            if key not in self._entries:
                self._entries[key] = (list(inputs), outs)
                self._bytes += size
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                _, (_, old) = self._entries.popitem(last=False)
                self._bytes -= sum(o.nbytes for o in old)
            return self._entries.get(key, (inputs, outs))[1]


_SHARED: ContextVar[SharedResults | None] = ContextVar("barlab_shared_results", default=None)


@contextmanager
def shared_results(cache: SharedResults) -> Iterator[SharedResults]:
    """Within the block (in this thread), indicators read and fill ``cache``."""
    token = _SHARED.set(cache)
    try:
        yield cache
    finally:
        _SHARED.reset(token)


# -- public -----------------------------------------------------------------------------------


class Bands(NamedTuple):
    """Bollinger bands: ``mid`` (the SMA), ``upper`` and ``lower`` (mid ± k std)."""

    mid: np.ndarray
    upper: np.ndarray
    lower: np.ndarray


class Macd(NamedTuple):
    """MACD line (fast EMA - slow EMA), its ``signal`` EMA, and ``hist`` = macd - signal."""

    macd: np.ndarray
    signal: np.ndarray
    hist: np.ndarray


class Channel(NamedTuple):
    """Donchian channel: rolling highest high (``upper``) and lowest low (``lower``)."""

    upper: np.ndarray
    lower: np.ndarray


_ROW_WISE_FROM = 9  # symbols; measured: column loops win below, row loops above


def sma(x: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average of the last ``window`` present values of each column.

    Parameters
    ----------
    x : float64 array (n_bars, n_symbols) or (n_bars,), e.g. ``bars.close``
    window : int
        Number of bars, >= 1, e.g. ``50``.

    Returns
    -------
    float64 array of x's shape; NaN until a column has ``window`` values, and where x is NaN.
    """
    w = _window("sma", window)
    arr = _array("sma", x)
    kernel = (
        nb.sma_rows_nb if arr.ndim == 2 and arr.shape[1] >= _ROW_WISE_FROM else nb.sma_columns_nb
    )
    return _run(kernel, [arr], w)[0]


def ema(x: np.ndarray, window: int) -> np.ndarray:
    """Exponential moving average, alpha = 2 / (window + 1), as TA-Lib's EMA.

    The first value, at a column's ``window``-th present bar, is the SMA of those bars; then
    ``ema[t] = ema[t-1] + alpha * (x[t] - ema[t-1])`` over present bars.

    Parameters
    ----------
    x : float64 array (n_bars, n_symbols) or (n_bars,), e.g. ``bars.close``
    window : int
        Bars, >= 1, e.g. ``20`` (alpha = 2/21).
    """
    w = _window("ema", window)
    return _run(nb.ema_nb, [_array("ema", x)], w, w)[0]


def wma(x: np.ndarray, window: int) -> np.ndarray:
    """Linearly weighted moving average, as TA-Lib's WMA: weights 1 (oldest) to ``window``
    (newest) over the last ``window`` present bars, divided by window * (window + 1) / 2.

    Parameters
    ----------
    x : float64 array (n_bars, n_symbols) or (n_bars,), e.g. ``bars.close``
    window : int
        Bars, >= 1, e.g. ``20``.
    """
    w = _window("wma", window)
    return _run(nb.wma_nb, [_array("wma", x)], w)[0]


def rsi(x: np.ndarray, window: int = 14) -> np.ndarray:
    """Relative strength index, 0 to 100, with Wilder's smoothing, as TA-Lib's RSI.

    Over the changes between consecutive present bars: the first average gain (loss) is the
    mean of the first ``window`` gains (losses), at the ``window + 1``-th present bar; then
    ``avg = (avg * (window - 1) + current) / window``. RSI = 100 * gain / (gain + loss); 0 when
    both averages are zero (a flat series), as TA-Lib gives.

    Parameters
    ----------
    x : float64 array (n_bars, n_symbols) or (n_bars,), e.g. ``bars.close``
    window : int
        Changes averaged, >= 1, e.g. ``14``.
    """
    w = _window("rsi", window, eg=14)
    return _run(nb.rsi_nb, [_array("rsi", x)], w)[0]


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int = 14) -> np.ndarray:
    """Average true range in price units, with Wilder's smoothing, as TA-Lib's ATR.

    True range = max(high - low, |high - previous close|, |low - previous close|), from a
    column's second present bar on (a bar is present when high, low and close all are). The
    first ATR, at the ``window + 1``-th present bar, is the mean of the first ``window`` true
    ranges; then ``atr = (atr * (window - 1) + tr) / window``.

    Parameters
    ----------
    high, low, close : float64 arrays of one shape, (n_bars, n_symbols) or (n_bars,)
    window : int
        True ranges averaged, >= 1, e.g. ``14``.
    """
    w = _window("atr", window, eg=14)
    arrays = _arrays("atr", high=high, low=low, close=close)
    return _run(nb.atr_nb, arrays, w)[0]


def rolling_std(x: np.ndarray, window: int, *, ddof: int = 0) -> np.ndarray:
    """Standard deviation of the last ``window`` present values.

    Parameters
    ----------
    x : float64 array (n_bars, n_symbols) or (n_bars,), e.g. ``bars.close``
    window : int
        Bars, >= 1 (>= 2 with ``ddof=1``), e.g. ``20``.
    ddof : int
        0 for the population standard deviation (TA-Lib's STDDEV, Bollinger bands), 1 for the
        sample one (pandas' default).
    """
    return _moments("rolling_std", x, window, ddof)[1]


def zscore(x: np.ndarray, window: int, *, ddof: int = 0) -> np.ndarray:
    """``(x - mean) / std`` over the last ``window`` present values, the current one included.

    NaN where the window's values are all equal (std 0). ``window`` and ``ddof`` as in
    :func:`rolling_std`.
    """
    arr = _array("zscore", x)
    mean, std = _moments("zscore", arr, window, ddof)
    _run(nb.zscore_nb, [arr, mean, std], n_out=0)
    return mean


def bollinger(x: np.ndarray, window: int = 20, *, k: float = 2.0) -> Bands:
    """Bollinger bands as TA-Lib's BBANDS with its defaults: the SMA of the last ``window``
    present values plus and minus ``k`` population standard deviations.

    Parameters
    ----------
    x : float64 array (n_bars, n_symbols) or (n_bars,), e.g. ``bars.close``
    window : int
        Bars, >= 1, e.g. ``20``.
    k : float
        Width in standard deviations, >= 0, e.g. ``2.0``.

    Returns
    -------
    Bands(mid, upper, lower), each of x's shape.
    """
    if not (isinstance(k, Real) and not isinstance(k, bool) and 0 <= k < np.inf):
        raise StrategyError(
            f"bollinger k must be a number of standard deviations >= 0, e.g. k=2.0; got {k!r}"
        )
    mid, std = _moments("bollinger", x, window, 0)
    upper = np.empty_like(mid)
    _run(nb.bands_nb, [mid, std, upper], float(k), n_out=0)
    return Bands(mid, upper, std)


def _moments(fn: str, x: np.ndarray, window: int, ddof: int) -> list[np.ndarray]:
    if ddof not in (0, 1) or isinstance(ddof, bool):
        raise StrategyError(f"{fn} ddof must be 0 (population) or 1 (sample), got {ddof!r}")
    w = _window(fn, window, minimum=1 + ddof)
    return _run(nb.moments_nb, [_array(fn, x)], w, int(ddof), n_out=2)


def macd(x: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9) -> Macd:
    """Moving average convergence/divergence, as TA-Lib's MACD.

    ``macd = ema(fast) - ema(slow)``, ``signal = ema(macd, signal)`` (seeded with the SMA of its
    first ``signal`` values), ``hist = macd - signal``. As in TA-Lib, the fast EMA starts where
    the slow one does, at a column's ``slow``-th present bar, from the SMA of the ``fast`` bars
    ending there (so it differs from ``ema(x, fast)`` during the warm-up). TA-Lib leaves the
    MACD line blank until the signal starts; here it starts at the slow EMA's first value.

    Parameters
    ----------
    x : float64 array (n_bars, n_symbols) or (n_bars,), e.g. ``bars.close``
    fast, slow, signal : int
        Bars, ``1 <= fast < slow``, ``signal >= 1``, e.g. 12, 26, 9.

    Returns
    -------
    Macd(macd, signal, hist), each of x's shape.
    """
    f = _window("macd", fast, name="fast", eg=12)
    s = _window("macd", slow, name="slow", eg=26)
    g = _window("macd", signal, name="signal", eg=9)
    if f >= s:
        raise StrategyError(
            f"macd fast ({f}) must be smaller than slow ({s}), e.g. fast=12, slow=26"
        )
    arr = _array("macd", x)
    line = _run(nb.ema_nb, [arr], f, s)[0] - _run(nb.ema_nb, [arr], s, s)[0]
    sig = _run(nb.ema_nb, [line], g, g)[0]
    return Macd(line, sig, line - sig)


def donchian(high: np.ndarray, low: np.ndarray, window: int = 20) -> Channel:
    """Donchian channel over the last ``window`` present bars, **the current bar included**.

    ``upper[t]`` is the highest high and ``lower[t]`` the lowest low of bars t-window+1 .. t, so
    ``close[t] > upper[t]`` can never happen: a breakout compares the close with the band of the
    bar before, ``close[t] > upper[t-1]``. Highs and lows skip their own NaNs.

    Parameters
    ----------
    high, low : float64 arrays of one shape, (n_bars, n_symbols) or (n_bars,)
    window : int
        Bars, >= 1, e.g. ``20``.

    Returns
    -------
    Channel(upper, lower), each of the inputs' shape.
    """
    w = _window("donchian", window)
    hi, lo = _arrays("donchian", high=high, low=low)
    return Channel(
        _run(nb.rolling_extreme_nb, [hi], w, 1.0)[0], _run(nb.rolling_extreme_nb, [lo], w, -1.0)[0]
    )


def vwap(price: np.ndarray, volume: np.ndarray, *, session_id: np.ndarray) -> np.ndarray:
    """Volume-weighted average price, cumulative within each session.

    ``sum(price * volume) / sum(volume)`` over the session's bars up to and including t; it
    starts afresh wherever ``session_id`` changes from one row to the next. NaN where the
    price or volume is missing, and while the session has traded no volume.

    Parameters
    ----------
    price : float64 array (n_bars, n_symbols) or (n_bars,)
        Usually the typical price ``(bars.high + bars.low + bars.close) / 3``, or ``bars.close``.
    volume : float64 array of price's shape, shares, e.g. ``bars.volume``
    session_id : int64 array (n_bars,)
        One id per session, e.g. the New York trading day from
        ``barlab.engine.backtest.session_ids(bars.ts_ns)``.
    """
    p, q = _arrays("vwap", price=price, volume=volume)
    sid = np.asarray(session_id)
    if sid.shape != p.shape[:1] or not np.issubdtype(sid.dtype, np.integer):
        raise StrategyError(
            f"vwap session_id must be an integer array of shape ({p.shape[0]},), one id per bar, "
            f"e.g. barlab.engine.backtest.session_ids(bars.ts_ns); got {sid.dtype} {sid.shape}"
        )
    return _run(nb.vwap_nb, [p, q], np.ascontiguousarray(sid, dtype=np.int64))[0]


def ffill(x: np.ndarray) -> np.ndarray:
    """Each column's last present value (NaN before its first one): carries indicators over
    missing bars, so a comparison with the previous row compares with the previous bar."""
    return _run(nb.ffill_nb, [_array("ffill", x)])[0]


def crossed_above(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """True at t where ``a[t-1] < b[t-1]`` and ``a[t] > b[t]`` (strict; NaN never crosses).

    Either side may be a number, e.g. ``crossed_above(rsi(close), 70.0)``.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    shape = np.broadcast_shapes(a.shape, b.shape)
    if a.shape == b.shape and a.ndim in (1, 2) and a.size == a.shape[0]:  # one column: numba
        out = np.empty(shape, dtype=np.bool_)
        nb.crossed_above_nb(
            np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(b).reshape(-1),
            out.reshape(-1),
        )  # fmt: skip
        return out
    a, b = np.broadcast_to(a, shape), np.broadcast_to(b, shape)
    out = np.zeros(shape, dtype=np.bool_)
    with np.errstate(invalid="ignore"):
        out[1:] = (a[:-1] < b[:-1]) & (a[1:] > b[1:])
    return out


def crossed_below(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """True at t where ``a[t-1] > b[t-1]`` and ``a[t] < b[t]``."""
    return crossed_above(b, a)
