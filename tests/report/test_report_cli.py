"""`backtest report` and `backtest compare`, run as a user runs them: subprocesses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli import RANGE, run


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, str, str]:
    """A working directory with two saved runs on the demo market: (home, run a, run b)."""
    home = tmp_path_factory.mktemp("home")
    (home / "xdg").mkdir()
    ids = []
    for fast in ("10", "5"):
        out = run(home, "run", "sma_crossover", *RANGE, "--symbols", "AAPL,MSFT",
                  "--param", f"fast={fast}", "--quiet")  # fmt: skip
        assert out.returncode == 0, out.stderr
        ids.append(out.stdout.split("run id:")[1].split()[0])
    return home, ids[0], ids[1]


def test_report_regenerates_the_saved_report(saved):
    home, run_a, _ = saved
    report = home / "reports" / "runs" / run_a / "report.html"
    first = report.read_text(encoding="utf-8")
    report.unlink()
    out = run(home, "report", run_a)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(Path("reports") / "runs" / run_a / "report.html")
    page = report.read_text(encoding="utf-8")
    assert page == first  # the same run gives the same page
    assert run_a in page and "SYNTHETIC DATA" in page and "fast=10" in page
    assert 'id="figure-price"' in page  # the run's bars, read back from the local cache
    by_folder = run(home, "report", str(home / "reports" / "runs" / run_a))
    assert by_folder.returncode == 0 and Path(by_folder.stdout.strip()) == report


def test_compare_puts_two_runs_side_by_side(saved):
    home, run_a, run_b = saved
    out = run(home, "compare", run_a, run_b)
    assert out.returncode == 0, out.stderr
    path = home / out.stdout.strip()
    assert path.parent == home / "reports" / "compare" and path.suffix == ".html"
    page = path.read_text(encoding="utf-8")
    for text in (run_a, run_b, "fast=10", "fast=5", "Growth of $1", "Sharpe", "SYNTHETIC"):
        assert text in page
    chosen = run(home, "compare", run_a, run_b, "--out", "mine/a_b.html")
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.strip() == str(Path("mine") / "a_b.html")
    assert (home / "mine" / "a_b.html").is_file()


def test_an_unknown_run_is_a_usage_error(saved):
    home, run_a, _ = saved
    for args in (("report", "20990101-000000-nope"), ("compare", run_a, "nope")):
        out = run(home, *args)
        assert out.returncode == 2
        assert out.stdout == ""
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: no saved run"), out.stderr
        assert run_a in lines[0]  # the message lists recent runs


def test_help_names_the_commands(saved):
    home = saved[0]
    top = run(home, "--help")
    assert "report" in top.stdout and "compare" in top.stdout
    sub = run(home, "report", "--help")
    assert sub.returncode == 0 and "--open" in sub.stdout and "RUN_ID" in sub.stdout
    assert "--out" in run(home, "compare", "--help").stdout
