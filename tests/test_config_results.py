"""Profiles, seeding, devices, and the results files behind the README table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dl_utils import config, results


def test_profile_default_and_values(monkeypatch):
    monkeypatch.delenv("DL_PROFILE", raising=False)
    assert config.get_profile() == "full"
    monkeypatch.setenv("DL_PROFILE", "smoke")
    assert config.get_profile() == "smoke"
    monkeypatch.setenv("DL_PROFILE", "quick")
    with pytest.raises(config.ProfileError, match="smoke, full"):
        config.get_profile()


def test_seed_everything_makes_numpy_and_torch_repeat():
    import torch

    config.seed_everything(3)
    a = (np.random.rand(3), torch.rand(3))
    config.seed_everything(3)
    b = (np.random.rand(3), torch.rand(3))
    np.testing.assert_array_equal(a[0], b[0])
    assert torch.equal(a[1], b[1])


def test_device_is_reported(capsys):
    device = config.get_device()
    assert device.type in {"cpu", "cuda", "mps"}
    assert "Using device:" in capsys.readouterr().out
    assert config.describe_device()


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DL_RESULTS_DIR", str(tmp_path / "results"))
    return tmp_path / "results"


BARS = {"smoke": {"acc": 0.5, "rmse": ("<=", 2.0)}, "full": {"acc": 0.9, "rmse": ("<=", 1.0)}}


def test_record_writes_full_results(results_dir, monkeypatch):
    monkeypatch.setenv("DL_PROFILE", "full")
    out = results.record("99_test", {"acc": 0.95, "rmse": 0.5}, BARS, headline="acc", summary="s", seconds=3)
    saved = json.loads((results_dir / "99_test.json").read_text())
    assert saved == out
    assert saved["passed"] and saved["profile"] == "full" and saved["seconds"] == 3
    assert saved["bars"]["full"]["rmse"] == ["<=", 1.0]
    assert {"numpy", "python"} <= set(saved["versions"])


def test_smoke_results_never_overwrite_full_ones(results_dir, monkeypatch):
    monkeypatch.setenv("DL_PROFILE", "smoke")
    results.record("99_test", {"acc": 0.6, "rmse": 1.5}, BARS)
    assert (results_dir / "smoke" / "99_test.json").exists()
    assert not (results_dir / "99_test.json").exists()


def test_missed_bar_is_recorded_then_raised(results_dir, monkeypatch):
    monkeypatch.setenv("DL_PROFILE", "full")
    with pytest.raises(results.BarNotMetError, match="acc = 0.8, bar >= 0.9"):
        results.record("99_test", {"acc": 0.8, "rmse": 0.5}, BARS)
    saved = json.loads((results_dir / "99_test.json").read_text())
    assert saved["passed"] is False and saved["failures"]


def test_nan_and_missing_metrics_fail_the_bar():
    assert results.check_bars({"acc": float("nan")}, {"acc": 0.1})
    assert results.check_bars({}, {"acc": 0.1})
    assert not results.check_bars({"loss": 1.2}, {"loss": ("<=", 1.5)})


def test_bars_must_cover_both_profiles(results_dir):
    with pytest.raises(ValueError, match="missing"):
        results.record("99_test", {"acc": 1.0}, {"full": {"acc": 0.5}})


def test_table_and_readme_update(results_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("DL_PROFILE", "full")
    results.record("99_test", {"acc": 0.95, "rmse": 0.5}, BARS, headline="acc", summary="demo", seconds=120)
    table = results.table()
    assert "| `99_test` | acc = 0.9500 (demo) | acc >= 0.9; rmse <= 1 | yes |" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{results.START_MARK}\nold\n{results.END_MARK}\nouter\n")
    assert results.update_readme(readme)
    assert results.readme_block(readme) == table
    assert readme.read_text().endswith("outer\n")
    assert not results.update_readme(readme)


def test_readme_table_matches_committed_results(monkeypatch):
    """The README's numbers are generated from results/*.json; this fails when they drift apart."""
    monkeypatch.delenv("DL_RESULTS_DIR", raising=False)
    readme = config.REPO_ROOT / "README.md"
    assert results.readme_block(readme) == results.table(), "run `make results` to regenerate the README table"
