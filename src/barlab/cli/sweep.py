"""`backtest sweep STRATEGY --param fast=5:55 ...`: parses, calls barlab.sweep, prints."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from barlab.cli.options import (
    add_cost_flags,
    add_data_flags,
    add_output_flags,
    add_strategy_args,
    param_items,
)
from barlab.errors import UsageError

SWEEP_EPILOG = """\
examples:
  backtest sweep sma_crossover --param fast=5:55 --param slow=20:220:10 --where "fast < slow" \\
      --from 2023-01-01 --to 2023-12-31
  backtest sweep sma_crossover --param fast=10,20 --param slow=50 --param allow_short=true,false \\
      --from 2023-03-01 --to 2023-03-31 --top 5 --json
  backtest sweep sma_crossover --param fast=5:55 --param slow=20:220:10 --where "fast < slow" \\
      --from 2023-01-01 --to 2023-12-31 --sort sortino --rerun-best   # + the best's full report

A range is start:stop[:step], stop exclusive like Python's range() (floats allowed:
0.5:2.0:0.5); a list is comma-separated (true,false). Every combination is a full backtest
with the same costs and risk rules as `backtest run`.
"""


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    sw = sub.add_parser(
        "sweep",
        help="backtest every combination of a parameter grid",
        description="Backtest STRATEGY for every combination of the --param ranges (after the "
        "--where constraint), print the best rows and save the table under "
        "reports/runs/<run-id>/sweep.parquet.",
        epilog=SWEEP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_strategy_args(
        sw,
        param_help="values to sweep, repeatable: fast=5:55, slow=20:220:10, allow_short=true,false",
        metavar="NAME=VALUES",
    )
    sw.add_argument(
        "--where",
        metavar="EXPR",
        help='constraint over the parameter names, e.g. "fast < slow"',
    )
    add_data_flags(sw)
    add_cost_flags(sw)
    sw.add_argument("--sort", default="sharpe", metavar="METRIC", help="rank by (default sharpe)")
    sw.add_argument("--top", type=int, default=10, metavar="N", help="rows to print (default 10)")
    sw.add_argument(
        "--rerun-best",
        action="store_true",
        help="then backtest the best combination (by --sort) in full, as `backtest run` does: "
        "a saved run with its report; its run id goes in the sweep's run.json",
    )
    sw.add_argument(
        "--max-memory", type=float, metavar="MB", help="budget for signal arrays (default 512)"
    )
    sw.add_argument("--jobs", type=int, metavar="N", help="workers (default: all CPUs)")
    sw.add_argument(
        "--executor",
        choices=["thread", "process"],
        default="thread",
        help="worker threads (default: the kernels release the GIL and share the bars) or "
        "worker processes (each with its own copy of the bars)",
    )
    add_dask_arguments(sw)
    add_output_flags(sw)
    sw.set_defaults(func=cmd_sweep)


def add_dask_arguments(p: argparse.ArgumentParser) -> None:
    """``--dask ADDRESS`` and ``--dask-timeout S``, shared by sweep, walkforward, optimize."""
    p.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run the sweeps on a Dask cluster: tcp://HOST:PORT of a running scheduler, or "
        "'local' for a cluster of --jobs worker processes on this machine",
    )
    p.add_argument(
        "--dask-timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds to wait for the Dask scheduler (default 5)",
    )


def dask_session_for(args: argparse.Namespace) -> Any:
    """The Dask client for ``--dask``, opened before any data loads (a scheduler that does not
    answer fails first); a context doing nothing without ``--dask``."""
    import contextlib

    if args.dask is None:
        return contextlib.nullcontext()
    from barlab.research.distributed import check_address, dask_session

    if getattr(args, "executor", "thread") != "thread":
        raise UsageError(f"--dask and --executor {args.executor}: choose one")
    if not args.dask_timeout > 0:
        raise UsageError(f"--dask-timeout must be > 0 seconds, got {args.dask_timeout}")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    check_address(args.dask)
    return dask_session(args.dask, n_jobs=args.jobs, timeout_s=args.dask_timeout)


def workers_of(args: argparse.Namespace) -> dict[str, Any]:
    """The sweep keywords naming the workers: n_jobs, executor, dask_address."""
    executor = "dask" if args.dask else getattr(args, "executor", "thread")
    return {"n_jobs": args.jobs, "executor": executor, "dask_address": args.dask}


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_values(name: str, text: str) -> list[Any]:
    """``5:55`` -> 5..54; ``0.5:2.0:0.5`` -> 0.5, 1.0, 1.5; ``true,false`` -> the strings."""
    text = text.strip()
    if not text:
        raise UsageError(f"--param {name}=: no values; e.g. --param {name}=5:55 or {name}=1,2")
    if ":" in text:
        parts = text.split(":")
        try:
            if len(parts) not in (2, 3):
                raise ValueError
            nums = [_number(p.strip()) for p in parts]
        except ValueError:
            raise UsageError(
                f"--param {name}={text}: a range is start:stop[:step] with numbers, "
                "e.g. 5:55 or 0.5:2.0:0.5"
            ) from None
        start, stop = nums[0], nums[1]
        step = nums[2] if len(nums) == 3 else 1
        if not all(math.isfinite(x) for x in (start, stop, step)) or step == 0:
            raise UsageError(f"--param {name}={text}: the step must be a non-zero number")
        if all(isinstance(x, int) for x in (start, stop, step)):
            values: list[Any] = list(range(start, stop, step))
        else:
            count = max(0, math.ceil((stop - start) / step - 1e-9))
            values = [round(start + k * step, 12) for k in range(count)]
        if not values:
            raise UsageError(
                f"--param {name}={text}: empty range (stop is exclusive, like range()); "
                f"e.g. {name}={start}:{start + 10 * step}"
            )
        return values
    items = [v.strip() for v in text.split(",")]
    if any(not v for v in items):
        raise UsageError(f"--param {name}={text}: empty item in the list")
    return items


def parse_grid(items: list[str], params: list[str], label: str) -> dict[str, list[Any]]:
    pairs = param_items(
        items, params, label, expected="NAME=VALUES, e.g. --param fast=5:55",
        twice="; give all its values at once",
    )  # fmt: skip
    grid = {name: parse_values(name, value) for name, value in pairs}
    if not grid:
        raise UsageError(
            f"empty grid: give at least one --param NAME=VALUES ({label} takes "
            f"{', '.join(params) or 'none'})"
        )
    return grid


def cmd_sweep(args: argparse.Namespace, config: Any) -> int:
    import barlab
    from barlab.cli import backtest_options, load_bars_for, run_json
    from barlab.data.request import parse_date
    from barlab.engine.sweep_plan import plan
    from barlab.engine.sweep_result import METRIC_NAMES

    started = time.perf_counter()
    start = parse_date(args.start, "--from")
    end = parse_date(args.end, "--to") if args.end else None
    strategy_cls = barlab.load_strategy(args.strategy, [Path(p) for p in config.strategy.paths])
    names = [p.name for p in strategy_cls.params()]
    grid = parse_grid(args.param, names, strategy_cls.label())
    if args.sort not in METRIC_NAMES:
        raise UsageError(f"--sort {args.sort}: unknown metric; known: {', '.join(METRIC_NAMES)}")
    if args.top < 0:
        raise UsageError(f"--top must be >= 0, got {args.top}")
    options = backtest_options(args, config)
    barlab.BacktestOptions.from_kwargs(**options)
    plan(strategy_cls, grid, args.where)  # every grid error before loading any data
    with dask_session_for(args):
        bars = load_bars_for(args, config, start, end)
        result = barlab.sweep(
            strategy_cls, bars, where=args.where, max_memory_mb=args.max_memory,
            sort_by=args.sort, options=options, **workers_of(args), **grid,
        )  # fmt: skip
    rerun, report = _rerun_best(result, args.sort, config) if args.rerun_best else (None, None)
    extra = {} if rerun is None else {"rerun_best": rerun.run_id}
    path = result.save(config.reports_dir, config=config.to_dict(), extra=extra)
    top = result.table.head(args.top)
    counts = {
        "n_grid": result.n_grid,
        "n_run": result.n_run,
        "n_skipped": result.n_skipped,
        "n_invalid": result.n_invalid,
    }
    if args.json:
        rows = [
            {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in r.items()}
            for r in top.iter_rows(named=True)
        ]
        doc = {
            "run_id": path.name, "path": str(path), "strategy": strategy_cls.label(),
            "grid": result.grid, "where": args.where, **counts, "sort": args.sort,
            "elapsed_s": round(time.perf_counter() - started, 3), "top": rows,
            "synthetic": bars.synthetic,
        }  # fmt: skip
        if rerun is not None:  # what `backtest run --json` prints for it
            doc["rerun_best"] = run_json(rerun, report)
        print(json.dumps(doc, allow_nan=False, default=str))
        return 0
    print(_summary(result, top, args.sort, path))
    if rerun is not None:
        params = " ".join(f"{k}={v}" for k, v in rerun.info["params"].items())
        print(f"best by {args.sort} run again in full ({params}):")
        print(f"run id: {rerun.run_id}")
        print(f"report: {report}")
    return 0


def _rerun_best(result: Any, metric: str, config: Any) -> tuple[Any, Path]:
    """The best combination by ``metric`` as `backtest run` makes a run: the backtest, its
    look-ahead check, then saved with its report. Returns (saved Result, report path)."""
    from barlab.cli.check import run_check

    params = result.best(metric)
    run = run_check(result.strategy_cls(**params), result.bars, result.rerun(params))
    run = run.save(config.reports_dir, config=config.to_dict(), report=True)
    return run, Path(config.reports_dir) / "runs" / run.run_id / "report.html"


def _summary(result: Any, top: Any, sort: str, path: Path) -> str:
    import polars as pl

    shown = [*result.param_names]
    for name in ("sharpe", "total_return", "max_drawdown", "n_trades", "fees", sort):
        if name not in shown:
            shown.append(name)
    lines = [
        f"{result.strategy_cls.label()} sweep: {result.n_run} combinations run, "
        f"{result.n_skipped} skipped by the constraint, {result.n_invalid} invalid "
        f"(of {result.n_grid}) in {result.elapsed_s:.2f} s",
        f"top {top.height} by {sort}:",
    ]
    with pl.Config(tbl_rows=top.height, tbl_cols=len(shown), tbl_hide_dataframe_shape=True):
        lines.append(str(top.select(shown)))
    lines.append(f"saved: {path}")
    if result.bars.synthetic:
        lines.append("note:  SYNTHETIC data — these figures say nothing about real markets.")
    return "\n".join(lines)
