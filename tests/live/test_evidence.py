"""Which saved replay counts as a strategy's parity evidence for promotion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from barlab.errors import UsageError
from barlab.live.evidence import find_parity
from barlab.strategy import load_strategy


def saved(reports: Path, run_id: str, **doc: object) -> None:
    folder = reports / "runs" / run_id
    folder.mkdir(parents=True)
    params = {"fast": 10, "slow": 50, "allow_short": False}
    base = {"strategy": "sma_crossover", "params": params, "score": 1.0, "exact": True}
    (folder / "parity.json").write_text(json.dumps({**base, **doc}))


def test_a_replay_with_partial_fills_is_not_parity_evidence(tmp_path: Path):
    saved(tmp_path, "20240301-000000-replay-sma_crossover-a")
    saved(tmp_path, "20240302-000000-replay-sma_crossover-b", partial_fill_rate=0.3,
          score=0.6, exact=False)  # fmt: skip
    sma = load_strategy("sma_crossover")()
    found = find_parity(sma, reports_dir=tmp_path)
    assert found is not None and found.run_id.endswith("-a")  # the later one is skipped
    with pytest.raises(UsageError, match=r"partial fills.*without --partial-fills"):
        find_parity(sma, reports_dir=tmp_path,
                    run_id="20240302-000000-replay-sma_crossover-b")  # fmt: skip
