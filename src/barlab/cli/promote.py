"""`backtest promote STRATEGY --run RUN_ID`: parses, calls barlab.live.gates, prints the gates.

STRATEGY, ``--param`` and ``--combine`` read as in ``backtest run`` (several strategies joined
by + are promoted as one combination); the run's parameters are the ones promoted, and a
``--param`` or ``--combine`` given must be the run's.

Exit codes: 0 promoted (record written), 1 a gate failed (nothing written), 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from barlab.cli.options import COMBINED_PARAM_HELP, add_output_flags, add_strategy_args

PROMOTE_EPILOG = """\
examples:
  backtest run sma_crossover --from 2024-01-02 --to 2024-06-28 --quiet
  backtest promote sma_crossover --run 20261124-055012-sma_crossover-3fa2c1
  backtest promote sma_crossover --run <run-id> --walkforward <wf-run-id> --parity <replay-run-id>
  backtest promote sma_crossover+rsi_mean_reversion --combine sum --param weights=0.6,0.4 \\
      --run <run-id>

The gates and their thresholds live in the [promotion] config section (or BARLAB_PROMOTION_*):
min_trades, min_sharpe, max_drawdown (a fraction, 0.25 = 25 %), min_oos_sharpe of a
walk-forward (require_walkforward: fail without one), replay parity exact (require_parity:
fail without one), allow_synthetic. The full look-ahead check runs on the run's bars, reloaded
from the cache, and the strategy file must be the one backtested. There are no overrides: a
gate that fails is fixed in the strategy, the evidence or the config.

A promotion writes reports/promotions/<strategy>.json; `backtest live` refuses a strategy
without one, with other parameters, or whose source changed since. A combination (a+b) is
recorded with how, its weights and each child's parameters and source SHA-256; `backtest live`
refuses it when any of these differs.

exit status: 0 promoted, 1 a gate failed (nothing written), 2 a usage error.
"""


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    pr = sub.add_parser(
        "promote",
        help="check a backtest run against the promotion gates; record it for paper trading",
        description="Check the saved backtest RUN of STRATEGY against the promotion gates "
        "([promotion] config) and, when every gate passes, write the promotion record that "
        "`backtest live` requires.",
        epilog=PROMOTE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_strategy_args(pr, param_help=COMBINED_PARAM_HELP, combine=True)
    pr.add_argument("--run", required=True, metavar="RUN_ID", help="a saved backtest run id")
    pr.add_argument(
        "--walkforward",
        metavar="RUN_ID",
        help="the walk-forward run to weigh (default: latest fit)",
    )
    pr.add_argument(
        "--parity",
        metavar="RUN_ID",
        help="the replay run whose parity.json to weigh (default: latest fit)",
    )
    add_output_flags(pr, json_help="print the record as one JSON object")
    pr.set_defaults(func=cmd_promote)


def cmd_promote(args: argparse.Namespace, config: Any) -> int:
    from barlab.cli import parse_params, strategy_for
    from barlab.combined import Combined
    from barlab.live.gates import evaluate_promotion
    from barlab.live.promotion import write_record

    strategy = strategy_for(args, config)  # as `backtest run` reads it
    given = strategy.get_params()
    names = [*parse_params(args.param), *(["how"] if args.combine else [])]
    asked = {name: given[name] for name in names if name in given}
    target = strategy if isinstance(strategy, Combined) else type(strategy)
    record = evaluate_promotion(
        target, args.run, config=config, walkforward=args.walkforward, parity=args.parity,
        asked=asked,
    )  # fmt: skip
    path = write_record(record, reports_dir=config.reports_dir) if record.passed else None
    if args.json:
        print(json.dumps({**record.to_dict(), "path": str(path) if path else None}))
    else:
        print(render(record, path))
    return 0 if record.passed else 1


def render(record: Any, path: Path | None) -> str:
    """The gates as an aligned table, then the verdict."""
    params = ", ".join(f"{k}={v}" for k, v in record.params.items())
    data = record.data
    kind = "SYNTHETIC demo market" if data.get("synthetic") else data.get("source")
    rows = [["gate", "threshold", "value", "result"]]
    for g in record.gates:
        rows.append([g["name"], f"{g['op']} {_fmt(g['name'], g['threshold'])}",
                     _fmt(g["name"], g["value"]), g["status"].upper()])  # fmt: skip
    widths = [max(len(r[k]) for r in rows) for k in range(4)]
    lines = [
        f"{record.strategy}({params}) · run {record.run_id}",
        f"{', '.join(data.get('symbols') or [])} · {data.get('timeframe')} bars · "
        f"{str(data.get('start'))[:10]} → {str(data.get('end'))[:10]} · data: {kind}",
        "",
    ]
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [f"  {g['name']}: {g['detail']}" for g in record.gates if g["detail"]]
    if notes:
        lines += ["", *notes]
    lines.append("")
    if path is not None:
        lines.append(f"PROMOTED: record written to {path}")
    else:
        failed = [g["name"] for g in record.gates if not g["passed"]]
        lines.append(f"NOT PROMOTED: {', '.join(failed)} failed; nothing was written")
    if data.get("synthetic"):
        lines.append("note: SYNTHETIC data — these figures say nothing about real markets.")
    return "\n".join(lines)


def _fmt(name: str, value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.2%}" if name == "max_drawdown" else f"{value:.3f}"
    text = str(value)
    return text[:12] if name == "data" else text
