"""A bridge process for the restart test: ``python -m tests.live.bridge_proc URL JOURNAL
SYMBOLS [short]`` runs sma_crossover (with ``short``: allow_short, reversing at every cross)
against the emulator at URL (keys from APCA_API_KEY_ID and APCA_API_SECRET_KEY) until
SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
import threading

from barlab.engine.backtest import BacktestOptions
from barlab.live.bridge import BridgeConfig, bridge_options
from barlab.live.replay import replay_options
from barlab.live.runner import Endpoints, SessionOptions, run_session
from barlab.strategies.sma_crossover import SmaCrossover


def main(argv: list[str]) -> int:
    url, journal, symbols = argv[0], argv[1], tuple(argv[2].split(","))
    strategy = SmaCrossover(allow_short=argv[3:] == ["short"])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    endpoints = Endpoints(
        trading_url=url, stream_url="ws" + url.removeprefix("http"), data_url=url,
        key_id=os.environ["APCA_API_KEY_ID"], secret_key=os.environ["APCA_API_SECRET_KEY"],
        requests_per_minute=600_000.0,
    )  # fmt: skip
    # short: half the equity, a smaller account than the other sessions'
    sized = {"size_pct": 0.5} if argv[3:] == ["short"] else {}
    options = bridge_options(replay_options(BacktestOptions.from_kwargs(**sized)))
    run_session(
        strategy, endpoints=endpoints, symbols=symbols, timeframe="1m",
        config=BridgeConfig(options=options, window_bars=200), journal_path=journal, stop=stop,
        options=SessionOptions(grace_s=None, source="demo", reconnect_base_s=0.05),
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
