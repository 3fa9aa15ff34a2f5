"""Run profile, seeding, device choice and project paths.

Everything here reads the environment when called (not at import time), so tests and
notebooks can change ``DL_PROFILE`` or ``DL_DATA_DIR`` without re-importing the package.
Nothing here imports PyTorch or TensorFlow unless the notebook already did.
"""

from __future__ import annotations

import os
import platform
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

PROFILES = ("smoke", "full")
REPO_ROOT = Path(__file__).resolve().parent.parent


class ProfileError(ValueError):
    """``DL_PROFILE`` holds something other than ``smoke`` or ``full``."""


def get_profile(value: str | None = None) -> str:
    """Resolve the run profile: ``value`` if given (the notebook's ``PROFILE`` parameter), else
    ``DL_PROFILE``, else ``full``. Raises :class:`ProfileError` for anything but smoke/full."""
    if value is None:
        value = os.environ.get("DL_PROFILE", "full")
    value = str(value).strip().lower() or "full"
    if value not in PROFILES:
        raise ProfileError(
            f"profile {value!r} is not a known profile; use one of {', '.join(PROFILES)} "
            "(smoke: quick CI run on a small real subset; full: the run behind the README numbers)."
        )
    return value


def knob(value: Any, profile: str, *, smoke: Any, full: Any) -> Any:
    """A parameter that depends on the profile: ``value`` when the reader (or papermill) set it,
    else the profile's default. Use it in the cell *after* the literal-only ``parameters`` cell::

        EPOCHS = config.knob(EPOCHS, PROFILE, smoke=3, full=20)

    ``None`` always means "the profile's default", so a default may itself be ``None``
    (e.g. ``TRAIN_SUBSET``: ``full=None`` for the whole training set).
    """
    if profile not in PROFILES:
        raise ProfileError(f"profile {profile!r} is not one of {PROFILES}; resolve it with get_profile first")
    if value is not None:
        return value
    return smoke if profile == "smoke" else full


def data_dir() -> Path:
    """The local dataset cache: ``DL_DATA_DIR`` or ``data/`` in the repository."""
    return Path(os.environ.get("DL_DATA_DIR") or REPO_ROOT / "data").expanduser().resolve()


def results_dir() -> Path:
    """Where ``results.record`` writes: ``DL_RESULTS_DIR`` or ``results/`` in the repository."""
    return Path(os.environ.get("DL_RESULTS_DIR") or REPO_ROOT / "results").expanduser().resolve()


def shown_path(path: str | Path, *env_roots: tuple[Path, str]) -> str:
    """A path for printing that does not reveal the machine's directories: relative to the repository,
    else to one of ``env_roots`` (``(folder, "$ENV_VAR")``, shown as ``$ENV_VAR/…``), else the bare name."""
    path = Path(path).resolve()
    for root, label in ((REPO_ROOT, None), *env_roots):
        try:
            rel = path.relative_to(Path(root).resolve())
        except ValueError:
            continue
        return str(rel) if label is None else str(Path(label) / rel)
    return path.name


def seed_everything(seed: int = 42) -> int:
    """Seed Python, NumPy and every deep-learning framework the notebook has imported.

    Import torch / keras / tensorflow *before* calling this, so that they are seeded too;
    frameworks that are not imported are left alone (importing TensorFlow costs seconds).
    """
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)  # also seeds every CUDA device
    if "keras" in sys.modules:
        import keras

        from .notebook import quiet_stderr

        # Under KERAS_BACKEND=torch this may import TensorFlow for the first time: keep its log lines out.
        with quiet_stderr():
            keras.utils.set_random_seed(seed)
    elif "tensorflow" in sys.modules:
        import tensorflow as tf

        tf.random.set_seed(seed)
    return seed


def get_device(verbose: bool = True):  # -> torch.device (torch is imported lazily)
    """Pick the best PyTorch device (cuda → mps → cpu) and say in one line what was found."""
    import torch

    if torch.cuda.is_available():
        device = torch.device("cuda")
        found = f"cuda ({torch.cuda.get_device_name(0)})"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = torch.device("mps")
        found = "mps (Apple GPU)"
    else:
        device = torch.device("cpu")
        found = f"cpu ({os.cpu_count()} cores; no CUDA or MPS device found)"
    if verbose:
        print(f"Using device: {found}")
    return device


def describe_device() -> str:
    """A short description of the hardware this run used, for results files."""
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            return f"cuda: {torch.cuda.get_device_name(0)}"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return f"tensorflow gpu: {gpus[0].name}"
    cpu = platform.processor() or platform.machine()
    return f"cpu: {os.cpu_count()} cores ({cpu})"
