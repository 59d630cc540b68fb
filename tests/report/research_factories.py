"""A strategy with three parameters for the sweep and walk-forward pages' tests, and the
headless Chromium they are drawn in."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import barlab
from barlab.bars import Bars
from barlab.indicators import sma
from tests.report.test_report import CHROMIUM_FLAGS

NEVER = 100_000
"""A slow window longer than any test's bars: that combination never trades (NaN metrics)."""


class Crossover(barlab.Strategy):
    """Long (or short) while the fast mean of the close is above (below) the slow one."""

    fast: int = 5
    slow: int = 20
    short: bool = False

    def signals(self, bars: Bars) -> barlab.Signals:
        close = bars.close
        target = np.full(close.shape, np.nan)
        if self.slow < len(close):
            above = sma(close, self.fast) > sma(close, self.slow)
            target[self.slow :] = np.where(above, 1.0, -1.0 if self.short else 0.0)[self.slow :]
        return barlab.Signals(target=target)


def chromium() -> str:
    """Debian's chromium, or a skip (a failure in CI, where .ci/run installs it)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: .ci/run installs Debian's chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return browser


def assert_drawn(page: str, keys: list[str], tmp_path: Path) -> None:
    """Open ``page`` in headless Chromium: every chart in ``keys`` drawn with its traces, the
    loader finished, no console error."""
    path = tmp_path / "page.html"
    path.write_text(page, encoding="utf-8")
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    shown = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, *profile, "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    dom = shown.stdout
    assert "data-charts-drawn-ms=" in dom
    for key in keys:
        start = dom.index(f'data-figure="figure-{key}"')
        div = dom[start : dom.find('<script type="application/json"', start)]
        assert 'class="main-svg"' in div, key
        assert re.search(r'class="(trace|hm|bars)[ "]', div) or "<image" in div, key
    assert "Loading the chart" not in dom and ">Charts need a browser" not in dom
    console = [line for line in shown.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "error" in line.lower()], console
