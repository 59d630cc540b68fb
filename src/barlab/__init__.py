"""barlab: research, backtest and paper-trade US equity strategies on minute bars.

>>> import barlab
>>> bars = barlab.load_bars(["AAPL", "MSFT"], "2023-01-03", "2023-03-31")   # doctest: +SKIP
>>> result = barlab.backtest(barlab.load_strategy("sma_crossover")(), bars)  # doctest: +SKIP
>>> result.metrics.sharpe                                                    # doctest: +SKIP

Importing barlab compiles nothing, configures no logging and opens no connection.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from barlab.errors import BarlabError, ConfigError, DataError, StrategyError

if TYPE_CHECKING:
    from barlab.bars import Bars
    from barlab.combined import combine
    from barlab.config import Config
    from barlab.engine.backtest import BacktestOptions, backtest
    from barlab.engine.costs import Costs
    from barlab.engine.risk import RiskRules
    from barlab.engine.sweep import sweep
    from barlab.metrics import Metrics
    from barlab.research.optimize import optimize
    from barlab.research.walkforward import walk_forward
    from barlab.result import Result, load_run
    from barlab.strategy import Signals, Strategy, load_strategy

# Imported on first use (PEP 562), so `import barlab` stays cheap and numba is loaded only
# after the CLI has had its say about where the kernel cache lives.
_LAZY = {
    "Bars": "barlab.bars",
    "combine": "barlab.combined",
    "BacktestOptions": "barlab.engine.backtest",
    "backtest": "barlab.engine.backtest",
    "Costs": "barlab.engine.costs",
    "RiskRules": "barlab.engine.risk",
    "Metrics": "barlab.metrics",
    "Result": "barlab.result",
    "load_run": "barlab.result",
    "Signals": "barlab.strategy",
    "Strategy": "barlab.strategy",
    "load_strategy": "barlab.strategy",
    "sweep": "barlab.engine.sweep",
    "walk_forward": "barlab.research.walkforward",
    "optimize": "barlab.research.optimize",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'barlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "BacktestOptions",
    "BarlabError",
    "Bars",
    "ConfigError",
    "Costs",
    "DataError",
    "Metrics",
    "Result",
    "RiskRules",
    "Signals",
    "Strategy",
    "StrategyError",
    "__version__",
    "backtest",
    "combine",
    "load_bars",
    "load_config",
    "load_run",
    "load_strategy",
    "optimize",
    "sweep",
    "walk_forward",
]


def load_config(path: Any = None) -> Config:
    """The resolved configuration (see :mod:`barlab.config`)."""
    from barlab.config import load_config as _load

    return _load(path)


def load_bars(
    symbols: list[str] | str | None = None,
    start: Any = None,
    end: Any = None,
    *,
    timeframe: str | None = None,
    source: str | None = None,
    data_dir: Any = None,
    session: str | None = None,
) -> Bars:
    """Load aligned bars from the cache, filling it from the source where needed.

    Defaults come from the config: symbols and timeframe from ``[strategy]``, source and cache
    directory from ``[data]``. ``start``/``end`` are dates (``"2023-01-03"`` or
    ``datetime.date``), inclusive; ``end`` defaults to yesterday. ``session`` is ``"rth"``
    (regular trading hours, the default from ``[data] session``) or ``"all"``.
    """
    from barlab.data.request import load_request

    return load_request(
        symbols, start, end, timeframe=timeframe, source=source, data_dir=data_dir,
        session=session,
    )  # fmt: skip
