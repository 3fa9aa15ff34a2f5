"""Static checks of every notebook's conventions (DESIGN.md §3, §6, §9), without executing anything."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import pytest

from dl_utils import config

NOTEBOOKS = sorted((config.REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
KERNEL = re.search(r"^KERNEL := (\S+)", (config.REPO_ROOT / "Makefile").read_text(), re.M).group(1)

# What a learner must not find in committed outputs (DESIGN.md §9).
LOG_SPAM = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl::InitializeLog|oneDNN custom operations|cuInit|"
                      r"cuda_(platform|drivers)|TqdmWarning|IProgress not found|Could not find cuda", re.M)
MACHINE_PATHS = re.compile(r"(/work/|/home/|/root/|/tmp/|/usr/(lib|local)|site-packages|\.venv/)")
OBJECT_REPR = re.compile(r"<[\w.]+ (object )?at 0x[0-9a-f]+>")
# The project's process stays out of the learner's text.
PROCESS_WORDS = re.compile(r"\bthe issue\b|\bissue \d|issue's|first full run|trial run|checked on this machine|"
                           r"closing note|\bthe bar we chased|\bpilot run", re.I)


def _code(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def _outputs(nb) -> list:
    return [o for c in _code(nb) for o in c.get("outputs", [])]


def _texts(output) -> list[str]:
    if output.get("output_type") == "stream":
        return [output.get("text", "")]
    data = output.get("data", {})
    return [v if isinstance(v, str) else "".join(v) for k, v in data.items() if k.startswith("text/")]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found under notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(path: Path):
    nb = nbformat.read(path, as_version=4)
    cells, code = nb.cells, _code(nb)
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith(f"# {path.stem[:2]} "), \
        "first cell must be the title: '# NN · …'"
    assert "colab.research.google.com" in cells[0].source, "title cell needs the Colab badge"
    assert "google.colab" in code[0].source and "notebook.setup(" in code[0].source, \
        "the first code cell is the Colab-aware setup calling dl_utils.notebook.setup"
    assert "sys.path" not in "".join(c.source for c in code), "no sys.path hacks"
    assert "results.record(" in code[-1].source, "the last code cell must call results.record(...)"
    assert "profile=PROFILE" in code[-1].source, "results.record must be told the notebook's PROFILE"
    assert not any(o.get("output_type") == "execute_result" for o in code[-1].get("outputs", [])), \
        "the results cell must not echo the whole record (assign it: `_ = results.record(...)`)"
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL and \
        nb.metadata["kernelspec"].get("display_name") == f"Python 3 ({KERNEL})", \
        "the stored kernelspec must be the kernel `make setup` registers"
    assert path.stat().st_size < 2_000_000, f"{path.name} is {path.stat().st_size / 1e6:.1f} MB (keep under 2 MB)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_is_literal_only(path: Path):
    """papermill injects its overrides *after* this cell, so nothing in it may be computed."""
    nb = nbformat.read(path, as_version=4)
    code = _code(nb)
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one code cell tagged `parameters`"
    i = tagged[0]
    for stmt in ast.parse(code[i].source).body:
        assert isinstance(stmt, ast.Assign), f"only assignments in the parameters cell: {ast.unparse(stmt)}"
        try:
            ast.literal_eval(stmt.value)
        except ValueError:
            pytest.fail(f"parameter is not a plain literal: {ast.unparse(stmt)}")
    assert re.search(r"^PROFILE = None\b", code[i].source, re.M), "PROFILE = None (read DL_PROFILE) is a parameter"
    assert "config.get_profile(PROFILE)" in code[i + 1].source, \
        "the cell after the parameters resolves them: PROFILE = config.get_profile(PROFILE), then config.knob(...)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_are_clean(path: Path):
    nb = nbformat.read(path, as_version=4)
    outputs = _outputs(nb)
    assert outputs, "committed notebooks carry the outputs of a real run"
    assert not [o for o in outputs if o.get("output_type") == "error"], "committed outputs contain an error"
    for o in outputs:
        for text in _texts(o):
            assert not LOG_SPAM.search(text), f"framework log line or warning in an output: {LOG_SPAM.search(text)[0]!r}"
            assert not MACHINE_PATHS.search(text), f"machine path in an output: {text[:200]!r}"
            assert not OBJECT_REPR.search(text), f"object repr in an output: {OBJECT_REPR.search(text)[0]!r}"
            assert "sk-estimator" not in text and "sk-container" not in text, "sklearn HTML repr in an output"
            if o.get("output_type") == "stream":
                assert text.count("\r") <= 5, "progress-bar fragments in a text output: use tqdm.auto (one widget)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_learner_text_has_no_process_words(path: Path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        found = PROCESS_WORDS.search(cell.source)
        assert not found, f"process word {found[0]!r} in a {cell.cell_type} cell: speak about the subject"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_ends_with_exercises(path: Path):
    nb = nbformat.read(path, as_version=4)
    exercises = [c for c in nb.cells if c.cell_type == "markdown" and re.search(r"^#+ .*Exercises", c.source, re.M)]
    assert len(exercises) == 1, "one markdown cell with an '## Exercises' heading"
    items = re.findall(r"^\s*(\d+\.|[-*]) ", exercises[0].source, re.M)
    assert 3 <= len(items) <= 5, f"3-5 exercises, found {len(items)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_full_results_are_committed_from_a_committed_state(path: Path):
    result = config.REPO_ROOT / "results" / f"{path.stem}.json"
    assert result.exists(), f"run `make execute NB={path.stem[:2]}` to write {result.name}"
    saved = json.loads(result.read_text())
    assert saved["profile"] == "full" and saved["notebook"] == path.stem
    assert saved.get("git_commit") and saved.get("source_clean") is True, \
        "re-run with `make execute` from a committed state (the record says the notebook or dl_utils differed)"
    assert "params" in saved, "the record names the parameters it ran with"
