"""One ``load_*`` per dataset: fetch (verified), parse, and optionally take a stratified subset."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from .. import config
from .archives import extract_once
from .errors import DatasetError, DatasetNotAvailableError, DownloadError, MalformedDataError
from .parsers import (
    XY,
    read_airline_csv,
    read_cifar10_bin,
    read_cifar10_jpeg_tar,
    read_cifar10_meta,
    read_idx,
    read_pima_csv,
    read_sms_spam,
    read_telco_csv,
    read_u8_labels,
)
from .registry import FileSpec, get_dataset
from .sources import fetch, fetch_file, file_hash

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
CANONICAL = "canonical"
JPEG_STANDIN = "jpeg-stand-in"
_STANDIN_LABEL = "CIFAR-10 JPEG stand-in"
_STANDIN_COST = (
    "the JPEG stand-in 'cifar-10-jpeg' (mirror only) holds all 60,000 images re-encoded as JPEG "
    "quality 75 with 4:2:0 chroma: lossy and blurrier than CIFAR-10 (per-image mean absolute error "
    "about 6 grey levels, up to 13; single pixels off by up to 141), with exact labels and order. "
    "Numbers measured on it are not CIFAR-10 numbers."
)


class StandInNotAllowedError(DatasetNotAvailableError):
    """The canonical data cannot be had and the caller did not allow the stand-in."""


class CIFAR10Data(tuple[XY, XY]):
    """``((x_train, y_train), (x_test, y_test))`` that also says which data variant it holds.

    It unpacks like the plain pair. ``variant`` is ``"canonical"`` or ``"jpeg-stand-in"``;
    ``data_label`` is what ``results.record(data=...)`` takes (``None`` for the canonical data).
    """

    variant: str

    def __new__(cls, train: XY, test: XY, variant: str) -> CIFAR10Data:
        """Pair ``train`` and ``test`` and remember ``variant``."""
        if variant not in (CANONICAL, JPEG_STANDIN):
            raise ValueError(f"unknown CIFAR-10 variant {variant!r}")
        self = super().__new__(cls, (train, test))
        self.variant = variant
        return self

    @property
    def train(self) -> XY:
        """``(x_train, y_train)``."""
        return self[0]

    @property
    def test(self) -> XY:
        """``(x_test, y_test)``."""
        return self[1]

    @property
    def is_standin(self) -> bool:
        """True for the JPEG stand-in."""
        return self.variant == JPEG_STANDIN

    @property
    def data_label(self) -> str | None:
        """``None`` for canonical CIFAR-10, else ``"CIFAR-10 JPEG stand-in"`` (for results and tables)."""
        return _STANDIN_LABEL if self.is_standin else None

    def __getnewargs__(self) -> tuple[XY, XY, str]:  # type: ignore[override]
        return self[0], self[1], self.variant

    def __repr__(self) -> str:
        return f"CIFAR10Data(variant={self.variant!r}, train={len(self[0][1])}, test={len(self[1][1])})"


class CIFAR10ExactSample(NamedTuple):
    """The first 1,017 canonical CIFAR-10 test images and, where the stand-in exists, their JPEG twins."""

    x: np.ndarray  # uint8 (1017, 32, 32, 3): exact canonical pixels
    y: np.ndarray  # uint8 (1017,): exact labels (the twins' labels too)
    x_jpeg: np.ndarray | None  # the stand-in's first 1,017 test images; None where it cannot be had


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _check_classes(path: Path) -> None:
    names = read_cifar10_meta(path)
    if names != CIFAR10_CLASSES:
        raise MalformedDataError(f"{path}: class names {names} differ from CIFAR-10's {CIFAR10_CLASSES}.")


def _check_members(root: Path, folder: Path, spec: FileSpec) -> None:
    """Compare extracted members with the sizes the registry gives; remove the folder on a mismatch."""
    for member, size in spec.members:
        path = root / member
        actual = path.stat().st_size if path.is_file() else None
        if actual != size:
            from filelock import FileLock

            with FileLock(str(root / ".lock"), timeout=1800):
                shutil.rmtree(folder, ignore_errors=True)
            found = "missing" if actual is None else f"{actual:,} bytes"
            raise MalformedDataError(
                f"{spec.name}: extracted member {member} should have {size:,} bytes but is {found}. "
                f"The extracted folder {folder} was removed. Fix: run again to re-extract; if it "
                f"fails again, delete {root / spec.name} and fetch it again."
            )


def _load_canonical() -> tuple[XY, XY]:
    """The canonical binary archive: fetched (md5-checked), extracted once, members checked."""
    ds = get_dataset("cifar-10")
    root = fetch(ds)
    spec = ds.files[0]
    folder = extract_once(root, root / spec.name, "cifar-10-batches-bin")
    _check_members(root, folder, spec)
    _check_classes(folder / "batches.meta.txt")
    parts = [read_cifar10_bin(folder / f"data_batch_{i}.bin") for i in range(1, 6)]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return train, read_cifar10_bin(folder / "test_batch.bin")


_DECODED = "decoded.npz"
_DECODED_META = "decoded.json"
_DECODED_FORMAT = 1
_DECODED_OK: dict[tuple[str, int, int], str] = {}


def _decoded_sources(ds_name: str) -> dict[str, str]:
    return {s.name: s.hash for s in get_dataset(ds_name).files}


def _read_decoded(folder: Path, sources: dict[str, str]) -> tuple[XY, XY] | None:
    """The decoded arrays if the sidecar's hash and sources match; otherwise delete both, None."""
    path, meta_path = folder / _DECODED, folder / _DECODED_META
    try:
        meta = json.loads(meta_path.read_text())
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        ok = meta.get("format") == _DECODED_FORMAT and meta.get("sources") == sources
        if ok and _DECODED_OK.get(key) != meta["sha256"]:
            ok = file_hash(path) == meta["sha256"]
        if ok:
            _DECODED_OK[key] = meta["sha256"]
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
            if all(arrays[k].dtype == np.uint8 for k in arrays) and arrays["x_train"].shape[1:] == (32, 32, 3):
                return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        pass
    path.unlink(missing_ok=True)
    meta_path.unlink(missing_ok=True)
    return None


def _write_decoded(folder: Path, train: XY, test: XY, sources: dict[str, str]) -> None:
    """Write the arrays and their sidecar under temporary names, then rename (arrays first)."""
    from PIL import __version__ as pillow_version

    folder.mkdir(parents=True, exist_ok=True)
    tmp = [folder / f".{name}.{os.getpid()}.part" for name in (_DECODED, _DECODED_META)]
    try:
        with open(tmp[0], "wb") as f:
            np.savez(f, x_train=train[0], y_train=train[1], x_test=test[0], y_test=test[1])
        meta = {"format": _DECODED_FORMAT, "sha256": file_hash(tmp[0]), "sources": sources,
                "decoder": f"Pillow {pillow_version}"}
        tmp[1].write_text(json.dumps(meta, indent=1) + "\n")
        os.replace(tmp[0], folder / _DECODED)
        os.replace(tmp[1], folder / _DECODED_META)
    finally:
        for t in tmp:
            t.unlink(missing_ok=True)


def _load_standin() -> tuple[XY, XY]:
    """The JPEG stand-in, decoded once into the cache (verified by a sidecar sha256 on every load)."""
    from filelock import FileLock

    root = fetch("cifar-10-jpeg")
    sources = _decoded_sources("cifar-10-jpeg")
    folder = root / "decoded"
    with FileLock(str(root / ".lock"), timeout=1800):
        cached = _read_decoded(folder, sources)
        if cached is not None:
            return cached
        _check_classes(root / "batches.meta.txt")
        labels = {split: read_u8_labels(root / f"{split}_labels.u8", len(CIFAR10_CLASSES))
                  for split in ("train", "test")}
        out = read_cifar10_jpeg_tar(root / "cifar-10-jpeg.tar.gz", labels, CIFAR10_CLASSES)
        _write_decoded(folder, out["train"], out["test"], sources)
        return out["train"], out["test"]


def _standin_allowed(allow_standin: bool | None) -> tuple[bool, str]:
    if allow_standin is not None:
        return bool(allow_standin), f"allow_standin={bool(allow_standin)}"
    return _truthy(os.environ.get("DL_ALLOW_STANDIN")), "DL_ALLOW_STANDIN=1"


def _refusal(reason: DatasetError) -> StandInNotAllowedError:
    return StandInNotAllowedError(
        "CIFAR-10: the canonical archive cifar-10-binary.tar.gz cannot be had here, and the stand-in "
        f"was not allowed.\nWhat the stand-in costs: {_STANDIN_COST}\n"
        "To use it anyway: load_cifar10(allow_standin=True), or set DL_ALLOW_STANDIN=1 "
        "(with DL_DATA_MIRROR pointing at a mirror that has cifar-10-jpeg/).\n"
        "To get the canonical data instead: connect to the internet and unset DL_OFFLINE (170 MB, "
        "md5-checked), or put cifar-10-binary.tar.gz into a mirror's cifar-10/ folder or into "
        f"{config.data_dir() / 'cifar-10'}/.\n"
        f"Why the canonical archive is unavailable:\n{reason}"
    )


def load_cifar10(subset: int | None = None, test_subset: int | None = None, *,
                 allow_standin: bool | None = None) -> CIFAR10Data:
    """CIFAR-10 as ``(x_train, y_train), (x_test, y_test)`` plus the variant it is.

    Images uint8 ``(N, 32, 32, 3)`` (HWC, RGB), labels uint8 ``(N,)``: 50,000 and 10,000,
    names in ``CIFAR10_CLASSES``; ``subset``/``test_subset`` keep the first ``n // 10`` per class.
    The canonical binary archive is used whenever it can be had (cache → mirror → download;
    never the pickled version). Only if it cannot, and the stand-in is allowed
    (``allow_standin=True``, or ``None`` and ``DL_ALLOW_STANDIN=1``), the JPEG stand-in is
    returned, with one printed line saying so; otherwise :class:`StandInNotAllowedError`.
    The result's ``variant`` is ``"canonical"`` or ``"jpeg-stand-in"``.
    """
    try:
        train, test = _load_canonical()
        variant = CANONICAL
    except (DatasetNotAvailableError, DownloadError) as exc:
        allowed, why = _standin_allowed(allow_standin)
        if not allowed:
            raise _refusal(exc) from exc
        try:
            train, test = _load_standin()
        except (DatasetNotAvailableError, DownloadError) as exc2:
            raise DatasetNotAvailableError(
                f"CIFAR-10 is not available: neither the canonical archive nor the allowed JPEG stand-in.\n"
                f"Canonical:\n{exc}\nStand-in:\n{exc2}"
            ) from exc2
        variant = JPEG_STANDIN
        print(f"CIFAR-10: using the JPEG stand-in (lossy, quality 75; not canonical CIFAR-10), allowed by {why}.")
    return CIFAR10Data(_subset(train, subset), _subset(test, test_subset), variant)


def load_cifar10_exact_test_sample() -> CIFAR10ExactSample:
    """The first 1,017 canonical test images and labels, and their JPEG twins for comparison.

    The exact images come from ``cifar-10-exact`` (mirror) or, failing that, from the canonical
    archive. ``x_jpeg`` holds the stand-in's first 1,017 test images (decoded once into the cache;
    the same labels), or ``None`` where the stand-in cannot be had (it is mirror-only). Evaluate a
    model on both to see what the JPEG loss costs.
    """
    try:
        root = fetch("cifar-10-exact")
        _check_classes(root / "batches.meta.txt")
        x, y = read_cifar10_bin(root / "test_batch.first1017.bin")
    except (DatasetNotAvailableError, DownloadError) as exc:
        try:
            x_test, y_test = _load_canonical()[1]
            x, y = x_test[:1017].copy(), y_test[:1017].copy()
        except (DatasetNotAvailableError, DownloadError) as exc2:
            raise DatasetNotAvailableError(
                f"The exact CIFAR-10 test sample is not available.\ncifar-10-exact:\n{exc}\ncifar-10:\n{exc2}"
            ) from exc2
    try:
        xj, yj = _load_standin()[1]
    except (DatasetNotAvailableError, DownloadError):
        return CIFAR10ExactSample(x, y, None)
    if len(yj) < len(y) or not np.array_equal(yj[: len(y)], y):
        raise MalformedDataError("The JPEG stand-in's test labels differ from the exact sample's; "
                                 "the two datasets do not belong together.")
    return CIFAR10ExactSample(x, y, xj[: len(y)].copy())


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
