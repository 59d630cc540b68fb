"""The kernels compile once per argument type: a constant passed where a variable is expected
(``t = 0``, ``halted = False``, a module-level status code) makes numba compile the helper a
second time for the literal, which cost a cold ``backtest run`` 3 seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# helpers specialised on a literal on purpose: each version folds a branch away
ON_PURPOSE = {"barlab.metrics_nb._centred_sums_nb", "barlab.order_stats_nb._partition_nb"}

_SCRIPT = """
import importlib, json, pkgutil
import barlab
from barlab.engine.backtest import backtest
from barlab.engine.warmup import _bars
from numba.core.registry import CPUDispatcher

for bars in (_bars(1), _bars(3)):
    backtest(barlab.load_strategy("sma_crossover")(), bars, stop_loss=0.02).metrics
counts = {}
for info in pkgutil.walk_packages(barlab.__path__, "barlab."):
    module = importlib.import_module(info.name)
    for name, value in vars(module).items():
        if isinstance(value, CPUDispatcher) and value.__module__ == info.name:
            counts[f"{info.name}.{name}"] = len(value.overloads)
print(json.dumps(counts))
"""


@pytest.mark.slow
def test_no_kernel_helper_is_compiled_twice_for_a_literal(tmp_path):
    # an empty cache: every kernel compiles here, with its callees (a warm cache loads
    # simulate_nb whole and never looks at them)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, check=True
    ).stdout
    counts = json.loads(out.strip().splitlines()[-1])
    assert counts["barlab.engine.kernel.simulate_nb"] == 1
    assert counts["barlab.engine.closes.close_quiet_bars_nb"] == 1  # the walk found them
    twice = {name: n for name, n in counts.items() if n > 1 and name not in ON_PURPOSE}
    assert twice == {}
