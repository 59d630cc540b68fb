"""The HTML reports (presentation zone), self-contained and offline.

- :func:`write_report` — one run: header, metrics against buy-and-hold, charts, and what the
  engine decided (:mod:`~barlab.report.html`);
- :func:`write_comparison` — two runs side by side (:mod:`~barlab.report.compare`);
- :func:`plot` — a plotly Figure for notebooks (``Result.plot()``).

Pieces: :mod:`~barlab.report.page` (the HTML shell: plotly.js once, chart slots, sortable
tables, atomic write), :mod:`~barlab.report.charts` (time axis, downsampling, curves over
time), :mod:`~barlab.report.returns` (by period and by trade), :mod:`~barlab.report.prices`
(the price chart), :mod:`~barlab.report.decisions` (trades, orders, risk events),
:mod:`~barlab.report.stats` and :mod:`~barlab.report.labels` (the numbers' rows and names).
Sweep and walk-forward pages are not written yet; see
:func:`barlab.report.html.sweep_sections` for where they plug in.
"""

from __future__ import annotations

from barlab.report.compare import write_comparison
from barlab.report.figure import plot
from barlab.report.html import write_report

__all__ = ["plot", "write_comparison", "write_report"]
