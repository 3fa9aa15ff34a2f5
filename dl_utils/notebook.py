"""The one setup call at the top of every notebook.

    import sys
    if "google.colab" in sys.modules:
        !git clone -q --depth 1 https://github.com/dl-in-practice/deep-learning-in-practice /content/dlip
        %pip install -q /content/dlip
    from dl_utils import notebook
    notebook.setup(["numpy", "torch", "matplotlib"])

``setup`` makes a run look the same wherever it happens: on Colab it points the data cache and
the results folder into the clone; it imports Keras/TensorFlow (when listed) with their C++ start-up
log lines silenced, so they do not land in the notebook; it sets the figure size the committed
outputs use; and it prints one line of library versions for anyone comparing numbers.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import warnings
from collections.abc import Iterator, Sequence
from importlib import metadata

COLAB_CLONE = "/content/dlip"
FIGURE_DPI = 80


def in_colab() -> bool:
    """True inside a Google Colab kernel."""
    return "google.colab" in sys.modules


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the duration (C++ libraries' start-up logs).

    Jupyter kernels forward what native code writes to fd 2 into the notebook; Python-level
    errors still surface as exceptions.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def versions(libraries: Sequence[str]) -> str:
    """``python 3.11.9 | numpy 2.1.0 | …`` for the installed distributions among ``libraries``."""
    parts = [f"python {platform.python_version()}"]
    for lib in libraries:
        try:
            parts.append(f"{lib} {metadata.version(lib)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{lib} (not installed)")
    return " | ".join(parts)


def setup(libraries: Sequence[str] = ("numpy", "matplotlib"), *, dpi: int = FIGURE_DPI) -> None:
    """Prepare the kernel for a notebook of this project and print the library versions.

    Call it in the first code cell, before importing TensorFlow/Keras: listing ``keras`` or
    ``tensorflow`` in ``libraries`` imports the framework here, with its log lines silenced.
    """
    if in_colab():
        os.environ.setdefault("DL_DATA_DIR", f"{COLAB_CLONE}/data")
        os.environ.setdefault("DL_RESULTS_DIR", f"{COLAB_CLONE}/results")
    # TensorFlow's C++ logging (oneDNN notes, CUDA probing on CPU-only machines) is not for learners.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if {"keras", "tensorflow"} & set(libraries) and "keras" not in sys.modules:
        with quiet_stderr(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import keras  # noqa: F401  (imported once, quietly; later imports are free)
    try:
        import matplotlib.pyplot as plt

        plt.rcParams["figure.dpi"] = dpi
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        pass
    print(versions(libraries))
