"""The promotion gates: is a saved backtest run good enough, and honest enough, to trade?

:func:`evaluate_promotion` loads the run, reloads its bars from the cache, runs the full
look-ahead check on them, finds the walk-forward and replay-parity evidence
(:mod:`barlab.live.evidence`) and judges every gate against the ``[promotion]`` config. The
outcome is a :class:`~barlab.live.promotion.PromotionRecord`, written only when every gate
passed (:func:`~barlab.live.promotion.write_record`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from barlab.combined import Combined
from barlab.config import Config, PromotionConfig
from barlab.errors import UsageError
from barlab.live.evidence import Evidence, find_parity, find_walkforward
from barlab.live.promotion import (
    Gate,
    PromotionRecord,
    describe_combination,
    now_iso,
    plain_params,
    source_file,
)
from barlab.strategy import Strategy

DATA_KEYS = ("symbols", "timeframe", "source", "synthetic", "start", "end", "n_bars",
             "data_version")  # fmt: skip


def evaluate_promotion(
    strategy_cls: type[Strategy] | Combined,
    run_id: str,
    *,
    config: Config,
    walkforward: str | None = None,
    parity: str | None = None,
    asked: Mapping[str, Any] | None = None,
) -> PromotionRecord:
    """Judge the saved backtest ``run_id`` of ``strategy_cls`` against every gate.

    Parameters
    ----------
    strategy_cls : type[Strategy] or Combined
        e.g. ``load_strategy("sma_crossover")``, or a combination
        (``load_combined("sma_crossover+rsi_mean_reversion", {})``); the run must be a
        backtest of it. The run's parameters are the ones judged and promoted.
    run_id : str
        A saved run under ``config.reports_dir/runs`` (or its folder path).
    config : Config
        Thresholds from ``[promotion]``; the cache and the runs from ``[data]``/``[system]``.
    walkforward, parity : str, optional
        Run ids of the walk-forward and the replay parity to use; default: the latest saved
        run of the same strategy that fits (walk-forward: same symbols, timeframe and source,
        the run's parameters in its grid; parity: same parameters).
    asked : mapping, optional
        Parameters the caller named (``--param``, ``--combine``), as ``get_params()`` gives
        them, e.g. ``{"weights": [0.6, 0.4]}``: each must be the run's, else a UsageError.

    Returns
    -------
    PromotionRecord
        ``record.passed`` says whether every gate passed; nothing is written here.

    Raises
    ------
    UsageError
        The run is not a backtest of this strategy (or of the parameters ``asked``), or the
        evidence given does not fit it.
    """
    from barlab.research.lookahead import check_lookahead
    from barlab.result import load_run

    reports = config.reports_dir
    name = strategy_cls.label()  # a class's, or the combination's "a+b"
    run_path = _backtest_run(run_id, name, reports)
    run = load_run(str(run_path))
    info = run.info
    strategy = _as_run(strategy_cls, info["params"])
    _check_asked(asked or {}, info["params"], run_id, name)
    wf = find_walkforward(strategy, info, reports_dir=reports, run_id=walkforward)
    par = find_parity(strategy, reports_dir=reports, run_id=parity)
    bars = _reload_bars(info, run.config, config)  # after every usage error: this is the slow part
    lookahead = check_lookahead(strategy, bars)
    current = strategy.source_hash()
    rules = config.promotion
    gates = [
        _source_gate(info.get("strategy_hash", ""), current),
        *_metric_gates(run.metrics, rules),
        _data_gate(info, bars.version, rules),
        _lookahead_gate(lookahead),
        _walkforward_gate(wf, rules),
        _parity_gate(par, rules),
    ]
    from barlab import __version__

    return PromotionRecord(
        strategy=name,
        params=plain_params(strategy.get_params()),
        source_file=_source_files(strategy),
        source_sha256=current,
        run_id=run.run_id,
        data={k: info.get(k) for k in DATA_KEYS},
        metrics={k: _finite(v) for k, v in asdict(run.metrics).items()},
        gates=[g.to_dict() for g in gates],
        walkforward_run=wf.run_id if wf else None,
        parity_run=par.run_id if par else None,
        promoted_at=now_iso(),
        barlab_version=__version__,
        extra={"lookahead": lookahead.to_dict(), "thresholds": asdict(rules)},
        combination=describe_combination(strategy) if isinstance(strategy, Combined) else None,
    )


def _as_run(strategy: type[Strategy] | Combined, params: Mapping[str, Any]) -> Strategy:
    """``strategy`` (a class, or a combination) with a saved run's parameters."""
    if isinstance(strategy, Combined):
        return strategy.with_params(params)
    return strategy(**params)


def _check_asked(asked: Mapping[str, Any], ran: Mapping[str, Any], run_id: str, name: str) -> None:
    """UsageError naming a parameter given on the command line that the run did not use."""
    for key, value in asked.items():
        want, had = plain_params({key: value})[key], plain_params({key: ran.get(key)})[key]
        if want != had:
            raise UsageError(
                f"--run {run_id} backtested {name} with {key}={had!r}, not {want!r}; promote "
                f"the run as it is (drop that flag: the run's parameters are promoted), or "
                f"backtest {key}={want!r} and promote that run"
            )


def _source_files(strategy: Strategy) -> str:
    """The strategy's source file; a combination's children's, joined by ", "."""
    if isinstance(strategy, Combined):
        return ", ".join(source_file(type(c)) for c in strategy.strategies)
    return source_file(type(strategy))


def _backtest_run(run_id: str, name: str, reports: Path) -> Path:
    """The folder of a saved *backtest* run of strategy ``name``; UsageError otherwise."""
    from barlab.research.runs import find_run

    path = find_run(run_id, reports)
    try:
        doc = json.loads((path / "run.json").read_text())
    except (OSError, ValueError) as e:
        raise UsageError(f"--run {run_id}: {path / 'run.json'} is unreadable ({e})") from e
    kind = doc.get("kind") or doc.get("info", {}).get("kind")
    if kind:
        raise UsageError(
            f"--run {run_id} is a {kind} run; promote a backtest run, e.g. from "
            f"`backtest run {name} --from ... --to ...`"
        )
    ran = doc.get("info", {}).get("strategy")
    if ran != name:
        raise UsageError(
            f"--run {run_id} is a backtest of {ran}, not {name}; give a run of {name} "
            f"(`backtest run {name} ...` prints its run id)"
        )
    return path


def _reload_bars(info: dict[str, Any], run_config: dict[str, Any], config: Config) -> Any:
    """The run's bars, read again from the cache: same symbols, timeframe, source, session
    and requested dates.

    A data version hashes the *requested* dates too. Runs record them (``info["requested"]``);
    for older runs, which recorded only their first and last bars, the request lay between the
    session before the first bar and the session after the last, so the dates in those gaps
    whose version matches are reloaded. When none does (the cache changed), the bars' own dates
    are, and the data gate says so.
    """
    from barlab.data.calendar import NEW_YORK
    from barlab.data.panel import load_bars

    if not info.get("start") or not info.get("end"):
        raise UsageError("the run has no bars to check (empty range); run the backtest again")
    requested = info.get("requested") or ["", ""]
    if all(requested):
        start, end = (dt.date.fromisoformat(d) for d in requested)
        session = run_config.get("data", {}).get("session") or config.data.session
        return load_bars(
            symbols=list(info["symbols"]), start=start, end=end, timeframe=info["timeframe"],
            source=info["source"], data_dir=config.data_dir, session=session, config=config,
        )  # fmt: skip
    first, last = (
        dt.datetime.fromisoformat(info[k]).astimezone(NEW_YORK).date() for k in ("start", "end")
    )
    session = run_config.get("data", {}).get("session") or config.data.session
    key = {"symbols": list(info["symbols"]), "timeframe": info["timeframe"],
           "source": info["source"]}  # fmt: skip

    def load(start: dt.date, end: dt.date) -> Any:
        return load_bars(
            start=start, end=end, data_dir=config.data_dir, session=session, config=config, **key
        )

    found = _requested_dates(first, last, info.get("data_version"), key, config.data_dir)
    if found is None:
        bars = load(first, last)  # fills the cache where it is missing, then look again
        found = _requested_dates(first, last, info.get("data_version"), key, config.data_dir)
        if found is None or found == (first, last):
            return bars
    return load(*found)


def _requested_dates(
    first: dt.date, last: dt.date, version: Any, key: dict[str, Any], data_dir: Path
) -> tuple[dt.date, dt.date] | None:
    """The (start, end) around the bars' dates whose cached data version is ``version``."""
    from barlab.data.calendar import sessions, supported_range
    from barlab.data.store import Store

    lo, hi = supported_range()
    before = sessions(max(lo, first - dt.timedelta(days=10)), first - dt.timedelta(days=1))
    after = sessions(last + dt.timedelta(days=1), min(hi, last + dt.timedelta(days=10)))
    earliest = before.dates[-1].item() + dt.timedelta(days=1) if len(before) else first
    latest = after.dates[0].item() - dt.timedelta(days=1) if len(after) else last
    store = Store(data_dir)
    for start in _days(first, earliest, step=-1):
        for end in _days(last, latest, step=1):
            if store.version(start=start, end=end, **key) == version:
                return start, end
    return None


def _days(origin: dt.date, limit: dt.date, *, step: int) -> list[dt.date]:
    count = abs((limit - origin).days) + 1
    return [origin + dt.timedelta(days=step * k) for k in range(count)]


def _source_gate(ran_hash: str, current: str) -> Gate:
    same = bool(current) and ran_hash == current
    detail = "" if same else (
        "the strategy file cannot be read" if not current else
        "the strategy file changed since the run; backtest the current code and promote that run"
    )  # fmt: skip
    return Gate(
        name="source_unchanged", description="strategy source file is the one backtested",
        op="==", threshold="unchanged", value="unchanged" if same else "changed",
        status="pass" if same else "fail", detail=detail,
    )  # fmt: skip


def _metric_gates(metrics: Any, rules: PromotionConfig) -> list[Gate]:
    drawdown = -float(metrics.max_drawdown)
    sharpe = float(metrics.sharpe)
    return [
        _compare("min_trades", "closed trades in the backtest", ">=", rules.min_trades,
                 int(metrics.n_trades)),
        _compare("min_sharpe", "annualised Sharpe ratio of the backtest", ">=",
                 rules.min_sharpe, sharpe),
        _compare("max_drawdown", "deepest fall of equity, a fraction", "<=",
                 rules.max_drawdown, drawdown),
    ]  # fmt: skip


def _compare(name: str, description: str, op: str, threshold: float, value: float) -> Gate:
    ok = math.isfinite(value) and (value >= threshold if op == ">=" else value <= threshold)
    detail = "" if math.isfinite(value) else "undefined for this run (no returns or no trades?)"
    return Gate(
        name=name, description=description, op=op, threshold=threshold, value=value,
        status="pass" if ok else "fail", detail=detail,
    )  # fmt: skip


def _data_gate(info: dict[str, Any], reloaded_version: str, rules: PromotionConfig) -> Gate:
    synthetic = bool(info.get("synthetic"))
    same = reloaded_version == info.get("data_version")
    detail = []
    if not same:
        detail.append(
            f"the cached bars changed since the run (data version {info.get('data_version')}, "
            f"now {reloaded_version}); run the backtest again"
        )
    if synthetic:
        detail.append(
            "SYNTHETIC demo-market bars"
            + ("" if rules.allow_synthetic else "; [promotion] allow_synthetic is false")
        )
    ok = same and (rules.allow_synthetic or not synthetic)
    return Gate(
        name="data", description="the run's bars, reloaded from the cache, are unchanged",
        op="==", threshold=info.get("data_version"), value=reloaded_version,
        status="pass" if ok else "fail", detail="; ".join(detail),
    )  # fmt: skip


def _lookahead_gate(report: Any) -> Gate:
    return Gate(
        name="lookahead", description="full look-ahead check on the run's bars", op="==",
        threshold="clean", value="clean" if report.clean else "look-ahead",
        status="pass" if report.clean else "fail",
        detail=f"{report.n_checked} prefixes checked" if report.clean else str(report),
    )  # fmt: skip


def _walkforward_gate(wf: Evidence | None, rules: PromotionConfig) -> Gate:
    desc = "out-of-sample Sharpe ratio of the walk-forward"
    if wf is None:
        return _missing(
            "walkforward",
            desc,
            ">=",
            rules.min_oos_sharpe,
            rules.require_walkforward,
            "walk-forward",
            "backtest walkforward",
        )
    sharpe = float(wf.value)
    gate = _compare("walkforward", desc, ">=", rules.min_oos_sharpe, sharpe)
    return replace(gate, detail=f"run {wf.run_id}; {wf.detail}".rstrip("; "))


def _parity_gate(par: Evidence | None, rules: PromotionConfig) -> Gate:
    desc = "replay parity with the backtest is exact"
    if par is None:
        return _missing("parity", desc, "==", True, rules.require_parity, "replay parity",
                        "backtest live STRATEGY --replay")  # fmt: skip
    exact = par.value is True
    return Gate(
        name="parity", description=desc, op="==", threshold=True, value=exact,
        status="pass" if exact else "fail", detail=f"run {par.run_id}; {par.detail}",
    )  # fmt: skip


def _missing(name, description, op, threshold, required, what, command) -> Gate:
    key = "require_walkforward" if name == "walkforward" else "require_parity"
    detail = (
        f"no {what} result fits this run; run `{command}` first, or set [promotion] {key} = false"
        if required else f"no {what} result fits this run (optional: [promotion] {key} = false)"
    )  # fmt: skip
    return Gate(
        name=name, description=description, op=op, threshold=threshold, value=None,
        status="not run" if required else "skipped", detail=detail,
    )  # fmt: skip


def _finite(value: float) -> float | None:
    return None if isinstance(value, float) and not math.isfinite(value) else value
