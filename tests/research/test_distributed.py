"""Sweeps on Dask: a LocalCluster of 2 worker processes gives the local executor's results bit
for bit; user strategy files travel as source; bad addresses fail before any work."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError

import numpy as np
import polars as pl
import pytest

import barlab
from barlab.engine.sweep import sweep
from barlab.errors import ConfigError, DistributedError
from barlab.research import distributed as distributed_mod
from barlab.research.distributed import (
    _NO_DASHBOARD,
    check_workers,
    dask_session,
    load_strategy_ref,
    strategy_ref,
)
from barlab.research.optimize import optimize
from barlab.research.walkforward import walk_forward
from barlab.strategy import load_strategy
from tests.cli.test_cli import run
from tests.conftest import make_bars

SMA = load_strategy("sma_crossover")
OPTIONS = {"commission_rate": 0.001, "slippage_bps": 2.0, "stop_loss": 0.01}
GRID = {"fast": [3, 5, 8], "slow": [20, 30, 40], "allow_short": [False, True]}

USER_STRATEGY = """\
from barlab import Signals, Strategy
from barlab.indicators import sma


class Dip(Strategy):
    window: int = 20
    depth: float = 0.002

    def signals(self, bars):
        mean = sma(bars.close, self.window)
        return Signals(entries=bars.close < mean * (1 - self.depth), exits=bars.close > mean)
"""


@pytest.fixture(scope="module")
def bars():
    return make_bars(2_400, 2, seed=7, bars_per_day=60)


@pytest.fixture
def home(tmp_path):
    (tmp_path / "xdg").mkdir()
    return tmp_path


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster of 2 worker processes for the module: every sweep run with
    ``dask_address="local"`` inside it uses it."""
    with dask_session("local", n_jobs=2) as client:
        yield client


@pytest.fixture
def dask_calls(monkeypatch):
    """The addresses of the sweeps that went to Dask."""
    calls = []
    real = distributed_mod.run_chunks

    def spy(*args, address, **kwargs):
        calls.append(address)
        return real(*args, address=address, **kwargs)

    monkeypatch.setattr(distributed_mod, "run_chunks", spy)
    return calls


def assert_identical(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.columns == b.columns and a.dtypes == b.dtypes and a.height == b.height
    for name in a.columns:
        x, y = a[name].to_numpy(), b[name].to_numpy()
        if x.dtype.kind == "f":  # bit for bit, NaN included
            assert np.array_equal(x.view(np.uint64), y.view(np.uint64)), name
        else:
            assert np.array_equal(x, y), name


def test_dask_table_is_the_thread_table(bars, cluster, dask_calls):
    threads = sweep(SMA, bars, n_jobs=2, **GRID, **OPTIONS)
    dask = sweep(SMA, bars, n_jobs=2, executor="dask", dask_address="local", **GRID, **OPTIONS)
    assert dask.n_run == threads.n_run == 18
    assert_identical(dask.table, threads.table)
    assert len(cluster.nthreads()) == 2 and dask_calls == ["local"]


def test_user_strategy_file_runs_on_the_workers(bars, cluster, tmp_path):
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "dip_buyer.py").write_text(USER_STRATEGY)
    dip = load_strategy("dip_buyer", [folder])
    grid = {"window": [10, 20, 30], "depth": [0.001, 0.003]}
    threads = sweep(dip, bars, n_jobs=2, **grid)
    # through the scheduler's tcp address, as a remote cluster: connect, check the workers' barlab
    address = cluster.scheduler.address
    assert address.startswith("tcp://")
    dask = sweep(dip, bars, n_jobs=2, executor="dask", dask_address=address, **grid)
    assert_identical(dask.table, threads.table)


def test_a_strategy_file_travels_as_source(tmp_path):
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "dip_seller.py").write_text(USER_STRATEGY)
    ref = strategy_ref(load_strategy("dip_seller", [folder]))
    assert ref[0] == "source" and ref[1][3] == USER_STRATEGY
    (folder / "dip_seller.py").unlink()  # as on a remote worker: no file, only the text
    module = "barlab_user_strategies.dip_seller_remote"
    cls = load_strategy_ref(
        ("source", (module, "dip_seller", "/nowhere/dip_seller.py", USER_STRATEGY))
    )
    assert cls.__name__ == "Dip" and cls.__module__ == module and cls.name == "dip_seller"
    assert cls(window=5).window == 5
    sys.modules.pop(module, None)


def test_walk_forward_on_dask_equals_local(bars, cluster, dask_calls):
    kwargs = {"train": "10D", "test": "5D", "options": OPTIONS, "fast": [3, 5], "slow": [20, 40]}
    local = walk_forward(SMA, bars, n_jobs=2, **kwargs)
    dask = walk_forward(SMA, bars, n_jobs=2, executor="dask", dask_address="local", **kwargs)
    assert_identical(dask.folds, local.folds)
    assert_identical(dask.oos, local.oos)
    assert dask_calls == ["local"] * len(dask.folds) and len(dask.folds) > 1


def test_optimize_on_dask_equals_local(bars, cluster, dask_calls):
    kwargs = {"fast": (2, 8), "slow": (10, 30), "maxiter": 2, "popsize": 4, "seed": 1}
    local = optimize(SMA, bars, n_jobs=2, options=OPTIONS, **kwargs)
    dask = optimize(SMA, bars, n_jobs=2, executor="dask", dask_address="local", **kwargs,
                    options=OPTIONS)  # fmt: skip
    assert_identical(dask.table, local.table)
    assert dask.best_params == local.best_params and dask_calls


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_fails_fast_naming_it(bars):
    address = f"tcp://127.0.0.1:{closed_port()}"
    started = time.perf_counter()
    with pytest.raises(DistributedError, match=rf"no Dask scheduler answers at {address}.*"
                       r"dask scheduler.*--dask local"):  # fmt: skip
        sweep(SMA, bars, executor="dask", dask_address=address, fast=[3], slow=[20])
    assert time.perf_counter() - started < 5


def test_a_scheduler_without_workers_is_an_error():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=0, processes=False, protocol="tcp://", scheduler_kwargs=_NO_DASHBOARD
    ) as c:
        address = c.scheduler_address
        message = rf"{address} has no workers.*dask worker"
        with pytest.raises(DistributedError, match=message), dask_session(address, timeout_s=0.5):
            pass


def test_workers_without_barlab_or_another_version_are_named():
    class Client:
        def run(self, fn, *args, on_error):
            assert fn(*args) == barlab.__version__ and on_error == "return"
            return {"tcp://w1:1": barlab.__version__, "tcp://w2:1": "0.0.1",
                    "tcp://w3:1": PackageNotFoundError("barlab")}  # fmt: skip

    with pytest.raises(DistributedError, match=r"need barlab .*tcp://w2:1 \(0.0.1\), "
                       r"tcp://w3:1 \(not installed\): install it on every worker"):  # fmt: skip
        check_workers(Client(), "tcp://sched:8786")


def test_dask_is_imported_only_when_used():
    code = (
        "import sys, barlab, barlab.research.walkforward, barlab.research.optimize, "
        "barlab.cli.research; print([m for m in ('dask', 'distributed') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("address", "message"),
    [
        (None, "executor='dask' needs dask_address"),
        ("localhost:8786", "is not one barlab can use"),
        ("tcp://host", "is not one barlab can use"),
        ("tcp://host:99999", "is not one barlab can use"),
    ],
)
def test_malformed_address(bars, address, message):
    with pytest.raises(ConfigError, match=message):
        sweep(SMA, bars, executor="dask", dask_address=address, fast=[3], slow=[20])


def test_missing_dask_names_the_extra(bars, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(DistributedError, match=r"pip install 'barlab\[distributed\]'"):
        sweep(SMA, bars, executor="dask", dask_address="local", fast=[3], slow=[20])


def test_cli_sweep_on_a_local_cluster_equals_threads(home):
    args = ("sweep", "sma_crossover", "--param", "fast=5:8", "--param", "slow=20:40:10",
            "--from", "2023-03-01", "--to", "2023-03-10", "--json")  # fmt: skip
    threads = run(home, *args)
    dask = run(home, *args, "--dask", "local", "--jobs", "2")
    assert threads.returncode == 0, threads.stderr
    assert dask.returncode == 0, dask.stderr
    a, b = json.loads(threads.stdout), json.loads(dask.stdout)
    assert a["n_run"] == b["n_run"] == 6
    assert a["top"] == b["top"]


def test_cli_unreachable_scheduler_exits_1_before_loading_data(home):
    address = f"tcp://127.0.0.1:{closed_port()}"
    out = run(home, "walkforward", "sma_crossover", "--param", "fast=5:8", "--param",
              "slow=20:40:10", "--from", "2023-03-01", "--dask", address)  # fmt: skip
    assert out.returncode == 1
    assert f"no Dask scheduler answers at {address}" in out.stderr
    assert not (home / "data").exists()
    bad = run(home, "sweep", "sma_crossover", "--param", "fast=5", "--from", "2023-03-01",
              "--dask", "scheduler:8786")  # fmt: skip
    assert bad.returncode == 2 and "tcp://HOST:PORT" in bad.stderr
