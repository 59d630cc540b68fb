"""Each vendor as the provider tests see it: its emulator's app, a provider pointed at the
emulator, the bars the emulator holds, and what a wrong key or a 429 looks like there."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from barlab.data.providers.alpaca import AlpacaProvider
from barlab.data.providers.finnhub import FinnhubProvider
from barlab.data.providers.polygon import PolygonProvider
from barlab.data.schema import normalize, resample
from barlab.errors import AuthError, DataRequestError, RateLimitError
from tests.emulators import alpaca, finnhub, polygon
from tests.emulators.base import App, Emulator

MONDAY, WEDNESDAY = dt.date(2024, 3, 4), dt.date(2024, 3, 6)

POLYGON_KEY = "paid-key-5f0c2a9e71"
POLYGON_FREE_KEY = "free-key-b83d6e4410"
POLYGON_KEYS = {POLYGON_KEY: "paid", POLYGON_FREE_KEY: "free"}
POLYGON_TODAY = dt.date(2024, 6, 14)  # a Friday; the free plan covers 2022-06-14 to 2024-06-13

Scenario = tuple[dict[str, Any], dict[str, Any], type[Exception] | None]
"""Emulator options, provider options, and what fetching then raises (None: nothing)."""


@dataclass(frozen=True, kw_only=True)
class Vendor:
    name: str
    app: Callable[..., App]
    """The emulator's app from options (with the tests' defaults)."""
    connect: Callable[..., Any]
    """A provider from ``base_url`` and options (with the tests' defaults)."""
    columns: list[str]
    """The columns the vendor sends (the schema may grow columns barlab derives itself)."""
    held: Callable[[str, dt.date, dt.date, str], pl.DataFrame]
    """The bars the emulator holds for New York dates ``first``..``last`` in a timeframe,
    in the canonical schema (all of its columns)."""
    url_path: str = ""
    """What the provider's ``base_url`` adds to the emulator's URL."""
    tolerance: dict[str, float] = field(default_factory=dict)
    """How closely coarser bars match barlab's own aggregation of the minute bars."""
    throttle: Callable[[int], dict[str, Any]]
    """Emulator options for 429s on the first ``n`` authenticated requests."""
    wrong_key: dict[str, str]
    """Provider options with a key the emulator refuses."""
    wrong_key_words: tuple[str, ...]
    """What the AuthError of a wrong key says (the status, the vendor's words, the variable)."""
    wrong_key_absent: tuple[str, ...] = ()
    """What it must not say, besides the key itself."""
    reversed_range_error: type[Exception] | None = None
    """What an end before the start raises (None: an empty frame)."""
    secrets: tuple[str, ...] = ()
    """Every key the scenarios use: none may reach a log line, an error or a URL."""
    leak_scenarios: tuple[Scenario, ...] = ()

    def provider(self, emulator: Emulator, **options: Any) -> Any:
        return self.connect(base_url=emulator.url + self.url_path, **options)

    def expected(
        self, symbol: str, first: dt.date, last: dt.date, timeframe: str = "1m"
    ) -> pl.DataFrame:
        """What the emulator holds, in the vendor's columns."""
        return self.held(symbol, first, last, timeframe).select(self.columns)


def _polygon(**options: Any) -> PolygonProvider:
    kwargs: dict = {"api_key": POLYGON_KEY, "requests_per_minute": 60_000, "backoff_base_s": 0.01}
    return PolygonProvider(**kwargs | options)


def _alpaca(**options: Any) -> AlpacaProvider:
    kwargs: dict = {"key_id": alpaca.KEY_ID, "secret_key": alpaca.SECRET_KEY}
    kwargs |= {"requests_per_minute": 60_000, "backoff_base_s": 0.01}
    return AlpacaProvider(**kwargs | options)


def _finnhub(**options: Any) -> FinnhubProvider:
    kwargs: dict = {"api_key": finnhub.PREMIUM_KEY}
    kwargs |= {"requests_per_minute": 60_000, "requests_per_second": 1000, "backoff_base_s": 0.01}
    return FinnhubProvider(**kwargs | options)


POLYGON = Vendor(
    name="polygon",
    app=lambda **o: polygon.polygon_app(**{"keys": POLYGON_KEYS, "today": POLYGON_TODAY, **o}),
    connect=_polygon,
    # as barlab would aggregate the minute bars it holds
    held=lambda symbol, first, last, tf: resample(
        normalize(polygon.minute_bars(symbol, first, last)), tf
    ),
    columns=list(polygon.COLUMNS),
    tolerance={"abs_tol": 1e-9, "rel_tol": 1e-12},
    throttle=lambda n: {"burst_429": n},
    wrong_key={"api_key": "nobody-knows-this-key"},
    wrong_key_words=("POLYGON_API_KEY", polygon.UNKNOWN_KEY),
    wrong_key_absent=("plan",),
    reversed_range_error=DataRequestError,
)

ALPACA_WRONG_SECRET = "WRONG-secret-key-0123456789"
ALPACA = Vendor(
    name="alpaca",
    app=alpaca.alpaca_app,
    connect=_alpaca,
    held=lambda symbol, first, last, tf: normalize(alpaca.market(symbol, first, last, tf)),
    columns=["ts", "open", "high", "low", "close", "volume", "vwap", "n_trades"],
    throttle=lambda n: {"throttle": range(1, n + 1)},
    wrong_key={"secret_key": "not-the-secret"},
    wrong_key_words=("forbidden.", "403", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"),
    secrets=(alpaca.KEY_ID, alpaca.SECRET_KEY, ALPACA_WRONG_SECRET),
    leak_scenarios=(
        ({}, {}, None),
        ({}, {"secret_key": ALPACA_WRONG_SECRET}, AuthError),  # 403 forbidden
        ({"throttle": range(1, 10)}, {"max_retries": 1}, RateLimitError),
        ({"now": dt.datetime(2024, 3, 4, 15, tzinfo=dt.UTC)}, {"feed": "sip"}, AuthError),
    ),
)

FINNHUB_WRONG_KEY = "wrong-finnhub-key-0123456789"
FINNHUB = Vendor(
    name="finnhub",
    app=finnhub.finnhub_app,
    connect=_finnhub,
    held=lambda symbol, first, last, tf: normalize(finnhub.market(symbol, first, last, tf)),
    columns=["ts", "open", "high", "low", "close", "volume"],  # no vwap, no trade count
    url_path="/api/v1",
    throttle=lambda n: {"throttle": range(1, n + 1)},
    wrong_key={"api_key": "not-a-finnhub-key"},
    wrong_key_words=("401", "Invalid API key.", "FINNHUB_API_KEY"),
    secrets=(finnhub.PREMIUM_KEY, finnhub.FREE_KEY, FINNHUB_WRONG_KEY),
    leak_scenarios=(
        ({}, {}, None),
        ({}, {"api_key": finnhub.FREE_KEY}, AuthError),
        ({}, {"api_key": FINNHUB_WRONG_KEY}, AuthError),
        ({"throttle": range(1, 10)}, {"max_retries": 1}, RateLimitError),
    ),
)

VENDORS = (POLYGON, ALPACA, FINNHUB)
