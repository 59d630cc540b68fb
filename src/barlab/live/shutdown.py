"""A clean stop on SIGTERM (``docker stop``, systemd, Kubernetes): run one shutdown callback,
once, however many signals arrive.

What the callback does is the bridge's business: it reads ``[live] on_shutdown`` (``cancel``
the open orders, or ``keep`` them working at the broker), stops the feed and flushes the
journal.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)


class GracefulShutdown:
    """Run ``callback(reason)`` once, on the first SIGTERM or SIGINT or on :meth:`trigger`.

    Parameters
    ----------
    callback : callable
        ``callback(reason)`` with ``reason`` such as ``"SIGTERM"``; it runs on the main thread
        (signal handlers do), so it should set the bridge's stop flag and finish within the
        container's grace period (``docker stop`` waits 10 s before SIGKILL).
    signals : iterable of signal numbers
        Default: SIGTERM and SIGINT.

    Use as a context manager (or :meth:`install` / :meth:`uninstall`) from the main thread;
    the previous handlers come back on exit::

        with GracefulShutdown(lambda why: bridge.stop(reason=why)) as stop:
            bridge.run(until=stop.event)
    """

    def __init__(
        self,
        callback: Callable[[str], Any],
        *,
        signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT),
    ) -> None:
        self._callback = callback
        self._signals = tuple(signals)
        self._previous: dict[int, Any] = {}
        self._claim = threading.Lock()
        self.event = threading.Event()
        """Set once the callback has returned (or raised)."""
        self.reason: str | None = None

    @property
    def triggered(self) -> bool:
        return self.reason is not None

    def install(self) -> GracefulShutdown:
        for sig in self._signals:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def uninstall(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def trigger(self, reason: str = "requested") -> bool:
        """Run the callback unless it already ran (or is running); True when this call ran
        it. A callback that raises is logged; the shutdown still counts as done."""
        if not self._claim.acquire(blocking=False):
            log.info("shutdown already under way; ignoring %s", reason)
            return False
        self.reason = reason
        log.info("shutting down (%s)", reason)
        try:
            self._callback(reason)
        except Exception:
            log.exception("the shutdown callback failed (%s)", reason)
        finally:
            self.event.set()
        return True

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the shutdown is done; False on timeout."""
        return self.event.wait(timeout_s)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.trigger(signal.Signals(signum).name)

    def __enter__(self) -> GracefulShutdown:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()
