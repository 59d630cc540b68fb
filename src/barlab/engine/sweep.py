"""`sweep(strategy_cls, bars, **grid_and_options) -> SweepResult`: a grid of full backtests.

Every combination of parameters is backtested through the same engine as :func:`backtest`
(the strategy's signals, :func:`simulate`, costs, risk rules and exits), and only its metrics
are kept (computed by :func:`barlab.metrics.compute_metrics` exactly as a Result computes
them), so a row of the sweep equals ``backtest(strategy_cls(**params), bars, **options)``.

Chunks of combinations are spread over worker threads (the kernels release the GIL); each
worker holds one combination's arrays at a time, in one set of arrays it reuses for every
combination (:class:`barlab.engine.fused.RowRunner`: the kernel, then every statistic in one
fused kernel, into the combination's row), and indicator outputs are computed once per
distinct window and shared by all combinations (:class:`barlab.indicators.SharedResults`),
all within ``max_memory_mb``. No equity curve and no (bars x combinations) array is kept.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from barlab.atomic import publish_folder
from barlab.bars import Bars
from barlab.engine.backtest import Account, BacktestOptions, backtest, simulate, to_target
from barlab.engine.fused import RowRunner
from barlab.errors import ConfigError, StrategyError
from barlab.indicators import SharedResults, shared_results
from barlab.metrics import Metrics, compute_metrics
from barlab.strategy import Param, Signals, Strategy, _coerce

DEFAULT_MAX_MEMORY_MB = 512
SWEEP_FORMAT = 1

Where = Callable[[dict[str, Any]], bool]

_INT_FIELDS = {f.name for f in dataclasses.fields(Metrics) if f.type in (int, "int")}
METRIC_NAMES = tuple(f.name for f in dataclasses.fields(Metrics))
_DTYPES = {int: pl.Int64, float: pl.Float64, bool: pl.Boolean, str: pl.String}


# -- constraints -------------------------------------------------------------------------------

_ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Name, ast.Load,
    ast.Constant, ast.IfExp,
)  # fmt: skip


def compile_where(expr: str, names: Iterable[str]) -> Where:
    """Turn ``"fast < slow"`` into a callable on a params dict.

    Only parameter names, numbers, strings, ``True``/``False``, arithmetic, comparisons and
    ``and``/``or``/``not`` are allowed: no calls, attributes, subscripts or builtins.
    Raises StrategyError naming the problem.
    """
    known = list(names)
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as e:
        raise StrategyError(f"constraint {expr!r} is not a valid expression ({e.msg})") from e
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise StrategyError(
                f"constraint {expr!r}: {type(node).__name__} is not allowed; use parameter "
                "names, numbers, comparisons and and/or/not, e.g. 'fast < slow'"
            )
        if isinstance(node, ast.Name) and node.id not in known:
            raise StrategyError(
                f"constraint {expr!r}: unknown name {node.id!r}; the strategy's parameters "
                f"are {', '.join(known) or 'none'}"
            )
    code = compile(tree, "<where>", "eval")

    def where(params: dict[str, Any]) -> bool:
        return bool(eval(code, {"__builtins__": {}}, dict(params)))

    where.expr = expr  # type: ignore[attr-defined]
    return where


# -- the plan: combinations, before any backtest ----------------------------------------------


@dataclass(frozen=True, slots=True)
class SweepPlan:
    """The combinations to run, and why the others will not be."""

    strategy_cls: type[Strategy]
    grid: dict[str, list[Any]]
    combos: list[dict[str, Any]]
    n_grid: int
    n_skipped: int
    n_invalid: int
    where: str | None


def split_kwargs(
    strategy_cls: type[Strategy], kwargs: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split keywords into (parameter grid, backtest options)."""
    names = {p.name for p in strategy_cls.params()}
    grid = {k: v for k, v in kwargs.items() if k in names}
    options = {k: v for k, v in kwargs.items() if k not in names}
    return grid, options


def _values(label: str, param: Param, values: Any) -> list[Any]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        values = [values]
    out = [_coerce(label, param, v) for v in values]
    if not out:
        raise StrategyError(f"{label} parameter {param.name}: no values to sweep (empty range?)")
    return out


def plan(
    strategy_cls: type[Strategy], grid: Mapping[str, Any], where: Where | str | None = None
) -> SweepPlan:
    """Expand ``grid``, apply the constraint ``where`` and the strategy's own validation.

    Raises StrategyError for an unknown parameter, an empty list of values, a value of the
    wrong type, a constraint that leaves no combination, or no valid combination at all.
    """
    if not (isinstance(strategy_cls, type) and issubclass(strategy_cls, Strategy)):
        raise StrategyError(
            f"sweep() takes a Strategy class, got {strategy_cls!r}; e.g. sweep(SmaCrossover, "
            "bars, fast=range(5, 55), slow=range(20, 220, 10))"
        )
    label = strategy_cls.label()
    params = {p.name: p for p in strategy_cls.params()}
    for name in grid:
        if name not in params:
            raise StrategyError(
                f"{label} has no parameter {name!r}; it takes {', '.join(params) or 'none'}"
            )
    if not grid:
        raise StrategyError(
            f"nothing to sweep: give values for at least one of {label}'s parameters "
            f"({', '.join(params) or 'none'})"
        )
    values = {name: _values(label, params[name], grid[name]) for name in params if name in grid}
    expr = where if isinstance(where, str) else getattr(where, "expr", None)
    if isinstance(where, str):
        where = compile_where(where, params)
    defaults = {p.name: p.default for p in params.values()}
    n_grid = math.prod(len(v) for v in values.values())
    kept: list[dict[str, Any]] = []
    n_skipped = 0
    for combo in itertools.product(*values.values()):
        chosen = dict(zip(values, combo, strict=True))
        if where is not None and not where({**defaults, **chosen}):
            n_skipped += 1
            continue
        kept.append(chosen)
    if not kept:
        raise StrategyError(
            f"the constraint {expr or 'where'!r} leaves none of the {n_grid} combinations; "
            "loosen it or widen the ranges"
        )
    combos: list[dict[str, Any]] = []
    first_error = ""
    for chosen in kept:
        try:
            strategy_cls(**chosen)
        except StrategyError as e:
            first_error = first_error or str(e)
            continue
        combos.append(chosen)
    if not combos:
        raise StrategyError(
            f"none of the {len(kept)} combinations is valid for {label}: {first_error}"
        )
    return SweepPlan(
        strategy_cls=strategy_cls, grid=values, combos=combos, n_grid=n_grid,
        n_skipped=n_skipped, n_invalid=len(kept) - len(combos), where=expr,
    )  # fmt: skip


# -- running ---------------------------------------------------------------------------------


def combo_metrics(
    bars: Bars, signals: Signals, options: BacktestOptions, *, account: Account | None = None
) -> Metrics:
    """One combination's metrics, computed exactly as :class:`barlab.Result` computes them."""
    sim = simulate(
        bars, to_target(signals, bars.close.shape), options, size_type=signals.size_type,
        limit_price=signals.limit_price, stop_price=signals.stop_price,
        time_in_force=signals.time_in_force, account=account,
    )  # fmt: skip
    return compute_metrics(
        sim.equity,
        periods_per_year=bars.periods_per_year,
        initial_cash=options.cash,
        trade_pnl=sim.trades_f[:, 3],
        position_mask=np.any(sim.positions != 0.0, axis=1),
        fees=float(pl.Series(sim.trades_f[:, 4], dtype=pl.Float64).sum()),
    )


def _signals(strategy: Strategy, bars: Bars) -> Signals:
    try:
        signals = strategy.signals(bars)
    except ValueError as e:
        if "read-only" not in str(e):
            raise
        raise StrategyError(
            f"{strategy.label()}.signals() writes into an indicator's output; in a sweep "
            "indicators are computed once and shared by every combination, so copy before "
            "changing one (e.g. x = sma(bars.close, 20).copy())"
        ) from e
    if not isinstance(signals, Signals):
        raise StrategyError(
            f"{strategy.label()}.signals() must return Signals, got {type(signals).__name__}"
        )
    return signals


@dataclass(frozen=True, slots=True)
class _Job:
    """What every chunk of one sweep shares: the strategy, the bars, the account, the
    indicator outputs computed so far, and the workers' arrays (one set per thread at work)."""

    strategy_cls: type[Strategy]
    bars: Bars
    options: BacktestOptions
    account: Account
    shared: SharedResults
    idle: list[RowRunner] = field(default_factory=list)

    @classmethod
    def of(cls, strategy_cls, bars, options, shared_mb: float) -> _Job:
        return cls(strategy_cls, bars, options, Account.of(bars, options),
                   SharedResults(max_bytes=shared_mb * 2**20))  # fmt: skip

    def run(self, chunk: list[dict[str, Any]]) -> np.ndarray:
        """The chunk's metrics: one row per combination, one column per :data:`METRIC_NAMES`
        (a float64 matrix: 100,000 combinations take 19 MB, not a Python object each)."""
        out = np.empty((len(chunk), len(METRIC_NAMES)))
        try:  # list.pop and append are atomic: each thread at work holds its own arrays
            runner = self.idle.pop()
        except IndexError:
            runner = RowRunner(self.bars, self.options, self.account)
        try:
            with shared_results(self.shared):
                for k, combo in enumerate(chunk):
                    runner.run(_signals(self.strategy_cls(**combo), self.bars), out[k])
        finally:
            self.idle.append(runner)
        return out


# -- worker processes: the data shipped once per worker, chunks of combinations as tasks ----

_WORKER: _Job | None = None


def _strategy_ref(cls: type[Strategy]) -> tuple[str, Any]:
    if cls.__module__.startswith("barlab_user_strategies.") and cls.source_path:
        return ("file", (cls.__module__, cls.name, cls.source_path))
    return ("class", cls)  # importable: pickled by reference


def _load_ref(ref: tuple[str, Any]) -> type[Strategy]:
    kind, value = ref
    if kind == "class":
        return value
    import importlib.util
    import sys

    module_name, name, path = value
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    (cls,) = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, Strategy) and obj.__module__ == module_name
    ]
    cls.name, cls.source_path = name, path
    return cls


def _init_worker(
    ref: tuple[str, Any], bars: Bars, options: BacktestOptions, shared_mb: float
) -> None:
    global _WORKER
    _WORKER = _Job.of(_load_ref(ref), bars, options, shared_mb)


def _worker_chunk(chunk: list[dict[str, Any]]) -> np.ndarray:
    assert _WORKER is not None
    return _WORKER.run(chunk)


_THREAD_VARS = (
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "POLARS_MAX_THREADS",
    "NUMBA_NUM_THREADS",
)  # fmt: skip


@contextlib.contextmanager
def _one_thread_each():
    """Worker processes started inside get one thread each for BLAS, polars and numba: the
    workers themselves use the cores (the parent's libraries are loaded already)."""
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update(dict.fromkeys(_THREAD_VARS, "1"))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def working_set_mb(bars: Bars) -> float:
    """Memory one worker holds while it backtests one combination, MB: the target, positions
    and the strategy's intermediate arrays (about four float64 arrays of bars x symbols), and
    its equity, cash and the statistics' scratch (six float64 arrays of bars)."""
    n, m = bars.close.shape
    return 8 * (4 * max(1, n * m) + 6 * n) / 2**20


def memory_plan(bars: Bars, max_memory_mb: float, n_jobs: int) -> tuple[int, float]:
    """(workers, MB for shared indicator outputs) within ``max_memory_mb``: each worker holds
    one combination at a time; what is left keeps indicators computed once for all."""
    per_worker = working_set_mb(bars)
    workers = max(1, min(n_jobs, int(max_memory_mb // per_worker)))
    return workers, max(0.0, max_memory_mb - workers * per_worker)


@dataclass(frozen=True, kw_only=True, eq=False)
class SweepResult:
    """What a sweep produced.

    Attributes
    ----------
    table : polars DataFrame
        One row per combination run: the swept parameters, then every :class:`Metrics` field;
        sorted by ``sharpe`` descending (NaN last) unless asked otherwise.
    n_grid, n_run, n_skipped, n_invalid : int
        Combinations in the grid, run, left out by the constraint, and rejected by the
        strategy's ``validate()``.
    """

    table: pl.DataFrame
    strategy_cls: type[Strategy]
    bars: Bars = field(repr=False)
    options: dict[str, Any] = field(repr=False)
    grid: dict[str, list[Any]]
    where: str | None
    n_grid: int
    n_run: int
    n_skipped: int
    n_invalid: int
    elapsed_s: float
    chunk_size: int
    n_jobs: int

    @property
    def param_names(self) -> list[str]:
        return list(self.grid)

    def sorted(self, metric: str = "sharpe", *, descending: bool = True) -> pl.DataFrame:
        """The table sorted by ``metric`` (NaN last)."""
        if metric not in METRIC_NAMES:
            raise ConfigError(f"unknown metric {metric!r}; known: {', '.join(METRIC_NAMES)}")
        key = pl.col(metric).cast(pl.Float64).fill_nan(None)
        return self.table.sort(key, descending=descending, nulls_last=True, maintain_order=True)

    def best(self, metric: str = "sharpe", *, descending: bool = True) -> dict[str, Any]:
        """The parameters of the best combination by ``metric``."""
        row = self.sorted(metric, descending=descending).row(0, named=True)
        return {name: row[name] for name in self.param_names}

    def rerun(self, params: Mapping[str, Any] | None = None):
        """A full :class:`barlab.Result` for ``params`` (default: the best by sharpe)."""
        chosen = self.best() if params is None else dict(params)
        return backtest(self.strategy_cls(**chosen), self.bars, **self.options)

    def info(self) -> dict[str, Any]:
        from barlab import __version__

        bars = self.bars
        ts = bars.ts_ns
        opts = BacktestOptions.from_kwargs(**self.options)
        return {
            "kind": "sweep",
            "strategy": self.strategy_cls.label(),
            "grid": self.grid,
            "where": self.where,
            "n_grid": self.n_grid,
            "n_run": self.n_run,
            "n_skipped": self.n_skipped,
            "n_invalid": self.n_invalid,
            "elapsed_s": self.elapsed_s,
            "symbols": list(bars.symbols),
            "timeframe": bars.timeframe,
            "source": bars.source,
            "synthetic": bars.synthetic,
            "start": _iso(ts[0]) if len(ts) else None,
            "end": _iso(ts[-1]) if len(ts) else None,
            "n_bars": len(ts),
            "data_version": bars.version,
            "options": opts.to_dict(),
            "periods_per_year": bars.periods_per_year,
            "barlab_version": __version__,
        }

    def save(
        self,
        reports_dir: str | os.PathLike[str],
        *,
        config: dict | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Path:
        """Save as ``reports_dir/runs/<run-id>/`` (``sweep.parquet`` + ``run.json``); ``extra``
        adds keys to the saved info, e.g. ``{"rerun_best": "<run id>"}``."""
        from barlab.result import _new_run_id

        runs = Path(reports_dir) / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        info = self.info()
        clash = set(extra or {}) & set(info)
        if clash:
            raise ConfigError(
                f"extra info {', '.join(sorted(clash))} would replace the sweep's own"
            )
        info.update(extra or {})
        run_id = _new_run_id(runs, {**info, "strategy": f"{info['strategy']}-sweep"})
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{run_id}-", dir=runs))
        try:
            doc = {
                "format": SWEEP_FORMAT,
                "run_id": run_id,
                "info": info,
                "config": config or {},
            }
            (tmp / "run.json").write_text(
                json.dumps(doc, indent=2, allow_nan=True, default=str) + "\n"
            )
            self.table.write_parquet(tmp / "sweep.parquet")
            publish_folder(tmp, runs / run_id)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return runs / run_id

    def __repr__(self) -> str:
        return (
            f"<SweepResult {self.strategy_cls.label()} {self.n_run} run, "
            f"{self.n_skipped} skipped by the constraint, {self.n_invalid} invalid, "
            f"{self.elapsed_s:.2f} s>"
        )

    def _repr_html_(self) -> str:
        """Jupyter's view: the counts, the grid and the top combinations (polars' own table;
        the engine draws nothing, ``barlab.report.write_sweep_report`` draws the page)."""
        import html

        where = f" where {self.where}" if self.where else ""
        grid = "; ".join(f"{k}: {len(v)} values" for k, v in self.grid.items())
        lines = [
            f"<b>{html.escape(self.strategy_cls.label())}</b> sweep: {self.n_run:,} combinations "
            f"run ({self.n_skipped:,} left out by the constraint, {self.n_invalid:,} invalid), "
            f"{self.elapsed_s:.2f} s",
            html.escape(grid + where),
        ]
        if self.bars.synthetic:
            lines.append("<b style='color:#b00'>SYNTHETIC data (the demo market)</b>")
        top = self.table.head(5)
        shown = [*self.param_names, "sharpe", "total_return", "max_drawdown", "n_trades"]
        table = top.select(list(dict.fromkeys(shown)))._repr_html_()
        return "<div class='barlab-summary'>" + "<br>".join(lines) + table + "</div>"


def sweep(
    strategy_cls: type[Strategy],
    bars: Bars,
    *,
    where: Where | str | None = None,
    max_memory_mb: float | None = None,
    n_jobs: int | None = None,
    sort_by: str = "sharpe",
    executor: str = "thread",
    dask_address: str | None = None,
    options: Mapping[str, Any] | None = None,
    **param_grid_and_options: Any,
) -> SweepResult:
    """Backtest every combination of a parameter grid; keep the metrics of each.

    Parameters
    ----------
    strategy_cls : type[Strategy]
        e.g. ``SmaCrossover`` (the class, not an instance).
    bars : Bars
    where : callable or str, optional
        A constraint on the params dict (all the strategy's parameters, defaults filled in),
        e.g. ``lambda p: p["fast"] < p["slow"]`` or ``"fast < slow"``.
    max_memory_mb : float, optional
        Budget for the arrays held at once (default 512): each worker's one combination in
        flight, and indicator outputs shared by all combinations (an SMA of a given window
        is computed once). A small budget means fewer workers, then recomputed indicators.
    n_jobs : int, optional
        Workers (default: the number of CPUs).
    executor : str
        ``"thread"`` (default; the kernels release the GIL, so threads use every core and
        share the bars and the indicators) or ``"process"`` (spawned worker processes, the
        bars shipped once to each; pays a start-up of a second or two per worker), or
        ``"dask"`` (chunks as tasks on a Dask cluster, the bars shipped once per worker; see
        :mod:`barlab.research.distributed`).
    dask_address : str, optional
        For ``executor="dask"``: ``"local"`` (a LocalCluster of ``n_jobs`` worker processes,
        started and closed by the sweep, or shared inside a
        :func:`barlab.research.distributed.dask_session`) or a scheduler,
        ``"tcp://10.0.0.5:8786"`` (workers need barlab installed, the same version).
    options : mapping, optional
        Backtest options given as a dict; needed for an option named like a strategy
        parameter (``options={"allow_short": False}`` next to the strategy's ``allow_short``).
    **param_grid_and_options
        A keyword naming a strategy parameter takes its values (any iterable, e.g.
        ``fast=range(5, 55)``); the others are backtest options as in :func:`backtest`.

    Returns
    -------
    SweepResult
    """
    started = time.perf_counter()
    grid, extra = split_kwargs(strategy_cls, param_grid_and_options)
    both = set(extra) & set(options or {})
    if both:
        raise ConfigError(f"backtest option(s) {', '.join(sorted(both))} given twice")
    options = {**(options or {}), **extra}
    try:
        opts = BacktestOptions.from_kwargs(**options)
    except ConfigError as e:
        if isinstance(strategy_cls, type) and issubclass(strategy_cls, Strategy):
            names = ", ".join(p.name for p in strategy_cls.params())
            raise ConfigError(f"{e} (the strategy's parameters are: {names})") from e
        raise
    the_plan = plan(strategy_cls, grid, where)
    budget = DEFAULT_MAX_MEMORY_MB if max_memory_mb is None else float(max_memory_mb)
    if not budget > 0:
        raise ConfigError(f"max_memory_mb must be a positive number, got {max_memory_mb!r}")
    jobs = (os.cpu_count() or 1) if n_jobs is None else int(n_jobs)
    if jobs < 1:
        raise ConfigError(f"n_jobs must be >= 1, got {n_jobs!r}")
    if executor not in ("thread", "process", "dask"):
        raise ConfigError(f"executor must be thread, process or dask, got {executor!r}")
    if executor == "dask":  # the address's form and dask's install, before any work
        from barlab.research.distributed import check_address

        check_address(dask_address)
    combos = the_plan.combos
    jobs, shared_mb = memory_plan(bars, budget, jobs)
    # many small chunks balance the workers; a chunk is a unit of work, not of memory
    size = max(1, math.ceil(len(combos) / (8 * jobs)))
    chunks = [combos[i : i + size] for i in range(0, len(combos), size)]
    if executor == "dask":  # even for one chunk: an unreachable scheduler fails the same way
        from barlab.research.distributed import run_chunks

        metrics = run_chunks(strategy_cls, bars, opts, chunks, address=dask_address,
                             n_jobs=jobs, shared_mb=shared_mb)  # fmt: skip
    elif jobs == 1 or len(chunks) == 1:
        job = _Job.of(strategy_cls, bars, opts, shared_mb)
        metrics = np.concatenate([job.run(c) for c in chunks])
    elif executor == "process":
        import multiprocessing

        ref = _strategy_ref(strategy_cls)
        with _one_thread_each(), ProcessPoolExecutor(
            max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(ref, bars, opts, shared_mb / jobs),
        ) as pool:  # fmt: skip
            metrics = np.concatenate(list(pool.map(_worker_chunk, chunks)))
    else:  # the kernels release the GIL: threads share the bars and the indicators
        job = _Job.of(strategy_cls, bars, opts, shared_mb)
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="barlab-sweep") as pool:
            metrics = np.concatenate(list(pool.map(job.run, chunks)))
    table = _table(strategy_cls, the_plan.grid, combos, metrics)
    result = SweepResult(
        table=table, strategy_cls=strategy_cls, bars=bars, options=dict(options),
        grid=the_plan.grid, where=the_plan.where, n_grid=the_plan.n_grid, n_run=len(combos),
        n_skipped=the_plan.n_skipped, n_invalid=the_plan.n_invalid,
        elapsed_s=time.perf_counter() - started, chunk_size=size, n_jobs=jobs,
    )  # fmt: skip
    return dataclasses.replace(result, table=result.sorted(sort_by))


def _table(
    strategy_cls: type[Strategy],
    grid: dict[str, list[Any]],
    combos: list[dict[str, Any]],
    metrics: np.ndarray,
) -> pl.DataFrame:
    types = {p.name: p.type for p in strategy_cls.params()}
    clash = set(grid) & set(METRIC_NAMES)
    if clash:
        raise StrategyError(f"parameter name(s) {', '.join(sorted(clash))} clash with metrics")
    columns: dict[str, pl.Series] = {}
    for name in grid:
        dtype = _DTYPES.get(types[name])
        values = [c[name] for c in combos]
        columns[name] = pl.Series(name, values, dtype=dtype) if dtype else pl.Series(name, values)
    for k, name in enumerate(METRIC_NAMES):
        column = pl.Series(name, metrics[:, k], dtype=pl.Float64)
        columns[name] = column.cast(pl.Int64) if name in _INT_FIELDS else column
    return pl.DataFrame(list(columns.values()))


def _iso(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(int(ts_ns) / 1e9, tz=dt.UTC).isoformat()
