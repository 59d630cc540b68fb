"""The Strategy contract, Signals, and discovery of strategies by name.

A strategy is a class with typed parameters as class attributes and one method,
``signals(bars) -> Signals``, vectorized over whole arrays and causal (row t uses rows <= t only).
The same object is backtested and, later, run live bar by bar.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import inspect
import sys
import typing
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from barlab.bars import Bars
from barlab.errors import StrategyError

SIZE_TYPES = ("equal", "weight", "notional", "shares")
"""How ``Signals.target`` sizes positions (see :class:`Signals`); the kernel's SIZE_* codes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Signals:
    """What a strategy wants, row by row; a row's signal acts on the next bar.

    Give either ``entries``/``exits`` (bool, shape of the bars; ``short_entries`` /
    ``short_exits`` to trade short) or ``target`` (float, NaN = no change; the sign is the side)
    read as ``size_type`` says:

    - ``"equal"`` (default): the fraction of the symbol's allocation to hold, the allocation
      being ``size_pct / n_symbols`` of equity (+1 long, -1 short, 0 flat);
    - ``"weight"``: the fraction of equity to hold in the symbol (0.25 = a quarter);
    - ``"notional"``: dollars to hold (10_000 long, -5_000 short);
    - ``"shares"``: shares to hold (100, -50).

    Every target is a whole rebalance: sells fill before buys on the same bar.

    ``limit_price`` / ``stop_price`` (float, NaN = none) turn a row's instructions into limit,
    stop or stop-limit orders resting from the next bar; ``trail_stop`` (a fraction, e.g. 0.02;
    NaN = none) into trailing stop orders, whose stop follows the market that far behind the
    best price since the order was given (a buy: above the lowest low); ``time_in_force`` is
    ``"gtc"`` (until filled or replaced) or ``"day"`` (until the end of the first session it
    rests in). See barlab/engine/orders.py for where each fills.
    """

    entries: np.ndarray | None = None
    exits: np.ndarray | None = None
    short_entries: np.ndarray | None = None
    short_exits: np.ndarray | None = None
    target: np.ndarray | None = None
    size_type: str = "equal"
    limit_price: np.ndarray | None = None
    stop_price: np.ndarray | None = None
    trail_stop: np.ndarray | None = None
    time_in_force: str = "gtc"

    def check(self, shape: tuple[int, int]) -> None:
        """Raise StrategyError unless the arrays fit bars of ``shape``."""
        given = {
            name: getattr(self, name)
            for name in ("entries", "exits", "short_entries", "short_exits", "target")
            if getattr(self, name) is not None
        }
        if not given:
            raise StrategyError("Signals is empty: give entries/exits or target")
        if self.time_in_force not in ("gtc", "day"):
            raise StrategyError(
                f"Signals.time_in_force must be gtc or day, got {self.time_in_force!r}"
            )
        for name in ("limit_price", "stop_price", "trail_stop"):
            prices = getattr(self, name)
            if prices is None:
                continue
            if prices.shape != shape or not np.issubdtype(prices.dtype, np.floating):
                raise StrategyError(
                    f"Signals.{name} must be a float array of the bars' shape {shape}, "
                    f"got {prices.dtype} {prices.shape}"
                )
            if np.any(prices <= 0) or np.any(np.isinf(prices)):
                raise StrategyError(
                    f"Signals.{name} must be positive and finite where given (NaN = none)"
                )
        if self.trail_stop is not None:
            if np.any(self.trail_stop >= 1):
                raise StrategyError(
                    "Signals.trail_stop is a fraction of the price, e.g. 0.02 for 2 %, below 1"
                )
            trailing = ~np.isnan(self.trail_stop)
            for name in ("limit_price", "stop_price"):
                other = getattr(self, name)
                if other is not None and np.any(trailing & ~np.isnan(other)):
                    raise StrategyError(
                        f"Signals.trail_stop and Signals.{name} are both given for the same "
                        "bar and symbol: a trailing stop order has no other price"
                    )
        if self.size_type not in SIZE_TYPES:
            raise StrategyError(
                f"Signals.size_type must be one of {', '.join(SIZE_TYPES)}, got {self.size_type!r}"
            )
        if self.target is not None and len(given) > 1:
            raise StrategyError("Signals takes either target or entries/exits, not both")
        for name, arr in given.items():
            if arr.shape != shape:
                raise StrategyError(f"Signals.{name} has shape {arr.shape}, the bars {shape}")
            want = np.floating if name == "target" else np.bool_
            if not np.issubdtype(arr.dtype, want):
                kind = "float" if name == "target" else "bool"
                raise StrategyError(f"Signals.{name} must be a {kind} array, got {arr.dtype}")


@dataclass(frozen=True, slots=True)
class Param:
    """One strategy parameter: its name, type and default."""

    name: str
    type: type
    default: Any


# a class's declared parameters, worked out once (classes may be redefined: weak keys)
_PARAMS: weakref.WeakKeyDictionary[type, tuple[Param, ...]] = weakref.WeakKeyDictionary()


class Strategy:
    """Base class of every strategy.

    Declare parameters as annotated class attributes with defaults, validate them together in
    :meth:`validate`, and compute signals in :meth:`signals`::

        class SmaCrossover(Strategy):
            fast: int = 10
            slow: int = 50

            def validate(self):
                if self.fast >= self.slow:
                    raise StrategyError("fast must be below slow")

            def signals(self, bars):
                ...
    """

    name: ClassVar[str] = ""
    source_path: ClassVar[str] = ""
    market_data: ClassVar[tuple[str, ...]] = ()
    """Live streams besides bars to keep, e.g. ``("trades", "quotes")``: the live bridge
    subscribes to them and keeps each symbol's latest quote and last trades (``[live]
    market_data_retention``) in ``bridge.market_data``. Backtests have bars only."""

    def __init__(self, **params: Any) -> None:
        known = {p.name: p for p in self.params()}
        for key, value in params.items():
            if key not in known:
                raise StrategyError(
                    f"{self.label()} has no parameter {key!r}; it takes "
                    f"{', '.join(known) or 'none'}"
                )
            setattr(self, key, _coerce(self.label(), known[key], value))
        self.validate()

    @classmethod
    def label(cls) -> str:
        return cls.name or cls.__name__

    @classmethod
    def params(cls) -> list[Param]:
        """The declared parameters, in declaration order (worked out once per class: a sweep
        creates a strategy per combination)."""
        found = _PARAMS.get(cls)
        if found is None:
            found = _PARAMS[cls] = tuple(cls._declared_params())
        return list(found)

    @classmethod
    def _declared_params(cls) -> list[Param]:
        hints = typing.get_type_hints(cls)
        out = []
        for klass in reversed(cls.__mro__):
            for key in getattr(klass, "__annotations__", {}):
                hint = hints.get(key)
                if key.startswith("_") or typing.get_origin(hint) is ClassVar or hint is None:
                    continue
                if key in ("name", "source_path") or any(p.name == key for p in out):
                    continue
                out.append(Param(key, hint, getattr(cls, key)))
        return out

    def get_params(self) -> dict[str, Any]:
        return {p.name: getattr(self, p.name) for p in self.params()}

    def validate(self) -> None:
        """Check the parameters together; raise StrategyError naming the fix."""

    def signals(self, bars: Bars) -> Signals:
        raise NotImplementedError

    def source_hash(self) -> str:
        """SHA-256 of the strategy's source file (recorded with every run); "" when it has
        none to read (a class defined in a notebook or at the prompt)."""
        try:
            path = self.source_path or inspect.getsourcefile(type(self)) or ""
            return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else ""
        except (OSError, TypeError):
            return ""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def _coerce(label: str, param: Param, value: Any) -> Any:
    """Turn ``value`` (possibly a string from the command line) into the parameter's type."""
    kind = param.type
    try:
        if kind is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return lowered in ("true", "1", "yes")
            if isinstance(value, bool | np.bool_):
                return bool(value)
            raise ValueError
        if kind is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, str):
                return int(value.strip())
            if float(value) != int(value):
                raise ValueError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind is str:
            return str(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise StrategyError(f"{label} parameter {param.name} must be {kind.__name__}, got {value!r}")


def builtin_dir() -> Path:
    """Where the example strategies shipped with barlab live."""
    import barlab.strategies

    return Path(barlab.strategies.__file__).parent


def search_dirs(extra: list[Path] | None = None) -> list[Path]:
    """Directories searched for strategies, first match wins: ./strategies, extra, built-ins."""
    dirs = [Path.cwd() / "strategies", *(extra or []), builtin_dir()]
    seen: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [s.resolve() for s in seen]:
            seen.append(d)
    return seen


def available(extra: list[Path] | None = None) -> dict[str, Path]:
    """Strategy names and their files (``sma_crossover`` -> .../sma_crossover.py)."""
    found: dict[str, Path] = {}
    for d in search_dirs(extra):
        for path in sorted(d.glob("*.py")):
            if not path.name.startswith("_"):
                found.setdefault(path.stem, path)
    return found


def load_strategy(name: str, extra: list[Path] | None = None) -> type[Strategy]:
    """The Strategy class defined in ``strategies/<name>.py``.

    Raises StrategyError naming close matches when there is no such strategy.
    """
    files = available(extra)
    if name not in files:
        close = difflib.get_close_matches(name, list(files), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise StrategyError(
            f"unknown strategy {name!r}{hint} (available: {', '.join(files) or 'none'}; "
            "see `backtest list`)"
        )
    path = files[name]
    module_name = f"barlab_user_strategies.{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise StrategyError(f"cannot load strategy file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(module_name, None)
        raise StrategyError(f"strategy file {path} failed to import: {e}") from e
    classes = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Strategy)
        and obj is not Strategy
        and obj.__module__ == module_name
    ]
    if len(classes) != 1:
        raise StrategyError(
            f"strategy file {path} must define exactly one Strategy subclass, found {len(classes)}"
        )
    cls = classes[0]
    cls.name = name
    cls.source_path = str(path)
    return cls
