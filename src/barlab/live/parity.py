"""The parity report: the bridge's orders and fills against the vectorized backtest of the same
strategy, parameters, options and bars, order by order.

Both sides are keyed by (symbol, signal bar time, n): the bar whose close decided the order
(for an attached exit, the bar it filled in, as the kernel logs it) and, when one bar decided
several orders for a symbol (an exit that filled in it and the strategy's next order), their
rank by fill time. An order matches when its side, quantity and fill bar time are equal and
its fill price differs by at most :data:`PRICE_TOL` dollars (the wire carries prices as
9-decimal strings). The score is matched / max(backtest orders, bridge orders): 1.0 is exact
parity.

Partial fills: a broker may fill an order in parts over several bars (Alpaca's paper fills do
about 10% of the time), the backtest fills whole orders. Such an order's fills differ, and so
do the orders sized after it (on the positions and equity it left), on every symbol. The
report lists the bridge's orders filled in parts and counts the differences at or after the
first one's signal bar as explained by them; those before it are not (a logic mismatch).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from barlab.bars import Bars
from barlab.engine.backtest import BacktestOptions, simulate_signals
from barlab.result import orders_frame
from barlab.strategy import Strategy

PRICE_TOL = 1e-6
"""Dollars two fill prices may differ by and still match."""

COLUMNS = ("symbol", "signal_ns", "side", "qty", "fill_ns", "price")


@dataclass(frozen=True, slots=True, kw_only=True)
class ParityReport:
    """The comparison; ``score`` 1.0 means every order matched (exact parity).

    ``missed``: backtest orders the bridge did not make; ``extra``: bridge orders the backtest
    did not make; ``mismatched``: same key, different side/qty/fill time/price (each a dict
    with both sides); ``max_price_diff`` and ``max_fill_delay_s`` over the matched keys;
    ``position_drift``: final shares per symbol, bridge minus backtest. ``partial_fills``:
    the bridge's orders the broker filled in parts (see :func:`barlab.live.replay.partial_fills`);
    ``unexplained``: the differences (missed, extra, mismatched) not explained by them, i.e.
    all of them without partial fills, else those before the first one's signal bar.
    """

    score: float
    n_backtest: int
    n_bridge: int
    matched: int
    missed: list[dict[str, Any]] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    mismatched: list[dict[str, Any]] = field(default_factory=list)
    max_price_diff: float = 0.0
    max_fill_delay_s: float = 0.0
    position_drift: dict[str, float] = field(default_factory=dict)
    partial_fills: list[dict[str, Any]] = field(default_factory=list)
    unexplained: int = 0

    @property
    def exact(self) -> bool:
        return self.score == 1.0 and not any(self.position_drift.values())

    @property
    def differences(self) -> int:
        """Missed, extra and mismatched orders."""
        return len(self.missed) + len(self.extra) + len(self.mismatched)

    def to_json(self) -> dict[str, Any]:
        return {
            "score": self.score, "exact": self.exact, "n_backtest": self.n_backtest,
            "n_bridge": self.n_bridge, "matched": self.matched, "missed": self.missed,
            "extra": self.extra, "mismatched": self.mismatched,
            "max_price_diff": self.max_price_diff, "max_fill_delay_s": self.max_fill_delay_s,
            "position_drift": self.position_drift, "partial_fills": self.partial_fills,
            "unexplained": self.unexplained,
        }  # fmt: skip

    def summary(self) -> str:
        lines = [
            f"parity score: {self.score:.4f} ({'EXACT' if self.exact else 'NOT exact'})",
            f"orders: backtest {self.n_backtest}, bridge {self.n_bridge}, matched {self.matched}, "
            f"missed {len(self.missed)}, extra {len(self.extra)}, mismatched "
            f"{len(self.mismatched)}",
            f"max fill price difference: ${self.max_price_diff:.9f}; max fill delay: "
            f"{self.max_fill_delay_s:.0f} s",
        ]
        drift = {s: q for s, q in self.position_drift.items() if q}
        lines.append(f"position drift: {drift or 'none'}")
        return "\n".join(lines + self._partial_lines())

    def _partial_lines(self) -> list[str]:
        """What the partial fills explain (nothing without them)."""
        parts = self.partial_fills
        if not parts:
            return []
        cut = sum(1 for p in parts if p["status"] != "filled")
        first = _first(parts)
        when = "unknown" if first is None else _utc(first)
        lines = [
            f"partial fills: {len(parts)} bridge orders filled in parts by the broker ({cut} "
            "ended with a part unfilled)",
            "  the backtest fills whole orders: those orders' fills, and the orders sized after "
            "them, differ",
            f"  {self.differences - self.unexplained} of {self.differences} differences come at "
            f"or after the first one's signal bar ({when})",
        ]
        if self.unexplained:
            lines.append(
                f"  {self.unexplained} differences come before it: not explained by partial "
                "fills (look at them as a logic mismatch)"
            )
        return lines


def backtest_orders(strategy: Strategy, bars: Bars, options: BacktestOptions) -> pl.DataFrame:
    """The backtest's executed orders in the comparison's columns (its order log, rows with
    shares filled), and its final positions as a second frame's worth in ``positions``."""
    sim = simulate_signals(bars, strategy.signals(bars), options)
    frame = orders_frame(sim, bars.ts_ns, list(bars.symbols))
    ts = bars.ts_ns
    frame = frame.with_columns(
        signal_ns=pl.Series(ts[sim.orders_i[:, 0]], dtype=pl.Int64),
        fill_ns=pl.Series(ts[sim.orders_i[:, 1]], dtype=pl.Int64),
    )
    executed = frame.filter(pl.col("qty") > 0).select(COLUMNS)
    final = {s: float(sim.positions[-1, j]) for j, s in enumerate(bars.symbols)} if len(ts) else {}
    return executed.with_columns(pl.lit(json.dumps(final)).alias("final_positions"))


def compare(
    backtest: pl.DataFrame,
    bridge: pl.DataFrame,
    *,
    bridge_positions: dict[str, float],
    partial_fills: list[dict[str, Any]] | None = None,
) -> ParityReport:
    """The :class:`ParityReport` of two frames with :data:`COLUMNS` (bridge: its filled
    orders; ``bridge_positions``: its final shares per symbol from the broker;
    ``partial_fills``: its orders filled in parts, each with its ``signal_ns``)."""
    final = json.loads(backtest["final_positions"][0]) if len(backtest) else {}
    bt, br = _keyed(backtest), _keyed(bridge)

    def in_time(keys: set) -> list:
        return sorted(keys, key=lambda k: (k[1], k[0]))

    missed = [bt[k] for k in in_time(bt.keys() - br.keys())]
    extra = [br[k] for k in in_time(br.keys() - bt.keys())]
    mismatched, matched, max_px, max_delay = [], 0, 0.0, 0.0
    for key in in_time(bt.keys() & br.keys()):
        a, b = bt[key], br[key]
        diff = abs(a["price"] - b["price"])
        max_px = max(max_px, diff)
        max_delay = max(max_delay, abs(b["fill_ns"] - a["fill_ns"]) / 1e9)
        same = a["side"] == b["side"] and a["qty"] == b["qty"] and a["fill_ns"] == b["fill_ns"]
        if same and diff <= PRICE_TOL:
            matched += 1
        else:
            mismatched.append({"backtest": a, "bridge": b})
    symbols = sorted(set(final) | set(bridge_positions))
    drift = {s: bridge_positions.get(s, 0.0) - final.get(s, 0.0) for s in symbols}
    denominator = max(len(bt), len(br))
    parts = list(partial_fills or ())
    since = _first(parts)
    differences = missed + extra + [m["backtest"] for m in mismatched]
    unexplained = sum(1 for d in differences if since is None or d["signal_ns"] < since)
    return ParityReport(
        score=1.0 if denominator == 0 else matched / denominator, n_backtest=len(bt),
        n_bridge=len(br), matched=matched, missed=missed, extra=extra, mismatched=mismatched,
        max_price_diff=max_px, max_fill_delay_s=max_delay, position_drift=drift,
        partial_fills=parts, unexplained=unexplained,
    )  # fmt: skip


def _keyed(frame: pl.DataFrame) -> dict[tuple[str, int, int], dict[str, Any]]:
    """Rows by (symbol, signal_ns, rank among that symbol's orders of that signal bar)."""
    out: dict[tuple[str, int, int], dict[str, Any]] = {}
    rows = frame.select(COLUMNS).sort(["signal_ns", "symbol", "fill_ns", "side"]).to_dicts()
    for r in rows:
        n = 0
        while (r["symbol"], r["signal_ns"], n) in out:
            n += 1
        out[(r["symbol"], r["signal_ns"], n)] = r
    return out


def save(
    report: ParityReport,
    folder: Path,
    *,
    backtest: pl.DataFrame,
    bridge: pl.DataFrame,
    info: dict[str, Any] | None = None,
) -> Path:
    """Write parity.json (``info`` — strategy, params, symbols, range, ... — then the report),
    backtest_orders.csv and bridge_orders.csv into ``folder`` (each written to a temporary
    name, then renamed)."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = {**json.loads(json.dumps(info or {}, default=str)), **report.to_json()}
    _atomic(folder / "parity.json", json.dumps(_finite(doc), indent=2))
    for name, frame in (("backtest_orders.csv", backtest.select(COLUMNS)),
                        ("bridge_orders.csv", bridge.select(COLUMNS))):  # fmt: skip
        _atomic(folder / name, frame.write_csv())
    return folder


def _first(parts: list[dict[str, Any]]) -> int | None:
    """The earliest signal bar of orders filled in parts (None: none known)."""
    return min((p["signal_ns"] for p in parts if p.get("signal_ns") is not None), default=None)


def _utc(ns: int) -> str:
    """``ns`` since the epoch as UTC, e.g. ``2024-03-04 14:52 UTC``."""
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
