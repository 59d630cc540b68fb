"""Higher fees never give higher equity.

Stated where it must hold: orders sized in shares with cash to spare and no rule that reads the
equity (daily loss, drawdown halt), so fees cannot change which orders fill or how big they are.
Then every bar's equity under higher commissions is the lower-fee equity minus the extra fees
paid so far (and never above it). Sizing by equity would let fees change quantities and the
path, so there the statement is not a law of the engine.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from barlab.engine.backtest import simulate
from barlab.engine.costs import Costs
from barlab.engine.risk import RiskRules
from tests.engine.test_kernel import scenarios

commissions = st.fixed_dictionaries(
    {
        "commission_rate": st.sampled_from([0.0, 0.0005, 0.01]),
        "commission_per_share": st.sampled_from([0.0, 0.005]),
        "commission_per_order": st.sampled_from([0.0, 1.0]),
        "commission_min": st.sampled_from([0.0, 1.0]),
    }
)


@settings(max_examples=150, deadline=None)
@given(case=scenarios(), low=commissions, extra=commissions, cap=st.sampled_from([None, 5.0]))
def test_higher_fees_never_give_higher_equity(case, low, extra, cap):
    bars, target, options, orders = case
    shares = np.where(np.isnan(target), np.nan, np.round(target * 20.0))
    base = dataclasses.replace(
        options,
        cash=1e9,
        risk=RiskRules(max_position_size=options.risk.max_position_size),
        costs=Costs(
            **low,
            commission_max=cap,
            slippage_bps=options.costs.slippage_bps,
            price_impact=options.costs.price_impact,
            max_participation=options.costs.max_participation,
        ),
    )
    higher = {k: v + extra[k] for k, v in low.items()}
    dearer = dataclasses.replace(
        base,
        costs=dataclasses.replace(
            base.costs, **higher, commission_max=None if cap is None else cap + 3.0
        ),
    )
    kwargs = {k: v for k, v in orders.items() if k != "size_type"}
    a = simulate(bars, shares, base, size_type="shares", **kwargs)
    b = simulate(bars, shares, dearer, size_type="shares", **kwargs)
    assert np.array_equal(a.orders_i, b.orders_i)  # the same orders filled the same way
    assert np.all(b.equity <= a.equity + 1e-6)
    extra_fees = b.orders_f[:, 3].sum() - a.orders_f[:, 3].sum() if len(a.orders_f) else 0.0
    assert abs((a.equity[-1] - b.equity[-1]) - extra_fees) < 1e-6 * max(1.0, extra_fees)
