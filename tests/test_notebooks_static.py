"""Static checks of every notebook's conventions (DESIGN.md §6), without executing anything."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from dl_utils import config

NOTEBOOKS = sorted((config.REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found under notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_conventions(path: Path):
    nb = nbformat.read(path, as_version=4)
    cells = nb.cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith(f"# {path.stem[:2]} "), \
        "first cell must be the title: '# NN · …'"
    assert "colab.research.google.com" in cells[0].source, "title cell needs the Colab badge"
    sources = [c.source for c in cells if c.cell_type == "code"]
    assert any("google.colab" in s for s in sources[:2]), "the first code cells must include the Colab-aware setup"
    params = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "config.get_profile()" in params[0].source, "one tagged parameters cell using the profile"
    assert "results.record(" in sources[-1], "the last code cell must call results.record(...)"
    assert "sys.path" not in "".join(s for s in sources if "google.colab" not in s), "no sys.path hacks"
    assert path.stat().st_size < 2_000_000, f"{path.name} is {path.stat().st_size / 1e6:.1f} MB (keep under 2 MB)"
    outputs = [o for c in cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert outputs, "committed notebooks carry the outputs of a real run"
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, "committed outputs contain an error"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_full_results_are_committed(path: Path):
    result = config.REPO_ROOT / "results" / f"{path.stem}.json"
    assert result.exists(), f"run `make execute NB={path.stem[:2]}` to write {result.name}"
    saved = json.loads(result.read_text())
    assert saved["profile"] == "full" and saved["notebook"] == path.stem
