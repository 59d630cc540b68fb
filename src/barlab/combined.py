"""Several strategies on one account: :func:`combine` makes one Strategy of a list of them.

Each child's Signals become per-symbol weight targets (fractions of equity) that it holds until
it changes them: entries/exits become +1 / -1 / 0; ``size_type="equal"`` targets are divided by
the number of symbols (as the engine would size them with ``size_pct=1``); ``"weight"`` targets
are taken as they are. The combination then gives the account one target per symbol:

- ``how="sum"``: the sum of ``weight_k x`` child k's target (weights default to 1/K each);
- ``how="priority"``: the target of the first child, in list order, whose target for that
  symbol is not zero, times its weight (weights default to 1).

The combined Signals are ``size_type="weight"`` targets given only on the bars where the
combined target changes (NaN elsewhere), so the engine trades only then; ``size_pct`` does not
scale them. Who caused what (orders, fees, P&L) is worked out by :mod:`barlab.attribution`
from :meth:`Combined.contributions`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from barlab.bars import Bars
from barlab.errors import StrategyError
from barlab.strategy import Signals, Strategy

HOW = ("sum", "priority")
ZERO = 1e-12
"""A combined target this close to 0 is 0 (the children's parts cancel out)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Contributions:
    """Each child's part of the account's target, bar by bar.

    Attributes
    ----------
    names : tuple of str
        The children's keys, e.g. ``("sma_crossover", "rsi_mean_reversion")``.
    weights : tuple of float
    parts : float64 array (K, n_bars, n_symbols)
        Child k's signed part of the combined target after each bar (fractions of equity,
        carried forward); they sum to ``combined``.
    combined : float64 array (n_bars, n_symbols)
        The account's target after each bar (0 before any instruction).
    target : float64 array (n_bars, n_symbols)
        ``combined`` where it changes, NaN elsewhere: what the engine is given.
    """

    names: tuple[str, ...]
    weights: tuple[float, ...]
    parts: np.ndarray
    combined: np.ndarray
    target: np.ndarray


class Combined(Strategy):
    """Several strategies trading one account (made by :func:`combine`).

    Its parameters are ``how``, ``weights`` and each child's, keyed ``<child>.<name>``.
    """

    def __init__(
        self, strategies: Sequence[Strategy], *, how: str = "sum",
        weights: Sequence[float] | None = None,
    ) -> None:  # fmt: skip
        children = list(strategies)
        for child in children:
            if isinstance(child, type):
                raise StrategyError(
                    f"combine() takes strategy instances, got the class {child.__name__}; "
                    f"e.g. {child.__name__}()"
                )
            if not isinstance(child, Strategy):
                raise StrategyError(
                    f"combine() takes Strategy instances, got {type(child).__name__}"
                )
        if len(children) < 2:
            raise StrategyError(
                f"combine() needs two or more strategies, got {len(children)}; "
                "backtest a single strategy directly"
            )
        if how not in HOW:
            raise StrategyError(f"combine(how=...) must be sum or priority, got {how!r}")
        k = len(children)
        if weights is None:
            weights = [1.0 / k] * k if how == "sum" else [1.0] * k
        weights = [float(w) for w in weights]
        if len(weights) != k:
            raise StrategyError(
                f"combine() got {len(weights)} weights for {k} strategies; give one per "
                f"strategy, e.g. weights={[round(1 / k, 3)] * k}"
            )
        if not all(np.isfinite(w) and w >= 0 for w in weights) or not any(weights):
            raise StrategyError(
                f"combine() weights must be finite, >= 0 and not all zero, got {weights}"
            )
        self.strategies = tuple(children)
        self.how = how
        self.weights = tuple(weights)
        self.keys = _keys([c.label() for c in children])
        self._last: tuple[Bars, Contributions] | None = None

    def label(self) -> str:  # type: ignore[override]  # a combination is named by its children
        return "+".join(c.label() for c in self.strategies)

    def get_params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"how": self.how, "weights": list(self.weights)}
        for key, child in zip(self.keys, self.strategies, strict=True):
            out.update({f"{key}.{name}": value for name, value in child.get_params().items()})
        return out

    def with_params(self, params: Mapping[str, Any]) -> Combined:
        """The same children (new instances) with ``params`` as :meth:`get_params` gives them,
        e.g. ``{"how": "sum", "weights": [0.6, 0.4], "sma_crossover.fast": 20, ...}``
        (a saved run's); a child's parameters left out take their defaults."""
        own: dict[str, dict[str, Any]] = {k: {} for k in self.keys}
        for item, value in params.items():
            if item in ("how", "weights"):
                continue
            key, _, name = item.rpartition(".")
            if key not in own:
                raise StrategyError(
                    f"{self.label()}: parameter {item!r} names none of its strategies "
                    f"({', '.join(self.keys)})"
                )
            own[key][name] = value
        children = [type(c)(**own[k]) for k, c in zip(self.keys, self.strategies, strict=True)]
        how = params.get("how", self.how)
        return Combined(children, how=how, weights=params.get("weights", self.weights))

    def source_hash(self) -> str:
        """SHA-256 over the children's labels and source hashes: it changes whenever any
        child's source file does ("" when one of them cannot be read)."""
        hashes = [c.source_hash() for c in self.strategies]
        if not all(hashes):
            return ""
        doc = [[key, h] for key, h in zip(self.keys, hashes, strict=True)]
        return hashlib.sha256(json.dumps(doc).encode()).hexdigest()

    def __repr__(self) -> str:
        children = ", ".join(repr(c) for c in self.strategies)
        return f"combine([{children}], how={self.how!r}, weights={list(self.weights)!r})"

    def __getstate__(self) -> dict[str, Any]:  # pickled (to a worker) without the bars kept
        return {**self.__dict__, "_last": None}

    def signals(self, bars: Bars) -> Signals:
        return Signals(target=self.contributions(bars).target.copy(), size_type="weight")

    def contributions(self, bars: Bars) -> Contributions:
        """The children's parts of the account's target on ``bars`` (the last call's answer
        is kept, so a backtest and its attribution compute the children's signals once)."""
        if self._last is not None and self._last[0] is bars:
            return self._last[1]
        states = np.stack(
            [_weights_of(key, c, bars) for key, c in zip(self.keys, self.strategies, strict=True)]
        )
        parts, combined = self._combine(states)
        before = np.vstack([np.zeros((1, combined.shape[1])), combined[:-1]])
        target = np.where(combined != before, combined, np.nan)
        made = Contributions(
            names=self.keys, weights=self.weights, parts=parts, combined=combined, target=target
        )
        self._last = (bars, made)
        return made

    def _combine(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The children's parts and the account's target from their targets ``states``
        (K, n_bars, n_symbols): one definition for the backtest and the live bridge."""
        w = np.array(self.weights)[:, None, None]
        if self.how == "sum":
            parts = w * states
        else:
            held = states != 0.0
            first = np.argmax(held, axis=0)
            control = (np.arange(len(states))[:, None, None] == first) & held.any(axis=0)
            parts = np.where(control, w * states, 0.0)
        # parts that cancel out leave rounding dust (1e-18), not a position: call it zero
        combined = parts.sum(axis=0)
        combined[np.abs(combined) < ZERO] = 0.0
        return parts, combined

    def live_state(self, n_symbols: int) -> LiveState:
        """The state :meth:`step` starts from: every child flat, no target given."""
        k = len(self.strategies)
        return LiveState(
            held=np.zeros((k, n_symbols)), sides=np.zeros((k, n_symbols), dtype=np.int64),
            combined=np.zeros(n_symbols),
        )  # fmt: skip

    def step(self, bars: Bars, state: LiveState) -> tuple[np.ndarray, LiveState]:
        """The account's target for the last row of ``bars`` (NaN = no change) and the state
        after it, from ``state``, the state after the previous row.

        The live bridge calls this on its rolling window: each child's instruction on the last
        row moves the target that child holds, which ``state`` carries from bar to bar (a
        window's rows before the child's last instruction may have rolled out of it). Rows
        stepped from the first bar on give :meth:`signals`, row for row.
        """
        from barlab.engine.backtest import to_target

        shape = bars.close.shape
        held, sides = state.held.copy(), state.sides.copy()
        for k, (key, child) in enumerate(zip(self.keys, self.strategies, strict=True)):
            signals = _checked_signals(key, child, bars)
            if signals.target is not None:
                row = to_target(signals, shape)[-1].copy()
            else:
                row, sides[k] = _step_sides(signals, sides[k])
            if signals.size_type == "equal":
                row /= max(shape[1], 1)
            held[k] = np.where(np.isnan(row), held[k], row)
        _, combined = self._combine(held[:, None, :])
        now = combined[0]
        target = np.where(now != state.combined, now, np.nan)
        return target, LiveState(held=held, sides=sides, combined=now)


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveState:
    """What a combination carries from bar to bar in the live bridge (:meth:`Combined.step`).

    Attributes
    ----------
    held : float64 array (K, n_symbols)
        Each child's target, fractions of equity, after the last bar.
    sides : int64 array (K, n_symbols)
        Each entries/exits child's side (+1, -1, 0) after the last bar.
    combined : float64 array (n_symbols,)
        The account's target after the last bar.
    """

    held: np.ndarray
    sides: np.ndarray
    combined: np.ndarray

    def to_json(self) -> dict[str, list]:
        return {
            "held": self.held.tolist(), "sides": self.sides.tolist(),
            "combined": self.combined.tolist(),
        }  # fmt: skip

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> LiveState:
        return cls(
            held=np.array(doc["held"], dtype=np.float64),
            sides=np.array(doc["sides"], dtype=np.int64),
            combined=np.array(doc["combined"], dtype=np.float64),
        )


def combine(
    strategies: Sequence[Strategy], *, how: str = "sum", weights: Sequence[float] | None = None
) -> Combined:
    """One strategy trading the signals of several on one account.

    Parameters
    ----------
    strategies : list of Strategy
        Two or more, e.g. ``[SmaCrossover(fast=10, slow=50), RsiMeanReversion()]``; their
        Signals must be entries/exits or ``"equal"`` / ``"weight"`` targets, without order
        prices (market orders only).
    how : str
        ``"sum"``: the account holds the weighted sum of the children's targets;
        ``"priority"``: the first child (in list order) holding a symbol controls it.
    weights : list of float, optional
        One per strategy, >= 0, e.g. ``[0.5, 0.5]`` (the default for sum is 1/K each, for
        priority 1 each).

    Returns
    -------
    Combined
        A Strategy: ``barlab.backtest(combined, bars)`` runs it, and ``Result.attribution``
        tells each child's orders, fees and P&L (:mod:`barlab.attribution`).

    >>> from barlab.strategies.sma_crossover import SmaCrossover            # doctest: +SKIP
    >>> from barlab.strategies.rsi_mean_reversion import RsiMeanReversion   # doctest: +SKIP
    >>> both = combine([SmaCrossover(), RsiMeanReversion()], weights=[0.5, 0.5])  # doctest: +SKIP
    """
    return Combined(strategies, how=how, weights=weights)


def _keys(labels: list[str]) -> tuple[str, ...]:
    """Unique keys for the children: their labels, ``name#2`` for a second one of a name."""
    out, seen = [], {}
    for name in labels:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return tuple(out)


def _weights_of(key: str, child: Strategy, bars: Bars) -> np.ndarray:
    """Child ``key``'s target after each bar, as a fraction of equity (0 before any)."""
    from barlab.engine.backtest import to_target

    shape = bars.close.shape
    signals = _checked_signals(key, child, bars)
    target = to_target(signals, shape).copy()  # checks the Signals; NaN = no change
    if signals.size_type == "equal":
        target /= max(shape[1], 1)
    return carry_forward(target)


def _step_sides(signals: Signals, sides: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The last row of entries/exits ``signals`` stepped from ``sides`` (the side held per
    symbol after the row before): the new side where it changes (NaN elsewhere), and the
    sides after it, by the rule of ``signals_to_target_nb``."""
    from barlab.engine.targets import signal_step_nb

    arrays = (signals.entries, signals.exits, signals.short_entries, signals.short_exits)
    row, after = np.full(len(sides), np.nan), sides.copy()
    for j in range(len(sides)):
        flags = [bool(a[-1, j]) if a is not None else False for a in arrays]
        new = signal_step_nb(int(sides[j]), *flags)
        if new != sides[j]:
            row[j], after[j] = float(new), new
    return row, after


def _checked_signals(key: str, child: Strategy, bars: Bars) -> Signals:
    """Child ``key``'s Signals on ``bars``, if a combination can trade them."""
    shape = bars.close.shape
    signals = child.signals(bars)
    if not isinstance(signals, Signals):
        raise StrategyError(f"{key}.signals() must return Signals, got {type(signals).__name__}")
    for name in ("limit_price", "stop_price", "trail_stop"):
        prices = getattr(signals, name, None)
        if prices is not None and np.any(~np.isnan(np.asarray(prices, dtype=np.float64))):
            raise StrategyError(
                f"combine: {key} sets Signals.{name}; a combination trades market orders only "
                "(the children's order prices could conflict on one account); backtest "
                f"{key} on its own, or give it no order prices"
            )
    if signals.size_type in ("notional", "shares"):
        unit = "dollars" if signals.size_type == "notional" else "shares"
        raise StrategyError(
            f"combine: {key} gives size_type={signals.size_type!r} targets ({unit}), which "
            "cannot become fractions of equity without the account's equity; give them as "
            "size_type='weight' (0.25 = a quarter of equity) or 'equal'"
        )
    signals.check(shape)
    return signals


def carry_forward(target: np.ndarray) -> np.ndarray:
    """Each column's last given value (NaN = no change), 0 before the first one."""
    n = target.shape[0]
    rows = np.where(np.isnan(target), -1, np.arange(n)[:, None])
    last = np.maximum.accumulate(rows, axis=0)
    held = np.take_along_axis(target, np.maximum(last, 0), axis=0)
    return np.where(last >= 0, held, 0.0)


def load_combined(
    spec: str,
    params: Mapping[str, str],
    *,
    how: str | None = None,
    extra: list[Path] | None = None,
) -> Combined:
    """The combination named ``spec`` (``"sma_crossover+rsi_mean_reversion"``), as the command
    line gives it: ``params`` keyed ``<strategy>.<name>`` (``"sma_crossover.fast": "20"``)
    or ``weights`` (``"0.7,0.3"``); ``how`` is sum (the default) or priority."""
    from barlab.strategy import load_strategy

    names = [n.strip() for n in spec.split("+")]
    if len(names) < 2 or not all(names):
        raise StrategyError(
            f"{spec!r}: join two or more strategy names with +, e.g. "
            "sma_crossover+rsi_mean_reversion"
        )
    classes = [load_strategy(n, extra) for n in names]
    keys = _keys(names)
    own: dict[str, dict[str, str]] = {k: {} for k in keys}
    weights = None
    for item, value in params.items():
        if item == "weights":
            weights = _parse_weights(value, len(keys))
            continue
        key, dot, name = item.rpartition(".")
        if not dot or key not in own:
            example = f"{keys[0]}.{name or item}"
            raise StrategyError(
                f"{spec}: parameter {item!r} names none of its strategies ({', '.join(keys)}); "
                f"write <strategy>.<name>=VALUE, e.g. --param {example}=20, or "
                f"--param weights=0.5,0.5"
            )
        own[key][name] = value
    children = [cls(**own[key]) for cls, key in zip(classes, keys, strict=True)]
    return Combined(children, how=how or "sum", weights=weights)


def _parse_weights(text: str, k: int) -> list[float]:
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError:
        weights = []
    if len(weights) != k:
        raise StrategyError(
            f"weights={text!r}: give {k} numbers separated by commas, one per strategy, "
            f"e.g. --param weights={','.join(['0.5'] * k) if k == 2 else ','.join(['1'] * k)}"
        )
    return weights
