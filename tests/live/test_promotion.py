"""Promotion: every gate judged and shown, a record only when all pass, and require_promoted
refusing other parameters or a changed source file."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

import barlab
from barlab.config import load_config
from barlab.errors import NotPromotedError, UsageError
from barlab.live.gates import evaluate_promotion
from barlab.live.promotion import read_record, record_path, require_promoted, write_record
from barlab.strategy import builtin_dir
from tests.live.conftest import KEY_ID, SECRET

START, END = "2024-03-04", "2024-03-29"
LENIENT = dict(min_trades=1, min_sharpe=-100.0, max_drawdown=1.0, require_parity=False)
LEAKY = '''
import numpy as np
from barlab import Signals, Strategy


class Leaky(Strategy):
    """Long when tomorrow's close is higher: it reads the future."""

    def signals(self, bars):
        ahead = np.roll(bars.close, -1, axis=0)
        return Signals(target=np.where(ahead > bars.close, 1.0, 0.0))
'''


class Lab:
    """A working directory with ./strategies/my_sma.py (a copy of sma_crossover), the demo
    market cached under ./data and runs under ./reports."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "strategies").mkdir()
        shutil.copy(builtin_dir() / "sma_crossover.py", root / "strategies" / "my_sma.py")
        (root / "strategies" / "leaky.py").write_text(LEAKY)
        self.reports = root / "reports"

    def config(self, **promotion):
        cfg = load_config()
        return dataclasses.replace(
            cfg, promotion=dataclasses.replace(cfg.promotion, **{**LENIENT, **promotion})
        )

    def bars(self):
        return barlab.load_bars("AAPL,MSFT", START, END, timeframe="1h", source="demo")

    def backtest(self, name: str = "my_sma", **params) -> str:
        strategy = barlab.load_strategy(name)(**params)
        result = barlab.backtest(strategy, self.bars())
        return result.save(self.reports, config=load_config().to_dict(), report=False).run_id

    def walkforward(self, **grid) -> str:
        cls = barlab.load_strategy("my_sma")
        wf = barlab.walk_forward(cls, self.bars(), train="10D", test="5D", **grid)
        return wf.save(self.reports).name

    def parity(self, *, exact: bool = True, **params) -> str:
        n = len(list((self.reports / "runs").glob("*replay*")))
        folder = self.reports / "runs" / f"20990101-00000{n}-my_sma-replay"
        folder.mkdir(parents=True)
        doc = {"strategy": "my_sma", "params": params, "score": 1.0 if exact else 0.9,
               "exact": exact}  # fmt: skip
        (folder / "parity.json").write_text(json.dumps(doc))
        return folder.name


@pytest.fixture
def lab(tmp_path, monkeypatch) -> Lab:
    for var in list(__import__("os").environ):
        if var.startswith(("BARLAB_", "POLYGON_", "APCA_", "FINNHUB_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    return Lab(tmp_path)


PARAMS = {"fast": 3, "slow": 8, "allow_short": False}


def _gates(record) -> dict[str, dict]:
    return {g["name"]: g for g in record.gates}


def test_a_run_passing_every_gate_is_promoted_with_a_full_record(lab, monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    run_id = lab.backtest(fast=3, slow=8)
    wf_id = lab.walkforward(fast=[3], slow=[8])
    parity_id = lab.parity(**PARAMS)
    cfg = lab.config(require_parity=True, require_walkforward=True, min_oos_sharpe=-100.0)
    cls = barlab.load_strategy("my_sma")
    record = evaluate_promotion(cls, run_id, config=cfg)
    gates = _gates(record)
    assert list(gates) == ["source_unchanged", "min_trades", "min_sharpe", "max_drawdown", "data",
                           "lookahead", "walkforward", "parity"]  # fmt: skip
    assert {n: g["status"] for n, g in gates.items() if g["status"] != "pass"} == {}, gates
    for g in gates.values():
        assert {"threshold", "value", "op", "passed", "description"} <= set(g)
    assert record.passed and record.walkforward_run == wf_id and record.parity_run == parity_id
    path = write_record(record, reports_dir=lab.reports)
    assert path == record_path("my_sma", reports_dir=lab.reports)
    text = path.read_text()
    assert KEY_ID not in text and SECRET not in text
    doc = json.loads(text)
    keys = ("strategy", "params", "source_file", "source_sha256", "run_id", "data", "metrics",
            "gates", "promoted_at", "barlab_version", "walkforward_run", "parity_run")  # fmt: skip
    for key in keys:
        assert doc[key], key
    assert doc["params"] == PARAMS and doc["run_id"] == run_id
    assert len(doc["source_sha256"]) == 64 and doc["source_file"].endswith("my_sma.py")
    assert doc["data"]["data_version"] and doc["data"]["synthetic"] is True
    assert doc["metrics"]["n_trades"] >= 1 and doc["extra"]["lookahead"]["mode"] == "full"
    assert require_promoted(cls, {"fast": "3", "slow": 8}, reports_dir=lab.reports).run_id == run_id


@pytest.mark.parametrize(
    ("promotion", "gate", "status"),
    [
        ({"min_trades": 10_000}, "min_trades", "fail"),
        ({"min_sharpe": 1_000.0}, "min_sharpe", "fail"),
        ({"max_drawdown": 1e-9}, "max_drawdown", "fail"),
        ({"allow_synthetic": False}, "data", "fail"),
        ({"require_walkforward": True}, "walkforward", "not run"),
        ({"require_parity": True}, "parity", "not run"),
    ],
)
def test_each_failing_gate_is_reported_and_nothing_written(lab, promotion, gate, status):
    run_id = lab.backtest(fast=3, slow=8)
    record = evaluate_promotion(
        barlab.load_strategy("my_sma"), run_id, config=lab.config(**promotion)
    )
    gates = _gates(record)
    assert gates[gate]["status"] == status and not gates[gate]["passed"]
    assert [g for g in gates.values() if not g["passed"]] == [gates[gate]]
    assert not record.passed
    with pytest.raises(ValueError, match=gate):
        write_record(record, reports_dir=lab.reports)
    assert not (lab.reports / "promotions").exists()


def test_evidence_that_fails(lab):
    run_id = lab.backtest(fast=3, slow=8)
    lab.walkforward(fast=[3, 4], slow=[8])
    lab.parity(exact=False, **PARAMS)
    cfg = lab.config(require_parity=True, min_oos_sharpe=1_000.0)
    gates = _gates(evaluate_promotion(barlab.load_strategy("my_sma"), run_id, config=cfg))
    assert gates["walkforward"]["status"] == "fail" and "folds" in gates["walkforward"]["detail"]
    assert gates["parity"]["status"] == "fail" and gates["parity"]["value"] is False


def test_evidence_of_other_parameters_is_not_used(lab):
    run_id = lab.backtest(fast=3, slow=8)
    lab.walkforward(fast=[4], slow=[8])
    lab.parity(fast=4, slow=8, allow_short=False)
    cfg = lab.config(require_parity=True, require_walkforward=True)
    cls = barlab.load_strategy("my_sma")
    gates = _gates(evaluate_promotion(cls, run_id, config=cfg))
    assert gates["walkforward"]["status"] == "not run" and gates["parity"]["status"] == "not run"
    other = lab.parity(fast=4, slow=8, allow_short=False)
    with pytest.raises(UsageError, match="parameters"):
        evaluate_promotion(cls, run_id, config=cfg, parity=other)


def test_a_run_of_another_strategy_is_a_usage_error(lab):
    run_id = lab.backtest(fast=3, slow=8)
    with pytest.raises(UsageError, match="a backtest of my_sma, not sma_crossover"):
        evaluate_promotion(barlab.load_strategy("sma_crossover"), run_id, config=lab.config())


def test_the_lookahead_gate_catches_a_leaky_strategy(lab):
    run_id = lab.backtest("leaky")
    record = evaluate_promotion(barlab.load_strategy("leaky"), run_id, config=lab.config())
    gate = _gates(record)["lookahead"]
    assert gate["status"] == "fail" and "look-ahead in leaky" in gate["detail"]
    assert record.extra["lookahead"]["clean"] is False and not record.passed


def test_a_source_change_after_the_run_fails_the_source_gate(lab):
    run_id = lab.backtest(fast=3, slow=8)
    path = lab.root / "strategies" / "my_sma.py"
    path.write_text(path.read_text() + "\n# tuned\n")
    record = evaluate_promotion(barlab.load_strategy("my_sma"), run_id, config=lab.config())
    assert _gates(record)["source_unchanged"]["status"] == "fail" and not record.passed


def test_require_promoted_refuses_a_changed_source_other_params_or_no_record(lab):
    cls = barlab.load_strategy("my_sma")
    with pytest.raises(NotPromotedError, match=r"my_sma is not promoted.*backtest promote"):
        require_promoted(cls, PARAMS, reports_dir=lab.reports)
    run_id = lab.backtest(fast=3, slow=8)
    write_record(evaluate_promotion(cls, run_id, config=lab.config()), reports_dir=lab.reports)
    assert require_promoted(cls, PARAMS, reports_dir=lab.reports).params == PARAMS
    with pytest.raises(NotPromotedError, match=r"promoted on .* with fast=3.*not fast=4"):
        require_promoted(cls, {"fast": 4, "slow": 8}, reports_dir=lab.reports)
    path = lab.root / "strategies" / "my_sma.py"
    path.write_text(path.read_text().replace("fast: int = 10", "fast: int = 11"))
    changed = barlab.load_strategy("my_sma")
    with pytest.raises(NotPromotedError) as err:
        require_promoted(changed, PARAMS, reports_dir=lab.reports)
    message = str(err.value)
    assert "my_sma.py changed since its promotion on" in message
    assert "backtest promote" in message and err.value.exit_code == 2
    assert read_record("my_sma", reports_dir=lab.reports).run_id == run_id


def test_parity_names_its_strategy_in_the_run_beside_it(lab):
    run_id = lab.backtest(fast=3, slow=8)
    folder = lab.reports / "runs" / "20990101-000000-my_sma-replay"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"info": {"strategy": "my_sma", "params": PARAMS}}))
    (folder / "parity.json").write_text(json.dumps({"score": 1.0, "exact": True}))
    cls = barlab.load_strategy("my_sma")
    record = evaluate_promotion(cls, run_id, config=lab.config(require_parity=True))
    assert _gates(record)["parity"]["status"] == "pass" and record.parity_run == folder.name
    assert evaluate_promotion(cls, run_id, config=lab.config(), parity=folder.name).passed
