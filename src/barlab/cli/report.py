"""`backtest report` and `backtest compare`: regenerate a saved run's report, or put two runs
side by side. Parses, calls barlab.load_run and barlab.report, prints the path."""

from __future__ import annotations

import argparse
import re
import webbrowser
from pathlib import Path
from typing import Any

REPORT_EPILOG = """\
examples:
  backtest report 20240105-101500-sma_crossover-1a2b3c
  backtest report 20240105-101500-sma_crossover-1a2b3c --open
  backtest report 20240105-101800-sma_crossover-sweep-4d5e6f    # sweep, optimize, walkforward
  backtest compare RUN_A RUN_B --out reports/a_vs_b.html
"""


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    rep = sub.add_parser(
        "report",
        help="regenerate a saved run's HTML report",
        description="Rebuild reports/runs/<run-id>/report.html from the saved run and print "
        "its path: a backtest's report, or the page of a sweep, an optimisation or a "
        "walk-forward. The price chart reads the run's bars from the local cache if it still "
        "holds them; nothing is downloaded.",
        epilog=REPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rep.add_argument("run_id", metavar="RUN_ID", help="a run id (see reports/runs/) or its folder")
    rep.add_argument("--open", action="store_true", help="open the report in the web browser")
    rep.add_argument("--debug", action="store_true", help="debug logging and full tracebacks")
    rep.set_defaults(func=cmd_report)

    cmp = sub.add_parser(
        "compare",
        help="two saved runs side by side",
        description="Write one HTML page with both runs' settings, metrics, equity curves and "
        "drawdowns, and print its path.",
        epilog=REPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmp.add_argument("run_a", metavar="RUN_A", help="the first run id (or folder)")
    cmp.add_argument("run_b", metavar="RUN_B", help="the second run id (or folder)")
    cmp.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="where to write it (default: reports/compare/<run-a>_vs_<run-b>.html)",
    )
    cmp.add_argument("--open", action="store_true", help="open the page in the web browser")
    cmp.add_argument("--debug", action="store_true", help="debug logging and full tracebacks")
    cmp.set_defaults(func=cmd_compare)


def cmd_report(args: argparse.Namespace, config: Any) -> int:
    from barlab.report import write_run_report

    path = write_run_report(args.run_id, reports_dir=config.reports_dir)
    print(path)
    if args.open:
        webbrowser.open(path.resolve().as_uri())
    return 0


def _slug(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(run_id).name) or "run"


def cmd_compare(args: argparse.Namespace, config: Any) -> int:
    from barlab import load_run
    from barlab.report import write_comparison

    a = load_run(args.run_a, reports_dir=config.reports_dir)
    b = load_run(args.run_b, reports_dir=config.reports_dir)
    out = args.out or (
        config.reports_dir / "compare" / f"{_slug(args.run_a)}_vs_{_slug(args.run_b)}.html"
    )
    path = write_comparison(a, b, out)
    print(path)
    if args.open:
        webbrowser.open(path.resolve().as_uri())
    return 0
