"""`backtest data ...`: download, status, verify, import. Parses, calls barlab.data, prints."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from barlab.cli.options import SOURCES, TIMEFRAMES, add_command, add_range_flags
from barlab.errors import BarlabError, DataError, UsageError

DATA_EPILOG = """\
examples:
  export POLYGON_API_KEY=...
  backtest data download AAPL MSFT NVDA --from 2023-01-01 --to 2024-12-31
  backtest data download --symbols-file sp100.txt --from 2024-01-01 --timeframe 1d
  backtest data status
  backtest data verify
  backtest data import goog.csv --symbol GOOG --timeframe 1d
"""


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    data = sub.add_parser(
        "data",
        help="download, inspect, verify and import cached bars",
        description="The Parquet cache of bars under ./data (or [data] dir).",
        epilog=DATA_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = data.add_subparsers(dest="data_command", metavar="ACTION", parser_class=parser_class)
    actions.required = True

    dl = add_command(
        actions,
        "download",
        cmd_download,
        hidden_debug=False,
        help="fetch what the cache lacks",
        description="Fetch the (symbol, month) ranges the cache lacks; finished months are "
        "never fetched again, so an interrupted download resumes where it stopped.",
        epilog=DATA_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dl.add_argument("symbols", nargs="*", help="tickers, e.g. AAPL MSFT (or --symbols-file)")
    dl.add_argument(
        "--symbols-file",
        type=Path,
        metavar="FILE",
        help="a file of tickers, one per line (# comments allowed)",
    )
    add_range_flags(dl)
    dl.add_argument("--timeframe", default="1m", choices=TIMEFRAMES, help="bar size (default 1m)")
    dl.add_argument(
        "--source",
        choices=[s for s in SOURCES if s != "import"],  # imported bars are not downloaded
        help="where from (default: [data] source; with [data] fallback, each failing "
        "symbol tries the next source)",
    )
    dl.add_argument("--quiet", action="store_true", help="no progress, only the summary")
    dl.add_argument("--debug", action="store_true", help="debug logging and tracebacks")

    add_command(
        actions,
        "status",
        cmd_status,
        help="what the cache holds",
        description="Per source, timeframe and symbol: range, bars, "
        "quarantined bars, missing months, last fetch, size on disk.",
    )
    add_command(
        actions,
        "verify",
        cmd_verify,
        help="re-read every cached file and check it",
        description="Re-read every partition; check schema, invariants "
        "and recorded hashes; name the bad ones (exit 1 if any).",
    )
    im = add_command(
        actions,
        "import",
        cmd_import,
        help="cache your own CSV/Parquet bars as source 'import'",
        description="Import OHLCV bars from a CSV or Parquet file.",
    )
    im.add_argument("file", type=Path)
    im.add_argument("--symbol", required=True, help="the ticker these bars are, e.g. GOOG")
    im.add_argument("--timeframe", required=True, choices=TIMEFRAMES)


def _symbols(args: argparse.Namespace) -> list[str]:
    from barlab.data.request import parse_symbols

    items = list(args.symbols)
    if args.symbols_file:
        try:
            text = args.symbols_file.read_text()
        except OSError as e:
            raise UsageError(f"--symbols-file {args.symbols_file}: {e.strerror}") from e
        items += [ln.split("#")[0].strip() for ln in text.splitlines() if ln.split("#")[0].strip()]
    if not items:
        raise UsageError("give symbols (e.g. AAPL MSFT) or --symbols-file FILE")
    return parse_symbols(items, "symbols")


def cmd_download(args: argparse.Namespace, config: Any) -> int:
    from barlab.cli.progress import Progress
    from barlab.config import secrets
    from barlab.data import download
    from barlab.data.calendar import sessions
    from barlab.data.providers import get_provider
    from barlab.data.request import parse_date, resolve_source, yesterday
    from barlab.data.store import Store

    symbols = _symbols(args)
    start = parse_date(args.start, "--from")
    end = parse_date(args.end, "--to") if args.end else yesterday()
    if start > end:
        raise UsageError(f"--from {start} is after --to {end}; swap them")
    if len(sessions(start, end)) == 0:
        raise UsageError(f"no trading days between {start} and {end}; widen the range")
    if args.source:
        order = [resolve_source(args.source, secrets())[0]]
    elif config.data.fallback:
        order = list(config.data.fallback)
    else:
        order = [resolve_source(config.data.source, secrets())[0]]
    store = Store(config.data_dir)
    connected: dict[str, Any] = {}

    def connect(source: str) -> Any:
        if source not in connected:
            provider = get_provider(source, config)
            if provider is None:
                raise UsageError(f"barlab cannot download from {source!r}")
            connected[source] = provider
        return connected[source]

    first = connect(order[0])
    total = sum(
        len(
            download.plan(
                store, first, s, source=order[0], timeframe=args.timeframe, start=start, end=end
            )
        )
        for s in symbols
    )
    progress = Progress(total, quiet=args.quiet)

    def on_chunk(chunk: download.Chunk) -> None:
        stats = _stats(connected.values())
        progress.advance(f"{chunk.symbol} {chunk.month}", **stats)

    reports = []
    try:
        for symbol in symbols:
            reports.append(
                download.fill_with_failover(
                    store,
                    [(s, lambda s=s: connect(s)) for s in order],
                    symbol,
                    timeframe=args.timeframe,
                    start=start,
                    end=end,
                    on_chunk=on_chunk,
                )
            )
    finally:
        progress.close()
    return _summarize(reports, store, args.timeframe, start, end, connected)


def _stats(providers: Any) -> dict[str, Any]:
    out = {"requests": 0, "rate_limited": 0, "waited_s": 0.0}
    for p in providers:
        stats = getattr(p, "stats", None)
        if stats is not None:
            out["requests"] += stats.requests
            out["rate_limited"] += stats.rate_limited
            out["waited_s"] += stats.waited_s
    return out


def _summarize(reports: list[Any], store: Any, timeframe: str, start: dt.date, end: dt.date,
               connected: dict[str, Any]) -> int:  # fmt: skip
    failed = 0
    for r in reports:
        if not r.source:
            failed += 1
            print(f"{r.symbol}: FAILED — {r.error}", file=sys.stderr)
            continue
        held = store.read(source=r.source, timeframe=timeframe, symbol=r.symbol, start=start,
                          end=end, columns=["ts"]).height  # fmt: skip
        if held == 0:
            failed += 1
            print(
                f"{r.symbol}: no bars for {r.symbol} between {start} and {end} from "
                f"{r.source} (unknown symbol, or not listed then)",
                file=sys.stderr,
            )
            continue
        fetched = f"{len(r.chunks)} month(s) fetched" if r.chunks else "already cached"
        note = f", {r.quarantined} bad bar(s) quarantined" if r.quarantined else ""
        via = f" (after: {r.error})" if r.error else ""
        print(f"{r.symbol}: {held:,} {timeframe} bars from {r.source}, {fetched}{note}{via}")
    stats = _stats(connected.values())
    print(
        f"{stats['requests']} request(s), {stats['rate_limited']} rate-limited, "
        f"{stats['waited_s']:.1f} s waiting for rate limits"
    )
    return 1 if failed else 0


def cmd_status(args: argparse.Namespace, config: Any) -> int:
    from barlab.data.status import status_rows

    rows = status_rows(config.data_dir)
    if not rows:
        print(f"the cache under {config.data_dir} is empty; try `backtest data download`")
        return 0
    head = (
        "source",
        "tf",
        "symbol",
        "from",
        "to",
        "bars",
        "quarantined",
        "missing months",
        "last fetch",
        "size",
    )
    table = [head, *[r.cells() for r in rows]]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_verify(args: argparse.Namespace, config: Any) -> int:
    from barlab.data.status import verify_all

    checked, problems = verify_all(config.data_dir)
    for path, problem in problems:
        print(f"BAD {path}: {problem}", file=sys.stderr)
    print(f"{checked} file(s) checked, {len(problems)} bad")
    if problems:
        print("delete the bad files and download again; they will be re-fetched", file=sys.stderr)
    return 1 if problems else 0


def cmd_import(args: argparse.Namespace, config: Any) -> int:
    from barlab.data.importer import import_file
    from barlab.data.request import parse_symbols
    from barlab.data.store import Store

    symbol = parse_symbols(args.symbol, "--symbol")[0]
    try:
        report = import_file(
            args.file, symbol=symbol, timeframe=args.timeframe, store=Store(config.data_dir)
        )
    except BarlabError:
        raise
    except OSError as e:
        raise DataError(f"cannot import {args.file}: {e}") from e
    note = f"; {report.quarantined} bad bar(s) quarantined" if report.quarantined else ""
    files = f"{report.months} month file(s)"
    print(
        f"{symbol}: {report.bars:,} {args.timeframe} bars from {report.first} to "
        f"{report.last} imported as source 'import' ({files}){note}"
    )
    print(
        f"backtest with: backtest run STRATEGY --source import --symbols {symbol} "
        f"--timeframe {args.timeframe} --from {report.first}"
    )
    return 0
