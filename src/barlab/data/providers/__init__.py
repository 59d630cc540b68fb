"""Market-data providers: each module here exposes ``fetch(symbol, start, end, *, timeframe)``
returning bars in :data:`barlab.data.schema.SCHEMA`, and a ``VERSION`` string.

:data:`PROVIDERS` lists the sources barlab can fill its cache from; a new vendor plugs in by
adding its module name here. Modules are imported only when used.
"""

from __future__ import annotations

import datetime as dt
import importlib
from typing import Protocol, cast

import polars as pl


class Provider(Protocol):
    """What :mod:`barlab.data.panel` needs of a provider module."""

    VERSION: str

    def fetch(
        self, symbol: str, start: dt.date, end: dt.date, *, timeframe: str = "1m"
    ) -> pl.DataFrame: ...


PROVIDERS: dict[str, str] = {"demo": "barlab.data.providers.demo"}
"""Source name -> module that downloads (or makes) its bars."""


def get_provider(source: str) -> Provider | None:
    """The provider module of ``source``, or None if barlab cannot fetch from it yet."""
    name = PROVIDERS.get(source)
    return None if name is None else cast(Provider, importlib.import_module(name))
