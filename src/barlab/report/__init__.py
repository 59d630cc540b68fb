"""The HTML report (presentation zone): ``write_report(result, path)``.

Metric names and formats for people live in :mod:`barlab.report.labels`; the page in
:mod:`barlab.report.html`; its charts in :mod:`barlab.report.charts`.
"""

from __future__ import annotations

from barlab.report.html import write_report

__all__ = ["write_report"]
