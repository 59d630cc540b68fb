"""`backtest paper-sim`: serve the local Alpaca paper emulator over cached (or demo) bars, so a
strategy, the broker client or Alpaca's own SDK can paper-trade offline on 127.0.0.1."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
import sys
from typing import Any

from barlab.errors import UsageError

PAPERSIM_EPILOG = """\
examples:
  backtest paper-sim --port 8765 --symbols AAPL,MSFT --from 2024-03-04 --to 2024-03-08
  backtest paper-sim --step            # one bar per Enter key
  backtest paper-sim --speed 600       # ten 1-minute bars a second

Point clients at it with APCA_API_BASE_URL=http://127.0.0.1:PORT (any key pair is accepted
unless --key-id/--secret are given). Simulated time starts at the first bar and moves one bar
per tick; orders fill by the rules of barlab.live.fills (market orders at the next bar's open).
Stop with Ctrl-C or SIGTERM.
"""


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    ps = sub.add_parser(
        "paper-sim",
        help="serve a local Alpaca paper-trading emulator over cached bars",
        description="Replay bars as an Alpaca paper account on 127.0.0.1: the trading REST API "
        "(orders, positions, account, clock) speaking Alpaca's JSON.",
        epilog=PAPERSIM_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ps.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0: any free)")
    ps.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ps.add_argument("--symbols", metavar="LIST", help="comma-separated tickers")
    ps.add_argument("--from", dest="start", metavar="DATE", help="first day (default: --to - 6)")
    ps.add_argument("--to", dest="end", metavar="DATE", help="last day (default: yesterday)")
    ps.add_argument("--timeframe", choices=["1m", "5m", "15m", "1h", "1d"], help="bar size")
    ps.add_argument(
        "--source",
        choices=["auto", "demo", "polygon", "alpaca", "finnhub", "import"],
        help="where bars come from (default: [data] source)",
    )
    ps.add_argument("--session", choices=["rth", "all"], help="regular hours only, or all")
    pace = ps.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed", type=float, default=60.0, metavar="N",
        help="replay N times faster than real time (default 60: a 1-minute bar a second)",
    )  # fmt: skip
    pace.add_argument("--step", action="store_true", help="advance one bar per line on stdin")
    ps.add_argument("--cash", type=float, default=100_000.0, metavar="USD", help="starting cash")
    ps.add_argument(
        "--slippage-bps", type=float, default=0.0, metavar="BPS", help="on market fills"
    )
    ps.add_argument(
        "--max-participation", type=float, metavar="FRACTION",
        help="most of a bar's volume an order takes (partial fills), e.g. 0.1",
    )  # fmt: skip
    ps.add_argument(
        "--partial-fill-rate", type=float, default=0.0, metavar="P",
        help="chance a fill is cut to a random part, e.g. 0.1 like Alpaca paper (default 0)",
    )  # fmt: skip
    ps.add_argument("--seed", type=int, default=0, help="seeds ids and random partial fills")
    ps.add_argument("--fractional", action="store_true", help="accept fractional and notional")
    ps.add_argument("--key-id", metavar="KEY", help="the only key id accepted (default: any)")
    ps.add_argument("--secret", metavar="SECRET", help="the only secret key accepted")
    ps.add_argument(
        "--rate-limit", type=int, default=200, metavar="N",
        help="requests per key per minute before 429 (default 200, Alpaca's; 0: off)",
    )  # fmt: skip
    ps.add_argument("--debug", action="store_true", help="debug logging and full tracebacks")
    ps.set_defaults(func=cmd_paper_sim)


def cmd_paper_sim(args: argparse.Namespace, config: Any) -> int:
    from barlab.cli import load_bars_for
    from barlab.data.request import parse_date, yesterday
    from barlab.live.exchange import PaperExchange

    if (args.key_id is None) != (args.secret is None):
        raise UsageError("--key-id and --secret go together; give both, or neither (any key)")
    if not args.step and not args.speed > 0:
        raise UsageError(f"--speed must be > 0, e.g. 60; got {args.speed}")
    end = parse_date(args.end, "--to") if args.end else yesterday()
    start = parse_date(args.start, "--from") if args.start else end - dt.timedelta(days=6)
    bars = load_bars_for(args, config, start, end)
    exchange = PaperExchange(
        bars, cash=args.cash, slippage_bps=args.slippage_bps,
        max_participation=args.max_participation, fractional=args.fractional,
        partial_fill_rate=args.partial_fill_rate, seed=args.seed,
    )  # fmt: skip
    return asyncio.run(_serve(exchange, args))


async def _serve(exchange: Any, args: argparse.Namespace) -> int:
    from aiohttp import web

    from barlab.live.emulator import make_app

    app = make_app(
        exchange, key_id=args.key_id, secret_key=args.secret,
        rate_limit_per_min=args.rate_limit or None,
    )  # fmt: skip
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, args.host, args.port).start()
    except OSError as e:
        await runner.cleanup()
        raise UsageError(
            f"cannot listen on {args.host}:{args.port} ({e.strerror}); pick another --port"
        ) from e
    port = int(runner.addresses[0][1])
    _banner(exchange, args, port)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.step:
        loop.add_reader(sys.stdin.fileno(), _step_on_line, exchange, loop)
        ticker = None
    else:
        bar_s = exchange.clock.bar_ns / 1e9
        ticker = asyncio.create_task(_tick(exchange, bar_s / args.speed, stop))
    await stop.wait()
    if ticker is not None:
        ticker.cancel()
    if args.step:
        loop.remove_reader(sys.stdin.fileno())
    await runner.cleanup()
    print("paper-sim stopped", flush=True)
    return 0


async def _tick(exchange: Any, interval_s: float, stop: asyncio.Event) -> None:
    """Close one bar every ``interval_s`` seconds until the bars run out (then keep serving).
    A bar opens a fifth of the interval (at most a second) before it closes: an order sent in
    between, e.g. the opening half of a flip sent on its closing half's fill, fills at that
    open."""
    at_open = min(0.2 * interval_s, 1.0)
    while not stop.is_set():
        await asyncio.sleep(interval_s - at_open)
        if exchange.open_bar() is None:
            print("replay finished: the last bar has closed; still serving", flush=True)
            return
        await asyncio.sleep(at_open)
        exchange.close_bar()


def _step_on_line(exchange: Any, loop: asyncio.AbstractEventLoop) -> None:
    line = sys.stdin.readline()
    if not line:  # stdin closed: nothing more to step on
        loop.remove_reader(sys.stdin.fileno())
        return
    row = exchange.advance()
    when = exchange.clock_json()["timestamp"]
    print(f"bar {row} closed; now {when}" if row is not None else "no more bars", flush=True)


def _banner(exchange: Any, args: argparse.Namespace, port: int) -> None:
    bars = exchange.bars
    url = f"http://{args.host}:{port}"
    kind = "SYNTHETIC demo bars" if bars.synthetic else f"{bars.source} bars"
    first = exchange.clock_json()["timestamp"]
    pace = "one bar per line on stdin" if args.step else f"{args.speed:g}x real time"
    print(f"paper emulator listening on {url}", flush=True)
    print(
        f"  replaying {bars.n_bars:,} {bars.timeframe} bars of {', '.join(bars.symbols)} "
        f"({kind}) from {first}, {pace}",
    )
    print("  point Alpaca clients at it:")
    print(f"    export APCA_API_BASE_URL={url}")
    print(f"    export BARLAB_LIVE_DATA_STREAM_URL=ws://{args.host}:{port}")
    if args.key_id:
        print("    (only the key pair given with --key-id/--secret is accepted)")
    else:
        print("    export APCA_API_KEY_ID=paper APCA_API_SECRET_KEY=paper   # any pair works")
    print("  Ctrl-C or SIGTERM stops it.", flush=True)
