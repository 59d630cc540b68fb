"""The bridge's append-only journal: one JSON object per line, fsynced per record, so a crash at
any moment loses at most the record being written (a torn last line is skipped on reading).

Record kinds (every record has ``kind`` and ``at`` = wall-clock ns):

- ``start``: strategy, params, symbols, mode, options; ``reconcile``: positions and open
  orders found at the broker on start.
- ``bar``: a bar time processed (``ts_ns``), with the equity, positions and signal state at its
  close; written *after* its orders were sent, so a restart redoes a bar that has no ``bar``
  record (the client order ids make the redo safe).
- ``intent``: an order the bridge means to send (:class:`~barlab.live.orders.OrderIntent`);
  ``submit``: the broker's answer (``status``, ``order_id``, a bracket's ``legs``) or
  ``error``; ``dry_run``: an intent not sent; ``refused``: an intent risk or buying power cut
  to nothing, or an opening half dropped; ``deferred``: the opening half of a flip, sent once
  its closing half (``after``) fills; ``cancel``: a working order a newer instruction
  replaced.
- ``bar`` with ``missed: true``: a bar that closed while the bridge was down, stepped through
  the strategy's state on restart (no orders, no equity).
- ``fill``: a fill or partial fill from the trade_updates stream; ``update``: any other event.
- ``kill_switch``: the daily loss limit was hit (equity, session start equity, limit);
  ``stop``: a clean stop.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Journal:
    """Appends records to ``path`` (created with its folder), one fsync per record.

    Thread-safe: the bar thread and the trade-updates thread both write to it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self._repair_tail()

    def _repair_tail(self) -> None:
        """A torn last line (a crash mid-write) is ended, so the next record starts clean."""
        size = self.path.stat().st_size
        if size:
            with open(self.path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    self._file.write("\n")
                    self._flush()

    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Write one record; returns it."""
        record = {"kind": kind, "at": time.time_ns(), **fields}
        line = json.dumps(record, default=_jsonable, allow_nan=False)
        with self._lock:
            self._file.write(line + "\n")
            self._flush()
        return record

    def _flush(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def read_journal(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of a journal in order; a torn or corrupt line is skipped."""
    p = Path(path)
    if not p.exists():
        return
    with open(p, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "kind" in record:
                yield record


@dataclass(slots=True)
class JournalState:
    """What a restart needs from an earlier journal: the bars already processed, the intents
    already decided (by client order id), and the last bar's signal state and halt flags."""

    bars: set[int] = field(default_factory=set)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    submitted: set[str] = field(default_factory=set)
    """Client order ids the broker accepted."""
    answered: set[str] = field(default_factory=set)
    """Client order ids with any broker answer (accepted, refused, duplicate)."""
    last_bar: dict[str, Any] | None = None
    fills: list[dict[str, Any]] = field(default_factory=list)
    order_ids: dict[str, str] = field(default_factory=dict)
    """Client order id -> the broker's id, for the orders it accepted, in order."""
    legs: dict[str, list[str]] = field(default_factory=dict)
    """Client order id of a bracket -> the broker ids of its exit legs."""
    deferred: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Opening halves of flips (client order id -> intent record)."""
    refused: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: str | Path) -> JournalState:
        state = cls()
        for record in read_journal(path):
            kind = record["kind"]
            if kind == "bar":
                state.bars.add(int(record["ts_ns"]))
                state.last_bar = record
            elif kind in ("intent", "dry_run"):
                state.intents[record["client_order_id"]] = record
            elif kind == "submit":
                coid = record["client_order_id"]
                state.answered.add(coid)
                if record.get("order_id"):
                    state.submitted.add(coid)
                    state.order_ids[coid] = record["order_id"]
                    if record.get("legs"):
                        state.legs[coid] = list(record["legs"])
            elif kind == "deferred":
                state.deferred[record["client_order_id"]] = record
            elif kind == "refused":
                state.refused.add(record["client_order_id"])
            elif kind == "fill":
                state.fills.append(record)
        return state


def wait_for(
    path: str | Path,
    kind: str,
    *,
    ts_ns: int | None = None,
    timeout_s: float,
    offset: int = 0,
    alive: Callable[[], bool] | None = None,
) -> int:
    """Block until the journal at ``path`` holds a ``kind`` record (for a ``bar``: one with
    ``ts_ns`` at or after the given one); returns the byte offset just past it, to read on
    from there. TimeoutError after ``timeout_s`` seconds. The replay driver paces the emulator
    with it: the next bar closes only once the bridge has acted on the last one. ``alive``:
    called while waiting; when it returns False the wait ends early with a TimeoutError."""
    deadline = time.monotonic() + timeout_s
    p = Path(path)
    tag = f'"kind": "{kind}"'.encode()
    while True:
        if p.exists():
            with open(p, "rb") as f:
                f.seek(offset)
                chunk = f.read()
            for line in chunk.splitlines(keepends=True):
                if not line.endswith(b"\n"):
                    break  # being written: read it again next time
                offset += len(line)
                if tag in line and _reached(line, ts_ns):
                    return offset
        if time.monotonic() > deadline or (alive is not None and not alive()):
            what = kind if ts_ns is None else f"the bar at {ts_ns} ns"
            raise TimeoutError(f"the bridge did not journal {what} within {timeout_s} s")
        time.sleep(0.0005)


def _reached(line: bytes, ts_ns: int | None) -> bool:
    if ts_ns is None:
        return True
    try:
        return int(json.loads(line)["ts_ns"]) >= ts_ns
    except (ValueError, KeyError, TypeError):
        return False
