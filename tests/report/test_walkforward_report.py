"""The page of a walk-forward: written from a real saved run through `backtest report RUN_ID`
and through the API, with the fold timeline, the per-fold table, the stitched out-of-sample
equity and the degradation, and graceful with undefined values."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import barlab
from barlab.report import write_run_report, write_walkforward_report
from barlab.report.html import SYNTHETIC_BANNER
from barlab.report.labels import fmt
from barlab.research.walkforward import load_walk_forward
from tests.cli.test_cli import run
from tests.report.factories import figures, make_bars, values
from tests.report.research_factories import NEVER, Crossover, assert_drawn


@pytest.fixture(scope="module")
def walked() -> barlab.walk_forward:
    """Four folds of 10 train and 5 test sessions over 30 demo sessions."""
    bars = make_bars(390 * 30, ("AAA", "BBB"))
    return barlab.walk_forward(
        Crossover,
        bars,
        train="10D",
        test="5D",
        n_jobs=1,
        fast=[3, 8],
        slow=[20, NEVER],
        short=[False, True],
    )


@pytest.fixture(scope="module")
def saved(walked, tmp_path_factory) -> tuple[Path, str]:
    home = tmp_path_factory.mktemp("home")
    (home / "xdg").mkdir()
    return home, walked.save(home / "reports").name


@pytest.fixture(scope="module")
def page(saved) -> str:
    """The page as `backtest report RUN_ID` writes it."""
    home, run_id = saved
    out = run(home, "report", run_id)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(Path("reports") / "runs" / run_id / "report.html")
    return (home / out.stdout.strip()).read_text(encoding="utf-8")


def fold_rows(page: str) -> list[list[str]]:
    table = page[page.index('id="folds-table"') :]
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    return [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", body)]


def test_the_header_says_what_was_walked_on_which_data(page, walked, saved):
    assert "<title>[SYNTHETIC] Crossover walk-forward" in page
    assert SYNTHETIC_BANNER in page and "demo (SYNTHETIC)" in page
    for text in ("Grid: fast", "3, 8 (2 values)", "train 10D, test 5D, step 5D (rolling)",
                 "sharpe (higher is better)", saved[1], "11,700 bars"):  # fmt: skip
        assert text in page, text
    assert f"<dt>Folds</dt><dd>{walked.folds.height}</dd>" in page


def test_the_fold_table_has_each_folds_choice_in_and_out_of_sample(page, walked):
    rows = fold_rows(page)
    assert len(rows) == walked.folds.height == 4
    for cells, fold in zip(rows, walked.folds.iter_rows(named=True), strict=True):
        assert cells[0] == str(fold["fold"])
        assert cells[1] == f"{fold['train_start']} → {fold['train_end']}"
        assert cells[2] == f"{fold['test_start']} → {fold['test_end']}"
        assert cells[3:6] == [str(fold["fast"]), str(fold["slow"]), str(fold["short"])]
        assert cells[7:9] == [
            fmt(fold["is_objective"], "ratio"),
            fmt(fold["oos_objective"], "ratio"),
        ]
        assert cells[10] == "–"  # efficiency is undefined: every in-sample Sharpe is below 0


def test_the_charts_show_folds_objectives_and_the_stitched_equity(page, walked):
    figs = figures(page)
    assert list(figs) == ["timeline", "objective", "params", "oos-equity"]
    chosen = figs["params"]["data"]
    assert [t["name"] for t in chosen] == ["fast", "slow", "short"]
    assert values(chosen[0]["y"]).tolist() == walked.folds["fast"].to_list()
    assert chosen[2]["y"] == [str(v) for v in walked.folds["short"]]  # a category axis
    train, test = figs["timeline"]["data"]
    assert train["name"] == "Train" and test["name"] == "Test"
    assert train["y"] == [f"Fold {i}" for i in range(1, 5)]
    first = walked.folds.row(0, named=True)
    start_ms = values(test["base"])[0]
    assert np.datetime64(int(start_ms), "ms").astype("datetime64[D]") == np.datetime64(
        first["test_start"]
    )
    is_bars, oos_bars = figs["objective"]["data"]
    assert values(is_bars["y"]) == pytest.approx(walked.folds["is_objective"].to_numpy())
    assert values(oos_bars["y"]) == pytest.approx(walked.folds["oos_objective"].to_numpy())
    equity = figs["oos-equity"]["data"][0]
    assert values(equity["y"])[-1] == pytest.approx(walked.oos["equity"][-1])
    assert len(figs["oos-equity"]["layout"]["shapes"]) == 3  # a line where each later fold starts


def test_degradation_and_the_out_of_sample_metrics(page, walked):
    d = walked.degradation
    summary = page[page.index('<section id="summary">') :]
    assert f"<dd>{fmt(d.is_mean, 'ratio')}</dd>" in summary
    assert f"<dd>{fmt(d.oos_mean, 'ratio')}</dd>" in summary
    assert "n/a: the in-sample mean is not above zero" in summary
    assert f'<td class="num">{fmt(walked.oos_metrics.total_return, "pct")}</td>' in summary


def test_the_api_writes_the_same_page(page, saved, walked, tmp_path):
    home, run_id = saved
    by_id = write_run_report(run_id, tmp_path / "a.html", reports_dir=home / "reports")
    assert by_id.read_text(encoding="utf-8") == page
    loaded = load_walk_forward(run_id, reports_dir=home / "reports")
    again = write_walkforward_report(loaded, tmp_path / "b.html").read_text(encoding="utf-8")
    assert again == page
    fresh = write_walkforward_report(walked, tmp_path / "c.html").read_text(encoding="utf-8")
    assert "Run id</dt><dd>not saved" in fresh and fold_rows(fresh) == fold_rows(page)


@pytest.mark.browser
def test_the_walkforward_page_draws_in_headless_chromium(page, tmp_path):
    assert_drawn(page, ["timeline", "objective", "params", "oos-equity"], tmp_path)
