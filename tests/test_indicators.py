"""Indicators against plain references."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from barlab.indicators import crossed_above, sma


def naive_sma(x: np.ndarray, window: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    for j in range(x.shape[1]):
        seen: list[float] = []
        for t in range(x.shape[0]):
            if np.isnan(x[t, j]):
                continue
            seen.append(x[t, j])
            if len(seen) >= window:
                out[t, j] = sum(seen[-window:]) / window
    return out


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(0, 60), st.integers(1, 12)),
           elements=st.one_of(st.floats(1, 1000), st.just(np.nan))),
    st.integers(1, 12),
)  # fmt: skip
def test_sma_matches_naive(x, window):
    np.testing.assert_allclose(sma(x, window), naive_sma(x, window), rtol=1e-9, equal_nan=True)


def test_crossed_above_is_strict():
    a = np.array([[1.0], [2.0], [2.0], [3.0], [1.0], [3.0]])
    b = np.array([[2.0], [2.0], [2.0], [2.0], [2.0], [2.0]])
    # 1<2 then 2==2 is a touch, not a cross; 2==2 then 3>2 is not strict either
    assert crossed_above(a, b)[:, 0].tolist() == [False, False, False, False, False, True]
