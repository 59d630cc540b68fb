"""Bars refuse inputs the engine cannot trade on, naming where they are."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from barlab.errors import DataError
from tests.conftest import make_bars


def test_negative_volume_is_named_with_its_symbol_and_bar():
    bars = make_bars(n=10, m=2)
    volume = bars.volume.copy()
    volume[7, 1] = -5.0
    volume[8, 0] = -1.0
    with pytest.raises(DataError, match=r"S1 has -5 at bar 7 \(2 negative in all\)"):
        dataclasses.replace(bars, volume=volume)


def test_missing_volume_is_allowed():
    bars = make_bars(n=10, m=2)
    volume = bars.volume.copy()
    volume[3, 0] = np.nan
    assert np.isnan(dataclasses.replace(bars, volume=volume).volume[3, 0])
