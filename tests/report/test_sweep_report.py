"""The page of a sweep (and of an optimisation): written from a real saved run through
`backtest report RUN_ID` and through the API, complete, graceful with NaN and infinity, small
for a huge sweep, and drawn by a real browser."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import barlab
from barlab.metrics import Metrics
from barlab.report import grid, write_run_report, write_sweep_report
from barlab.report.grid import MAX_HEAT_VALUES, MAX_SCATTER, TOP_N
from barlab.report.html import SYNTHETIC_BANNER
from barlab.report.labels import format_metric, label
from barlab.report.saved import GridRun
from tests.cli.test_cli import run
from tests.report.factories import figures, make_bars, values
from tests.report.research_factories import NEVER, Crossover, assert_drawn

GRID = {"fast": [3, 5, 8, 13, 21], "slow": [20, 40, 60, NEVER], "short": [False, True]}
METRICS = [f.name for f in dataclasses.fields(Metrics)]


@pytest.fixture(scope="module")
def swept() -> barlab.sweep:
    """38 combinations (2 skipped by the constraint) on five demo sessions; the slow window
    NEVER makes no trade, so its rows have an undefined Sharpe."""
    bars = make_bars(390 * 5, ("AAA", "BBB"))
    return barlab.sweep(Crossover, bars, where="fast < slow", n_jobs=1, **GRID)


@pytest.fixture(scope="module")
def saved(swept, tmp_path_factory) -> tuple[Path, str]:
    """A working directory holding the saved sweep: (home, run id)."""
    home = tmp_path_factory.mktemp("home")
    (home / "xdg").mkdir()
    folder = swept.save(home / "reports")
    return home, folder.name


@pytest.fixture(scope="module")
def page(saved) -> str:
    """The page as `backtest report RUN_ID` writes it."""
    home, run_id = saved
    out = run(home, "report", run_id)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(Path("reports") / "runs" / run_id / "report.html")
    return (home / out.stdout.strip()).read_text(encoding="utf-8")


def top_rows(page: str) -> list[list[str]]:
    body = page[page.index('id="top-table"') :]
    body = body[body.index("<tbody>") : body.index("</tbody>")]
    return [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", body)]


def test_the_header_says_what_was_swept_on_which_data(page, swept):
    assert "<title>[SYNTHETIC] Crossover sweep" in page
    assert SYNTHETIC_BANNER in page and "demo (SYNTHETIC)" in page
    for text in ("Grid: fast", "3, 5, 8, 13, 21 (5 values)", "Grid: short", "fast &lt; slow",
                 f"{swept.n_run} run, 2 skipped by the constraint, 0 invalid (of 40)",
                 "AAA, BBB", "2024-01-02 09:30 → 2024-01-08 15:59 New York (1,950 bars)",
                 "Elapsed", "costs.slippage_bps"):  # fmt: skip
        assert text in page, text


def test_the_top_table_lists_the_best_rows_by_sharpe(page, swept):
    rows = top_rows(page)
    assert len(rows) == min(TOP_N, swept.n_run) == 38
    best = swept.sorted("sharpe").row(0, named=True)
    assert rows[0][1:4] == [str(best["fast"]), str(best["slow"]), str(best["short"])]
    assert rows[0][4] == format_metric("sharpe", best["sharpe"])
    heads = page[page.index('id="top-table"') :].split("</thead>")[0]
    for name in ("sharpe", "total_return", "max_drawdown", "n_trades"):
        assert f">{label(name)}</th>" in heads
    assert "Neighbours&#x27; Sharpe (mean)" in heads
    # the rows that never traded: Sharpe undefined, shown as a dash, sorted last
    never = [r for r in rows if r[2] == str(NEVER)]
    assert len(never) == 10 and rows[-10:] == never
    assert all(r[4] == "–" for r in never)
    assert 'data-v="-Infinity">–</td>' in page and "NaN" not in top_rows_html(page)


def top_rows_html(page: str) -> str:
    return page[page.index('id="top-table"') : page.index("</table>", page.index('id="top-table"'))]


def test_the_heatmap_spans_the_two_widest_parameters_at_the_best_rows_others(page, swept):
    fig = figures(page)["heatmap"]
    heat = [t for t in fig["data"] if t["type"] == "heatmap"]
    assert heat[0]["visible"] is True and all(t["visible"] is False for t in heat[1:])
    assert [t["name"] for t in heat[:3]] == ["Sharpe", "Total return", "Max drawdown"]
    assert heat[0]["x"] == GRID["fast"] and heat[0]["y"] == GRID["slow"]
    z = values(heat[0]["z"]).reshape(len(GRID["slow"]), len(GRID["fast"]))
    best = swept.sorted("sharpe").row(0, named=True)
    assert f"held at the best row&#x27;s values (by Sharpe): short={best['short']}" in page
    plane = swept.table.filter(pl.col("short") == best["short"])
    for r in plane.iter_rows(named=True):
        cell = z[GRID["slow"].index(r["slow"]), GRID["fast"].index(r["fast"])]
        if math.isnan(r["sharpe"]):
            assert np.isnan(cell)
        else:
            assert cell == pytest.approx(r["sharpe"], rel=1e-6)
    assert np.isnan(z[0, -1])  # fast 21 < slow 20 is skipped: a blank cell
    star = next(t for t in fig["data"] if t.get("name") == "Best by Sharpe")
    assert star["x"] == [best["fast"]] and star["y"] == [best["slow"]]
    assert len(fig["layout"]["updatemenus"][0]["buttons"]) == len(heat)


def test_scatter_and_distributions_name_what_is_left_out(page, swept):
    figs = figures(page)
    assert list(figs) == ["heatmap", "marginal", "scatter", "distributions"]
    points = values(figs["scatter"]["data"][0]["x"])
    assert len(points) == swept.n_run - 10  # the ten that never traded have no Sharpe
    assert "28 of 38 combinations drawn. 10 with an undefined or infinite Sharpe" in page
    titles = [a["text"] for a in figs["distributions"]["layout"]["annotations"]]
    assert "Sharpe (10 not finite)" in titles and "Trades" in titles
    assert len(titles) == len(METRICS)
    assert "Sharpe: 10 undefined (NaN)" in page


def test_the_api_writes_the_same_page(page, saved, swept, tmp_path):
    home, run_id = saved
    by_id = write_run_report(run_id, tmp_path / "a.html", reports_dir=home / "reports")
    assert by_id.read_text(encoding="utf-8") == page
    fresh = write_sweep_report(swept, tmp_path / "b.html").read_text(encoding="utf-8")
    assert "Run id</dt><dd>not saved" in fresh
    assert figures(fresh)["heatmap"] == figures(page)["heatmap"]


def test_a_sweep_missing_its_table_is_a_clear_failure(saved):
    home, run_id = saved
    broken = home / "reports" / "runs" / f"{run_id}-broken"
    shutil.copytree(home / "reports" / "runs" / run_id, broken)
    (broken / "sweep.parquet").unlink()
    out = run(home, "report", broken.name)
    assert out.returncode == 1 and out.stdout == ""
    assert "is unreadable" in out.stderr and "run it again" in out.stderr
    assert "Traceback" not in out.stderr


def test_every_figure_is_strict_json(page):
    for spec in re.findall(r'<script type="application/json" id="figure-[\w-]+">(.*?)</script>',
                           page):  # fmt: skip
        json.loads(spec, parse_constant=lambda c: pytest.fail(f"{c} in a figure"))


def huge_run(n: int = 100_000) -> GridRun:
    """A made-up table of 100,000 combinations (no backtest), with NaN and infinities."""
    rng = np.random.default_rng(3)
    fast, slow = np.divmod(np.arange(n), 400)
    cols = {"fast": fast, "slow": slow, **{m: rng.normal(0, 1, n) for m in METRICS}}
    cols["sharpe"][::7] = np.nan
    cols["calmar"][::11] = np.inf
    cols["max_drawdown"] = -np.abs(cols["max_drawdown"]) / 10
    table = pl.DataFrame(cols).with_columns(pl.col("n_trades").abs().mul(100).cast(pl.Int64))
    info = {"strategy": "huge", "grid": {"fast": list(range(250)), "slow": list(range(400))},
            "n_run": n, "n_grid": n, "source": "demo", "synthetic": True}  # fmt: skip
    return GridRun(kind="sweep", info=info, table=table, params=["fast", "slow"])


def test_a_huge_sweep_stays_small(tmp_path):
    path = write_sweep_report(huge_run(), tmp_path / "huge.html")
    size = path.stat().st_size
    assert size < 6_000_000, f"{size:,} bytes"
    page = path.read_text(encoding="utf-8")
    assert len(top_rows(page)) == TOP_N
    figs = figures(page)
    assert sum(len(values(t["x"])) for t in figs["scatter"]["data"][:1]) <= MAX_SCATTER
    heat = [t for t in figs["heatmap"]["data"] if t["type"] == "heatmap"]
    assert sum(values(t["z"]).size for t in heat) <= MAX_HEAT_VALUES
    assert len(heat) == 2 and "The menu offers fewer metrics" in page
    assert "an evenly spread sample" in page
    assert "Calmar: 9,091 infinite" in page
    assert "Calmar (9,091 not finite)" in page


def test_a_huge_grid_draws_every_few_values():
    n_x, n_y = 800, 400
    fast, slow = np.divmod(np.arange(n_x * n_y), n_y)
    table = pl.DataFrame({"fast": fast, "slow": slow, "sharpe": np.sin(fast / 50.0) + slow / 400})
    chart = grid.heatmap_chart(table, ["fast", "slow"])
    (heat,) = [t for t in json.loads(chart.spec)["data"] if t["type"] == "heatmap"]
    best = table.sort("sharpe", descending=True).row(0, named=True)
    assert best["fast"] % 2 == 1  # off the stride, kept for the star
    assert heat["x"][:3] == [0, 2, 4] and best["fast"] in heat["x"] and len(heat["x"]) == 401
    assert len(heat["y"]) == 400 and values(heat["z"]).size == 401 * 400
    assert "Every few values drawn: 401 of 800 fast, 400 of 400 slow" in chart.note


def test_a_sweep_of_one_parameter_draws_it_instead_of_a_heatmap(tmp_path):
    bars = make_bars(390 * 2, ("AAA",))
    swept = barlab.sweep(Crossover, bars, fast=[3, 5, 8], slow=[30], n_jobs=1)
    page = write_sweep_report(swept, tmp_path / "one.html").read_text(encoding="utf-8")
    assert list(figures(page)) == ["marginal", "scatter", "distributions"]
    assert "Heatmap: the sweep varies 1 parameter(s); it needs two" in page
    assert len(top_rows(page)) == 3


def test_an_optimisation_shows_its_points_and_convergence(tmp_path):
    bars = make_bars(390 * 3, ("AAA", "BBB"))
    found = barlab.optimize(Crossover, bars, fast=(3, 15), slow=(20, 80), where="fast < slow",
                            maxiter=2, popsize=3, n_jobs=1)  # fmt: skip
    folder = found.save(tmp_path / "reports")
    (tmp_path / "xdg").mkdir()
    out = run(tmp_path, "report", folder.name)  # a run.json of kind "optimize"
    assert out.returncode == 0, out.stderr
    page = (tmp_path / out.stdout.strip()).read_text(encoding="utf-8")
    assert "Crossover optimisation" in page and "Bounds: fast" in page and "3 … 15" in page
    figs = figures(page)
    assert list(figs) == ["points", "convergence", "scatter", "distributions"]
    best = np.nanmax(values(figs["convergence"]["data"][1]["y"]).astype(float))
    assert best == pytest.approx(found.best_value)
    assert len(top_rows(page)) == min(TOP_N, found.table.filter(pl.col("feasible")).height)
    assert f"{found.table.height:,} distinct points, {found.n_infeasible:,} infeasible" in page
    star = figs["points"]["data"][-1]
    assert star["name"] == "Best" and star["x"] == [found.best_params["fast"]]


@pytest.mark.browser
def test_the_sweep_page_draws_in_headless_chromium(page, tmp_path):
    assert_drawn(page, ["heatmap", "marginal", "scatter", "distributions"], tmp_path)
