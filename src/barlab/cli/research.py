"""`backtest walkforward ...` and `backtest optimize ...`: parse, call barlab.research, print."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
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
from barlab.cli.sweep import add_dask_arguments, dask_session_for, parse_grid, workers_of
from barlab.errors import UsageError

WALKFORWARD_EPILOG = """\
examples:
  backtest walkforward sma_crossover --param fast=5:55:5 --param slow=20:220:20 \\
      --train 6M --test 1M --from 2023-01-01 --to 2023-12-31
  backtest walkforward sma_crossover --param fast=5:30 --param slow=50,100,200 \\
      --train 3M --test 1M --anchored --objective sortino --from 2023-01-01 --json

Each fold sweeps the --param grid (start:stop[:step], stop exclusive, as in `backtest sweep`)
on its train window, keeps the best parameters by --objective and trades them on the test
window that follows. Windows are whole trading sessions: 20D (sessions), 2W (weeks), 6M
(months), 1Y (years), counted from --from. A test backtest starts at its fold's train start, so
indicators are warmed up; only its test bars count. The out-of-sample curve chains the folds.
"""

OPTIMIZE_EPILOG = """\
examples:
  backtest optimize sma_crossover --param fast=5:100 --param slow=20:400 --where "fast < slow" \\
      --from 2023-01-01 --to 2023-06-30 --objective sharpe --maxiter 30 --seed 1
  backtest optimize sma_crossover --param fast=5:50 --param slow=20:200 \\
      --param allow_short=true --objective calmar --from 2023-01-01 --json

Here a range LO:HI is a bound, both ends included (fast=5:100 searches 5..100; integer
parameters stay whole numbers); NAME=VALUE holds a parameter fixed. The search is scipy's
differential evolution; each point is a full backtest, run once, and the same --seed gives the
same result.
"""


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    wf = sub.add_parser(
        "walkforward",
        help="walk-forward analysis: optimise on each train window, trade the next test window",
        description="Walk STRATEGY forward: sweep the --param grid on each train window, trade "
        "the best parameters on the following test window, and report the chained "
        "out-of-sample result against the in-sample one. Saved under reports/runs/<run-id>/.",
        epilog=WALKFORWARD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _shared(wf, "values to sweep, repeatable: fast=5:55, slow=20:220:10, allow_short=true,false")
    wf.add_argument("--train", default="6M", metavar="PERIOD", help="train window (default 6M)")
    wf.add_argument("--test", default="1M", metavar="PERIOD", help="test window (default 1M)")
    wf.add_argument("--step", metavar="PERIOD", help="between folds (default: --test)")
    wf.add_argument("--anchored", action="store_true", help="train windows all start at --from")
    wf.set_defaults(func=cmd_walkforward)

    op = sub.add_parser(
        "optimize",
        help="search the best parameters within bounds (differential evolution)",
        description="Search STRATEGY's parameters within the --param bounds for the best "
        "--objective with scipy's differential evolution; print the best point and save every "
        "evaluated point under reports/runs/<run-id>/evaluations.parquet.",
        epilog=OPTIMIZE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _shared(op, "bounds LO:HI, both included (fast=5:100), or a fixed NAME=VALUE; repeatable")
    op.add_argument("--maxiter", type=int, default=30, metavar="N", help="generations (30)")
    op.add_argument("--popsize", type=int, default=15, metavar="N", help="per parameter (15)")
    op.add_argument("--tol", type=float, default=0.01, help="convergence tolerance (0.01)")
    op.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    op.add_argument("--top", type=int, default=5, metavar="N", help="points to print (5)")
    op.set_defaults(func=cmd_optimize)


def _shared(p: argparse.ArgumentParser, param_help: str) -> None:
    """The flags both commands take, named as in `backtest sweep`."""
    add_strategy_args(p, param_help=param_help, metavar="NAME=VALUES")
    p.add_argument("--where", metavar="EXPR", help='constraint, e.g. "fast < slow"')
    p.add_argument(
        "--objective", default="sharpe", help="maximised: sharpe (default), sortino, calmar, "
        "total_return, cagr, omega, profit_factor, final_equity",
    )  # fmt: skip
    add_data_flags(p)
    add_cost_flags(p)
    p.add_argument("--jobs", type=int, metavar="N", help="workers (default: all CPUs)")
    add_dask_arguments(p)
    add_output_flags(p)


def parse_bounds(items: list[str], params: list[str], label: str) -> dict[str, Any]:
    """``fast=5:100`` -> ``(5, 100)`` (both included); ``allow_short=true`` -> ``"true"``."""
    out: dict[str, Any] = {}
    for name, text in param_items(
        items, params, label, expected="NAME=LO:HI, e.g. --param fast=5:100"
    ):
        if ":" not in text:
            if not text or "," in text:
                raise UsageError(f"--param {name}={text}: give bounds LO:HI or one fixed value")
            out[name] = text
            continue
        parts = text.split(":")
        try:
            if len(parts) != 2:
                raise ValueError
            lo, hi = (_number(p) for p in parts)
        except ValueError:
            raise UsageError(
                f"--param {name}={text}: bounds are LO:HI with numbers, both included, "
                f"e.g. {name}=5:100 (no step: the search picks the points)"
            ) from None
        if lo > hi:
            raise UsageError(f"--param {name}={text}: empty bounds, LO is above HI; use {hi}:{lo}")
        out[name] = (lo, hi)
    if not any(isinstance(v, tuple) for v in out.values()):
        raise UsageError(
            f"nothing to optimise: give at least one --param NAME=LO:HI ({label} takes "
            f"{', '.join(params) or 'none'})"
        )
    return out


def _number(text: str) -> int | float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError
    return int(text) if value.is_integer() and "." not in text else value


def _prepare(args: argparse.Namespace, config: Any) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Strategy class, dates and backtest options, every one checked before any data loads."""
    import barlab
    from barlab.data.request import parse_date
    from barlab.research.objective import resolve_objective

    start = parse_date(args.start, "--from")
    end = parse_date(args.end, "--to") if args.end else None
    if end is not None and end < start:
        raise UsageError(f"--to {end} is before --from {start}")
    strategy_cls = barlab.load_strategy(args.strategy, [Path(p) for p in config.strategy.paths])
    resolve_objective(args.objective)
    options = _options(args, config)
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    return strategy_cls, start, end, options


def _options(args: argparse.Namespace, config: Any) -> dict[str, Any]:
    import barlab
    from barlab.cli import backtest_options

    options = backtest_options(args, config)
    barlab.BacktestOptions.from_kwargs(**options)
    return options


def cmd_walkforward(args: argparse.Namespace, config: Any) -> int:
    from barlab.cli import load_bars_for
    from barlab.engine.sweep_plan import plan
    from barlab.research.splits import parse_period
    from barlab.research.walkforward import walk_forward

    started = time.perf_counter()
    strategy_cls, start, end, options = _prepare(args, config)
    grid = parse_grid(args.param, [p.name for p in strategy_cls.params()], strategy_cls.label())
    for flag in ("train", "test", "step"):
        if getattr(args, flag) is not None:
            parse_period(getattr(args, flag), f"--{flag}")
    plan(strategy_cls, grid, args.where)  # every grid error before loading any data

    def progress(done: int, total: int) -> None:
        elapsed = time.perf_counter() - started
        print(f"walk-forward: fold {done}/{total} done ({elapsed:.1f} s)", file=sys.stderr)

    with dask_session_for(args):  # a scheduler that does not answer fails before the data
        bars = load_bars_for(args, config, start, end)
        result = walk_forward(
            strategy_cls, bars, train=args.train, test=args.test, step=args.step,
            anchored=args.anchored, objective=args.objective, where=args.where,
            options=options, start=start, end=end, on_fold=progress, **workers_of(args), **grid,
        )  # fmt: skip
    path = result.save(config.reports_dir, config=config.to_dict())
    if args.json:
        print(json.dumps(_walkforward_json(result, path), allow_nan=False, default=str))
    else:
        print(_walkforward_summary(result, path))
    return 0


def _walkforward_json(result: Any, path: Path) -> dict[str, Any]:
    from barlab.research.runs import finite

    shown = [
        "fold", "train_start", "train_end", "test_start", "test_end", *result.param_names,
        "is_objective", "oos_objective", "oos_total_return", "oos_sharpe", "oos_n_trades",
    ]  # fmt: skip
    return {
        "run_id": path.name, "path": str(path), "strategy": result.info["strategy"],
        "objective": result.info["objective"], "n_folds": result.info["n_folds"],
        "folds": [finite(r) for r in result.folds.select(shown).iter_rows(named=True)],
        "oos_metrics": finite(result.oos_metrics.to_dict()),
        "degradation": finite(dataclasses.asdict(result.degradation)),
        "elapsed_s": result.info["elapsed_s"], "synthetic": result.info["synthetic"],
    }  # fmt: skip


def _walkforward_summary(result: Any, path: Path) -> str:
    from barlab.report.labels import format_metric

    info, m, d = result.info, result.oos_metrics, result.degradation
    kind = "anchored" if info["anchored"] else "rolling"
    obj = info["objective"]
    names = result.param_names
    header = ["fold", "train", "test", *names, f"IS {obj}", f"OOS {obj}", "OOS return", "trades"]
    rows = [
        [str(r["fold"]), f"{r['train_start']} → {r['train_end']}",
         f"{r['test_start']} → {r['test_end']}", *(str(r[n]) for n in names),
         f"{r['is_objective']:.3f}", f"{r['oos_objective']:.3f}",
         format_metric("total_return", r["oos_total_return"]), str(r["oos_n_trades"])]
        for r in result.folds.iter_rows(named=True)
    ]  # fmt: skip
    oos = result.oos
    first, last = (str(oos["ts"][i])[:10] for i in (0, -1))
    bench = oos["benchmark"][-1] / info["options"]["cash"] - 1
    efficiency = f"{d.efficiency:.2f}" if math.isfinite(d.efficiency) else "n/a (IS mean <= 0)"
    lines = [
        f"{info['strategy']} walk-forward: {info['n_folds']} folds, train {info['train']}, "
        f"test {info['test']}, step {info['step']} ({kind}), objective {obj}, "
        f"{info['elapsed_s']:.1f} s",
        "",
        *_text_table(header, rows),
        "",
        f"out of sample {first} → {last}: total return "
        f"{format_metric('total_return', m.total_return)} (buy & hold "
        f"{format_metric('total_return', bench)}), sharpe {format_metric('sharpe', m.sharpe)}, "
        f"max drawdown {format_metric('max_drawdown', m.max_drawdown)}, {m.n_trades} trades",
        f"degradation ({d.metric}): IS mean {d.is_mean:.3f} → OOS mean {d.oos_mean:.3f} "
        f"(mean change {d.mean:+.3f}); walk-forward efficiency {efficiency}",
        f"saved: {path}",
    ]
    if info["synthetic"]:
        lines.append("note:  SYNTHETIC data — these figures say nothing about real markets.")
    return "\n".join(lines)


def _text_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Plain aligned columns: text left, numbers right."""
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]
    numeric = [all(_is_number(r[k]) for r in rows) for k in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return [line(header), *(line(r) for r in rows)]


def _is_number(text: str) -> bool:
    try:
        float(text.rstrip("%").replace(",", ""))
    except ValueError:
        return text in ("–", "∞", "-∞")
    return True


def cmd_optimize(args: argparse.Namespace, config: Any) -> int:
    from barlab.cli import load_bars_for
    from barlab.research.optimize import optimize
    from barlab.research.optimize import parse_bounds as check_bounds

    strategy_cls, start, end, options = _prepare(args, config)
    bounds = parse_bounds(args.param, [p.name for p in strategy_cls.params()], strategy_cls.label())
    check_bounds(strategy_cls, bounds)
    if args.where:
        from barlab.engine.sweep_plan import compile_where

        compile_where(args.where, [p.name for p in strategy_cls.params()])
    for flag in ("maxiter", "popsize", "top"):
        if getattr(args, flag) < (0 if flag == "top" else 1):
            raise UsageError(f"--{flag} must be >= {0 if flag == 'top' else 1}")
    if not (math.isfinite(args.tol) and args.tol >= 0):
        raise UsageError(f"--tol must be a number >= 0, e.g. 0.01, got {args.tol}")
    with dask_session_for(args):  # a scheduler that does not answer fails before the data
        bars = load_bars_for(args, config, start, end)
        result = optimize(
            strategy_cls, bars, objective=args.objective, where=args.where,
            maxiter=args.maxiter, popsize=args.popsize, tol=args.tol, seed=args.seed,
            options=options, **workers_of(args), **bounds,
        )  # fmt: skip
    path = result.save(config.reports_dir, config=config.to_dict())
    if args.json:
        from barlab.research.runs import finite

        doc = {
            "run_id": path.name, "path": str(path), "strategy": result.info["strategy"],
            "objective": result.info["objective"], "best_params": result.best_params,
            "best_value": finite({"v": result.best_value})["v"],
            "best_metrics": finite(result.best_metrics.to_dict()),
            "n_evaluations": result.n_evaluations, "n_infeasible": result.n_infeasible,
            "nit": result.nit, "message": result.message, "elapsed_s": result.elapsed_s,
            "synthetic": bars.synthetic,
        }  # fmt: skip
        print(json.dumps(doc, allow_nan=False, default=str))
    else:
        print(_optimize_summary(result, path, args.top))
    return 0


def _optimize_summary(result: Any, path: Path, top: int) -> str:
    import polars as pl

    from barlab.report.labels import SUMMARY, format_metric, label

    info, obj = result.info, result.info["objective"]
    params = ", ".join(f"{k}={v}" for k, v in result.best_params.items())
    lines = [
        f"{info['strategy']} optimisation (differential evolution, {obj}, seed {info['seed']}): "
        f"{result.n_evaluations} backtests, {result.n_infeasible} infeasible points, "
        f"{result.nit} generations, {result.elapsed_s:.1f} s — {result.message}",
        f"best: {params}  ({obj} {result.best_value:.4g})",
    ]
    for name in SUMMARY:
        value = format_metric(name, getattr(result.best_metrics, name))
        lines.append(f"  {label(name):<22}{value:>16}")
    names = list(info["bounds"])
    best = result.table.filter(pl.col("feasible")).sort(
        pl.col("objective").fill_nan(None), descending=True, nulls_last=True, maintain_order=True
    ).head(top)  # fmt: skip
    if top and best.height:
        rows = [
            [*(str(r[n]) for n in names), f"{r['objective']:.4g}",
             format_metric("total_return", r["total_return"]),
             format_metric("max_drawdown", r["max_drawdown"]), str(r["n_trades"])]
            for r in best.iter_rows(named=True)
        ]  # fmt: skip
        header = [*names, obj, "total return", "max drawdown", "trades"]
        lines += ["", f"top {best.height} points by {obj}:", *_text_table(header, rows)]
    lines += ["", f"saved: {path}"]
    if info["synthetic"]:
        lines.append("note:  SYNTHETIC data — these figures say nothing about real markets.")
    return "\n".join(lines)
