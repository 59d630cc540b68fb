"""One emulator server per test module, pointed at a vendor's app (:mod:`.vendors`) test by
test: stopping a server takes up to half a second."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.data.providers.vendors import Vendor
from tests.emulators.base import App, Emulator, Reply


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator(lambda request: Reply(404, {})) as emulator:
        yield emulator


@pytest.fixture
def serve(server: Emulator, vendor: Vendor) -> Callable[..., Emulator]:
    """Point the module's emulator at ``vendor.app(**options)`` (or at ``app``) with an empty
    request log."""

    def start(app: App | None = None, **options: object) -> Emulator:
        server.app = app or vendor.app(**options)
        server.requests.clear()
        return server

    return start
