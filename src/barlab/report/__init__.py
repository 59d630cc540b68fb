"""The HTML reports (presentation zone), self-contained and offline.

- :func:`write_report` — one run: header, metrics against buy-and-hold, charts, and what the
  engine decided (:mod:`~barlab.report.html`);
- :func:`write_comparison` — two runs side by side (:mod:`~barlab.report.compare`);
- :func:`plot` — a plotly Figure for notebooks (``Result.plot()``);
- :func:`write_sweep_report` — a sweep or an optimisation: the best parameter sets, a heatmap
  over two parameters, Sharpe against drawdown, distributions (:mod:`~barlab.report.sweep_page`);
- :func:`write_walkforward_report` — a walk-forward: folds, in-sample against out-of-sample,
  the stitched out-of-sample equity (:mod:`~barlab.report.walkforward_page`);
- :func:`write_run_report` — any saved run's page by its id, as ``backtest report`` writes it.

Pieces: :mod:`~barlab.report.page` (the HTML shell: plotly.js once, chart slots, sortable
tables, atomic write), :mod:`~barlab.report.charts` (time axis, downsampling, curves over
time), :mod:`~barlab.report.returns` (by period and by trade), :mod:`~barlab.report.prices`
(the price chart), :mod:`~barlab.report.decisions` (trades, orders, risk events),
:mod:`~barlab.report.stats` and :mod:`~barlab.report.labels` (the numbers' rows and names).
:mod:`~barlab.report.grid` (charts and tables over a table of metrics), and
:mod:`~barlab.report.saved` (saved runs by kind).
"""

from __future__ import annotations

from barlab.report.compare import write_comparison
from barlab.report.figure import plot
from barlab.report.html import write_report
from barlab.report.pages import write_run_report
from barlab.report.sweep_page import write_sweep_report
from barlab.report.walkforward_page import write_walkforward_report

__all__ = [
    "plot",
    "write_comparison",
    "write_report",
    "write_run_report",
    "write_sweep_report",
    "write_walkforward_report",
]
