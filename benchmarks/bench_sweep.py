"""Sweep workload W2 from ../shared/BENCHMARKS.md: 920 SMA crossover combinations.

    python benchmarks/bench_sweep.py            # prints figures; no pass/fail
    python benchmarks/bench_sweep.py --big      # 100,000 combinations on a month of bars

One symbol-year of synthetic GBM minute bars (bench_engine.gbm_bars), fast 5..54 x slow
20..210 step 10 with fast < slow (920 combinations), long only, whole shares, 100,000 cash,
0.1 % fee per fill, no slippage; then with every risk rule on, and with a 1 % stop-loss too. Each
configuration is timed with worker threads and worker processes, best of three runs after a
warm-up that absorbs numba compilation. Peak RSS: this process's (bars included) and the
largest worker process's.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np

import barlab
from barlab.engine.backtest import Account, BacktestOptions, simulate, to_target
from barlab.engine.fused import RowRunner
from barlab.engine.sweep import combo_metrics
from barlab.engine.sweep_result import METRIC_NAMES
from bench_engine import RISKY, gbm_bars

GRID = {"fast": range(5, 55), "slow": range(20, 220, 10)}
OPTIONS = {"commission_rate": 0.001, "slippage_bps": 0.0}
TARGET_S = 1.0
REPEAT = 3  # W2 runs per configuration; the best is reported


def best_s(fn, repeat: int = 2) -> float:
    return best_run(fn, repeat)[0]


def _cpu_s() -> float:
    """CPU seconds used so far by this process and its finished children, all threads."""
    own, kids = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def best_run(fn, repeat: int) -> tuple[float, float]:
    """(wall s, CPU s) of the fastest of ``repeat`` calls. On a shared machine the CPU time
    says what the wall time would be on idle cores: about CPU / workers."""
    runs = []
    for _ in range(repeat):
        t, cpu = time.perf_counter(), _cpu_s()
        fn()
        runs.append((time.perf_counter() - t, _cpu_s() - cpu))
    return min(runs)


def big() -> None:
    """100,000 combinations (fast 2..201 x slow 205..704, all valid) on one symbol-month,
    within the default 512 MB budget."""
    sma = barlab.load_strategy("sma_crossover")
    bars = gbm_bars(1, n_bars=21 * 390)
    t = time.perf_counter()
    result = barlab.sweep(sma, bars, fast=range(2, 202), slow=range(205, 705), **OPTIONS)
    wall = time.perf_counter() - t
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{result.n_grid:,} combinations ({result.n_run:,} run, {result.n_invalid:,} invalid) "
        f"x {bars.n_bars:,} bars in {wall:.1f} s = {result.n_run / wall:,.0f} combos/s; "
        f"peak RSS {rss_mb:,.0f} MB; table {result.table.estimated_size() / 2**20:.0f} MB"
    )


def cycled(sma, bars, runner: RowRunner, row: np.ndarray) -> None:
    """Kernel and statistics per combination over many different ones in turn, as a sweep
    meets them: timing one combination over and over flatters branchy code (the branch
    predictor learns that one input; quickselect looked four times cheaper that way)."""
    inputs = []
    for fast in range(5, 55, 7):
        for slow in range(20, 220, 30):
            if fast < slow:
                signals = sma(fast=fast, slow=slow).signals(bars)
                inputs.append((signals, to_target(signals, bars.close.shape)))
    for signals, _ in inputs:
        runner.run(signals, row)

    def each(fn):
        return best_s(lambda: [fn(*pair) for pair in inputs], 3) / len(inputs) * 1e3

    kernel = each(runner._simulate)
    both = each(lambda signals, _: runner.run(signals, row))
    print(
        f"per combination, {len(inputs)} different ones in turn: kernel {kernel:.2f} ms, "
        f"kernel + statistics (RowRunner.run) {both:.2f} ms"
    )


def main() -> None:
    if "--big" in sys.argv:
        big()
        return
    sma = barlab.load_strategy("sma_crossover")
    bars = gbm_bars(1)
    t = time.perf_counter()
    barlab.sweep(sma, bars, fast=[10], slow=[50], n_jobs=1, **OPTIONS)  # warm-up
    print(f"first call (compile or cache load): {time.perf_counter() - t:.2f} s")
    one = barlab.backtest(sma(fast=10, slow=50), bars, **OPTIONS)
    t1 = best_s(lambda: barlab.backtest(sma(fast=10, slow=50), bars, **OPTIONS), 5)
    print(f"one backtest() (10/50): {t1 * 1e3:.1f} ms, {one.metrics.n_trades} trades")
    # where one combination's time goes: signals, the kernel, the metrics; a sweep's worker
    # (RowRunner) runs the kernel and the statistics in arrays it reuses
    strategy = sma(fast=10, slow=50)
    opts = BacktestOptions.from_kwargs(**OPTIONS)
    signals = strategy.signals(bars)
    target = to_target(signals, bars.close.shape)
    runner = RowRunner(bars, opts, Account.of(bars, opts))
    row = np.empty(len(METRIC_NAMES))
    runner.run(signals, row)  # the first run learns the logs' shapes
    kernel_ms = best_s(lambda: runner._simulate(signals, target), 10) * 1e3
    parts = {
        "signals": lambda: to_target(strategy.signals(bars), bars.close.shape),
        "simulate()": lambda: simulate(bars, target, opts),
        "simulate() + compute_metrics (the backtest path)": lambda: combo_metrics(
            bars, signals, opts
        ),
        "RowRunner.run (kernel + statistics, reused arrays)": lambda: runner.run(signals, row),
    }
    print("per combination: " + ", ".join(
        f"{name} {best_s(fn, 10) * 1e3:.2f} ms" for name, fn in parts.items()
    ) + f"; of which the kernel call {kernel_ms:.2f} ms")  # fmt: skip
    cycled(sma, bars, runner, row)
    risky = {**OPTIONS, **RISKY}
    rules = {k: v for k, v in risky.items() if k != "stop_loss"}  # the risk rules alone
    runs = [
        ("costs", OPTIONS, "thread", 1),
        ("costs", OPTIONS, "thread", 2),
        ("costs", OPTIONS, "process", 2),
        ("costs + risk rules", rules, "thread", 2),
        ("costs + stop-loss + risk rules", risky, "thread", 1),
        ("costs + stop-loss + risk rules", risky, "thread", 2),
    ]
    for label, options, executor, jobs in runs:
        result = None

        def go(jobs=jobs, options=options, executor=executor):
            nonlocal result
            result = barlab.sweep(
                sma, bars, where="fast < slow", n_jobs=jobs, executor=executor, **GRID, **options
            )

        wall, cpu = best_run(go, REPEAT)
        print(
            f"W2 [{label}] {executor} x{jobs}: {result.n_run} combos in {wall:.2f} s = "
            f"{result.n_run / wall:,.0f} combos/s (target <= {TARGET_S:g} s), CPU {cpu:.2f} s; "
            f"chunk {result.chunk_size}; best {result.best()} "
            f"sharpe {result.table['sharpe'][0]:.2f}"
        )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS {rss_mb:,.0f} MB (largest worker process {child_mb:,.0f} MB)")


if __name__ == "__main__":
    main()
