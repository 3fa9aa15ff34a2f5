"""One ``load_*`` per dataset: fetch (verified), parse, and optionally take a stratified subset."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .archives import extract_once
from .errors import MalformedDataError
from .parsers import XY, read_airline_csv, read_cifar10_bin, read_idx, read_pima_csv, read_sms_spam, read_telco_csv
from .registry import get_dataset
from .sources import fetch, fetch_file

# --------------------------------------------------------------------------- subsets


def stratified_head(y: Sequence | np.ndarray, n: int | None) -> np.ndarray:
    """Indices of a deterministic, class-balanced subset: the first ``n // k`` of each class.

    The smoke profile uses this so that a small run still sees every class, and the same
    examples every time. ``n=None`` returns every index.
    """
    y = np.asarray(y)
    if n is None or n >= len(y):
        return np.arange(len(y))
    if n <= 0:
        raise ValueError(f"subset size must be positive, got {n}")
    classes = np.unique(y)
    per = max(1, n // len(classes))
    idx = np.concatenate([np.flatnonzero(y == c)[:per] for c in classes])
    return np.sort(idx)


# --------------------------------------------------------------------------- loaders


def _idx_pair(root: Path, prefix: str, gz: bool) -> XY:
    suffix = ".gz" if gz else ""
    x = read_idx(root / f"{prefix}-images-idx3-ubyte{suffix}")
    y = read_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}")
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise MalformedDataError(f"{root}: {prefix} images {x.shape} and labels {y.shape} do not match.")
    return x, y


def _subset(xy: XY, n: int | None) -> XY:
    idx = stratified_head(xy[1], n)
    return xy[0][idx], xy[1][idx]


def load_mnist(subset: int | None = None, test_subset: int | None = None) -> tuple[XY, XY]:
    """MNIST as ``(x_train, y_train), (x_test, y_test)``.

    Images are uint8 ``(N, 28, 28)`` in 0..255, labels uint8 ``(N,)``: 60,000 and 10,000
    examples. ``subset``/``test_subset`` keep the first ``n // 10`` of each digit.
    """
    root = fetch("mnist")
    return _subset(_idx_pair(root, "train", True), subset), _subset(_idx_pair(root, "t10k", True), test_subset)


FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def load_fashion_mnist(subset: int | None = None, test_subset: int | None = None) -> tuple[XY, XY]:
    """Fashion-MNIST, same shapes as :func:`load_mnist`; names in ``FASHION_MNIST_CLASSES``."""
    root = fetch("fashion-mnist")
    return _subset(_idx_pair(root, "train", False), subset), _subset(_idx_pair(root, "t10k", False), test_subset)


def load_telco_churn(subset: int | None = None) -> pd.DataFrame:
    """Telco churn as a DataFrame of 7,043 rows × 21 columns (``TotalCharges`` float, 11 NaN)."""
    df = read_telco_csv(fetch_file("telco-churn", "WA_Fn-UseC_-Telco-Customer-Churn.csv"))
    return df.iloc[stratified_head(df["Churn"], subset)].reset_index(drop=True)


def load_sms_spam(subset: int | None = None) -> pd.DataFrame:
    """SMS spam as a DataFrame with ``label`` ('ham'/'spam') and ``text``: 5,574 rows."""
    df = read_sms_spam(fetch_file("sms-spam", "SMSSpamCollection"))
    return df.iloc[stratified_head(df["label"], subset)].reset_index(drop=True)


def load_pima_diabetes(subset: int | None = None) -> pd.DataFrame:
    """Pima diabetes as a DataFrame of 768 rows: 8 numeric features + ``Outcome`` (0/1).

    Zeros in Glucose, BloodPressure, SkinThickness, Insulin and BMI stand for missing values;
    they are left as they are, so each notebook decides (and shows) how to treat them.
    """
    df = read_pima_csv(fetch_file("pima-diabetes", "pima-indians-diabetes.csv"))
    return df.iloc[stratified_head(df["Outcome"], subset)].reset_index(drop=True)


def load_airline_passengers() -> pd.Series:
    """Monthly airline passengers (thousands), 1949-01..1960-12, as a float Series of 144 values."""
    return read_airline_csv(fetch_file("airline-passengers", "airline-passengers.csv"))


def load_tiny_shakespeare(subset: int | None = None) -> str:
    """Tiny Shakespeare as one string of 1,115,394 characters (the first ``subset`` if given)."""
    text = fetch_file("tiny-shakespeare", "input.txt").read_text(encoding="utf-8")
    return text if subset is None else text[:subset]


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]


def load_cifar10(subset: int | None = None, test_subset: int | None = None) -> tuple[XY, XY]:
    """CIFAR-10 as ``(x_train, y_train), (x_test, y_test)`` from the binary archive.

    Images uint8 ``(N, 32, 32, 3)`` (HWC, RGB), labels uint8 ``(N,)``; names in
    ``CIFAR10_CLASSES``. Reads the binary version, never the pickled one.
    """
    root = fetch("cifar-10")
    folder = extract_once(root, root / "cifar-10-binary.tar.gz", "cifar-10-batches-bin")
    parts = [read_cifar10_bin(folder / f"data_batch_{i}.bin") for i in range(1, 6)]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    test = read_cifar10_bin(folder / "test_batch.bin")
    return _subset(train, subset), _subset(test, test_subset)


def load_hymenoptera() -> pd.DataFrame:
    """Ants vs bees image list: a DataFrame with ``path``, ``split`` (train/val) and ``label``.

    Only JPEGs are listed (the archive's stray ``imageNotFound.gif`` is skipped), sorted by
    split, label and file name; open them with PIL or torchvision.
    """
    root = fetch("hymenoptera")
    rows = []
    for spec in get_dataset("hymenoptera").files:
        parts = Path(spec.name).parts  # hymenoptera_data/<split>/<label>/<file>
        if len(parts) == 4 and parts[-1].lower().endswith((".jpg", ".jpeg")):
            rows.append((str(root / spec.name), parts[1], parts[2]))
    return pd.DataFrame(sorted(rows, key=lambda r: (r[1], r[2], r[0])), columns=["path", "split", "label"])
