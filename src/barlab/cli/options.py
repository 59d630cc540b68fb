"""The flags several commands share, defined once so that they read and parse alike everywhere:
the strategy a command runs, the bars it loads (``--from``, ``--to``, ``--symbols``,
``--timeframe``, ``--source``, ``--session``), the costs and exits of its backtests, its
output, and the set-up of a subcommand."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

TIMEFRAMES = ["1m", "5m", "15m", "1h", "1d"]
SOURCES = ["auto", "demo", "polygon", "alpaca", "finnhub", "import"]
"""Where bars may come from; ``import`` is the cache of the user's own files."""
DEBUG_HELP = "debug logging and full tracebacks"


def add_command(
    sub: Any,
    name: str,
    func: Callable[[argparse.Namespace, Any], int],
    *,
    hidden_debug: bool = True,
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """Subcommand ``name`` of ``sub`` (an ``add_subparsers()`` result), running
    ``func(args, config)``; ``kwargs`` (``help``, ``description``, ...) go to ``add_parser``.

    It takes ``--debug`` without listing it, unless ``hidden_debug`` is False: then the
    command adds a visible one itself, after its other flags (:func:`add_output_flags`).
    """
    parser: argparse.ArgumentParser = sub.add_parser(name, **kwargs)
    if hidden_debug:
        parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(func=func)
    return parser


def add_strategy_args(
    p: argparse.ArgumentParser,
    *,
    param_help: str | None = None,
    metavar: str = "NAME=VALUE",
    combine: bool = False,
) -> None:
    """The STRATEGY positional, then (with ``param_help``) ``--param NAME=VALUE``, repeatable,
    into ``args.param`` (a list). With ``combine``, STRATEGY may join several by + and
    ``--combine`` says how they share the account, as ``backtest run`` reads them
    (:func:`barlab.cli.strategy_for`)."""
    if not combine:
        p.add_argument("strategy", help="strategy name, e.g. sma_crossover (see `backtest list`)")
    else:
        p.add_argument("strategy", help=COMBINED_STRATEGY_HELP)
    if param_help is not None:
        p.add_argument("--param", action="append", default=[], metavar=metavar, help=param_help)
    if combine:
        p.add_argument("--combine", choices=["sum", "priority"], help=COMBINE_HELP)


COMBINED_STRATEGY_HELP = (
    "strategy name, e.g. sma_crossover (see `backtest list`); several joined by + trade one "
    "account: sma_crossover+rsi_mean_reversion (see --combine)"
)
COMBINED_PARAM_HELP = (
    "strategy parameter, repeatable: --param fast=20 --param slow=100; for several "
    "strategies --param sma_crossover.fast=20 and --param weights=0.5,0.5"
)
COMBINE_HELP = (
    "how several strategies (a+b) share the account: sum of their weighted targets "
    "(default) or priority (the first one holding a symbol controls it)"
)


def add_range_flags(
    p: argparse.ArgumentParser,
    *,
    required: bool = True,
    start_help: str = "YYYY-MM-DD",
    end_help: str = "YYYY-MM-DD (default: yesterday)",
) -> None:
    """``--from DATE`` (``args.start``) and ``--to DATE`` (``args.end``)."""
    p.add_argument("--from", dest="start", required=required, metavar="DATE", help=start_help)
    p.add_argument("--to", dest="end", metavar="DATE", help=end_help)


def add_data_flags(p: argparse.ArgumentParser, **range_options: Any) -> None:
    """The bars to load, as :func:`barlab.cli.load_bars_for` reads them: ``--from`` and
    ``--to`` (``range_options`` as for :func:`add_range_flags`), then ``--symbols``,
    ``--timeframe``, ``--source`` and ``--session``, each defaulting to the config."""
    add_range_flags(p, **range_options)
    p.add_argument(
        "--symbols",
        metavar="LIST",
        help="comma-separated tickers (default: [strategy] symbols in the config)",
    )
    p.add_argument(
        "--timeframe", choices=TIMEFRAMES, help="bar size (default: [strategy] timeframe, 1m)"
    )
    p.add_argument(
        "--source",
        choices=SOURCES,
        help="where bars come from (default: [data] source, auto = Polygon if POLYGON_API_KEY "
        "is set, else the SYNTHETIC demo market)",
    )
    p.add_argument(
        "--session",
        choices=["rth", "all"],
        help="regular trading hours only (default, [data] session) or extended hours too",
    )


EXITS = (
    ("--stop-loss", "below (long) or above (short) the entry, e.g. 0.02"),
    ("--take-profit", "beyond the entry in the trade's favour, e.g. 0.05"),
    ("--trailing-stop", "behind the best price since entry, e.g. 0.03"),
)


def add_cost_flags(p: argparse.ArgumentParser) -> None:
    """The account, costs and exits of every backtest a command runs, each defaulting to the
    config's [backtest]: ``--cash``, ``--commission``, ``--slippage-bps``, ``--fractional``,
    ``--margin``, the attached exits as fractions (``--stop-loss``, ...) or ATR multiples
    (``--stop-loss-atr``, ..., ``--atr-window``) and ``--fill-policy``; read by
    :func:`barlab.cli.backtest_options`."""
    p.add_argument("--cash", type=float, metavar="USD", help="starting cash (default 100000)")
    p.add_argument(
        "--commission",
        type=float,
        metavar="FRACTION",
        help="commission as a fraction of notional per fill, e.g. 0.001 = 0.1%% "
        "(default 0, like Alpaca)",
    )
    p.add_argument(
        "--slippage-bps", type=float, metavar="BPS", help="slippage per fill in basis points (1)"
    )
    p.add_argument(
        "--fractional",
        action="store_true",
        default=None,
        help="trade fractional shares (default: whole shares)",
    )
    p.add_argument(
        "--margin",
        type=float,
        metavar="X",
        help="buying power as a multiple of equity: 1 = cash account (default), 2 = Reg T",
    )
    for flag, what in EXITS:
        p.add_argument(
            flag, type=float, metavar="FRACTION", help=f"exit attached to every entry: {what}"
        )
        p.add_argument(
            f"{flag}-atr", type=float, metavar="K",
            help=f"the {flag[2:].replace('-', ' ')} as K times the ATR at the entry's signal bar "
            "instead, e.g. 2",
        )  # fmt: skip
    p.add_argument(
        "--atr-window", type=int, metavar="BARS", help="bars in the ATR of --*-atr exits (14)"
    )
    p.add_argument(
        "--fill-policy",
        choices=["pessimistic", "optimistic"],
        help="a bar reaching both the stop and the target fills the stop (pessimistic, default)",
    )


def add_output_flags(
    p: argparse.ArgumentParser, *, json_help: str = "print one JSON object on stdout"
) -> None:
    """``--json`` and a visible ``--debug``, last in the command's help."""
    p.add_argument("--json", action="store_true", help=json_help)
    p.add_argument("--debug", action="store_true", help=DEBUG_HELP)


def param_items(
    items: list[str], params: list[str], label: str, *, expected: str, twice: str = ""
) -> list[tuple[str, str]]:
    """``--param NAME=TEXT`` items as (name, text), each name one of ``params`` (of strategy
    ``label``) and given once; UsageError naming the item otherwise. ``expected`` shows the
    form, e.g. ``"NAME=LO:HI, e.g. --param fast=5:100"``; ``twice`` adds a hint to the
    given-twice error."""
    from barlab.errors import UsageError

    out: list[tuple[str, str]] = []
    for item in items:
        name, sep, text = (s.strip() for s in item.partition("="))
        if not sep or not name:
            raise UsageError(f"--param {item!r}: expected {expected}")
        if name not in params:
            raise UsageError(
                f"--param {name}: {label} has no parameter {name!r}; it takes "
                f"{', '.join(params) or 'none'}"
            )
        if any(name == seen for seen, _ in out):
            raise UsageError(f"--param {name} given twice{twice}")
        out.append((name, text))
    return out


def fraction_arg(flag: str, example: str) -> Callable[[str], float]:
    """An argparse ``type`` for ``flag``: a number from 0 to 1 (e.g. ``example``); anything
    else is an error naming the flag and the example."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not 0.0 <= value <= 1.0:
            raise argparse.ArgumentTypeError(
                f"{flag} takes a fraction from 0 to 1, e.g. {flag} {example}; got {text!r}"
            )
        return value

    return parse


def one_of_arg(flag: str, values: tuple[float, ...], example: str) -> Callable[[str], float]:
    """An argparse ``type`` for ``flag``: one of the numbers ``values``; anything else is an
    error naming the flag, the values and ``example``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if value not in values:
            allowed = ", ".join(f"{v:g}" for v in values)
            raise argparse.ArgumentTypeError(
                f"{flag} takes one of {allowed}, e.g. {flag} {example}; got {text!r}"
            )
        return value

    return parse
