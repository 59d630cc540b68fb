"""Sweeps on a Dask cluster: ``sweep(..., executor="dask", dask_address="tcp://host:8786")``.

``dask_address`` is ``"local"`` (a LocalCluster of ``n_jobs`` worker processes, one thread
each, started and closed by barlab) or a running scheduler, ``"tcp://host:port"``. Every worker
needs barlab installed, the same version as the client (``pip install 'barlab[distributed]'``).

How the data reaches the workers, and why this way: the strategy reference, the bars, the
backtest options and the memory share are scattered once with ``broadcast=True``, so each
worker holds one copy, and every task (a chunk of combinations) takes that one future as its
argument. The scheduler tracks the copy like any other data: a worker that joins late or is
restarted after a crash gets it on demand before its first task, and the copies are freed when
the sweep lets go of the future. (An initializer run with ``client.run`` or a worker plugin
would only reach the workers present when it ran, or keep the bars on the scheduler.) On each
worker the first task of a sweep builds one ``_Job`` from the copy and caches it under the
sweep's id, so chunks share its account and indicator outputs exactly as threads do locally;
the sweep drops the cached jobs when it ends (a few are kept at most, should a client vanish).

Strategy classes importable on the workers are pickled by reference; a class from a user's
``strategies/`` file travels as its source text, executed on the worker (the file need not
exist there). Results come back in the order of the chunks, identical to the local executors.

Bad input fails before any backtest: a malformed address or a missing dask raise ConfigError or
DistributedError naming the fix, and a scheduler that does not answer within ``timeout_s``
(default 5 s) raises DistributedError naming the address.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
import socket
import sys
import threading
import types
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from barlab.bars import Bars
from barlab.engine.backtest import BacktestOptions
from barlab.errors import ConfigError, DistributedError
from barlab.strategy import Strategy

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0
ADDRESS_FORMS = "'local' (a cluster on this machine) or tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786"
INSTALL_HINT = "pip install 'barlab[distributed]'"
T = TypeVar("T")
_TCP = re.compile(r"^tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")


# -- the address and the install, checked before any work -------------------------------------


def check_address(address: Any) -> str:
    """Check ``address`` and that dask's distributed scheduler is installed; return it.

    Raises ConfigError for a malformed address, DistributedError when dask is missing.
    """
    if not isinstance(address, str) or not address.strip():
        raise ConfigError(f"executor='dask' needs dask_address: {ADDRESS_FORMS}; got {address!r}")
    address = address.strip()
    if address != "local":
        match = _TCP.match(address)
        if match is None or not 0 < int(match["port"]) < 65536:
            raise ConfigError(
                f"dask address {address!r} is not one barlab can use: give {ADDRESS_FORMS} "
                "(the scheduler prints its address when it starts)"
            )
    try:
        import distributed  # noqa: F401
    except ImportError as e:
        raise DistributedError(
            f"a sweep on Dask ({address}) needs dask's distributed scheduler, which is not "
            f"installed: {INSTALL_HINT}"
        ) from e
    return address


def _probe(address: str, timeout_s: float) -> None:
    """Fail at once when nothing listens at the scheduler's host and port."""
    match = _TCP.match(address)
    assert match is not None
    host, port = match["host"].strip("[]"), int(match["port"])
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as e:
        reason = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise _unreachable(address, timeout_s, reason) from e


def _unreachable(address: str, timeout_s: float, reason: str) -> DistributedError:
    return DistributedError(
        f"no Dask scheduler answers at {address} ({reason}, waited up to {timeout_s:g} s): "
        f"start one with `dask scheduler` and workers with `dask worker {address}` (barlab "
        "installed on each), check the host and port, or use --dask local"
    )


# -- one client per address, shared by every sweep inside a session ----------------------------


@dataclass
class _Session:
    client: Any
    cluster: Any
    users: int = 1


_SESSIONS: dict[str, _Session] = {}
# no dashboard, and the scheduler's HTTP routes on a free loopback port (not 8787, maybe taken)
_NO_DASHBOARD = {"dashboard": False, "dashboard_address": "127.0.0.1:0"}
_SESSIONS_LOCK = threading.Lock()


@contextlib.contextmanager
def dask_session(
    address: str, *, n_jobs: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> Iterator[Any]:
    """A dask ``Client`` for ``address``, shared by every sweep run inside the ``with``.

    Walk-forward and optimisation open one around their many sweeps, so a local cluster starts
    once; the CLI opens one before loading any data, so a bad scheduler fails first.

    Parameters
    ----------
    address : str
        ``"local"`` or ``"tcp://host:port"``.
    n_jobs : int, optional
        Worker processes of a local cluster (default: the number of CPUs); ignored for a
        scheduler, whose workers are what they are.
    timeout_s : float
        How long to wait for the scheduler, seconds (default 5).
    """
    address = check_address(address)
    if not (isinstance(timeout_s, int | float) and timeout_s > 0):
        raise ConfigError(f"the dask timeout must be a number of seconds > 0, got {timeout_s!r}")
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(address)
        if session is not None:
            session.users += 1
        else:
            session = _SESSIONS[address] = _open(address, n_jobs, float(timeout_s))
    try:
        yield session.client
    finally:
        with _SESSIONS_LOCK:
            session.users -= 1
            last = session.users == 0
            if last:
                del _SESSIONS[address]
        if last:
            _close(session)


def session_for(executor: str, dask_address: str | None, n_jobs: int | None = None):
    """``dask_session(dask_address)`` for the dask executor, else a context doing nothing."""
    if executor != "dask":
        return contextlib.nullcontext()
    return dask_session(dask_address, n_jobs=n_jobs)  # type: ignore[arg-type]


def within_session(
    items: Iterable[T], *, executor: str, dask_address: str | None, n_jobs: int | None = None
) -> Iterator[T]:
    """``items``, iterated inside :func:`session_for`: the sweeps of a loop over them share
    one client (and one local cluster), closed when the loop ends or fails."""
    with session_for(executor, dask_address, n_jobs):
        yield from items


def _open(address: str, n_jobs: int | None, timeout_s: float) -> _Session:
    from distributed import Client

    if address == "local":
        from distributed import LocalCluster

        from barlab.engine.sweep import _one_thread_each

        workers = max(1, int(n_jobs or os.cpu_count() or 1))
        try:
            with _one_thread_each():
                cluster = LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True,
                    silence_logs=logging.ERROR, dashboard_address=None,
                    scheduler_kwargs=_NO_DASHBOARD,
                )  # fmt: skip
        except Exception as e:  # most often a script whose workers re-run it on import
            raise DistributedError(
                f"the local Dask cluster did not start ({e}); in a script, call barlab under "
                "`if __name__ == '__main__':` (each worker process imports the script)"
            ) from e
        log.info(
            "dask: local cluster of %d worker processes at %s", workers, cluster.scheduler_address
        )
        return _Session(client=Client(cluster, timeout=timeout_s), cluster=cluster)
    _probe(address, timeout_s)
    try:
        client = Client(address, timeout=timeout_s)
    except (OSError, TimeoutError) as e:
        raise _unreachable(address, timeout_s, str(e) or type(e).__name__) from e
    try:
        try:
            client.wait_for_workers(1, timeout=timeout_s)
        except TimeoutError as e:
            raise DistributedError(
                f"the Dask scheduler at {address} has no workers (waited {timeout_s:g} s): "
                f"start some with `dask worker {address}` (barlab installed on each)"
            ) from e
        check_workers(client, address)
    except BaseException:
        client.close()
        raise
    log.info("dask: connected to %s (%d workers)", address, len(client.nthreads()))
    return _Session(client=client, cluster=None)


def check_workers(client: Any, address: str) -> None:
    """Every worker of a scheduler has barlab installed, the same version as here."""
    from importlib.metadata import version

    from barlab import __version__

    found = client.run(version, "barlab", on_error="return")
    wrong = {w: v for w, v in found.items() if v != __version__}
    if wrong:
        shown = ", ".join(
            f"{w} ({v if isinstance(v, str) else 'not installed'})"
            for w, v in sorted(wrong.items())
        )
        raise DistributedError(
            f"the Dask workers at {address} need barlab {__version__}, as here; found {shown}: "
            f"install it on every worker (pip install 'barlab[distributed]=={__version__}') "
            "and restart them"
        )


def _close(session: _Session) -> None:
    session.client.close()
    if session.cluster is not None:
        session.cluster.close()


# -- the sweep's chunks as tasks ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Payload:
    """What every chunk of one sweep needs, shipped once per worker."""

    ref: tuple[str, Any]
    bars: Bars
    options: BacktestOptions
    shared_mb: float


def run_chunks(
    strategy_cls: type[Strategy],
    bars: Bars,
    options: BacktestOptions,
    chunks: list[list[dict[str, Any]]],
    *,
    address: str,
    n_jobs: int,
    shared_mb: float,
) -> np.ndarray:
    """The chunks' metrics in order (as ``_Job.run``: a row per combination, a column per
    metric), computed on the cluster at ``address``."""
    with dask_session(address, n_jobs=n_jobs) as client:
        nthreads = client.nthreads()
        n_workers, n_threads = max(1, len(nthreads)), max(1, sum(nthreads.values()))
        if len(chunks) < 4 * n_threads:  # a cluster bigger than this machine: smaller tasks
            combos = [c for chunk in chunks for c in chunk]
            size = max(1, math.ceil(len(combos) / (4 * n_threads)))
            chunks = [combos[i : i + size] for i in range(0, len(combos), size)]
        payload = _Payload(strategy_ref(strategy_cls), bars, options, shared_mb / n_workers)
        sweep_id = uuid.uuid4().hex
        shipped = client.scatter(payload, broadcast=True, hash=False)
        futures = client.map(
            _run_chunk, chunks, payload=shipped, sweep_id=sweep_id, pure=False,
            key=[f"barlab-sweep-{sweep_id}-{i}" for i in range(len(chunks))],
        )  # fmt: skip
        try:
            parts = client.gather(futures)
        finally:
            client.cancel([*futures, shipped])
            with contextlib.suppress(Exception):  # a worker gone already has nothing to free
                client.run(_forget, sweep_id)
    return np.concatenate(parts)


# -- on the workers -----------------------------------------------------------------------------

_MAX_JOBS = 4  # jobs kept per worker; more only if clients vanish before they clean up
_JOBS: OrderedDict[str, Any] = OrderedDict()
_JOBS_LOCK = threading.Lock()
_CLASSES: dict[tuple[str, str], type[Strategy]] = {}


def _run_chunk(chunk: list[dict[str, Any]], *, payload: _Payload, sweep_id: str) -> np.ndarray:
    from barlab.engine.sweep import _Job

    with _JOBS_LOCK:
        job = _JOBS.get(sweep_id)
        if job is None:
            cls = load_strategy_ref(payload.ref)
            job = _JOBS[sweep_id] = _Job.of(cls, payload.bars, payload.options, payload.shared_mb)
            while len(_JOBS) > _MAX_JOBS:
                _JOBS.popitem(last=False)
    return job.run(chunk)


def _forget(sweep_id: str) -> None:
    with _JOBS_LOCK:
        _JOBS.pop(sweep_id, None)


def strategy_ref(cls: type[Strategy]) -> tuple[str, Any]:
    """How ``cls`` travels: by reference when importable, else as its file's source text."""
    from barlab.engine.sweep import _strategy_ref

    kind, value = _strategy_ref(cls)
    if kind != "file":
        return kind, value
    module_name, name, path = value
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except OSError as e:
        raise DistributedError(
            f"cannot read strategy file {path} to send it to the Dask workers: {e}"
        ) from e
    return "source", (module_name, name, path, source)


def load_strategy_ref(ref: tuple[str, Any]) -> type[Strategy]:
    """The class of :func:`strategy_ref`, on a worker; a file's source is executed once per
    version (an edited file is executed again)."""
    kind, value = ref
    if kind != "source":
        from barlab.engine.sweep import _load_ref

        return _load_ref(ref)
    module_name, name, path, source = value
    key = (module_name, hashlib.sha256(source.encode()).hexdigest())
    cls = _CLASSES.get(key)
    if cls is None:
        module = types.ModuleType(module_name)
        module.__file__ = path
        sys.modules[module_name] = module  # dataclasses and pickling look the module up
        exec(compile(source, path, "exec"), module.__dict__)
        (cls,) = [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, Strategy) and obj is not Strategy
            and obj.__module__ == module_name
        ]  # fmt: skip
        cls.name, cls.source_path = name, path
        _CLASSES[key] = cls
    return cls
