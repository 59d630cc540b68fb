"""The demo market: SYNTHETIC minute bars. These prices are made up; they are not market data.

It simulates the S&P 100 tickers plus SPY and QQQ on the real NYSE calendar (holidays, early
closes), regular hours only (09:30-16:00 New York), so that barlab runs end to end without an
API key. Bars from it carry ``source="demo"`` and are labelled synthetic wherever shown.

How the bars are made (:data:`VERSION` 1):

- Per symbol, from a SHA-256 of the ticker: a price on 2000-01-03 ($10-$150), a trend growth
  (0-12 % a year), a per-minute volatility (0.07-0.14 %; 60 % of that for SPY and QQQ), a
  volume level and an average trade size.
- A daily path over every weekday from 2000-01-03 (holidays included, so a calendar update
  never moves other days): an overnight gap, then an open-to-close return of the day's
  volatility (per-minute x sqrt(390)), pulled gently towards the trend so that 26 years stay
  within realistic price levels.
- Per session, seeded by (symbol, date): the minute closes are a Brownian bridge from the day's
  open to its close (geometric Brownian motion's per-minute volatility); each minute opens at
  the previous close; highs and lows reach a little beyond open and close; volume is U-shaped
  (about 5x higher at the open and close than at midday), noisy and higher on big moves.
  Prices are whole cents, volumes whole shares.
- Random numbers are SplitMix64 counters keyed by (symbol, date, draw), turned into normals by
  summing twelve 16-bit uniforms, and the arithmetic uses + - * / and rounding only (no exp or
  log, whose last bit differs between CPUs): the bars of a (symbol, day) are the same whatever
  range is asked for, and bit-identical on every machine.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import hashlib
import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from barlab.bars import TIMEFRAMES, Bars
from barlab.data import calendar
from barlab.data.calendar import Sessions
from barlab.data.schema import SCHEMA, resample
from barlab.errors import DataError, DataRequestError

VERSION = "1"
"""Changes whenever the same request would give other bars; cached demo bars of another
version are re-generated."""

EPOCH = dt.date(2000, 1, 3)  # a Monday: weekday number 0 of the daily path

SYMBOLS: tuple[str, ...] = (
    "AAPL", "ABBV", "ABT", "ACN", "ADBE", "AIG", "AMD", "AMGN", "AMT", "AMZN", "AVGO", "AXP",
    "BA", "BAC", "BK", "BKNG", "BLK", "BMY", "BRK.B", "C", "CAT", "CHTR", "CL", "CMCSA", "COF",
    "COP", "COST", "CRM", "CSCO", "CVS", "CVX", "DE", "DHR", "DIS", "DUK", "EMR", "F", "FDX",
    "GD", "GE", "GILD", "GM", "GOOG", "GOOGL", "GS", "HD", "HON", "IBM", "INTC", "INTU", "ISRG",
    "JNJ", "JPM", "KO", "LIN", "LLY", "LMT", "LOW", "MA", "MCD", "MDLZ", "MDT", "MET", "META",
    "MMM", "MO", "MRK", "MS", "MSFT", "NEE", "NFLX", "NKE", "NOW", "NVDA", "ORCL", "PEP", "PFE",
    "PG", "PLTR", "PM", "PYPL", "QCOM", "RTX", "SBUX", "SCHW", "SO", "SPG", "T", "TGT", "TMO",
    "TMUS", "TSLA", "TXN", "UBER", "UNH", "UNP", "UPS", "USB", "V", "VZ", "WFC", "WMT", "XOM",
    "SPY", "QQQ",
)  # fmt: skip
"""The tickers the demo market simulates (S&P 100 constituents, then SPY and QQQ)."""

_INDEX_FUNDS = frozenset({"SPY", "QQQ"})
_MINUTES = 390  # a full regular session
_DRAWS = 5  # random words per minute: 3 for the bridge's normal, 1 for wicks, 1 for volume
_REVERSION = 0.003  # daily pull of price towards trend (half-life ~ 230 weekdays)
_GAP_SHARE = 0.4  # overnight gap volatility, as a share of the day's volatility
_CHUNK_DAYS = 256  # sessions generated at once, bounding memory on long ranges
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True, slots=True)
class _Params:
    seed: int  # 64-bit key of the symbol's random streams
    start_price: float  # dollars on EPOCH
    growth: float  # trend growth per weekday (fraction)
    sigma: float  # per-minute volatility (fraction)
    volume: float  # shares per minute at midday, before noise
    trade_size: float  # average shares per trade


@functools.lru_cache(maxsize=len(SYMBOLS))
def _params(symbol: str) -> _Params:
    d = hashlib.sha512(f"barlab.demo/{VERSION}/{symbol}".encode()).digest()
    u = [int.from_bytes(d[i : i + 8], "little") / 2**64 for i in range(8, 64, 8)]
    sigma = (0.0007 + 0.0007 * u[2]) * (0.6 if symbol in _INDEX_FUNDS else 1.0)
    return _Params(
        seed=int.from_bytes(d[:8], "little"),
        start_price=round(10.0 + 140.0 * u[0], 2),
        growth=0.12 * u[1] / 261.0,
        sigma=sigma,
        volume=1000.0 + 49000.0 * u[3] * u[3],
        trade_size=50.0 + 150.0 * u[4],
    )


def check_symbol(symbol: str) -> None:
    """Raise DataRequestError (a DataError) unless the demo market simulates ``symbol``."""
    if symbol in SYMBOLS:
        return
    close = difflib.get_close_matches(str(symbol).upper(), SYMBOLS, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise DataRequestError(
        f"unknown symbol {symbol!r} for the demo market (it simulates {len(SYMBOLS)} tickers: "
        f"{', '.join(SYMBOLS[:10])}, ..., SPY, QQQ); {hint}use real data with --source polygon"
    )


def fetch(symbol: str, start: dt.date, end: dt.date, *, timeframe: str = "1m") -> pl.DataFrame:
    """SYNTHETIC bars of ``symbol`` for the NYSE sessions from ``start`` to ``end``.

    Parameters
    ----------
    symbol : str
        One of :data:`SYMBOLS`, e.g. ``"AAPL"``.
    start, end : datetime.date
        New York dates, inclusive, e.g. 2023-01-01 and 2023-12-31 (250 sessions, 97,140
        minute bars: 248 full days and 2 early closes).
    timeframe : str
        ``"1m"``, or a coarser bar made by :func:`barlab.data.schema.resample`.

    Returns
    -------
    polars.DataFrame
        In :data:`barlab.data.schema.SCHEMA`; empty if the range has no session.
    """
    check_symbol(symbol)
    if timeframe not in TIMEFRAMES:
        raise DataError(f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}")
    sess = calendar.sessions(start, end)
    frames = [
        _minute_bars(symbol, sess[i : i + _CHUNK_DAYS]) for i in range(0, len(sess), _CHUNK_DAYS)
    ]
    df = pl.concat(frames) if frames else SCHEMA.to_frame()
    return resample(df, timeframe)


def workload(
    n_symbols: int = 1, *, n_days: int = 252, first_day: dt.date = dt.date(2023, 1, 3)
) -> Bars:
    """The benchmark workload (BENCHMARKS.md): 390 x ``n_days`` minute bars per symbol.

    The first ``n_days`` full (390-minute) sessions from ``first_day`` (early closes are
    skipped), for the first ``n_symbols`` of :data:`SYMBOLS`; 252 days = 98,280 bars per
    symbol-year. Made in memory, no cache. SYNTHETIC, like everything here.
    """
    if not 1 <= n_symbols <= len(SYMBOLS):
        raise DataError(f"n_symbols must be 1 to {len(SYMBOLS)}, got {n_symbols}")
    sess = calendar.sessions(first_day, calendar.supported_range()[1])
    full = np.flatnonzero(sess.minutes == _MINUTES)[:n_days]
    if len(full) < n_days:
        raise DataError(f"only {len(full)} full sessions from {first_day}; ask for fewer days")
    days = sess[full]
    symbols = SYMBOLS[:n_symbols]
    shape = (n_days * _MINUTES, n_symbols)
    cols = {name: np.empty(shape) for name in ("open", "high", "low", "close", "volume")}
    for j, symbol in enumerate(symbols):
        frame = _minute_bars(symbol, days)
        for name, arr in cols.items():
            arr[:, j] = frame[name].to_numpy()
    return Bars(
        ts_ns=frame["ts"].dt.epoch("ns").to_numpy(),
        symbols=symbols,
        timeframe="1m",
        source="demo",
        periods_per_year=calendar.periods_per_year("1m"),
        version=f"demo-workload-v{VERSION}-{n_symbols}x{n_days}-{first_day}",
        **cols,
    )


# -- random numbers -------------------------------------------------------------------------


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _keys(seed: int, tag: int, index: np.ndarray) -> np.ndarray:
    """One 64-bit key per ``index`` (weekday or date ordinal) of a symbol's ``tag`` stream."""
    base = np.uint64((seed ^ (tag * 0xD1B54A32D192ED03)) & 0xFFFFFFFFFFFFFFFF)
    return _mix(base + index.astype(np.uint64) * _GOLDEN)


def _stream(keys: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` SplitMix64 outputs seeded by each key: uint64 of shape (len(keys), n)."""
    steps = np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN
    return _mix(keys[:, None] + steps[None, :])


def _normal(words: np.ndarray) -> np.ndarray:
    """~N(0, 1) from (..., 3) uint64: the centred sum of twelve 16-bit uniforms (exact)."""
    m = np.uint64(0xFFFF)
    lanes = (
        (words & m) + ((words >> np.uint64(16)) & m)
        + ((words >> np.uint64(32)) & m) + (words >> np.uint64(48))
    )  # fmt: skip
    return (lanes.sum(axis=-1).astype(np.float64) - 393210.0) / 65536.0


def _uniform_lo(words: np.ndarray) -> np.ndarray:
    return (words & np.uint64(0xFFFFFFFF)).astype(np.float64) * 2.0**-32


def _uniform_hi(words: np.ndarray) -> np.ndarray:
    return (words >> np.uint64(32)).astype(np.float64) * 2.0**-32


# -- the daily path -------------------------------------------------------------------------


def _weekday_number(dates: np.ndarray) -> np.ndarray:
    """Weekdays since EPOCH (Mon 2000-01-03 is 0, Fri 0 + 4, the next Mon 5) of weekday dates."""
    days = (dates - np.datetime64(EPOCH, "D")).astype(np.int64)
    weeks, rest = np.divmod(days, 7)
    return 5 * weeks + rest


@functools.lru_cache(maxsize=len(SYMBOLS))
def _daily(symbol: str) -> tuple[np.ndarray, np.ndarray]:
    """Open and close (whole cents) of ``symbol`` on every weekday from EPOCH to the calendar's end.

    Sequential in plain Python floats (IEEE double, no fused operations): ~7,300 steps, a few ms.
    """
    p = _params(symbol)
    last = np.datetime64(calendar.supported_range()[1], "D")
    n = int(_weekday_number(np.array([last]))[0]) + 1
    words = _stream(_keys(p.seed, 1, np.arange(n)), 6)
    gaps = _normal(words[:, :3]).tolist()
    moves = _normal(words[:, 3:]).tolist()
    day_sigma = p.sigma * math.sqrt(_MINUTES)
    gap_sigma = _GAP_SHARE * day_sigma
    opens, closes = [0.0] * n, [0.0] * n
    close = trend = p.start_price
    for w in range(n):
        ret = p.growth + day_sigma * moves[w] - _REVERSION * (close / trend - 1.0)
        opens[w] = close * (1.0 + gap_sigma * gaps[w])
        close = opens[w] * (1.0 + ret)
        closes[w] = close
        trend *= 1.0 + p.growth
    cents = [np.maximum(np.rint(np.array(a) * 100.0) / 100.0, 0.01) for a in (opens, closes)]
    for a in cents:
        a.setflags(write=False)
    return cents[0], cents[1]


# -- the minutes of a session ---------------------------------------------------------------


def _minute_bars(symbol: str, sess: Sessions) -> pl.DataFrame:
    """The 1-minute bars of ``symbol`` on ``sess`` (each session independent of the others)."""
    p = _params(symbol)
    day_open, day_close = (a[_weekday_number(sess.dates)] for a in _daily(symbol))
    n_min = sess.minutes
    rows = np.arange(len(sess))
    words = _stream(_keys(p.seed, 2, sess.dates.astype(np.int64)), _MINUTES * _DRAWS)
    words = words.reshape(len(sess), _MINUTES, _DRAWS)

    z = _normal(words[:, :, :3])
    walk = np.cumsum(z, axis=1)
    k = np.arange(1, _MINUTES + 1, dtype=np.float64)
    frac = k[None, :] / n_min[:, None]
    bridge = walk - frac * walk[rows, n_min - 1][:, None]
    scale = (day_open * p.sigma)[:, None]
    close = day_open[:, None] + frac * (day_close - day_open)[:, None] + scale * bridge
    close = np.maximum(np.rint(close * 100.0) / 100.0, 0.01)
    close[rows, n_min - 1] = day_close
    open_ = np.empty_like(close)
    open_[:, 0] = day_open
    open_[:, 1:] = close[:, :-1]

    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    wick = 0.5 * scale
    u_hi, u_lo = _uniform_lo(words[:, :, 3]), _uniform_hi(words[:, :, 3])
    high = np.maximum(np.rint((top + wick * u_hi * u_hi) * 100.0) / 100.0, top)
    low = np.minimum(np.rint((bottom - wick * u_lo * u_lo) * 100.0) / 100.0, bottom)
    low = np.maximum(low, 0.01)  # prices stay >= 1 cent, so this keeps low <= bottom

    x = 2.0 * (k[None, :] - 0.5) / n_min[:, None] - 1.0  # -1 at the open, +1 at the close
    u_shape = 0.5 + 2.0 * x * x
    day_level = 0.7 + 0.6 * _uniform_hi(_keys(p.seed, 3, sess.dates.astype(np.int64)))
    noise = 0.5 + _uniform_lo(words[:, :, 4])
    activity = 0.75 + 0.25 * np.abs(z)
    volume = np.floor(p.volume * u_shape * noise * activity * day_level[:, None])
    trades = np.maximum(
        np.floor(volume / p.trade_size * (0.75 + 0.5 * _uniform_hi(words[:, :, 4]))), 1.0
    )
    vwap = np.rint((high + low + close) / 3.0 * 10000.0) / 10000.0

    keep = k[None, :] <= n_min[:, None]
    ts = sess.open_ns[:, None] + (np.arange(_MINUTES, dtype=np.int64) * calendar.NS_PER_MINUTE)
    return pl.DataFrame(
        {
            "ts": pl.Series(ts[keep]).cast(pl.Datetime("ns", "UTC")),
            "open": open_[keep],
            "high": high[keep],
            "low": low[keep],
            "close": close[keep],
            "volume": volume[keep],
            "vwap": vwap[keep],
            "n_trades": trades[keep].astype(np.int64),
            "extended": np.zeros(int(keep.sum()), dtype=bool),
        },
        schema=SCHEMA,
    )
