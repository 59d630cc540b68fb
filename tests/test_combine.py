"""Several strategies on one account: barlab.combine, and the attribution of its orders,
fees and P&L (barlab.attribution)."""

from __future__ import annotations

import json
import re

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import barlab
from barlab import Signals, Strategy, StrategyError
from barlab.combined import Combined, carry_forward, combine, load_combined
from barlab.strategy import load_strategy
from tests.conftest import make_bars


class Noise(Strategy):
    """Random instructions on ~``rate`` of the bars, as ``kind`` says (deterministic in seed)."""

    seed: int = 0
    kind: str = "weight"
    rate: float = 0.05

    def signals(self, bars):
        rng = np.random.default_rng(self.seed)
        shape = bars.close.shape
        given = rng.random(shape) < self.rate
        if self.kind == "entries":
            side = rng.integers(0, 4, shape)
            return Signals(
                entries=given & (side == 0), exits=given & (side == 1),
                short_entries=given & (side == 2), short_exits=given & (side == 3),
            )  # fmt: skip
        values = rng.choice([-1.0, -0.5, 0.0, 0.25, 0.5, 1.0], shape)
        target = np.where(given, values, np.nan)
        return Signals(target=target, size_type=self.kind)


class Fixed(Strategy):
    """Targets given in a test through ``rows`` (a JSON list of [row, column, value])."""

    rows: str = "[]"
    kind: str = "weight"

    def signals(self, bars):
        target = np.full(bars.close.shape, np.nan)
        for t, j, value in json.loads(self.rows):
            target[t, j] = value
        return Signals(target=target, size_type=self.kind)


def fixed(*cells, kind="weight"):
    return Fixed(rows=json.dumps([list(c) for c in cells]), kind=kind)


def account_pnl(result):
    cash = result.info["options"]["cash"]
    return np.diff(np.concatenate([[cash], result.equity]))


def per_bar_sum(result):
    frame = result.attribution_pnl
    names = result._attribution.names
    return frame["pnl"].to_numpy().reshape(-1, len(names)).sum(axis=1)


# -- the combined targets ---------------------------------------------------------------------


def test_sum_weights_children_and_emits_only_changes():
    bars = make_bars(n=40, m=2)
    a = fixed((5, 0, 0.4), (20, 0, 0.0))
    b = fixed((10, 0, 1.0), (10, 1, -1.0), kind="equal")  # equal: 1 / 2 symbols each
    target = combine([a, b], weights=[0.5, 0.5]).signals(bars)
    assert target.size_type == "weight"
    given = {
        (int(t), int(j)): target.target[t, j] for t, j in np.argwhere(~np.isnan(target.target))
    }
    assert given == pytest.approx({(5, 0): 0.2, (10, 0): 0.45, (10, 1): -0.25, (20, 0): 0.25})


def test_priority_gives_each_symbol_to_the_first_child_holding_it():
    bars = make_bars(n=40, m=1)
    first = fixed((10, 0, 0.3), (30, 0, 0.0))
    second = fixed((5, 0, 0.8), (35, 0, 0.0))
    both = combine([first, second], how="priority")
    parts = both.contributions(bars).parts
    assert both.weights == (1.0, 1.0)
    assert parts[1, 5:10, 0].tolist() == [0.8] * 5 and parts[0, 5:10, 0].tolist() == [0.0] * 5
    assert np.all(parts[0, 10:30, 0] == 0.3) and np.all(parts[1, 10:30, 0] == 0.0)
    assert np.all(parts[1, 30:35, 0] == 0.8) and np.all(parts[:, 35:, 0] == 0.0)
    target = both.signals(bars).target[:, 0]
    assert np.flatnonzero(~np.isnan(target)).tolist() == [5, 10, 30, 35]


def test_entries_and_exits_become_held_sides():
    bars = make_bars(n=300, m=2)
    child = load_strategy("rsi_mean_reversion")(n=5)
    both = combine([child, fixed((0, 0, 0.0))], weights=[1.0, 0.0])
    held = both.contributions(bars).parts[0]
    alone = barlab.backtest(child, bars)
    assert set(np.unique(held)) <= {0.0, 0.5}  # +1 / n_symbols
    # the child held a position exactly where the combination holds its part
    assert np.array_equal(held[:-1] != 0, alone.positions[1:] != 0)


def test_carry_forward_holds_the_last_instruction():
    x = np.array([[np.nan], [0.5], [np.nan], [0.0], [np.nan]])
    assert carry_forward(x)[:, 0].tolist() == [0.0, 0.5, 0.5, 0.0, 0.0]


# -- what a combination refuses ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("children", "kwargs", "words"),
    [
        ([Noise()], {}, "two or more strategies, got 1"),
        ([Noise(), Noise], {}, "instances, got the class Noise; e.g. Noise()"),
        ([Noise(), "sma"], {}, "Strategy instances, got str"),
        ([Noise(), Noise()], {"how": "vote"}, "sum or priority, got 'vote'"),
        ([Noise(), Noise()], {"weights": [1.0]}, "1 weights for 2 strategies"),
        ([Noise(), Noise()], {"weights": [1.0, -1.0]}, ">= 0"),
        ([Noise(), Noise()], {"weights": [0.0, 0.0]}, "not all zero"),
    ],
)
def test_bad_combinations_are_refused_clearly(children, kwargs, words):
    with pytest.raises(StrategyError, match=re.escape(words)):
        combine(children, **kwargs)


@pytest.mark.parametrize("kind", ["notional", "shares"])
def test_children_sized_in_dollars_or_shares_are_refused(kind):
    both = combine([Noise(), Noise(seed=1, kind=kind)])
    with pytest.raises(StrategyError, match=rf"Noise#2 gives size_type='{kind}'.*'weight'"):
        barlab.backtest(both, make_bars(n=50))


def test_children_with_order_prices_are_refused():
    class Limits(Noise):
        def signals(self, bars):
            s = super().signals(bars)
            limit = np.where(np.isnan(s.target), np.nan, bars.close * 0.99)
            return Signals(target=s.target, size_type="weight", limit_price=limit)

    with pytest.raises(StrategyError, match=r"Limits sets Signals\.limit_price.*market orders"):
        barlab.backtest(combine([Noise(), Limits()]), make_bars(n=200))


# -- parameters, names, source hashes ---------------------------------------------------------


def test_parameters_are_visible_and_recorded():
    sma = load_strategy("sma_crossover")(fast=5, slow=20)
    rsi = load_strategy("rsi_mean_reversion")()
    both = barlab.combine([sma, rsi], how="priority", weights=[1.0, 0.5])
    assert isinstance(both, Strategy) and both.label() == "sma_crossover+rsi_mean_reversion"
    params = both.get_params()
    assert params["how"] == "priority" and params["weights"] == [1.0, 0.5]
    assert params["sma_crossover.fast"] == 5 and params["rsi_mean_reversion.n"] == 14
    assert "SmaCrossover(fast=5, slow=20" in repr(both) and "how='priority'" in repr(both)
    result = barlab.backtest(both, make_bars(n=600))
    assert result.info["strategy"] == "sma_crossover+rsi_mean_reversion"
    assert result.info["params"] == params
    assert result.info["strategy_hash"] == both.source_hash() != ""


def test_source_hash_changes_with_any_child(tmp_path):
    for name in ("one", "two"):
        (tmp_path / f"{name}.py").write_text(
            "from barlab import Strategy\n\n\nclass S(Strategy):\n    fast: int = 3\n"
        )
    both = combine([load_strategy(n, [tmp_path])() for n in ("one", "two")])
    before = both.source_hash()
    assert len(before) == 64
    (tmp_path / "two.py").write_text((tmp_path / "two.py").read_text() + "# edited\n")
    assert both.source_hash() != before
    (tmp_path / "one.py").unlink()
    assert both.source_hash() == ""  # unknown, never a stale match


def test_load_combined_reads_command_line_parameters():
    both = load_combined(
        "sma_crossover+rsi_mean_reversion",
        {"sma_crossover.fast": "7", "rsi_mean_reversion.oversold": "25", "weights": "0.7,0.3"},
        how="sum",
    )
    assert both.get_params()["sma_crossover.fast"] == 7 and both.weights == (0.7, 0.3)
    assert both.strategies[1].oversold == 25.0
    with pytest.raises(StrategyError, match=r"'fast' names none.*sma_crossover\.fast=20"):
        load_combined("sma_crossover+rsi_mean_reversion", {"fast": "20"})
    with pytest.raises(StrategyError, match="give 2 numbers"):
        load_combined("sma_crossover+rsi_mean_reversion", {"weights": "1"})
    with pytest.raises(StrategyError, match="join two or more"):
        load_combined("sma_crossover+", {})
    twice = load_combined("sma_crossover+sma_crossover", {"sma_crossover#2.fast": "3"})
    assert twice.keys == ("sma_crossover", "sma_crossover#2") and twice.strategies[1].fast == 3


# -- attribution ------------------------------------------------------------------------------


def test_a_child_with_zero_weight_gets_nothing_and_the_other_everything():
    bars = make_bars(n=800, m=2, seed=4)
    both = combine([Noise(seed=1), Noise(seed=2)], weights=[1.0, 0.0])
    result = barlab.backtest(both, bars, commission_rate=0.001)
    pnl = result._attribution.pnl
    assert np.all(pnl[:, 1] == 0.0)
    assert np.allclose(pnl[:, 0], account_pnl(result), atol=1e-6)
    table = result.attribution
    assert table["strategy"].to_list() == ["Noise", "Noise#2"]
    assert table["orders"].to_list() == [result.orders.height, 0]
    assert table["trades"][0] > 0 and table["trades"][1] == 0
    assert table["fees"][0] == pytest.approx(result.orders["fee"].sum())
    assert table["return"].sum() == pytest.approx(result.metrics.total_return)


def test_orders_name_the_child_whose_change_caused_them():
    bars = make_bars(n=60, m=1)
    a = fixed((5, 0, 0.5), (30, 0, 0.0))
    b = fixed((15, 0, 0.5))
    result = barlab.backtest(combine([a, b], weights=[0.5, 0.5]), bars, commission_rate=0.001)
    tags = dict(
        zip(result.orders["created_bar"], result.orders["strategies"].to_list(), strict=True)
    )
    assert tags == {5: ["Fixed"], 15: ["Fixed#2"], 30: ["Fixed"]}
    fees = result._attribution.fees
    assert fees[6, 0] > 0 and fees[6, 1] == 0 and fees[16, 1] > 0 and fees[16, 0] == 0


def test_a_handover_without_an_order_splits_the_overnight_gap_from_the_bar():
    bars = make_bars(n=40, m=1, seed=6)
    a = fixed((5, 0, 0.5), (20, 0, 0.0))
    b = fixed((20, 0, 0.5))
    result = barlab.backtest(combine([a, b], weights=[1.0, 1.0]), bars)
    assert result.orders["created_bar"].to_list() == [5]  # the sum stays 0.5: no order at 20
    pnl, held = result._attribution.pnl, result.positions[:, 0]
    close, open_ = bars.close[:, 0], bars.open[:, 0]
    assert np.allclose(pnl[7:21, 1], 0.0) and np.allclose(pnl[22:, 0], 0.0)
    # bar 21: from 20's close to 21's open still a's (its exit would fill at that open), the
    # rest b's (its entry would fill there)
    assert pnl[21, 0] == pytest.approx(held[20] * (open_[21] - close[20]))
    assert pnl[21, 1] == pytest.approx(held[21] * (close[21] - open_[21]))


def test_an_attached_exit_belongs_to_the_positions_owners():
    bars = make_bars(n=400, m=1, seed=2)
    a, b = fixed((5, 0, 0.5)), fixed((5, 0, 0.3))
    result = barlab.backtest(combine([a, b], weights=[1.0, 1.0]), bars, stop_loss=0.002)
    exits = result.orders.filter(pl.col("kind") == "stop_loss")
    assert exits.height == 1 and exits["strategies"][0].to_list() == ["Fixed", "Fixed#2"]
    assert np.allclose(per_bar_sum(result), account_pnl(result), atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    m=st.integers(1, 3),
    how=st.sampled_from(["sum", "priority"]),
    kinds=st.lists(st.sampled_from(["weight", "equal", "entries"]), min_size=2, max_size=3),
    weights=st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0]), min_size=3, max_size=3),
    commission=st.sampled_from([0.0, 0.001]),
    fractional=st.booleans(),
    allow_short=st.booleans(),
    exit_=st.sampled_from([None, 0.003]),
    margin=st.sampled_from([1.0, 2.0]),
)
def test_strategies_pnl_sums_to_the_accounts_on_every_bar(
    seed, m, how, kinds, weights, commission, fractional, allow_short, exit_, margin
):
    bars = make_bars(n=250, m=m, seed=seed)
    children = [Noise(seed=seed + i, kind=k, rate=0.08) for i, k in enumerate(kinds)]
    w = weights[: len(children)]
    if not any(w):
        w[0] = 1.0
    result = barlab.backtest(
        combine(children, how=how, weights=w), bars, commission_rate=commission,
        fractional=fractional, allow_short=allow_short, stop_loss=exit_, margin=margin,
        cash=100_000.0,
    )  # fmt: skip
    assert np.allclose(per_bar_sum(result), account_pnl(result), rtol=0, atol=1e-6)
    attr = result._attribution
    assert np.all(attr.fees >= -1e-12)
    assert attr.fees.sum() == pytest.approx(result.orders["fee"].sum(), abs=1e-9)
    assert all(len(tags) > 0 for tags in result.orders["strategies"].to_list())
    table = result.attribution
    assert table["pnl"].sum() == pytest.approx(result.equity[-1] - 100_000.0, abs=1e-6)


def test_saved_combined_run_keeps_its_attribution(tmp_path):
    bars = make_bars(n=1_000, m=2, seed=5)
    both = combine([Noise(seed=1), Noise(seed=2, kind="entries")])
    result = barlab.backtest(both, bars, commission_rate=0.001)
    saved = result.save(tmp_path, report=False)
    run_dir = tmp_path / "runs" / saved.run_id
    doc = json.loads((run_dir / "run.json").read_text())
    assert doc["attribution"]["strategies"] == ["Noise", "Noise#2"]
    assert [r["strategy"] for r in doc["attribution"]["summary"]] == ["Noise", "Noise#2"]
    loaded = barlab.load_run(str(run_dir))
    assert loaded.attribution.equals(result.attribution)
    assert loaded.attribution_pnl.equals(result.attribution_pnl)
    assert loaded.orders["strategies"].to_list() == result.orders["strategies"].to_list()


def test_a_single_strategy_has_no_attribution(tmp_path):
    result = barlab.backtest(Noise(), make_bars(n=200))
    assert result.attribution is None and result.attribution_pnl is None
    assert "strategies" not in result.orders.columns
    saved = result.save(tmp_path, report=False)
    assert not (tmp_path / "runs" / saved.run_id / "attribution.parquet").exists()


def test_combined_runs_in_the_lookahead_check():
    from barlab.research.lookahead import check_lookahead

    both = combine([load_strategy("sma_crossover")(fast=3, slow=9), Noise(seed=3, rate=0.0)])
    assert check_lookahead(both, make_bars(n=300, m=2), n_samples=2, seed=0).clean


def test_a_combination_pickles_without_the_bars_it_saw():
    import pickle

    both = combine([Noise(seed=1), Noise(seed=2)])
    both.signals(make_bars(n=100))
    again = pickle.loads(pickle.dumps(both))
    assert again._last is None and again.get_params() == both.get_params()


def test_combine_is_the_function_even_after_its_module_is_imported():
    import barlab.combined

    assert barlab.combine is barlab.combined.combine and issubclass(Combined, Strategy)
