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

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from barlab.bars import Bars
from barlab.engine.backtest import Account, BacktestOptions, simulate, to_target
from barlab.engine.fused import RowRunner
from barlab.engine.sweep_plan import Where, plan, split_kwargs
from barlab.engine.sweep_result import METRIC_NAMES, SweepResult, table_of
from barlab.errors import ConfigError, StrategyError
from barlab.indicators import SharedResults, shared_results
from barlab.metrics import Metrics, compute_metrics, total_fees
from barlab.strategy import Signals, Strategy

DEFAULT_MAX_MEMORY_MB = 512


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
        fees=total_fees(sim.trades_f[:, 4]),
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
    table = table_of(strategy_cls, the_plan.grid, combos, metrics)
    result = SweepResult(
        table=table, strategy_cls=strategy_cls, bars=bars, options=dict(options),
        grid=the_plan.grid, where=the_plan.where, n_grid=the_plan.n_grid, n_run=len(combos),
        n_skipped=the_plan.n_skipped, n_invalid=the_plan.n_invalid,
        elapsed_s=time.perf_counter() - started, chunk_size=size, n_jobs=jobs,
    )  # fmt: skip
    return dataclasses.replace(result, table=result.sorted(sort_by))
