"""`backtest live STRATEGY --paper | --replay | --live`: the live bridge from the command line.

``--replay`` runs the bridge against the local paper emulator over cached bars and prints the
parity report against the backtest (saved under reports/runs/<id>/); ``--paper`` trades the
promoted strategy on Alpaca paper trading until SIGTERM or Ctrl-C; ``--dry-run`` logs the
orders it would send and sends none.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from barlab.cli.options import (
    COMBINED_PARAM_HELP,
    DEBUG_HELP,
    add_command,
    add_data_flags,
    add_strategy_args,
    fraction_arg,
    one_of_arg,
)
from barlab.errors import ConfigError, UsageError

LIVE_EPILOG = """\
examples:
  backtest live sma_crossover --replay --from 2024-03-04 --to 2024-03-08 --symbols AAPL,MSFT,TSLA
  backtest live sma_crossover --paper --dry-run     # logs the orders it would send
  backtest live sma_crossover --paper               # trades the promoted strategy on paper
  backtest live sma_crossover+rsi_mean_reversion --combine sum --param weights=0.6,0.4 \\
      --replay --from 2024-03-04 --to 2024-03-08 --symbols AAPL,MSFT,TSLA

Keys come only from the environment (or ./.env): APCA_API_KEY_ID and APCA_API_SECRET_KEY.
The broker and data hosts: [live] trading_base_url ($APCA_API_BASE_URL), [live]
data_stream_url, [alpaca] data_base_url ($APCA_DATA_BASE_URL); the request budget: [alpaca]
requests_per_minute (200, Alpaca's per key; the bridge keeps 5 % below it).
The strategy's window: --window, else its `lookback` attribute (bars), else 4 x its largest
integer parameter (at least 200). Orders are sized at the signal bar's close (size_on=signal),
the rule the replay's backtest side uses too, so the parity report compares like with like.
"""


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    live = add_command(
        sub, "live", cmd_live, hidden_debug=False,
        help="run a strategy on Alpaca paper trading, or replay it offline with a parity report",
        description="Run STRATEGY bar by bar through the live bridge: on Alpaca paper trading "
        "(--paper), or offline against the local paper emulator with a parity report against "
        "the backtest (--replay).",
        epilog=LIVE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add_strategy_args(live, param_help=COMBINED_PARAM_HELP, combine=True)
    mode = live.add_mutually_exclusive_group(required=True)
    mode.add_argument("--paper", action="store_true", help="trade on Alpaca paper trading")
    mode.add_argument("--replay", action="store_true", help="offline replay with parity report")
    mode.add_argument("--live", action="store_true", help="trade real money (needs --confirm-live)")
    live.add_argument("--confirm-live", action="store_true", help="yes, --live trades real money")
    live.add_argument("--dry-run", action="store_true", help="log the orders, send none")
    add_data_flags(
        live, required=False, start_help="replay: first day, YYYY-MM-DD",
        end_help="replay: last day, YYYY-MM-DD (default: --from)",
    )  # fmt: skip
    live.add_argument("--window", type=int, metavar="BARS", help="rolling window length in bars")
    live.add_argument("--journal", metavar="PATH", help="the journal file (default: per strategy)")
    live.add_argument("--cash", type=float, metavar="USD", help="replay: starting cash")
    live.add_argument("--size-pct", type=float, metavar="FRACTION", help="equity put to work")
    live.add_argument("--slippage-bps", type=float, metavar="BPS", help="replay: slippage")
    live.add_argument(
        "--partial-fills", type=fraction_arg("--partial-fills", "0.1"), default=0.0,
        metavar="RATE",
        help="replay: the fraction of fills the emulator cuts to a random part, the rest "
        "filling on later bars, e.g. 0.1 as Alpaca's paper fills do (default 0: whole fills); "
        "the report counts those orders and the differences they explain",
    )  # fmt: skip
    live.add_argument(
        "--margin", type=one_of_arg("--margin", (1.0, 2.0, 4.0), "2"), metavar="X",
        help="buying power as a multiple of equity: 1 (cash account, default), 2 (Reg T) or 4. "
        "--replay: the backtest's and the emulator account's multiplier; --paper/--live: only "
        "the bridge's own sizing (the Alpaca account keeps its own multiplier, and the bridge "
        "never uses more buying power than the account reports)",
    )  # fmt: skip
    live.add_argument(
        "--metrics-port", type=int, metavar="PORT",
        help="serve /metrics (Prometheus) and /health on this port, e.g. 9108",
    )  # fmt: skip
    live.add_argument(
        "--metrics-host", default="127.0.0.1", metavar="HOST",
        help="address of the metrics port (default 127.0.0.1; 0.0.0.0 in a container)",
    )  # fmt: skip
    # the exits a broker holds as bracket (or OTO) legs: no trailing exit (see bridge_options)
    for flag, what in (
        ("--stop-loss", "a fraction below a long's entry (above a short's), e.g. 0.02"),
        ("--take-profit", "a fraction above a long's entry (below a short's), e.g. 0.05"),
        ("--stop-loss-atr", "the stop-loss as a multiple of the ATR, e.g. 2"),
        ("--take-profit-atr", "the take-profit as a multiple of the ATR, e.g. 3"),
    ):  # fmt: skip
        live.add_argument(
            flag, type=float, metavar="X",
            help=f"attach an exit to every entry, sent as a bracket (or OTO) leg: {what}",
        )  # fmt: skip
    live.add_argument("--atr-window", type=int, metavar="BARS", help="bars in the ATR, e.g. 14")
    live.add_argument("--debug", action="store_true", help=DEBUG_HELP)


def cmd_live(args: argparse.Namespace, config: Any) -> int:
    import barlab
    from barlab.cli import backtest_options, strategy_for
    from barlab.live.bridge import BridgeConfig, bridge_options
    from barlab.live.window import default_window

    if args.live and not args.confirm_live:
        raise UsageError("--live trades real money; add --confirm-live to say so (or use --paper)")
    if args.replay and (args.dry_run or args.confirm_live):
        raise UsageError("--replay sends orders only to the local emulator; drop --dry-run")
    if args.partial_fills and not args.replay:
        raise UsageError(
            "--partial-fills sets the local emulator's fills: use it with --replay (on Alpaca "
            "the broker decides, about 10% of paper fills are partial)"
        )
    strategy = strategy_for(args, config)  # one by name, or several joined by + (--combine)
    opts = backtest_options(args, config)
    if args.size_pct is not None:
        opts["size_pct"] = args.size_pct
    options = bridge_options(barlab.BacktestOptions.from_kwargs(**opts))
    window = args.window if args.window is not None else default_window(strategy)
    if args.replay:
        return _replay(args, config, strategy, options, window)
    cfg = BridgeConfig(options=options, window_bars=window, dry_run=args.dry_run)
    return _trade(args, config, strategy, cfg)


def _replay(args: argparse.Namespace, config: Any, strategy: Any, options: Any, window: int):
    from barlab.cli import load_bars_for
    from barlab.data.request import parse_date
    from barlab.live.bridge import BridgeConfig
    from barlab.live.exits import has_exits
    from barlab.live.parity import save
    from barlab.live.replay import replay, replay_options

    if not args.start:
        raise UsageError("--replay needs --from DATE (and --to DATE), e.g. --from 2024-03-04")
    start = parse_date(args.start, "--from")
    end = parse_date(args.end, "--to") if args.end else start
    bars = load_bars_for(args, config, start, end)
    cfg = BridgeConfig(options=replay_options(options), window_bars=window)
    info = {
        "kind": "replay", "strategy": strategy.label(), "params": strategy.get_params(),
        "symbols": list(bars.symbols), "timeframe": bars.timeframe, "source": bars.source,
        "synthetic": bars.synthetic, "start": str(start), "end": str(end),
        "data_version": bars.version, "window_bars": window,
        "options": cfg.options.to_dict(), "partial_fill_rate": args.partial_fills,
    }  # fmt: skip
    folder = Path(config.reports_dir) / "runs" / _run_id(info)
    result = replay(
        strategy, bars, config=cfg, journal_path=folder / "journal.jsonl",
        exchange_rules={"partial_fill_rate": args.partial_fills},
    )  # fmt: skip
    save(result.report, folder, backtest=result.backtest, bridge=result.bridge, info=info)
    kind = " · SYNTHETIC demo market" if bars.synthetic else ""
    print(
        f"{strategy!r} · {', '.join(bars.symbols)} · {bars.timeframe} · {start} → {end} · "
        f"{bars.n_bars:,} bars{kind}"
    )
    report = result.report
    print(report.summary())
    if not report.exact:
        if report.partial_fills and not report.unexplained:
            print(
                f"note:   not exact because of partial fills (--partial-fills "
                f"{args.partial_fills:g}): every difference comes at or after the first order "
                "the emulator filled in parts; the bridge's orders, cancels and refusals are in "
                "journal.jsonl."
            )
        else:
            print(
                f"note:   not exact. A strategy whose last row needs more than the window's "
                f"{window} bars, or depends on its row index (a schedule counted from the first "
                "bar), differs on a rolling window: try --window with the run's length. Orders "
                "refused by the broker are journalled (journal.jsonl, kind submit)."
            )
        refused = result.stats.get("errors", 0)
        if refused:
            print(
                f"note:   the broker refused {refused} orders: the backtest checks buying "
                "power as Alpaca does, but does not reserve it for resting orders from earlier "
                "bars, nor know Alpaca's $2,000 minimum to sell short; try a smaller "
                "--size-pct, e.g. 0.5."
            )
        if has_exits(options):
            print(
                "note:   attached exits go to the broker on the cent (Alpaca refuses sub-penny "
                "prices) and a take-profit leg, a limit order, is never slipped: a backtest "
                "whose exit levels are off the cent, or that slips take-profit fills "
                "(--slippage-bps above 0), differs at those fills."
            )
    print(f"run: {folder}")
    return 0 if result.report.exact else 1


def _run_id(info: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(info, sort_keys=True, default=str).encode()).hexdigest()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-replay-{info['strategy']}-{digest[:6]}"


def _trade(args: argparse.Namespace, config: Any, strategy: Any, cfg: Any) -> int:
    from barlab.config import secrets
    from barlab.live.runner import Endpoints, SessionOptions, run_session
    from barlab.live.shutdown import GracefulShutdown

    keys = secrets()
    missing = [k for k in ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY") if not keys.get(k)]
    if missing:
        raise ConfigError(
            f"{' and '.join(missing)} not set: export your Alpaca paper keys "
            "(APCA_API_KEY_ID=... APCA_API_SECRET_KEY=...) or put them in ./.env"
        )
    # a strategy (or combination) trades only as promoted: same parameters, same source
    from barlab.live.promotion import check_promoted

    check_promoted(strategy, reports_dir=config.reports_dir)
    live = config.live
    endpoints = Endpoints(
        trading_url=live.trading_base_url, stream_url=live.data_stream_url,
        data_url=config.alpaca.data_base_url, feed=live.feed, allow_live=args.live,
        key_id=keys["APCA_API_KEY_ID"], secret_key=keys["APCA_API_SECRET_KEY"],
        requests_per_minute=0.95 * config.alpaca.requests_per_minute,  # a margin below it
    )  # fmt: skip
    journal = Path(args.journal) if args.journal else _journal_path(config, strategy)
    listed = args.symbols or ",".join(config.strategy.symbols)
    symbols = tuple(s.strip().upper() for s in listed.split(",") if s.strip())
    mode = "DRY RUN (no orders sent)" if cfg.dry_run else ("LIVE" if args.live else "paper")
    print(f"{strategy!r} on {', '.join(symbols)} · {mode} · journal {journal}", flush=True)
    stop = threading.Event()
    session, server = _ops(
        args,
        SessionOptions(
            on_shutdown=live.on_shutdown, market_data_retention=live.market_data_retention
        ),
    )
    try:
        with GracefulShutdown(lambda why: stop.set()):
            bridge = run_session(
                strategy, endpoints=endpoints, symbols=symbols,
                timeframe=args.timeframe or config.strategy.timeframe, config=cfg,
                journal_path=journal, stop=stop, options=session,
            )  # fmt: skip
    finally:
        if server is not None:
            server.stop()
    print(f"stopped: {json.dumps(bridge.stats)}")
    return 0


def _ops(args: argparse.Namespace, session: Any) -> tuple[Any, Any]:
    """``session`` with Prometheus metrics and a health endpoint when --metrics-port is given,
    and the started ops server (None without the flag)."""
    if args.metrics_port is None:
        return session, None
    from barlab.live.ops import BridgeMetrics, Health, OpsServer

    metrics, health = BridgeMetrics(), Health()
    health.register("feed_latency_s", metrics.feed_latency_quantiles)
    server = OpsServer(metrics, health, host=args.metrics_host, port=args.metrics_port).start()
    print(f"metrics: {server.url}/metrics · health: {server.url}/health", flush=True)
    return dataclasses.replace(session, metrics=metrics, health=health), server


def _journal_path(config: Any, strategy: Any) -> Path:
    """One journal per strategy and parameters, so a restart resumes it."""
    key = json.dumps(strategy.get_params(), sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return Path(config.reports_dir) / "live" / f"{strategy.label()}-{digest}.jsonl"
