"""`backtest check STRATEGY`: does the strategy look ahead? Parses, calls check_lookahead, prints.

Exit codes: 0 no look-ahead found, 1 look-ahead found (or the data failed), 2 a usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from barlab.cli.options import add_data_flags, add_output_flags, add_strategy_args
from barlab.errors import BarlabError, UsageError

DEFAULT_DAYS = 91
"""Without --from, the check runs on the three months (91 days) up to --to."""
RUN_SAMPLES = 4
"""Random cuts of the sampled check after every `backtest run` (about three more signal
computations on all the bars: a few percent of a run)."""

CHECK_EPILOG = """\
examples:
  backtest check sma_crossover
  backtest check sma_crossover --param fast=20 --param slow=100 --from 2023-01-01 --to 2023-12-31
  backtest check my_strategy --samples 4 --json

A strategy must be causal: its signal at a bar may use that bar and earlier ones only. The
check recomputes the signals on prefixes of the bars (the first k bars, for about 120 planned
k: short prefixes, session boundaries, random cuts) and compares them, field by field and bit
for bit, with the signals on all the bars. When a prefix differs it bisects to the earliest
bar whose signal changes when later bars are added, and prints that bar, symbol and field
with both values. `backtest run` runs the cheap sampled version (--samples 4) after every
backtest.

exit status: 0 no look-ahead found, 1 look-ahead found (or the data could not be loaded),
2 a usage error (unknown strategy or parameter, bad dates).
"""


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    ck = sub.add_parser(
        "check",
        help="check a strategy for look-ahead (signals that use later bars)",
        description="Recompute STRATEGY's signals on prefixes of the bars and report the first "
        "bar whose signal changes when later bars are added. Exits 0 when none is found, 1 when "
        "one is.",
        epilog=CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_strategy_args(
        ck, param_help="strategy parameter, repeatable: --param fast=20 --param slow=100"
    )
    add_data_flags(
        ck,
        required=False,
        start_help=f"first day, YYYY-MM-DD (default: {DEFAULT_DAYS} days before --to, about "
        "three months of bars)",
        end_help="last day, YYYY-MM-DD (default: yesterday)",
    )
    ck.add_argument(
        "--samples",
        type=int,
        metavar="N",
        help="the quick sampled check: N random cuts besides the short prefixes "
        "(default: the full check)",
    )
    ck.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seed of the random cuts (default 0)"
    )
    add_output_flags(ck)
    ck.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace, config: Any) -> int:
    import barlab
    from barlab.cli import load_bars_for, parse_params
    from barlab.data.request import parse_date, yesterday
    from barlab.research.lookahead import check_lookahead

    end = parse_date(args.end, "--to") if args.end else yesterday()
    if args.start:
        start = parse_date(args.start, "--from")
    else:
        start = end - dt.timedelta(days=DEFAULT_DAYS)
    if start > end:
        raise UsageError(f"--from {start} is after --to {end}; swap them")
    if args.samples is not None and args.samples < 1:
        raise UsageError(f"--samples must be >= 1 (e.g. --samples 4), got {args.samples}")
    strategy_cls = barlab.load_strategy(args.strategy, [Path(p) for p in config.strategy.paths])
    strategy = strategy_cls(**parse_params(args.param))
    bars = load_bars_for(args, config, start, end)
    report = check_lookahead(strategy, bars, n_samples=args.samples, seed=args.seed)
    if args.json:
        doc = {**report.to_dict(), "source": bars.source, "synthetic": bars.synthetic}
        print(json.dumps(doc, allow_nan=False))
    else:
        print(report)
    return 0 if report.clean else 1


def run_check(strategy: Any, bars: Any, result: Any) -> Any:
    """The sampled look-ahead check `backtest run` does after the backtest: one warning line on
    stderr when a signal changes as later bars are added; the outcome goes in the run's info
    (``info["lookahead"]``, saved in run.json). The run itself goes on either way."""
    from barlab.research.lookahead import check_lookahead

    try:
        report = check_lookahead(strategy, bars, n_samples=RUN_SAMPLES)
    except BarlabError as e:  # the backtest worked; a check that cannot run must not stop it
        print(f"warning: look-ahead check skipped: {e}", file=sys.stderr)
        outcome: dict[str, Any] = {"clean": None, "skipped": str(e)}
    else:
        if not report.clean:
            print(
                f"warning: {report}; the results of this backtest cannot be trusted; "
                f"`backtest check {strategy.label()}` runs the full check",
                file=sys.stderr,
            )
        outcome = report.to_dict()
    return dataclasses.replace(result, info={**result.info, "lookahead": outcome})
