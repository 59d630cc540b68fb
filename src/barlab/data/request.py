"""From what a user asks for (symbols, dates, source; defaults from the config) to Bars.

Shared by ``barlab.load_bars`` and the CLI so both parse and explain the same way.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from barlab.bars import Bars
from barlab.errors import UsageError

_TICKER = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
REAL_DATA_HINT = (
    "for real prices set POLYGON_API_KEY (in the environment or ./.env) and pass --source polygon"
)


def parse_date(value: Any, label: str) -> dt.date:
    """A date from ``'2023-01-03'``, a ``date`` or a ``datetime``; ``label`` names the input."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise UsageError(f"{label}: {value!r} is not a date; use YYYY-MM-DD, e.g. 2023-01-03")


def parse_symbols(value: Any, label: str = "symbols") -> list[str]:
    """Upper-case tickers from ``'AAPL,msft'`` or a list; duplicates dropped, order kept."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        sym = str(item).strip().upper()
        if not sym:
            continue
        if not _TICKER.match(sym):
            raise UsageError(f"{label}: {item!r} is not a ticker symbol (e.g. AAPL, BRK.B)")
        if sym not in out:
            out.append(sym)
    if not out:
        raise UsageError(f"{label}: no symbols given; e.g. AAPL,MSFT")
    return out


def yesterday() -> dt.date:
    return dt.date.today() - dt.timedelta(days=1)


def resolve_source(source: str, found_secrets: dict[str, str]) -> tuple[str, str]:
    """The source to use for ``source`` (``auto`` picks one) and a sentence saying why."""
    from barlab.data.providers import PROVIDERS

    if source != "auto":
        return source, ""
    if "POLYGON_API_KEY" in found_secrets and "polygon" in PROVIDERS:
        return "polygon", "POLYGON_API_KEY is set"
    if "POLYGON_API_KEY" in found_secrets:
        return "demo", "POLYGON_API_KEY is set, but this barlab cannot download from Polygon yet"
    return "demo", "no POLYGON_API_KEY is set"


def load_request(
    symbols: Any = None,
    start: Any = None,
    end: Any = None,
    *,
    timeframe: str | None = None,
    source: str | None = None,
    data_dir: Any = None,
    session: str | None = None,
    config: Any = None,
) -> Bars:
    """Load bars, taking what is not given from ``config`` (read if None)."""
    from barlab.config import SOURCES, load_config, secrets
    from barlab.data.panel import load_bars

    cfg = config or load_config()
    syms = parse_symbols(symbols if symbols is not None else cfg.strategy.symbols)
    if start is None:
        raise UsageError("start: a start date is required, e.g. 2023-01-03")
    first = parse_date(start, "start")
    last = parse_date(end, "end") if end is not None else yesterday()
    tf = timeframe or cfg.strategy.timeframe
    wanted = source or cfg.data.source
    if wanted not in SOURCES:
        raise UsageError(f"unknown source {wanted!r}; use one of {', '.join(SOURCES)}")
    src, _ = resolve_source(wanted, secrets())
    return load_bars(
        syms, first, last, timeframe=tf, source=src, data_dir=Path(data_dir or cfg.data_dir),
        session=session or cfg.data.session, config=cfg,
    )  # fmt: skip
