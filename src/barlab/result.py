"""Result: what a backtest produced, and how it is saved under reports/runs/<run-id>/.

A saved run holds ``run.json`` (what was run: strategy, parameters and source hash, data source,
range and version, options, resolved config, metrics), ``equity.parquet``, ``positions.parquet``,
``trades.parquet``, ``benchmark_trades.parquet``, ``orders.parquet`` and ``report.html``; a
combined run also ``attribution.parquet`` (P&L per bar and strategy).
:func:`load_run` reads it back and recomputes the metrics from the saved arrays.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from barlab.atomic import publish_folder
from barlab.engine.orders import KIND_NAMES, STATUS_NAMES
from barlab.engine.risk import REASON_NAMES
from barlab.errors import DataError, RunNotFoundError
from barlab.metrics import Metrics, compute_metrics, total_fees

if TYPE_CHECKING:
    from barlab.attribution import Attribution
    from barlab.bars import Bars
    from barlab.engine.backtest import BacktestOptions, Simulation
    from barlab.strategy import Strategy

RUN_FORMAT = 1
_TS = pl.Datetime("ns", "UTC")


Lazy = Callable[[], Any]


@dataclass(frozen=True, kw_only=True, eq=False)
class Result:
    """A finished backtest.

    The order log, the trades, the buy-and-hold benchmark and the metrics are computed on first
    access (a backtest itself stays in the milliseconds); after that they are plain attributes.

    Attributes
    ----------
    info : dict
        What was run: ``strategy``, ``params``, ``strategy_hash``, ``symbols``, ``timeframe``,
        ``source``, ``synthetic``, ``start``, ``end``, ``n_bars``, ``data_version``, ``options``,
        ``periods_per_year``, ``barlab_version``.
    ts_ns : int64 array (n_bars,), bar start times (UTC ns)
    equity, cash : float64 arrays (n_bars,), dollars at each bar's close
    positions : float64 array (n_bars, n_symbols), shares held after each bar
    pnl : DataFrame, per bar and symbol: position, average price, realized/unrealized P&L
        and fees (fresh runs; see :mod:`barlab.ledger`)
    orders : DataFrame, one row per order (see :func:`orders_frame`)
    trades : DataFrame, one row per round trip (see :func:`trades_frame`)
    benchmark_equity, benchmark_trades : buy-and-hold of the same symbols, same costs
    metrics, benchmark_metrics : Metrics
    attribution, attribution_pnl : DataFrames of a combined run (:func:`barlab.combine`):
        per strategy, and per bar and strategy; None otherwise (see :mod:`barlab.attribution`)
    run_id : str, set once the run is saved
    config : dict, the resolved configuration saved with the run (no secrets)
    """

    info: dict[str, Any]
    ts_ns: np.ndarray
    equity: np.ndarray
    cash: np.ndarray
    positions: np.ndarray
    orders_source: pl.DataFrame | Lazy = field(repr=False)
    trades_source: pl.DataFrame | Lazy = field(repr=False)
    benchmark_source: tuple[np.ndarray, np.ndarray, pl.DataFrame] | Lazy = field(repr=False)
    close_source: np.ndarray | None = field(default=None, repr=False)
    attribution_source: Attribution | Lazy | None = field(default=None, repr=False)
    run_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_simulation(
        cls,
        *,
        strategy: Strategy,
        bars: Bars,
        options: BacktestOptions,
        sim: Simulation,
        benchmark: Lazy,
    ) -> Result:
        """Wrap the kernel's output; ``benchmark()`` runs the buy-and-hold simulation."""
        from barlab import __version__

        symbols = list(bars.symbols)
        ts = bars.ts_ns

        def bench() -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
            b = benchmark()
            return b.equity, _in_market(b.positions), trades_frame(b, ts, symbols)

        info = {
            "strategy": strategy.label(),
            "params": strategy.get_params(),
            "strategy_hash": strategy.source_hash(),
            **bars.describe(),
            "options": options.to_dict(),
            "barlab_version": __version__,
        }

        def orders() -> pl.DataFrame:
            return orders_frame(sim, ts, symbols)

        attribution = None
        if hasattr(strategy, "contributions"):  # several strategies on one account
            from barlab.attribution import LazyAttribution

            attribution = LazyAttribution(strategy, bars, sim.positions, orders)
        return cls(
            info=info,
            ts_ns=ts,
            equity=sim.equity,
            cash=sim.cash,
            positions=sim.positions,
            orders_source=orders if attribution is None else attribution.orders,
            attribution_source=attribution,
            trades_source=lambda: trades_frame(sim, ts, symbols),
            benchmark_source=bench,
            close_source=bars.close,
        )

    @cached_property
    def orders(self) -> pl.DataFrame:
        return _force(self.orders_source)

    @cached_property
    def trades(self) -> pl.DataFrame:
        return _force(self.trades_source)

    @cached_property
    def _benchmark(self) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
        return _force(self.benchmark_source)

    @property
    def benchmark_equity(self) -> np.ndarray:
        return self._benchmark[0]

    @property
    def benchmark_trades(self) -> pl.DataFrame:
        return self._benchmark[2]

    @cached_property
    def pnl(self) -> pl.DataFrame:
        """Per bar and symbol: position, average price, mark, realized and unrealized P&L and
        fees paid (cumulative USD); see :mod:`barlab.ledger`."""
        from barlab.ledger import pnl_frame

        if self.close_source is None:
            raise DataError(
                "this run was loaded from disk without its bars; per-bar P&L needs them: "
                "barlab.ledger.pnl_frame(orders=run.orders, positions=run.positions, "
                "close=bars.close, ts_ns=run.ts_ns, symbols=run.info['symbols'])"
            )
        return pnl_frame(
            orders=self.orders, positions=self.positions, close=self.close_source,
            ts_ns=self.ts_ns, symbols=list(self.info["symbols"]),
        )  # fmt: skip

    @property
    def ambiguous(self) -> tuple[int, float]:
        """How many trades exited on an ambiguous bar (its range held both the stop and the
        target, so the declared fill policy chose) and their P&L in dollars: what depends on
        the policy."""
        if "ambiguous" not in self.trades.columns:  # runs saved before the engine flagged them
            return 0, 0.0
        hit = self.trades.filter(pl.col("ambiguous"))
        return hit.height, float(hit["pnl"].sum())

    @cached_property
    def _attribution(self) -> Attribution | None:
        return _force(self.attribution_source)

    @property
    def attribution(self) -> pl.DataFrame | None:
        """A combined run's (:func:`barlab.combine`) P&L, fees, return, orders and
        trades per strategy; None for a single strategy. See :mod:`barlab.attribution`."""
        a = self._attribution
        return None if a is None else a.summary(self.trades, self.info["options"]["cash"])

    @property
    def attribution_pnl(self) -> pl.DataFrame | None:
        """A combined run's P&L and fees per bar and strategy (their sum over the strategies
        is the change in equity); None for a single strategy."""
        a = self._attribution
        return None if a is None else a.per_bar(self.ts_ns)

    @cached_property
    def metrics(self) -> Metrics:
        return _metrics(self.equity, _in_market(self.positions), self.trades, self.info)

    @cached_property
    def benchmark_metrics(self) -> Metrics:
        return _metrics(self.benchmark_equity, self._benchmark[1], self.benchmark_trades, self.info)

    # -- views ---------------------------------------------------------------------------
    @property
    def synthetic(self) -> bool:
        return bool(self.info.get("synthetic"))

    @property
    def symbols(self) -> list[str]:
        return list(self.info["symbols"])

    def equity_frame(self) -> pl.DataFrame:
        """Per bar: ts; equity, cash, benchmark equity (dollars at the close); in the market?"""
        return pl.DataFrame(
            {
                "ts": pl.Series(self.ts_ns, dtype=pl.Int64).cast(_TS),
                "equity": self.equity,
                "cash": self.cash,
                "benchmark": self.benchmark_equity,
                "in_market": _in_market(self.positions),
                "benchmark_in_market": self._benchmark[1],
            }
        )

    def report(self, path: str | os.PathLike[str]) -> Path:
        """Write the self-contained HTML report to ``path`` and return it."""
        from barlab.report import write_report

        return write_report(self, Path(path))

    def plot(self) -> Any:
        """Equity against buy-and-hold over the drawdown, a plotly Figure (Jupyter draws it)."""
        from barlab.report import plot

        return plot(self)

    def __repr__(self) -> str:
        m = self.metrics
        kind = " SYNTHETIC" if self.synthetic else ""
        return (
            f"<Result{kind} {self.info['strategy']} {self.info['params']} "
            f"{self.info['start']}..{self.info['end']}: total_return={m.total_return:.2%} "
            f"sharpe={m.sharpe:.2f} trades={m.n_trades}>"
        )

    def _repr_html_(self) -> str:
        """Jupyter's view: the summary metrics against buy-and-hold (no chart, no plotly)."""
        from barlab.report.summary_html import result_html

        return result_html(self)

    # -- persistence ---------------------------------------------------------------------
    def save(
        self, reports_dir: Path, *, config: dict[str, Any] | None = None, report: bool = True
    ) -> Result:
        """Save under ``reports_dir/runs/<run-id>/`` atomically; returns the Result with its id."""
        runs = Path(reports_dir) / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        run_id = _new_run_id(runs, self.info)
        saved = dataclasses.replace(
            self,
            run_id=run_id,
            config=config or {},
            orders_source=self.orders,
            attribution_source=self._attribution,
            trades_source=self.trades,
            benchmark_source=self._benchmark,
        )
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{run_id}-", dir=runs))
        try:
            doc = {
                "format": RUN_FORMAT,
                "run_id": run_id,
                "info": saved.info,
                "config": saved.config,
                "metrics": saved.metrics.to_dict(),
                "benchmark_metrics": saved.benchmark_metrics.to_dict(),
            }
            if saved._attribution is not None:
                doc["attribution"] = {
                    "strategies": list(saved._attribution.names),
                    "weights": list(saved._attribution.weights),
                    "summary": saved.attribution.to_dicts(),
                }
                saved.attribution_pnl.write_parquet(tmp / "attribution.parquet")
            (tmp / "run.json").write_text(json.dumps(doc, indent=2, allow_nan=True) + "\n")
            saved.equity_frame().write_parquet(tmp / "equity.parquet")
            pos = {"ts": pl.Series(self.ts_ns, dtype=pl.Int64).cast(_TS)}
            pos.update({s: self.positions[:, i] for i, s in enumerate(self.symbols)})
            pl.DataFrame(pos).write_parquet(tmp / "positions.parquet")
            saved.trades.write_parquet(tmp / "trades.parquet")
            saved.benchmark_trades.write_parquet(tmp / "benchmark_trades.parquet")
            saved.orders.write_parquet(tmp / "orders.parquet")
            if report:
                saved.report(tmp / "report.html")
            publish_folder(tmp, runs / run_id)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return saved


def load_run(run_id: str, *, reports_dir: str | os.PathLike[str] | None = None) -> Result:
    """Load a saved run by id (or path) and recompute its metrics from the saved arrays."""
    path = Path(run_id)
    if not (path / "run.json").is_file():
        if reports_dir is None:
            from barlab.config import load_config

            reports_dir = load_config().reports_dir
        path = Path(reports_dir) / "runs" / run_id
    if not (path / "run.json").is_file():
        runs = sorted(p.name for p in path.parent.glob("*") if (p / "run.json").is_file())
        hint = f"; recent runs: {', '.join(runs[-3:])}" if runs else ""
        raise RunNotFoundError(f"no saved run {run_id!r} in {path.parent}{hint}")
    try:
        doc = json.loads((path / "run.json").read_text())
        eq = pl.read_parquet(path / "equity.parquet")
        pos = pl.read_parquet(path / "positions.parquet")
        trades = pl.read_parquet(path / "trades.parquet")
        bench_trades = pl.read_parquet(path / "benchmark_trades.parquet")
        orders = pl.read_parquet(path / "orders.parquet")
        attribution = None
        if "attribution" in doc:  # several strategies on one account
            from barlab.attribution import Attribution

            attribution = Attribution.from_frame(
                pl.read_parquet(path / "attribution.parquet"), orders=orders,
                names=doc["attribution"]["strategies"], weights=doc["attribution"]["weights"],
            )  # fmt: skip
    except (OSError, ValueError, pl.exceptions.PolarsError) as e:
        raise DataError(f"saved run {path} is unreadable ({e}); run the backtest again") from e
    info = doc["info"]
    ts = eq["ts"].cast(pl.Int64).to_numpy()
    equity = eq["equity"].to_numpy()
    bench = eq["benchmark"].to_numpy()
    positions = np.ascontiguousarray(pos.select(info["symbols"]).to_numpy(), dtype=np.float64)
    if not np.array_equal(_in_market(positions), eq["in_market"].to_numpy()):
        raise DataError(f"saved run {path} is inconsistent (positions vs equity); run it again")
    return Result(
        info=info,
        ts_ns=ts,
        equity=equity,
        cash=eq["cash"].to_numpy(),
        positions=positions,
        orders_source=orders,
        trades_source=trades,
        benchmark_source=(bench, eq["benchmark_in_market"].to_numpy(), bench_trades),
        attribution_source=attribution,
        run_id=doc["run_id"],
        config=doc.get("config", {}),
    )


def _force(value: Any) -> Any:
    return value() if callable(value) else value


def _in_market(positions: np.ndarray) -> np.ndarray:
    return np.any(positions != 0.0, axis=1)


def _metrics(
    equity: np.ndarray, in_market: np.ndarray, trades: pl.DataFrame, info: dict[str, Any]
) -> Metrics:
    """The one place a Result's numbers come from (fresh runs and loaded runs alike)."""
    return compute_metrics(
        equity,
        periods_per_year=info["periods_per_year"],
        initial_cash=info["options"]["cash"],
        trade_pnl=trades["pnl"].to_numpy(),
        position_mask=in_market,
        fees=total_fees(trades["fees"].to_numpy()),
    )


def orders_frame(sim: Simulation, ts_ns: np.ndarray, symbols: list[str]) -> pl.DataFrame:
    """The order log: one row per order with its fate and, if refused or resized, why."""
    oi, of = sim.orders_i, sim.orders_f
    return pl.DataFrame(
        {
            "created_bar": oi[:, 0],
            "fill_bar": oi[:, 1],
            "time": pl.Series(ts_ns[oi[:, 1]], dtype=pl.Int64).cast(_TS),
            "symbol": [symbols[j] for j in oi[:, 2]],
            "side": ["buy" if s > 0 else "sell" for s in oi[:, 3]],
            "kind": [KIND_NAMES[int(k)] for k in oi[:, 6]],
            "requested_qty": of[:, 0],
            "qty": of[:, 1],
            "price": of[:, 2],
            "fee": of[:, 3],
            "status": [STATUS_NAMES[int(s)] for s in oi[:, 4]],
            "reason": [REASON_NAMES[int(r)] for r in oi[:, 5]],
        },
        schema_overrides={"symbol": pl.String, "side": pl.String, "kind": pl.String,
                          "status": pl.String, "reason": pl.String},
    )  # fmt: skip


def trades_frame(sim: Simulation, ts_ns: np.ndarray, symbols: list[str]) -> pl.DataFrame:
    """Round trips: entry to exit (or to the last bar, ``is_open``), with P&L after fees;
    ``return`` is the P&L as a fraction of the entry value (0.012 = 1.2 %); ``mae`` / ``mfe``
    the worst and best price move against / for the trade while it was open, as fractions of
    the entry price (-0.02, 0.035); ``bars_held`` its duration in bars."""
    ti, tf = sim.trades_i, sim.trades_f
    size, entry, exit_, pnl, fees, mae, mfe = (tf[:, k] for k in range(7))
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.where(size * entry > 0, pnl / (size * entry), 0.0)
    return pl.DataFrame(
        {
            "symbol": pl.Series([symbols[j] for j in ti[:, 0]], dtype=pl.String),
            "direction": pl.Series(
                ["long" if d > 0 else "short" for d in ti[:, 1]], dtype=pl.String
            ),
            "entry_bar": ti[:, 2],
            "exit_bar": ti[:, 3],
            "entry_time": pl.Series(ts_ns[ti[:, 2]], dtype=pl.Int64).cast(_TS),
            "exit_time": pl.Series(ts_ns[ti[:, 3]], dtype=pl.Int64).cast(_TS),
            "size": size,
            "entry_price": entry,
            "exit_price": exit_,
            "pnl": pnl,
            "return": ret,
            "fees": fees,
            "mae": mae,
            "mfe": mfe,
            "bars_held": ti[:, 3] - ti[:, 2],
            "is_open": ti[:, 4].astype(bool),
            "ambiguous": ti[:, 5].astype(bool),
        }
    )  # fmt: skip


def _new_run_id(runs: Path, info: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(info, sort_keys=True, default=str).encode()).hexdigest()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{info['strategy']}-{digest[:6]}"
    run_id, k = base, 1
    while (runs / run_id).exists():
        k += 1
        run_id = f"{base}-{k}"
    return run_id
