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


def test_profile_parameter_wins_over_environment(monkeypatch):
    monkeypatch.setenv("DL_PROFILE", "full")
    assert config.get_profile("smoke") == "smoke"
    assert config.get_profile(None) == "full"
    with pytest.raises(config.ProfileError):
        config.get_profile("fast")


def test_knob_uses_the_set_value_else_the_profile_default():
    assert config.knob(None, "smoke", smoke=3, full=20) == 3
    assert config.knob(None, "full", smoke=3, full=20) == 20
    assert config.knob(7, "smoke", smoke=3, full=20) == 7
    assert config.knob(0, "full", smoke=3, full=20) == 0  # a falsy value set by the reader still wins
    assert config.knob(None, "full", smoke=600, full=None) is None
    with pytest.raises(config.ProfileError, match="get_profile"):
        config.knob(None, None, smoke=1, full=2)


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    """An isolated results folder, written as the documented runs (make execute) write it."""
    monkeypatch.setenv("DL_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("DL_RESULTS_OFFICIAL", "1")
    monkeypatch.setenv("DL_STRICT_BARS", "1")
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
    assert (results_dir / "local" / "99_test.smoke.json").exists()
    assert not (results_dir / "99_test.json").exists()


def test_interactive_runs_never_write_the_committed_results(results_dir, monkeypatch, capsys):
    """Run All in JupyterLab or papermill to another file: results/local/, a statement, no crash."""
    monkeypatch.delenv("DL_RESULTS_OFFICIAL")
    monkeypatch.delenv("DL_STRICT_BARS")
    out = results.record("99_test", {"acc": 0.8, "rmse": 0.5}, BARS, profile="full", params={"EPOCHS": 3})
    assert not (results_dir / "99_test.json").exists()
    saved = json.loads((results_dir / "local" / "99_test.full.json").read_text())
    assert saved == out and saved["passed"] is False and saved["params"] == {"EPOCHS": 3}
    printed = capsys.readouterr().out
    assert "results written to $DL_RESULTS_DIR/local/99_test.full.json" in printed
    assert "only `make execute` writes the committed results/" in printed
    assert "This run missed its full bar: acc = 0.8, bar >= 0.9" in printed
    assert str(results_dir) not in printed, "no machine paths in notebook output"


def test_profile_argument_decides_the_bar_and_the_file(results_dir, monkeypatch):
    monkeypatch.setenv("DL_PROFILE", "full")
    saved = results.record("99_test", {"acc": 0.6, "rmse": 1.5}, BARS, profile="smoke")
    assert saved["profile"] == "smoke" and saved["passed"]
    assert (results_dir / "local" / "99_test.smoke.json").exists()


@pytest.mark.parametrize(("metrics", "passed"), [
    ({"acc": 0.9, "rmse": 1.0}, True),            # exactly on both bars: met
    ({"acc": 0.9 - 1e-12, "rmse": 1.0}, False),
    ({"acc": 0.9, "rmse": 1.0 + 1e-12}, False),
])
def test_a_metric_exactly_on_its_bar_meets_it(metrics, passed):
    assert (not results.check_bars(metrics, BARS["full"])) is passed


def test_strict_comparisons_exclude_the_boundary():
    assert results.check_bars({"x": 1.0}, {"x": (">", 1.0)})
    assert results.check_bars({"x": 1.0}, {"x": ("<", 1.0)})
    assert not results.check_bars({"x": 1.0}, {"x": (">=", 1.0)})


def test_record_names_the_source_state(results_dir, monkeypatch):
    monkeypatch.setenv("DL_PROFILE", "full")
    monkeypatch.setenv("DL_SOURCE_COMMIT", "abc1234")
    monkeypatch.setenv("DL_SOURCE_CLEAN", "0")
    saved = results.record("99_test", {"acc": 0.95, "rmse": 0.5}, BARS)
    assert saved["git_commit"] == "abc1234" and saved["source_clean"] is False
    monkeypatch.setenv("DL_SOURCE_CLEAN", "1")
    assert results.record("99_test", {"acc": 0.95, "rmse": 0.5}, BARS)["source_clean"] is True


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


def test_table_names_a_non_canonical_data_variant(results_dir, monkeypatch):
    monkeypatch.setenv("DL_PROFILE", "full")
    results.record("98_standin", {"acc": 0.9}, BARS | {"full": {"acc": 0.5}}, headline="acc",
                   data="CIFAR-10 JPEG stand-in", seconds=60)
    row = next(line for line in results.table().splitlines() if "98_standin" in line)
    assert "acc = 0.9000; data: CIFAR-10 JPEG stand-in |" in row


def test_readme_table_matches_committed_results(monkeypatch):
    """The README's numbers are generated from results/*.json; this fails when they drift apart."""
    monkeypatch.delenv("DL_RESULTS_DIR", raising=False)
    readme = config.REPO_ROOT / "README.md"
    assert results.readme_block(readme) == results.table(), "run `make results` to regenerate the README table"


def test_an_official_run_states_a_miss_and_the_cli_fails_on_it(results_dir, monkeypatch, capsys):
    """make execute: the notebook states the miss (no traceback), then `results passed` fails the command."""
    monkeypatch.setenv("DL_STRICT_BARS", "0")
    saved = results.record("99_test", {"acc": 0.8, "rmse": 0.5}, BARS, profile="full")
    assert saved["passed"] is False and (results_dir / "99_test.json").exists()
    assert "MISSED: this full run did not reach its bar, fixed before the run: acc = 0.8, bar >= 0.9" in capsys.readouterr().out
    assert results.main(["passed", "99_test"]) == 1
    assert "99_test missed its full bar: acc = 0.8, bar >= 0.9" in capsys.readouterr().err
    results.record("99_test", {"acc": 0.95, "rmse": 0.5}, BARS, profile="full")
    assert results.main(["passed", "99_test"]) == 0
    assert results.main(["passed", "98_never_run"]) == 1


def test_table_shows_tiny_headlines_in_scientific_notation(results_dir, monkeypatch):
    monkeypatch.setenv("DL_PROFILE", "full")
    bars = {"smoke": {"diff": ("<=", 1e-5)}, "full": {"diff": ("<=", 1e-5)}}
    results.record("97_tiny", {"diff": 1.192e-07}, bars, headline="diff", seconds=1)
    row = next(line for line in results.table().splitlines() if "97_tiny" in line)
    assert "| diff = 1.2e-07 |" in row


def test_shown_path_hides_machine_directories(tmp_path):
    assert config.shown_path(config.REPO_ROOT / "results" / "x.json") == "results/x.json"
    assert config.shown_path(tmp_path / "a" / "b.json", (tmp_path, "$DL_RESULTS_DIR")) == "$DL_RESULTS_DIR/a/b.json"
    assert config.shown_path(tmp_path / "c.json") == "c.json"      # outside every known root: the name only
