"""Promotion records: the proof that a backtested strategy earned paper trading, and the check
the live bridge makes before it trades (:func:`require_promoted`).

``backtest promote`` (gates in :mod:`barlab.live.gates`) writes one record per strategy to
``reports/promotions/<strategy>.json``, atomically: the strategy, its parameters, the SHA-256
of its source file, the run and its data version, the metrics, every gate with its threshold,
value and outcome, the time and barlab's version. Never a secret: nothing from the
environment goes in.

A combination (``a+b``, :func:`barlab.combine`) is promoted as one strategy named by its
children, ``promotions/a+b.json``; its record's ``combination`` says how they share the
account, their weights, and each child's name, parameters, source file and SHA-256, and
:func:`check_promoted` refuses it when any of these differs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from barlab.atomic import write_text
from barlab.combined import Combined
from barlab.errors import NotPromotedError
from barlab.strategy import Strategy

RECORD_FORMAT = 1
PROMOTIONS_DIR = "promotions"


@dataclass(frozen=True, slots=True, kw_only=True)
class Gate:
    """One promotion gate and how the run fared.

    Attributes
    ----------
    name : str
        e.g. ``"min_sharpe"``.
    description : str
        What is measured, e.g. ``"annualised Sharpe ratio of the backtest"``.
    op : str
        How value meets threshold: ``">="``, ``"<="`` or ``"=="``.
    threshold : bool, int, float or str
        e.g. ``1.0``; for a drawdown a positive fraction (0.25 = 25 %).
    value : bool, int, float, str or None
        What the run showed, e.g. ``1.37``; None when the gate could not run.
    status : str
        ``"pass"``, ``"fail"``, ``"not run"`` (no evidence, required: fails) or ``"skipped"``
        (no evidence, optional: passes).
    detail : str
        One line for people, e.g. the walk-forward run used or why a gate failed.
    """

    name: str
    description: str
    op: str
    threshold: Any
    value: Any
    status: str
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status in ("pass", "skipped")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN and infinity become None)."""
        return {
            "name": self.name, "description": self.description, "op": self.op,
            "threshold": _plain(self.threshold), "value": _plain(self.value),
            "status": self.status, "passed": self.passed, "detail": self.detail,
        }  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class PromotionRecord:
    """What was promoted, on what evidence (the content of ``promotions/<strategy>.json``).

    Attributes
    ----------
    strategy : str
        e.g. ``"sma_crossover"``.
    params : dict
        The parameters promoted, e.g. ``{"fast": 10, "slow": 50, "allow_short": False}``.
    source_file : str
        The strategy's source file, e.g. ``"/home/me/lab/strategies/sma_crossover.py"``.
    source_sha256 : str
        SHA-256 of that file's bytes when promoted (hex, 64 characters).
    run_id : str
        The backtest run that earned it.
    data : dict
        The run's data: symbols, timeframe, source, synthetic, start, end, n_bars,
        data_version.
    metrics : dict
        The run's :class:`barlab.metrics.Metrics` (NaN and infinity as None).
    gates : list of dict
        Every gate (:meth:`Gate.to_dict`).
    walkforward_run, parity_run : str or None
        The evidence used, when there was some.
    combination : dict or None
        For several strategies on one account (:func:`describe_combination`): ``how``,
        ``weights`` and ``children`` (each: ``key``, ``strategy``, ``params``,
        ``source_file``, ``source_sha256``); None for one strategy. ``source_sha256`` is
        then the SHA-256 over the children's (:meth:`barlab.combined.Combined.source_hash`).
    promoted_at : str
        ISO 8601 UTC, e.g. ``"2026-11-24T05:50:12Z"``.
    barlab_version : str
    """

    strategy: str
    params: dict[str, Any]
    source_file: str
    source_sha256: str
    run_id: str
    data: dict[str, Any]
    metrics: dict[str, Any]
    gates: list[dict[str, Any]]
    walkforward_run: str | None = None
    parity_run: str | None = None
    promoted_at: str = ""
    barlab_version: str = ""
    format: int = RECORD_FORMAT
    extra: dict[str, Any] = field(default_factory=dict)
    combination: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return all(g["passed"] for g in self.gates)

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in _FIELDS}
        out["passed"] = self.passed
        return out

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PromotionRecord:
        return cls(**{k: doc[k] for k in _FIELDS if k in doc})


_FIELDS = (
    "format", "strategy", "params", "source_file", "source_sha256", "run_id", "data", "metrics",
    "gates", "walkforward_run", "parity_run", "promoted_at", "barlab_version", "extra",
    "combination",
)  # fmt: skip


def record_path(strategy: str, *, reports_dir: str | os.PathLike[str]) -> Path:
    """Where the promotion record of ``strategy`` lives: ``reports/promotions/<name>.json``."""
    return Path(reports_dir) / PROMOTIONS_DIR / f"{strategy}.json"


def write_record(record: PromotionRecord, *, reports_dir: str | os.PathLike[str]) -> Path:
    """Write ``record`` atomically (temporary file, fsync, rename); refuses a failed one."""
    if not record.passed:
        failed = [g["name"] for g in record.gates if not g["passed"]]
        raise ValueError(f"a promotion that failed gates {failed} is never written")
    path = record_path(record.strategy, reports_dir=reports_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(record.to_dict(), indent=2, allow_nan=False) + "\n")
    return path


def read_record(strategy: str, *, reports_dir: str | os.PathLike[str]) -> PromotionRecord:
    """The promotion record of ``strategy``; NotPromotedError when there is none (or it is
    unreadable)."""
    path = record_path(strategy, reports_dir=reports_dir)
    again = f"run `backtest promote {strategy} --run <run-id>`"
    if not path.is_file():
        raise NotPromotedError(
            f"{strategy} is not promoted: no promotion record at {path}; backtest it, then "
            f"{again} (the gates are in the [promotion] config section)"
        )
    try:
        doc = json.loads(path.read_text())
        record = PromotionRecord.from_dict(doc)
    except (OSError, ValueError, TypeError) as e:
        raise NotPromotedError(f"promotion record {path} is unreadable ({e}); {again}") from e
    if record.format != RECORD_FORMAT or not record.source_sha256:
        raise NotPromotedError(f"promotion record {path} is from another barlab version; {again}")
    return record


def require_promoted(
    strategy_cls: type[Strategy],
    params: Mapping[str, Any] | None = None,
    *,
    reports_dir: str | os.PathLike[str],
) -> PromotionRecord:
    """The promotion record that lets ``strategy_cls`` with ``params`` trade, or an error.

    Parameters
    ----------
    strategy_cls : type[Strategy]
        e.g. ``load_strategy("sma_crossover")``.
    params : mapping, optional
        The parameters it will trade with, e.g. ``{"fast": 10, "slow": 50}``; missing ones take
        their defaults and strings are coerced, as on the command line. None: all defaults.
    reports_dir : path
        Where ``promotions/`` lives, e.g. ``config.reports_dir``.

    Raises
    ------
    NotPromotedError (exit 2)
        As :func:`check_promoted`.
    """
    return check_promoted(strategy_cls(**dict(params or {})), reports_dir=reports_dir)


def check_promoted(strategy: Strategy, *, reports_dir: str | os.PathLike[str]) -> PromotionRecord:
    """The promotion record that lets ``strategy`` (one, or a combination) trade, or an error.

    Raises
    ------
    NotPromotedError (exit 2)
        No record; the parameters differ from the promoted ones (for a combination: its
        children, how or weights too); or a source file changed since (its SHA-256 differs),
        e.g. ``"sma_crossover.py changed since its promotion on 2026-11-24T05:50:12Z; ..."``.
    """
    name = strategy.label()
    record = read_record(name, reports_dir=reports_dir)
    again = f"`{promote_command(strategy)}`"
    if isinstance(strategy, Combined):
        _check_combination(strategy, record, again)
    wanted = plain_params(strategy.get_params())
    if wanted != record.params:
        differ = [k for k in {**wanted, **record.params} if wanted.get(k) != record.params.get(k)]
        raise NotPromotedError(
            f"{name} was promoted on {record.promoted_at} with "
            f"{_show({k: record.params.get(k) for k in differ})}, not "
            f"{_show({k: wanted.get(k) for k in differ})}; trade the promoted parameters, or "
            f"backtest these and run {again}"
        )
    if isinstance(strategy, Combined):
        return record  # each child's source was checked above
    current = source_sha256(type(strategy))
    if current != record.source_sha256:
        file = Path(source_file(type(strategy)) or record.source_file).name
        what = "cannot be read" if not current else "changed"
        raise NotPromotedError(
            f"{file} {what} since its promotion on {record.promoted_at} (SHA-256 "
            f"{record.source_sha256[:12]}…, now {current[:12] or 'unreadable'}); backtest the "
            f"new code and run backtest promote again: {again}"
        )
    return record


def describe_combination(strategy: Combined) -> dict[str, Any]:
    """What identifies a combination in its promotion record: how, weights and each child's
    key, strategy name, parameters, source file and its SHA-256 now."""
    children = [
        {
            "key": key, "strategy": child.label(),
            "params": plain_params(child.get_params()),
            "source_file": source_file(type(child)), "source_sha256": source_sha256(type(child)),
        }
        for key, child in zip(strategy.keys, strategy.strategies, strict=True)
    ]  # fmt: skip
    return {"how": strategy.how, "weights": list(strategy.weights), "children": children}


def promote_command(strategy: Strategy) -> str:
    """The command that promotes ``strategy`` as it is configured now, e.g.
    ``"backtest promote a+b --combine sum --param weights=0.6,0.4 --run <run-id>"``."""
    if not isinstance(strategy, Combined):
        return f"backtest promote {strategy.label()} --run <run-id>"
    weights = ",".join(f"{w:g}" for w in strategy.weights)
    return (
        f"backtest promote {strategy.label()} --combine {strategy.how} --param "
        f"weights={weights} --run <run-id>"
    )


def _check_combination(strategy: Combined, record: PromotionRecord, again: str) -> None:
    """NotPromotedError naming the first difference between ``strategy`` and the promoted
    combination: its children, how, weights, a child's parameters or a child's source."""
    name, when = strategy.label(), record.promoted_at
    promoted = record.combination
    if not promoted:
        raise NotPromotedError(
            f"promotion record of {name} (from {when}) does not describe the combination; "
            f"promote it again: {again}"
        )
    now = describe_combination(strategy)
    keys = [c["key"] for c in promoted["children"]]
    if keys != [c["key"] for c in now["children"]]:
        raise NotPromotedError(
            f"{name}: the promoted combination's strategies are {'+'.join(keys)}; trade those, "
            f"or backtest this one and run {again}"
        )
    for what in ("how", "weights"):
        if now[what] != promoted[what]:
            raise NotPromotedError(
                f"{name} was promoted on {when} with {what}={promoted[what]!r}, not "
                f"{now[what]!r}; give --combine {promoted['how']} --param weights="
                f"{','.join(f'{w:g}' for w in promoted['weights'])}, or backtest this "
                f"combination and run {again}"
            )
    for was, child in zip(promoted["children"], now["children"], strict=True):
        if child["params"] != was["params"]:
            differ = [k for k in child["params"] if child["params"][k] != was["params"].get(k)]
            key = child["key"]
            flags = " ".join(f"--param {key}.{k}={was['params'].get(k)}" for k in differ)
            raise NotPromotedError(
                f"{name}: {child['key']} was promoted on {when} with "
                f"{_show({k: was['params'].get(k) for k in differ})}, not "
                f"{_show({k: child['params'][k] for k in differ})}; give {flags} as "
                f"promoted, or backtest these and run {again}"
            )
        if child["source_sha256"] != was["source_sha256"] or not child["source_sha256"]:
            file = Path(child["source_file"] or was["source_file"]).name
            what = "cannot be read" if not child["source_sha256"] else "changed"
            raise NotPromotedError(
                f"{file} ({child['key']}, in {name}) {what} since the combination's promotion "
                f"on {when} (SHA-256 {was['source_sha256'][:12]}…, now "
                f"{child['source_sha256'][:12] or 'unreadable'}); backtest the combination "
                f"with the new code and run {again}"
            )


def source_file(strategy_cls: type[Strategy]) -> str:
    """The strategy's source file path ("" when unknown)."""
    import inspect

    try:
        return strategy_cls.source_path or inspect.getsourcefile(strategy_cls) or ""
    except TypeError:
        return ""


def source_sha256(strategy_cls: type[Strategy]) -> str:
    """SHA-256 (hex) of the strategy's source file as it is now ("" when unreadable)."""
    path = source_file(strategy_cls)
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else ""
    except OSError:
        return ""


def now_iso() -> str:
    """The current time, ISO 8601 UTC to the second: ``"2026-11-24T05:50:12Z"``."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def plain_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as they read back from JSON (tuples become lists, numpy scalars Python)."""
    return json.loads(json.dumps(dict(params), default=_default))


def _default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"parameter value {value!r} cannot be saved in a promotion record")


def _show(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items()) or "no parameters"


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
