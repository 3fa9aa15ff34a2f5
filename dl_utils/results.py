"""Record what a notebook measured, check its quality bar, and render the README table.

A notebook's last cell calls::

    _ = results.record("02_softmax_regression_mnist_numpy",
                       {"test_accuracy": acc, "train_accuracy": train_acc},
                       bars={"smoke": {"test_accuracy": 0.6}, "full": {"test_accuracy": 0.922}},
                       profile=PROFILE, params={"EPOCHS": EPOCHS, "SEED": SEED},
                       headline="test_accuracy", summary="softmax regression, NumPy, 20 epochs")

A bar ``{"metric": x}`` means *metric ≥ x*; write ``{"metric": ("<=", x)}`` for metrics where
lower is better (RMSE, loss). Both profiles' bars are fixed in the notebook before the run and
stored; the current profile's is checked.

Where the record goes, and what a missed bar does, depends on who runs the notebook:

* ``make execute`` / ``make execute-all`` set ``DL_RESULTS_OFFICIAL=1``: a full-profile run writes
  the committed ``results/<notebook>.json`` (the README numbers come from there). A missed bar is
  stated in the notebook, recorded as ``passed: false``, and the command then fails on it
  (``python -m dl_utils.results passed NOTEBOOK``).
* ``make test`` (nbval) and CI set ``DL_STRICT_BARS=1``: a missed bar raises
  :class:`BarNotMetError` in the notebook, so the cell fails.
* Anything else (Run All in JupyterLab, papermill to another file, Colab) writes to the
  git-ignored ``results/local/<notebook>.<profile>.json``, says so, and reports a missed bar as a
  plain statement, so a learner who changes a knob never clobbers the committed numbers and
  never sees a crash for it.

Each record names the git commit it ran from and whether the notebook or ``dl_utils`` differed
from that commit (``source_clean``). ``python -m dl_utils.results table`` prints the README
table; ``… update-readme`` rewrites it between the ``<!-- results:start -->`` and
``<!-- results:end -->`` markers; ``… passed NOTEBOOK`` exits 1 when that record missed its bar.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import operator
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from . import config

_START = time.time()
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_LIBRARIES = ("numpy", "pandas", "scikit-learn", "torch", "torchvision", "tensorflow", "keras",
              "statsmodels")
START_MARK, END_MARK = "<!-- results:start -->", "<!-- results:end -->"


class BarNotMetError(AssertionError):
    """A metric missed the quality bar of the current profile."""


def _bar(spec: Any) -> tuple[str, float]:
    if isinstance(spec, (int, float)):
        return ">=", float(spec)
    op, value = spec
    if op not in _OPS:
        raise ValueError(f"unknown comparison {op!r}; use one of {list(_OPS)}")
    return op, float(value)


def check_bars(metrics: dict[str, float], bars: dict[str, Any]) -> list[str]:
    """Return a line for each bar the metrics miss (empty list: all met)."""
    failures = []
    for name, spec in bars.items():
        op, value = _bar(spec)
        if name not in metrics:
            failures.append(f"{name}: no such metric was recorded (have {sorted(metrics)})")
            continue
        got = float(metrics[name])
        if math.isnan(got) or not _OPS[op](got, value):
            failures.append(f"{name} = {got:.4g}, bar {op} {value:g}")
    return failures


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in _LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    return out


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=config.REPO_ROOT, capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def source_state(notebook: str) -> tuple[str | None, bool | None]:
    """The commit a run starts from and whether the notebook and ``dl_utils`` match it.

    ``make execute`` measures this *before* papermill rewrites the notebook in place and hands
    it over in ``DL_SOURCE_COMMIT`` / ``DL_SOURCE_CLEAN``; otherwise it is measured now.
    """
    commit = os.environ.get("DL_SOURCE_COMMIT")
    clean = os.environ.get("DL_SOURCE_CLEAN")
    if commit:
        return commit, (clean == "1") if clean in ("0", "1") else None
    commit = _git("rev-parse", "--short", "HEAD")
    if commit is None:
        return None, None
    changed = _git("status", "--porcelain", "--untracked-files=no", "--",
                   f"notebooks/{notebook}.ipynb", "dl_utils")
    return commit, None if changed is None else not changed


def output_path(notebook: str, profile: str) -> Path:
    """Where this run's record goes: the committed ``results/`` only for official full runs."""
    if os.environ.get("DL_RESULTS_OFFICIAL") == "1" and profile == "full":
        return config.results_dir() / f"{notebook}.json"
    return config.results_dir() / "local" / f"{notebook}.{profile}.json"


def _shown(path: Path) -> str:
    """A path for printing that does not reveal the machine's directories (``$DL_RESULTS_DIR/…`` outside the repository)."""
    return config.shown_path(path, (config.results_dir(), "$DL_RESULTS_DIR"))


def record(notebook: str, metrics: dict[str, float], bars: dict[str, dict[str, Any]], *,
           profile: str | None = None, params: dict[str, Any] | None = None,
           headline: str | None = None, summary: str = "", seconds: float | None = None,
           data: str | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write this run's results file, then check the bar of the run's profile.

    ``bars`` maps each profile (``smoke``, ``full``) to ``{metric: bar}``. ``profile`` is the
    notebook's resolved ``PROFILE`` (``None``: ``DL_PROFILE``); ``params`` the resolved
    parameter values, stored so that a record shows what produced it. ``data`` names the data
    variant when it is not the canonical dataset (e.g. a stand-in). ``seconds`` defaults to the
    time since ``dl_utils.results`` was first imported (the notebook's setup cell).
    The file is written even when a bar is missed (``passed: false``). A missed bar then raises
    :class:`BarNotMetError` if ``DL_STRICT_BARS=1`` (make, CI) and is printed as a statement
    otherwise.
    """
    profile = config.get_profile(profile)
    missing_profiles = [p for p in config.PROFILES if p not in bars]
    if missing_profiles:
        raise ValueError(f"bars must give a bar for every profile; missing {missing_profiles}")
    clean = {k: float(v) for k, v in metrics.items()}
    if headline is not None and headline not in clean:
        raise ValueError(f"headline {headline!r} is not among the metrics {sorted(clean)}")
    failures = check_bars(clean, bars[profile])
    commit, source_clean = source_state(notebook)
    result = {
        "notebook": notebook,
        "profile": profile,
        "summary": summary,
        "headline": headline or (next(iter(clean)) if clean else None),
        "metrics": clean,
        "bars": {p: {k: list(_bar(v)) for k, v in b.items()} for p, b in bars.items()},
        "passed": not failures,
        "failures": failures,
        "params": {k: _jsonable(v) for k, v in (params or {}).items()},
        **({"data": data} if data else {}),
        "device": config.describe_device(),
        "seconds": round(seconds if seconds is not None else time.time() - _START, 1),
        "versions": _versions(),
        "git_commit": commit,
        "source_clean": source_clean,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **({"extra": extra} if extra else {}),
    }
    path = output_path(notebook, profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    print(f"[{profile}] {notebook}: " + ", ".join(f"{k}={v:.4g}" for k, v in clean.items()))
    where = "" if path.parent == config.results_dir() else " (only `make execute` writes the committed results/)"
    print(f"results written to {_shown(path)}{where}")
    if failures:
        message = f"{notebook} missed its {profile} bar: " + "; ".join(failures)
        if os.environ.get("DL_STRICT_BARS") == "1":
            raise BarNotMetError(message)
        if path.parent == config.results_dir():
            print(f"MISSED: this {profile} run did not reach its bar, fixed before the run: " + "; ".join(failures)
                  + ". The record says passed: false, and the README reports the miss.")
        else:
            print(f"This run missed its {profile} bar: " + "; ".join(failures) + ". If you changed a "
                  "parameter, that is what this run measured; the bar belongs to the notebook's defaults.")
        return result
    print(f"all {profile} bars met: " + ", ".join(f"{k} {_bar(v)[0]} {_bar(v)[1]:g}"
                                                   for k, v in bars[profile].items()))
    return result


def _jsonable(value: Any) -> Any:
    """Parameter values as JSON: numbers, strings, lists and dicts pass; anything else as text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


# --------------------------------------------------------------------------- README table


def load_all(results_dir: Path | None = None) -> list[dict[str, Any]]:
    """Every full-profile results file, sorted by notebook name."""
    folder = results_dir or config.results_dir()
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]


def _fmt(v: float) -> str:
    if 0 < abs(v) < 1e-3:   # e.g. a largest prediction difference of 1.2e-07: four decimals would show 0.0000
        return f"{v:.2g}"
    return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"


def table(results_dir: Path | None = None) -> str:
    """The README results table (Markdown), generated from ``results/*.json``."""
    lines = ["| notebook | result | bar (full) | met | device | time |",
             "|---|---|---|---|---|---|"]
    for r in load_all(results_dir):
        h = r["headline"]
        bar = "; ".join(f"{k} {op} {value:g}" for k, (op, value) in r["bars"].get("full", {}).items()) or "—"
        result = f"{h} = {_fmt(r['metrics'][h])}" + (f" ({r['summary']})" if r.get("summary") else "")
        if r.get("data"):   # a stand-in or other non-canonical variant: the reader must see it beside the number
            result += f"; data: {r['data']}"
        lines.append(
            f"| `{r['notebook']}` | {result} | {bar} | {'yes' if r['passed'] else '**no**'} | "
            f"{r['device']} | {r['seconds'] / 60:.1f} min |"
        )
    return "\n".join(lines)


def readme_block(readme: Path) -> str:
    """The text between the results markers of a README."""
    text = readme.read_text()
    try:
        start = text.index(START_MARK) + len(START_MARK)
        end = text.index(END_MARK)
    except ValueError:
        raise ValueError(f"{readme} has no {START_MARK} … {END_MARK} block") from None
    return text[start:end].strip()


def update_readme(readme: Path, results_dir: Path | None = None) -> bool:
    """Rewrite the README's results block from ``results/``; return True if it changed."""
    text = readme.read_text()
    old = readme_block(readme)
    new = table(results_dir)
    if old == new:
        return False
    start = text.index(START_MARK) + len(START_MARK)
    end = text.index(END_MARK)
    readme.write_text(text[:start] + "\n" + new + "\n" + text[end:])
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m dl_utils.results table | update-readme | check``."""
    parser = argparse.ArgumentParser(prog="python -m dl_utils.results")
    parser.add_argument("cmd", choices=["table", "update-readme", "check", "passed"])
    parser.add_argument("notebook", nargs="?", help="with `passed`: the notebook whose committed record to check")
    parser.add_argument("--readme", type=Path, default=config.REPO_ROOT / "README.md")
    args = parser.parse_args(argv)
    if args.cmd == "table":
        print(table())
    elif args.cmd == "update-readme":
        print("README updated" if update_readme(args.readme) else "README already up to date")
    elif args.cmd == "passed":
        if not args.notebook:
            parser.error("`passed` needs a notebook name, e.g. 02_softmax_regression_mnist_numpy")
        path = config.results_dir() / f"{args.notebook}.json"
        if not path.exists():
            print(f"{_shown(path)} was not written: the run did not reach results.record", file=sys.stderr)
            return 1
        saved = json.loads(path.read_text())
        if not saved["passed"]:
            print(f"{args.notebook} missed its {saved['profile']} bar: " + "; ".join(saved["failures"]), file=sys.stderr)
            return 1
        print(f"{args.notebook}: all {saved['profile']} bars met")
    else:
        if readme_block(args.readme) != table():
            print("README results table differs from results/: run `make results`", file=sys.stderr)
            return 1
        print("README results table matches results/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
