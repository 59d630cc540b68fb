"""Market-data providers: each one has ``fetch(symbol, start, end, *, timeframe)`` returning
bars in :data:`barlab.data.schema.SCHEMA` (extended hours included where the vendor has them)
and a ``VERSION`` string.

The demo module is its own provider. A vendor module (polygon.py, alpaca.py, finnhub.py) has
``connect(config) -> Provider``: it reads its section of the config and its API keys, and
returns an object whose ``fetch`` speaks the vendor's REST API through :mod:`barlab.data.http`
(and whose ``stats`` counts requests, retries and rate-limit waits).

:data:`PROVIDERS` lists the sources barlab can fill its cache from; a new vendor plugs in by
adding its module name here. Modules are imported only when used.
"""

from __future__ import annotations

import datetime as dt
import importlib
from typing import TYPE_CHECKING, Protocol, cast

import polars as pl

if TYPE_CHECKING:
    from barlab.config import Config


class Provider(Protocol):
    """What :mod:`barlab.data.panel` needs of a provider module."""

    VERSION: str

    def fetch(
        self, symbol: str, start: dt.date, end: dt.date, *, timeframe: str = "1m"
    ) -> pl.DataFrame: ...


PROVIDERS: dict[str, str] = {
    "demo": "barlab.data.providers.demo",
    "polygon": "barlab.data.providers.polygon",
    "alpaca": "barlab.data.providers.alpaca",
    "finnhub": "barlab.data.providers.finnhub",
}
"""Source name -> module that downloads (or makes) its bars."""


def provider_version(source: str) -> str | None:
    """The ``VERSION`` of the source's provider module (no connection made), or None."""
    name = PROVIDERS.get(source)
    return None if name is None else str(importlib.import_module(name).VERSION)


def get_provider(source: str, config: Config | None = None) -> Provider | None:
    """The provider of ``source``, or None if barlab cannot fetch from it.

    Vendors are connected with ``config`` (read from the usual places when None); a missing API
    key raises AuthError naming the variable to set.
    """
    name = PROVIDERS.get(source)
    if name is None:
        return None
    module = importlib.import_module(name)
    connect = getattr(module, "connect", None)
    if connect is None:
        return cast(Provider, module)
    if config is None:
        from barlab.config import load_config

        config = load_config()
    return cast(Provider, connect(config))
