"""The parameters contract, end to end: papermill's injected values take effect, and a run
outside `make execute` leaves the committed results/ alone (DESIGN.md §3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dl_utils import config

NOTEBOOK = config.REPO_ROOT / "notebooks" / "01_linear_regression_from_scratch.ipynb"
COMMITTED = config.REPO_ROOT / "results" / "01_linear_regression_from_scratch.json"


def _papermill(out, *params: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in {"DL_PROFILE", "DL_RESULTS_OFFICIAL", "DL_STRICT_BARS", "DL_RESULTS_DIR"}}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "papermill", str(NOTEBOOK), str(out), "-k", "python3", "--cwd",
         str(NOTEBOOK.parent), "--log-level", "WARNING", *params],
        env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.skipif(not NOTEBOOK.exists(), reason="notebook 01 is missing")
def test_injected_parameters_take_effect_and_land_outside_results(tmp_path):
    results_dir = tmp_path / "results"
    proc = _papermill(tmp_path / "out.ipynb", "-p", "PROFILE", "smoke", "-p", "EPOCHS", "37", "-p", "SEED", "7",
                      env_extra={"DL_RESULTS_DIR": str(results_dir)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = json.loads((results_dir / "local" / "01_linear_regression_from_scratch.smoke.json").read_text())
    assert saved["profile"] == "smoke"
    assert saved["params"]["EPOCHS"] == 37 and saved["params"]["SEED"] == 7
    assert not (results_dir / "01_linear_regression_from_scratch.json").exists()


@pytest.mark.skipif(not NOTEBOOK.exists(), reason="notebook 01 is missing")
def test_a_run_all_style_run_leaves_committed_results_untouched(tmp_path):
    """No DL_RESULTS_DIR, no make: exactly what Run All in JupyterLab does to the repository."""
    before = COMMITTED.read_bytes() if COMMITTED.exists() else None
    local = config.REPO_ROOT / "results" / "local" / "01_linear_regression_from_scratch.full.json"
    local.unlink(missing_ok=True)
    # A missed bar (2 epochs cannot fit the line) must not crash an interactive run.
    proc = _papermill(tmp_path / "out.ipynb", "-p", "EPOCHS", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (COMMITTED.read_bytes() if COMMITTED.exists() else None) == before
    saved = json.loads(local.read_text())
    assert saved["profile"] == "full" and saved["params"]["EPOCHS"] == 2 and saved["passed"] is False
    out = json.loads((tmp_path / "out.ipynb").read_text())
    text = "".join("".join(o.get("text", "")) for c in out["cells"] for o in c.get("outputs", []))
    assert "This run missed its full bar" in text
