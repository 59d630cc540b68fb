"""`backtest ...`: parses, calls the API, prints. No logic of its own.

Exit codes: 0 success, 1 a failure (data, provider, I/O), 2 a usage error (bad argument,
config or parameter). Errors print one line, ``error: ...``; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

from barlab.cli.options import (
    COMBINED_PARAM_HELP,
    DEBUG_HELP,
    add_command,
    add_cost_flags,
    add_data_flags,
    add_strategy_args,
)
from barlab.errors import BarlabError, UsageError

log = logging.getLogger("barlab.cli")

EPILOG = """\
examples:
  backtest run sma_crossover --from 2023-01-01
  backtest run sma_crossover --from 2023-01-01 --to 2023-06-30 --symbols AAPL,MSFT \\
      --param fast=20 --param slow=100 --timeframe 5m
  backtest run sma_crossover+rsi_mean_reversion --from 2023-01-01 --combine sum \\
      --param sma_crossover.fast=20 --param weights=0.5,0.5
  backtest list
  backtest config show

With no API key configured, bars come from the demo market: SYNTHETIC prices, deterministic,
on real NYSE sessions. Set POLYGON_API_KEY (environment or ./.env) for real data.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every usage error
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="backtest",
        description="barlab: backtest US equity strategies on minute bars.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from barlab import __version__

    parser.add_argument("--version", action="version", version=f"barlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    run = sub.add_parser(
        "run",
        help="backtest a strategy and write its report",
        description="Backtest STRATEGY on cached bars (fetched where missing), save the run "
        "under reports/runs/<run-id>/ and print a summary against buy-and-hold.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_strategy_args(run, param_help=COMBINED_PARAM_HELP, combine=True)
    add_data_flags(
        run,
        start_help="first day, YYYY-MM-DD (inclusive)",
        end_help="last day, YYYY-MM-DD (inclusive; default: yesterday)",
    )
    add_cost_flags(run)
    run.add_argument("--no-report", action="store_true", help="save the run without report.html")
    run.add_argument(
        "--no-lookahead-check",
        action="store_true",
        help="skip the quick look-ahead check after the backtest (see `backtest check`)",
    )
    run.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout instead of the summary"
    )
    run.add_argument("--quiet", action="store_true", help="print only the run id and report path")
    run.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    run.set_defaults(func=cmd_run)

    add_command(
        sub, "list", cmd_list,
        help="list strategies with their parameters",
        description="List the strategies found in ./strategies, the config's "
        "[strategy] paths and barlab's examples.",
    )  # fmt: skip
    add_command(
        sub, "warmup", cmd_warmup,
        help="compile every kernel ahead of time",
        description="Compile (or load from the numba cache) every kernel barlab uses, so the "
        "first backtest is fast; prints how long it took and where the cache is.",
    )  # fmt: skip

    from barlab.cli.data import add_parser as add_data_parser

    add_data_parser(sub, _Parser)

    from barlab.cli.report import add_parser as add_report_parser

    add_report_parser(sub, _Parser)

    from barlab.cli.sweep import add_parser as add_sweep_parser

    add_sweep_parser(sub, _Parser)

    from barlab.cli.papersim import add_parser as add_papersim_parser

    add_papersim_parser(sub, _Parser)

    from barlab.cli.research import add_parser as add_research_parser

    add_research_parser(sub, _Parser)

    from barlab.cli.check import add_parser as add_check_parser

    add_check_parser(sub, _Parser)

    from barlab.cli.promote import add_parser as add_promote_parser

    add_promote_parser(sub, _Parser)

    from barlab.cli.live import add_parser as add_live_parser

    add_live_parser(sub, _Parser)

    cfg = sub.add_parser(
        "config", help="show the resolved configuration", description="Configuration commands."
    )
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser)
    cfg_sub.required = True
    add_command(cfg_sub, "show", cmd_config_show, help="print the resolved config, API keys masked")
    return parser  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    if argv is None and hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `backtest ... | head` ends quietly
    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    try:
        from barlab.config import load_config

        config = load_config()
        prepare_numba_cache(config)
        level = "DEBUG" if debug else config.system.log_level.upper()
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
        return int(args.func(args, config) or 0)
    except BarlabError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def prepare_numba_cache(config: Any) -> None:
    """Point numba's kernel cache where configured (before numba is imported), and make sure
    it is writable: an unwritable cache is a clear error, not a hang or a silent recompile."""
    import os

    folder = os.environ.get("NUMBA_CACHE_DIR") or config.system.numba_cache_dir
    if not folder:
        return
    path = Path(folder).expanduser()
    where = "NUMBA_CACHE_DIR" if os.environ.get("NUMBA_CACHE_DIR") else "[system] numba_cache_dir"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".barlab-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        from barlab.errors import ConfigError

        raise ConfigError(
            f"the numba cache directory {path} ({where}) is not writable ({e.strerror}); "
            "point it at a writable directory or unset it"
        ) from e
    os.environ["NUMBA_CACHE_DIR"] = str(path)


# -- commands ---------------------------------------------------------------------------------


def cmd_warmup(args: argparse.Namespace, config: Any) -> int:
    import os

    from barlab.engine.warmup import warmup

    started = time.perf_counter()
    timings = warmup([Path(p) for p in config.strategy.paths])
    for name, seconds in timings:
        print(f"{name:<24}{seconds:8.2f} s")
    cache = os.environ.get("NUMBA_CACHE_DIR") or "numba's default (beside the sources)"
    print(f"all kernels ready in {time.perf_counter() - started:.2f} s; cache: {cache}")
    return 0


def parse_params(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param {item!r}: expected NAME=VALUE, e.g. --param fast=20")
        out[name.strip()] = value.strip()
    return out


def backtest_options(args: argparse.Namespace, config: Any) -> dict[str, Any]:
    """The backtest's options: [backtest] and [risk] from the config, overridden by flags."""
    opts: dict[str, Any] = {**config.to_dict()["backtest"], **config.to_dict()["risk"]}
    for flag, key in (
        ("stop_loss", "stop_loss"),
        ("take_profit", "take_profit"),
        ("trailing_stop", "trailing_stop"),
        ("stop_loss_atr", "stop_loss_atr"),
        ("take_profit_atr", "take_profit_atr"),
        ("trailing_stop_atr", "trailing_stop_atr"),
        ("atr_window", "atr_window"),
        ("margin", "margin"),
        ("fill_policy", "fill_policy"),
        ("cash", "cash"),
        ("commission", "commission_rate"),
        ("slippage_bps", "slippage_bps"),
        ("fractional", "fractional"),
    ):
        if getattr(args, flag, None) is not None:  # commands without the flag keep the config
            opts[key] = getattr(args, flag)
    return opts  # fmt: skip


def cmd_run(args: argparse.Namespace, config: Any) -> int:
    import barlab
    from barlab.data.request import parse_date

    started = time.perf_counter()
    start = parse_date(args.start, "--from")
    end = parse_date(args.end, "--to") if args.end else None
    strategy = strategy_for(args, config)
    options = backtest_options(args, config)
    barlab.BacktestOptions.from_kwargs(**options)  # fail on bad options before loading data
    bars = load_bars_for(args, config, start, end)
    from barlab.engine.warmup import kernels_cached, statistics_compiled_aside

    if not kernels_cached():
        print(
            "compiling barlab's kernels: the first run on this machine takes about 13 s "
            "(`backtest warmup` does it ahead of time)",
            file=sys.stderr,
            flush=True,
        )
    with statistics_compiled_aside():
        result = barlab.backtest(strategy, bars, **options)
    if not args.no_lookahead_check:
        from barlab.cli.check import run_check

        result = run_check(strategy, bars, result)
    result = result.save(config.reports_dir, config=config.to_dict(), report=not args.no_report)
    report = None if args.no_report else config.reports_dir / "runs" / result.run_id / "report.html"
    log.info("run %s done in %.2f s", result.run_id, time.perf_counter() - started)
    if args.json:
        print(json.dumps(run_json(result, report), allow_nan=False))
    elif args.quiet:
        print(f"run id: {result.run_id}")
        if report:
            print(f"report: {report}")
    else:
        print(summary(result, report))
    return 0


def strategy_for(args: argparse.Namespace, config: Any) -> Any:
    """The strategy of ``run``: one by name with ``--param NAME=VALUE``, or several joined by
    + (``--combine``, ``--param <strategy>.NAME=VALUE``, ``--param weights=...``)."""
    import barlab

    extra = [Path(p) for p in config.strategy.paths]
    if "+" in args.strategy:
        from barlab.combined import load_combined

        return load_combined(args.strategy, parse_params(args.param), how=args.combine, extra=extra)
    if args.combine:
        raise UsageError(
            f"--combine {args.combine} runs several strategies joined by +, e.g. "
            f"{args.strategy}+rsi_mean_reversion; drop it to run {args.strategy} alone"
        )
    return barlab.load_strategy(args.strategy, extra)(**parse_params(args.param))


def load_bars_for(args: argparse.Namespace, config: Any, start: Any, end: Any) -> Any:
    """The bars a command asked for (--symbols, --timeframe, --source, --session), saying
    plainly on stderr when they are the SYNTHETIC demo market."""
    from barlab.config import secrets
    from barlab.data.request import REAL_DATA_HINT, load_request, resolve_source

    source, why = resolve_source(args.source or config.data.source, secrets())
    if source == "demo":
        reason = f" ({why})" if why else ""
        print(
            f"DATA: SYNTHETIC — the demo market{reason}: made-up prices on real NYSE "
            f"sessions, not market data; {REAL_DATA_HINT}.",
            file=sys.stderr,
        )
    return load_request(
        args.symbols, start, end, timeframe=args.timeframe, source=source,
        session=args.session, config=config,
    )  # fmt: skip


def run_json(result: Any, report: Path | None) -> dict[str, Any]:
    info = result.info
    return {
        "run_id": result.run_id,
        "strategy": info["strategy"],
        "params": info["params"],
        "symbols": info["symbols"],
        "timeframe": info["timeframe"],
        "start": info["start"],
        "end": info["end"],
        "source": info["source"],
        "synthetic": info["synthetic"],
        "data_version": info["data_version"],
        "lookahead": info.get("lookahead"),
        "final_equity": result.metrics.final_equity,
        "n_trades": result.metrics.n_trades,
        "ambiguous": dict(zip(("trades", "pnl"), result.ambiguous, strict=True)),
        "metrics": _finite(result.metrics.to_dict()),
        "benchmark_metrics": _finite(result.benchmark_metrics.to_dict()),
        "attribution": None
        if result.attribution is None
        else [_finite(row) for row in result.attribution.to_dicts()],
        "report": str(report) if report else None,
    }


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN or infinity: those become null."""
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()
    }


def summary(result: Any, report: Path | None) -> str:
    from barlab.report.labels import SUMMARY, fmt, format_metric, label

    info = result.info
    params = ", ".join(f"{k}={v}" for k, v in info["params"].items())
    kind = "SYNTHETIC demo market" if info["synthetic"] else info["source"]
    lines = [
        f"{info['strategy']}({params})",
        f"{', '.join(info['symbols'])} · {info['timeframe']} bars · {info['start'][:10]} → "
        f"{info['end'][:10]} · {info['n_bars']:,} bars · data: {kind}",
        "",
        f"{'':<22}{'strategy':>16}{'buy & hold':>16}",
    ]
    for name in SUMMARY:
        mine = format_metric(name, getattr(result.metrics, name))
        bench = format_metric(name, getattr(result.benchmark_metrics, name))
        lines.append(f"{label(name):<22}{mine:>16}{bench:>16}")
    n_ambiguous, ambiguous_pnl = result.ambiguous
    if n_ambiguous:
        policy = result.info.get("options", {}).get("fill_policy", "pessimistic")
        lines += [
            "",
            f"{n_ambiguous:,} trade(s) exited on a bar that reached both the stop and the target:",
            f"the {policy} fill policy decided them (their P&L: {fmt(ambiguous_pnl, 'money')})",
        ]
    from barlab.report.attribution import summary_lines

    lines += summary_lines(result)  # several strategies: each one's share
    lines += ["", f"run id: {result.run_id}"]
    if report:
        lines.append(f"report: {report}")
    if info["synthetic"]:
        lines.append("note:   SYNTHETIC data — these figures say nothing about real markets.")
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace, config: Any) -> int:
    from barlab.strategy import available, load_strategy

    extra = [Path(p) for p in config.strategy.paths]
    for name, path in available(extra).items():
        try:
            cls = load_strategy(name, extra)
        except BarlabError as e:
            print(f"{name}  (cannot load: {e})")
            continue
        doc = (cls.__doc__ or sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
        print(f"{name}  — {doc[0] if doc else ''}  [{path}]")
        for p in cls.params():
            print(f"    {p.name}: {p.type.__name__} = {p.default!r}")
    return 0


def cmd_config_show(args: argparse.Namespace, config: Any) -> int:
    from barlab.config import show

    print(show(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
