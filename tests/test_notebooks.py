"""The notebooks run top to bottom (nbclient, kernel from this environment) and are stored clean."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ALL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


def _execute(name: str, env: dict[str, str] | None = None):
    """Run a notebook in a kernel of this environment (ipykernel's "python3")."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    old = dict(os.environ)
    os.environ.update(env or {})  # the kernel process inherits these
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def _outputs(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            parts.append(out.get("text", "") + data.get("text/plain", "")
                         + data.get("text/html", ""))
    return "\n".join(parts)


@pytest.mark.parametrize("name", ALL)
def test_notebook_is_stored_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_expected_notebooks_exist():
    assert ALL == ["01_quickstart.ipynb", "02_xian_15_minute_circle.ipynb",
                   "03_new_township_centres.ipynb"]


@pytest.mark.slow
def test_quickstart_runs():
    nb = _execute("01_quickstart.ipynb")
    text = _outputs(nb)
    assert "60岁及以上人口" in text  # the indicators table
    assert "srcdoc=" in text and "cdn.jsdelivr" not in text  # the offline map rendered inline
    assert "map.html" in text and "report.html" in text and "planner.xlsx" in text
    assert "report.docx" in text
    # planner.run shows each step as it ends in a notebook by default
    assert "✓ 读取图层" in text and "✓ 报告" in text
    # the print map shows itself as a picture (no %matplotlib inline), not "<Figure size ...>"
    pngs = [out for cell in nb.cells for out in cell.get("outputs", [])
            if "image/png" in out.get("data", {})]
    assert len(pngs) == 1 and "<Figure size" not in text


@pytest.mark.slow
def test_new_township_centres_runs():
    nb = _execute("03_new_township_centres.ipynb")
    text = _outputs(nb)
    assert "pop_60plus_newly_covered" in text
    assert "srcdoc=" in text


@pytest.mark.slow
@pytest.mark.xian
def test_xian_notebook_runs(xian_dir):
    nb = _execute("02_xian_15_minute_circle.ipynb", env={"PLANNER_XIAN": str(xian_dir)})
    text = _outputs(nb)
    assert "OpenStreetMap contributors (ODbL)" in text  # the credit is on the map
    assert "新城区" in text and "srcdoc=" in text
