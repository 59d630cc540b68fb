"""One combination of a sweep, from its signals to its row of metrics, in a worker's own arrays.

:class:`RowRunner` runs the kernel (:func:`barlab.engine.kernel.simulate_nb`, with the arguments
:func:`barlab.engine.backtest.simulate` gives it) and then every statistic
(:func:`barlab.metrics_nb.metrics_into_nb`, the code :func:`barlab.metrics.compute_metrics`
runs for a backtest) into a row of the sweep's table. Both calls release the GIL; between
them only a few Python lines run. The equity curve, cash, positions, order and trade logs and
the statistics' scratch are allocated once per worker and reused by every combination it runs:
a fresh 1 MB array costs page faults, which on minute bars cost as much as the statistics.
"""

from __future__ import annotations

import numpy as np

from barlab import metrics_nb as nb
from barlab.bars import Bars
from barlab.engine.backtest import (
    Account,
    BacktestOptions,
    empty_logs,
    kernel_inputs,
    log_capacity,
    to_target,
)
from barlab.engine.kernel import simulate_nb
from barlab.metrics import _omega_threshold, check_status, total_fees
from barlab.strategy import Signals

# the kernel's trade log columns read here, as in barlab.result.trades_frame
_PNL, _FEES = 3, 4


class RowRunner:
    """One worker's arrays and the loop that fills a row of metrics per combination.

    Not thread-safe: each worker thread takes its own (see ``barlab.engine.sweep._Job``).
    """

    def __init__(self, bars: Bars, options: BacktestOptions, account: Account) -> None:
        self.bars = bars
        self.options = options
        self.account = account
        n, m = bars.close.shape
        self.equity = np.empty(n)
        self.cash = np.empty(n)
        self.positions = np.empty((n, m))
        self.scratch = np.empty((nb.SCRATCH_ROWS, n))
        self.ppy = float(bars.periods_per_year)
        self.threshold = _omega_threshold(0.0, self.ppy)
        self.logs: tuple[np.ndarray, ...] = ()
        self.dirty = (0, 0)  # log rows the kernel may have written since they were zeroed

    def run(self, signals: Signals, row: np.ndarray) -> None:
        """Backtest ``signals`` and write every Metrics field into ``row`` (in
        :data:`barlab.metrics_nb.METRIC_FIELDS` order): the same numbers as
        ``backtest(...).metrics``, which runs the same two kernels on the same inputs."""
        target = to_target(signals, self.bars.close.shape)
        equity, positions, trades_f = self._simulate(signals, target)
        # as barlab.result: the PnL of every trade (open ones too)
        status = nb.metrics_into_nb(
            equity, float(self.options.cash), self.ppy, self.threshold,
            np.ascontiguousarray(trades_f[:, _PNL]), nb.rows_in_market_nb(positions),
            total_fees(trades_f[:, _FEES]), self.scratch, row,
        )  # fmt: skip
        check_status(status)

    def _simulate(self, signals: Signals, target: np.ndarray) -> tuple[np.ndarray, ...]:
        """simulate()'s kernel call (same inputs, same log capacity), into this worker's
        arrays."""
        args = kernel_inputs(
            self.account, target, size_type=signals.size_type,
            limit_price=signals.limit_price, stop_price=signals.stop_price,
            trail_stop=signals.trail_stop, time_in_force=signals.time_in_force,
        )  # fmt: skip
        capacity = log_capacity(target)
        while True:
            logs = self._logs(capacity)
            n_orders, n_trades = simulate_nb(*args, self.equity, self.cash, self.positions, *logs)
            if n_orders >= 0:
                self.dirty = (n_orders, n_trades)
                return self.equity, self.positions, logs[3][:n_trades]
            self.dirty = (capacity, capacity + target.shape[1])
            capacity *= 4

    def _logs(self, capacity: int) -> tuple[np.ndarray, ...]:
        """Order and trade logs of ``capacity`` orders (``capacity + m`` trades) as simulate()
        makes them, all zero: views of this worker's, grown when short, the rows the last
        run wrote zeroed again."""
        m = self.bars.close.shape[1]
        if not self.logs or self.logs[0].shape[0] < capacity:
            self.logs = empty_logs(max(capacity, 2 * self.logs[0].shape[0] if self.logs else 0), m)
            self.dirty = (0, 0)
        orders, trades = self.dirty
        out = []
        for k, log in enumerate(self.logs):
            log[: trades if k >= 2 else orders] = 0
            out.append(log[: capacity + (m if k >= 2 else 0)])
        return tuple(out)
