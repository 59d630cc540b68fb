"""Offline replay: the bridge against the local paper emulator over cached bars, over real
HTTP and WebSockets on 127.0.0.1, then the parity report against the backtest.

The emulator (:class:`~barlab.live.exchange.PaperExchange` behind
:class:`~barlab.live.emulator.EmulatorServer`) fills by the kernel's rules: market orders at
the next bar's open, with the same slippage; limit, stop and trailing stop orders and the
legs of brackets by :mod:`barlab.live.fills`; no commission (Alpaca charges none), so the
backtest side runs without commission too. :func:`drive` paces it: the next bar opens only
once the bridge has journalled the last one, and closes once the bridge has sent the opening
halves of flips whose closing halves filled at that open, so the replay runs as fast as the
bridge acts.

With ``partial_fill_rate`` among the ``exchange_rules`` the emulator fills a random part of
some orders and the rest on later bars, as Alpaca's paper fills do about 10% of the time; the
report then lists the bridge's orders filled in parts (:func:`partial_fills`), which the
backtest fills whole.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl

from barlab.bars import Bars
from barlab.engine.backtest import BacktestOptions
from barlab.live.bridge import BridgeConfig, LiveBridge
from barlab.live.journal import read_journal, wait_for
from barlab.live.parity import COLUMNS, ParityReport, backtest_orders, compare
from barlab.strategy import Strategy

log = logging.getLogger(__name__)


def replay_options(options: BacktestOptions) -> BacktestOptions:
    """The options both sides of a replay use: no commission (the emulator charges none)."""
    costs = dataclasses.replace(
        options.costs, commission_rate=0.0, commission_per_share=0.0, commission_per_order=0.0,
        commission_min=0.0, commission_max=None,
    )  # fmt: skip
    return dataclasses.replace(options, costs=costs)


def make_server(
    bars: Bars, options: BacktestOptions, *, key_id: str, secret_key: str, **rules: Any
) -> Any:
    """An emulator over ``bars`` with the account (cash, and ``margin`` as its buying-power
    multiplier), slippage and buying-power buffer of ``options`` (``rules``: other
    :class:`~barlab.live.exchange.ExchangeRules`), not started.
    Like Alpaca it refuses an order that takes a position through zero (``allow_flip``): the
    bridge sends a flip as two orders."""
    from barlab.live.emulator import EmulatorServer
    from barlab.live.exchange import PaperExchange

    settings = {
        "slippage_bps": options.costs.slippage_bps, "fractional": options.fractional,
        "allow_flip": False, "market_buffer": options.buying_power_buffer,
        "multiplier": options.margin, **rules,
    }  # fmt: skip
    exchange = PaperExchange(bars, cash=options.cash, **settings)
    return EmulatorServer(exchange, key_id=key_id, secret_key=secret_key, rate_limit_per_min=None)


def drive(
    server: Any,
    journal_path: Path,
    *,
    timeout_s: float = 60.0,
    bars: int | None = None,
    alive: Callable[[], bool] | None = None,
    before_bar: Callable[[Any, int], None] | None = None,
) -> int:
    """Close the emulator's bars one at a time, each once the bridge journalled the last
    (``bars``: at most this many; None: to the end; ``alive``: see
    :func:`~barlab.live.journal.wait_for`; ``before_bar(server, row)``: called before bar
    ``row`` closes, e.g. to inject faults). Returns the number closed."""
    ex = server.exchange
    offset, closed = 0, 0
    flips = FlipPacer(journal_path)
    while bars is None or closed < bars:
        if before_bar is not None and ex.index + 1 < ex.bars.n_bars:
            before_bar(server, ex.index + 1)
        row = server.open_bar()
        if row is None:
            break
        flips.wait(server, timeout_s=timeout_s, alive=alive)
        server.close_bar()
        closed += 1
        offset = wait_for(
            journal_path, "bar", ts_ns=int(ex.bars.ts_ns[row]), timeout_s=timeout_s,
            offset=offset, alive=alive,
        )  # fmt: skip
    return closed


class FlipPacer:
    """Follows a journal for the opening halves of flips (``deferred`` records) and, once
    their closing half filled at a bar's open, waits until the bridge sent them (or dropped
    them), so that they fill at that open too, as the backtest's single order does."""

    def __init__(self, journal_path: Path) -> None:
        self.path = Path(journal_path)
        self.offset = 0
        self.waiting: dict[str, str] = {}
        """Opening half's client order id -> its closing half's."""

    def _read(self) -> None:
        for record in _records_from(self.path, self):
            coid = record.get("client_order_id")
            if record["kind"] == "deferred":
                self.waiting[coid] = record["after"]
            elif record["kind"] in ("submit", "refused", "dry_run"):
                self.waiting.pop(coid, None)

    def wait(
        self, server: Any, *, timeout_s: float, alive: Callable[[], bool] | None = None
    ) -> None:
        self._read()
        if not self.waiting:
            return
        filled = server.call(_filled, server.exchange, list(self.waiting.values()))
        due = {o for o, c in self.waiting.items() if c in filled}
        deadline = time.monotonic() + timeout_s
        while due & self.waiting.keys():
            if time.monotonic() > deadline or (alive is not None and not alive()):
                raise TimeoutError(f"the bridge did not send the opening orders {sorted(due)}")
            time.sleep(0.0005)
            self._read()


FILLS_WAIT_S = 5.0
"""Seconds a replay waits at its end for the last fills' trade updates to be journalled."""


class Executions:
    """An exchange listener counting its fills (``fill`` and ``partial_fill`` events), so that
    a replay can wait until the bridge has journalled each of them."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "trade_update" and payload.get("event") in ("fill", "partial_fill"):
            self.count += 1

    def wait(self, journal_path: Path, *, timeout_s: float) -> None:
        """Until the journal holds a ``fill`` record per fill (a trade update still in flight
        when the last bar was acted on); after ``timeout_s`` seconds it logs a warning and
        goes on (a dropped stream loses updates: the broker's orders are compared anyway)."""
        deadline = time.monotonic() + timeout_s
        cursor, seen = SimpleNamespace(offset=0), 0
        while True:
            seen += sum(1 for r in _records_from(journal_path, cursor) if r["kind"] == "fill")
            if seen >= self.count:
                return
            if time.monotonic() > deadline:
                log.warning("replay: %d of %d fills journalled", seen, self.count)
                return
            time.sleep(0.001)


def _filled(exchange: Any, client_order_ids: list[str]) -> set[str]:
    """Those of ``client_order_ids`` the exchange has filled."""
    out = set()
    for coid in client_order_ids:
        order_id = exchange.by_client_id.get(coid)
        if order_id is not None and exchange.orders[order_id].status == "filled":
            out.add(coid)
    return out


def _records_from(path: Path, cursor: Any) -> list[dict[str, Any]]:
    """The whole records after ``cursor.offset`` (bytes), which moves past them."""
    if not path.exists():
        return []
    with open(path, "rb") as f:
        f.seek(cursor.offset)
        chunk = f.read()
    out = []
    for line in chunk.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break  # being written
        cursor.offset += len(line)
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "kind" in record:
            out.append(record)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayResult:
    """A replay's outcome: the parity report, both sides' orders, the bridge's counters and
    its market data store at the end."""

    report: ParityReport
    backtest: pl.DataFrame
    bridge: pl.DataFrame
    stats: dict[str, int]
    market_data: Any = None


def replay(
    strategy: Strategy,
    bars: Bars,
    *,
    config: BridgeConfig,
    journal_path: Path,
    timeout_s: float = 60.0,
    before_bar: Callable[[Any, int], None] | None = None,
    exchange_rules: dict[str, Any] | None = None,
) -> ReplayResult:
    """Run ``strategy`` through the bridge over ``bars`` on a fresh emulator, then compare.

    ``config.options`` should come from ``bridge_options(replay_options(options))``;
    ``before_bar`` goes to :func:`drive`; ``exchange_rules`` override the emulator's
    :class:`~barlab.live.exchange.ExchangeRules` (tests: a stricter buying-power buffer).
    """
    from barlab.live.runner import Endpoints, SessionOptions, run_session

    key_id, secret_key = "PKREPLAY" + secrets.token_hex(6).upper(), secrets.token_hex(16)
    server = make_server(
        bars, config.options, key_id=key_id, secret_key=secret_key, **(exchange_rules or {})
    )
    executions = Executions()
    server.exchange.add_listener(executions)
    with server:
        endpoints = Endpoints(
            trading_url=server.url, stream_url=server.ws_url, data_url=server.url,
            key_id=key_id, secret_key=secret_key, requests_per_minute=600_000.0,
        )  # fmt: skip
        stop = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["bridge"] = run_session(
                    strategy, endpoints=endpoints, symbols=bars.symbols,
                    timeframe=bars.timeframe, config=config, journal_path=journal_path,
                    stop=stop, options=SessionOptions(grace_s=None, source=bars.source,
                                                      reconnect_base_s=0.05),
                )  # fmt: skip
            except BaseException as e:  # handed to the caller below
                box["error"] = e

        thread = threading.Thread(target=run, name="bridge", daemon=True)
        thread.start()
        try:
            wait_for(journal_path, "ready", timeout_s=timeout_s, alive=thread.is_alive)
            drive(
                server, journal_path, timeout_s=timeout_s, alive=thread.is_alive,
                before_bar=before_bar,
            )  # fmt: skip
            executions.wait(journal_path, timeout_s=min(timeout_s, FILLS_WAIT_S))
        except TimeoutError:
            if "error" in box:
                raise box["error"] from None
            raise
        finally:
            stop.set()
            thread.join(timeout_s)
        if "error" in box:
            raise box["error"]
        from barlab.live.broker import AlpacaBroker

        broker = AlpacaBroker(server.url, key_id, secret_key, requests_per_minute=600_000.0)
        bridge_frame = bridge_orders(broker, journal_path)
        held = {p.symbol: p.qty for p in broker.list_positions()}
        positions = {s: float(held.get(s, 0.0)) for s in bars.symbols}
        parts = partial_fills(broker, journal_path)
    bt = backtest_orders(strategy, bars, config.options)
    report = compare(bt, bridge_frame, bridge_positions=positions, partial_fills=parts)
    bridge: LiveBridge | None = box.get("bridge")
    return ReplayResult(
        report=report, backtest=bt, bridge=bridge_frame, stats=bridge.stats if bridge else {},
        market_data=bridge.market_data if bridge else None,
    )  # fmt: skip


def bridge_orders(broker: Any, journal_path: Path) -> pl.DataFrame:
    """The bridge's orders that filled, as the broker reports them (by the journalled client
    order ids), in the comparison's columns, as the kernel logs them: an exit leg that filled
    is keyed by its fill bar (the kernel's attached exits are), and the two halves of a flip,
    which fill at the same bar, are one order (shares summed, the average price)."""
    from barlab.errors import NotFoundError

    intents = {r["client_order_id"]: r for r in read_journal(journal_path) if r["kind"] == "intent"}
    rows = []
    for coid, intent in intents.items():
        try:
            order = broker.get_order_by_client_id(coid)
        except NotFoundError:
            continue  # refused at submit: journalled with its error
        if order.order_class in ("bracket", "oto"):
            legs = broker.get_order(order.id, nested=True).legs or ()
            rows += [_row(leg, _ns(leg.filled_at)) for leg in legs if _filled_order(leg)]
        if _filled_order(order):
            rows.append(_row(order, int(intent["bar_ts_ns"])))
    schema = {"symbol": pl.String, "signal_ns": pl.Int64, "side": pl.String,
              "qty": pl.Float64, "fill_ns": pl.Int64, "value": pl.Float64}  # fmt: skip
    frame = pl.DataFrame(rows, schema=schema)
    merged = frame.group_by(["symbol", "signal_ns", "side", "fill_ns"]).agg(
        pl.col("qty").sum(), pl.col("value").sum()
    )
    merged = merged.with_columns(price=pl.col("value") / pl.col("qty"))
    return merged.select(COLUMNS).sort(["signal_ns", "symbol", "fill_ns"])


def partial_fills(broker: Any, journal_path: Path) -> list[dict[str, Any]]:
    """The bridge's orders the broker filled in parts (a ``partial_fill`` trade update in the
    journal), in the order of their first part: client order id, symbol, side, signal bar
    (``signal_ns``; an exit leg's first fill time), shares ordered (``qty``) and filled
    (``filled_qty``), the number of ``parts`` and the order's final ``status`` (``filled``;
    ``canceled`` by a newer instruction or ``expired`` with a part unfilled)."""
    from barlab.errors import NotFoundError

    intents, fills, first = {}, {}, {}
    for r in read_journal(journal_path):
        if r["kind"] == "intent":
            intents[r["client_order_id"]] = r
        elif r["kind"] == "fill" and r.get("client_order_id"):
            coid = r["client_order_id"]
            fills[coid] = fills.get(coid, 0) + 1
            if r.get("event") == "partial_fill":
                first.setdefault(coid, r)
    out = []
    for coid, record in first.items():
        try:
            order = broker.get_order_by_client_id(coid)
        except NotFoundError:
            continue
        intent = intents.get(coid)
        signal_ns = record.get("timestamp_ns") if intent is None else intent["bar_ts_ns"]
        out.append(
            {"client_order_id": coid, "symbol": order.symbol, "side": order.side,
             "signal_ns": signal_ns, "qty": order.qty, "filled_qty": order.filled_qty,
             "parts": fills[coid], "status": order.status}
        )  # fmt: skip
    return out


def _filled_order(order: Any) -> bool:
    return order.filled_qty > 0 and order.filled_at is not None


def _row(order: Any, signal_ns: int) -> dict[str, Any]:
    return {
        "symbol": order.symbol, "signal_ns": signal_ns, "side": order.side,
        "qty": order.filled_qty, "fill_ns": _ns(order.filled_at),
        "value": order.filled_qty * order.filled_avg_price,
    }  # fmt: skip


def _ns(when: Any) -> int:
    """An aware datetime as ns since the epoch (exact to the microsecond)."""
    delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
