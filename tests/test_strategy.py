"""The Strategy contract, parameter validation and discovery by name."""

from __future__ import annotations

import numpy as np
import pytest

from barlab import Signals, Strategy, StrategyError, load_strategy
from barlab.indicators import sma
from barlab.strategy import available


def test_builtin_sma_crossover_is_found_with_its_parameters():
    cls = load_strategy("sma_crossover")
    assert [(p.name, p.type, p.default) for p in cls.params()] == [
        ("fast", int, 10),
        ("slow", int, 50),
        ("allow_short", bool, False),
    ]
    assert cls(fast="20", slow="100", allow_short="true").get_params() == {
        "fast": 20,
        "slow": 100,
        "allow_short": True,
    }


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"fsat": 3}, ["no parameter 'fsat'", "fast, slow, allow_short"]),
        ({"fast": "ten"}, ["fast must be int", "'ten'"]),
        ({"fast": 2.5}, ["fast must be int"]),
        ({"allow_short": "maybe"}, ["allow_short must be bool"]),
        ({"fast": 50, "slow": 20}, ["fast (50) must be smaller than slow (20)"]),
    ],
)
def test_bad_parameters_are_named(params, words):
    cls = load_strategy("sma_crossover")
    with pytest.raises(StrategyError) as err:
        cls(**params)
    for word in words:
        assert word in str(err.value)


def test_unknown_strategy_suggests_close_names():
    with pytest.raises(StrategyError, match="did you mean sma_crossover"):
        load_strategy("sma_crosover")


def test_user_strategies_in_cwd_come_first(tmp_path, monkeypatch):
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "always_long.py").write_text(
        "import numpy as np\nfrom barlab import Signals, Strategy\n"
        "class AlwaysLong(Strategy):\n    weight: float = 1.0\n"
        "    def signals(self, bars):\n"
        "        t = np.full(bars.close.shape, np.nan); t[0] = self.weight\n"
        "        return Signals(target=t)\n"
    )
    monkeypatch.chdir(tmp_path)
    assert "always_long" in available() and "sma_crossover" in available()
    assert load_strategy("always_long")(weight="0.5").weight == 0.5


def test_sma_crossover_signals_are_strict_crosses(bars):
    s = load_strategy("sma_crossover")(fast=5, slow=20)
    target = s.signals(bars).target
    fast, slow = sma(bars.close, 5), sma(bars.close, 20)
    for t, j in zip(*np.nonzero(~np.isnan(target)), strict=True):
        if target[t, j] == 1.0:
            assert fast[t - 1, j] < slow[t - 1, j] and fast[t, j] > slow[t, j]
        else:
            assert target[t, j] == 0.0
            assert fast[t - 1, j] > slow[t - 1, j] and fast[t, j] < slow[t, j]
    assert np.count_nonzero(target == 1.0) > 0


def test_sma_crossover_short_reverses(bars):
    s = load_strategy("sma_crossover")(fast=5, slow=20, allow_short=True)
    target = s.signals(bars).target
    values = target[~np.isnan(target)]
    assert set(np.unique(values)) == {-1.0, 1.0}


def test_signals_are_causal(bars):
    """Row t of the signals never changes when later bars are added."""
    s = load_strategy("sma_crossover")(fast=5, slow=20)
    full = s.signals(bars).target
    part = s.signals(bars.slice(0, 300)).target
    np.testing.assert_array_equal(full[:300], part)


def test_signals_shape_is_checked():
    class Bad(Strategy):
        def signals(self, bars):
            return Signals(target=np.zeros((3, 3)))

    with pytest.raises(StrategyError, match="shape"):
        Bad().signals(None).check((2, 2))


def test_a_strategy_defined_without_a_source_file_still_backtests(bars):
    """A class typed at the prompt or in a notebook (module __main__) has no file to hash."""
    import barlab
    from barlab.strategy import Signals, Strategy

    namespace: dict = {"Strategy": Strategy, "Signals": Signals, "np": np}
    exec(
        "class Typed(Strategy):\n"
        "    def signals(self, bars):\n"
        "        target = np.full(bars.close.shape, np.nan)\n"
        "        target[0] = 1.0\n"
        "        return Signals(target=target)\n",
        namespace,
    )
    typed = namespace["Typed"]
    typed.__module__ = "a_notebook_cell"  # no module file to read, as in a notebook
    result = barlab.backtest(typed(), bars)
    assert result.info["strategy_hash"] == "" and result.metrics.n_trades > 0
