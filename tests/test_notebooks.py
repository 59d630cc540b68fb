"""notebooks/*.ipynb run from top to bottom, on the demo market, in a kernel of this interpreter.

Each notebook runs in a copy of notebooks/ under a temporary directory, with HOME, the XDG and
Jupyter directories, the data cache and the reports there too: nothing is written into the
repository or the user's home. The kernel is a kernelspec written by the test that starts
``sys.executable``, so the notebooks import the barlab under test whatever kernels are installed.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = ("01_quickstart", "02_sweep", "03_walk_forward", "04_orders_and_portfolios")
KERNEL = "barlab-notebook-test"
CELL_TIMEOUT_S = 300  # the first cell to backtest compiles the engine when the cache is cold

_KEYS = ("POLYGON_API_KEY", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "FINNHUB_API_KEY")


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_the_notebooks_are_there() -> None:
    assert [p.stem for p in _notebooks()] == list(EXPECTED)


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    assert book.metadata.kernelspec.name == "python3"
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name} has outputs; clear them before committing "
                "(JupyterLab: Edit > Clear Outputs of All Cells, then save)"
            )


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of notebooks/ to run in, a private Jupyter/IPython/XDG world, and a kernelspec
    that starts this very interpreter."""
    work = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, work, ignore=shutil.ignore_patterns("data", "reports", ".ipynb*"))
    jupyter = tmp_path / "jupyter"
    spec = jupyter / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    doc = {"argv": argv, "display_name": "barlab tests", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(doc))
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": home,
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_DATA_HOME": home / ".local" / "share",
        "JUPYTER_PATH": jupyter,
        "JUPYTER_CONFIG_DIR": home / ".jupyter",
        "JUPYTER_DATA_DIR": home / ".local" / "share" / "jupyter",
        "JUPYTER_RUNTIME_DIR": tmp_path / "runtime",
        "IPYTHONDIR": home / ".ipython",
        "MPLCONFIGDIR": home / ".matplotlib",
        "BARLAB_DATA_DIR": tmp_path / "data",
        "BARLAB_REPORTS_DIR": tmp_path / "reports",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # ipykernel's debugger, on frozen modules
    }
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    for name in ("BARLAB_CONFIG", "JUPYTER_PREFER_ENV_PATH", *_KEYS):
        monkeypatch.delenv(name, raising=False)
    return work


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs(name: str, sandbox: Path) -> None:
    path = sandbox / f"{name}.ipynb"
    book = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        book,
        kernel_name=KERNEL,
        timeout=CELL_TIMEOUT_S,
        startup_timeout=120,
        resources={"metadata": {"path": str(sandbox)}},
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as e:
        pytest.fail(f"{name}.ipynb: a cell raised\n{e}", pytrace=False)
    outputs = [o for c in book.cells if c.cell_type == "code" for o in c.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors
    shown = "".join(
        str(o.get("data", {}).get(kind, ""))
        for o in outputs
        for kind in ("text/plain", "text/html")
    ) + "".join(str(o.get("text", "")) for o in outputs)
    assert "SYNTHETIC" in shown, "demo data must be labelled synthetic where it is shown"
    if name == "01_quickstart":
        report = sandbox / "reports" / "quickstart_sma.html"
        assert report.is_file() and "SYNTHETIC" in report.read_text()
    assert (sandbox.parent / "data" / "bars").is_dir(), "the bars were cached outside the sandbox"
