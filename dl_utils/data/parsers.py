"""File-format readers: IDX, the CSV/TSV datasets, CIFAR-10 binary batches and its JPEG stand-in.

Each reader checks what it reads and raises :class:`MalformedDataError` with the file's name
and what was wrong, instead of letting a shape error surface three cells later.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import MalformedDataError

XY = tuple[np.ndarray, np.ndarray]


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (MNIST format), gzipped or not, into a uint8 array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise MalformedDataError(f"{path.name}: cannot read ({exc}); is it truncated?") from exc
    if len(raw) < 8 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise MalformedDataError(f"{path.name}: not an unsigned-byte IDX file (bad magic number).")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)):
        raise MalformedDataError(
            f"{path.name}: header says {dims} = {int(np.prod(dims))} bytes but "
            f"{len(raw) - offset} follow; the file is truncated or damaged."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def _check_columns(df: pd.DataFrame, expected: Sequence[str], path: Path) -> None:
    missing = [c for c in expected if c not in df.columns]
    if missing:
        raise MalformedDataError(
            f"{Path(path).name}: missing expected column(s) {missing}; found {list(df.columns)[:25]}. "
            "Is this the right file? Fix: remove it and fetch the dataset again."
        )


def _read_csv(path: Path, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise MalformedDataError(f"{Path(path).name}: not a readable CSV file ({exc}).") from exc


TELCO_COLUMNS = [
    "customerID", "gender", "SeniorCitizen", "Partner", "Dependents", "tenure", "PhoneService",
    "MultipleLines", "InternetService", "OnlineSecurity", "OnlineBackup", "DeviceProtection",
    "TechSupport", "StreamingTV", "StreamingMovies", "Contract", "PaperlessBilling",
    "PaymentMethod", "MonthlyCharges", "TotalCharges", "Churn",
]
PIMA_COLUMNS = [
    "Pregnancies", "Glucose", "BloodPressure", "SkinThickness", "Insulin", "BMI",
    "DiabetesPedigreeFunction", "Age", "Outcome",
]


def read_telco_csv(path: Path) -> pd.DataFrame:
    """Parse the Telco churn CSV; blank ``TotalCharges`` (new customers) become NaN."""
    df = _read_csv(path)
    _check_columns(df, TELCO_COLUMNS, path)
    df["TotalCharges"] = pd.to_numeric(df["TotalCharges"].astype(str).str.strip().replace("", np.nan),
                                       errors="coerce")
    bad = set(df["Churn"].unique()) - {"Yes", "No"}
    if bad:
        raise MalformedDataError(f"{Path(path).name}: unexpected Churn values {sorted(bad)[:5]}.")
    return df


def read_pima_csv(path: Path) -> pd.DataFrame:
    """Parse the header-less Pima CSV into named numeric columns."""
    df = _read_csv(path, header=None)
    if df.shape[1] != len(PIMA_COLUMNS):
        raise MalformedDataError(
            f"{Path(path).name}: expected {len(PIMA_COLUMNS)} columns "
            f"({', '.join(PIMA_COLUMNS)}), found {df.shape[1]}."
        )
    df.columns = PIMA_COLUMNS
    non_numeric = [c for c in PIMA_COLUMNS if not pd.api.types.is_numeric_dtype(df[c])]
    if non_numeric:
        raise MalformedDataError(f"{Path(path).name}: non-numeric values in {non_numeric}.")
    return df


def read_airline_csv(path: Path) -> pd.Series:
    """Parse the airline-passengers CSV into a monthly Series (thousands of passengers)."""
    df = _read_csv(path)
    _check_columns(df, ["Month", "Passengers"], path)
    try:
        index = pd.PeriodIndex(df["Month"], freq="M").to_timestamp()
    except (ValueError, TypeError) as exc:
        raise MalformedDataError(f"{Path(path).name}: unreadable Month values ({exc}).") from exc
    return pd.Series(df["Passengers"].to_numpy(dtype=float), index=index, name="passengers")


def read_sms_spam(path: Path) -> pd.DataFrame:
    """Parse ``label<TAB>text`` lines (the text may contain quotes, so no CSV parser)."""
    rows = []
    with open(path, encoding="utf-8", errors="strict") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            label, sep, text = line.partition("\t")
            if not sep or label not in {"ham", "spam"}:
                raise MalformedDataError(
                    f"{Path(path).name}, line {lineno}: expected 'ham' or 'spam', a TAB, then the "
                    f"message; got {line[:60]!r}."
                )
            rows.append((label, text))
    return pd.DataFrame(rows, columns=["label", "text"])


def read_cifar10_bin(path: Path) -> XY:
    """Read one CIFAR-10 binary batch: records of 1 label byte + 3,072 pixel bytes (R, G, B planes)."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % 3073:
        raise MalformedDataError(
            f"{Path(path).name}: {raw.size} bytes is not a whole number of 3,073-byte records; "
            "the file is truncated or not a CIFAR-10 binary batch."
        )
    rec = raw.reshape(-1, 3073)
    y = rec[:, 0].copy()
    if y.max() > 9:
        raise MalformedDataError(f"{Path(path).name}: label {int(y.max())} is out of range 0..9.")
    x = rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    return x, y


def read_cifar10_meta(path: Path) -> list[str]:
    """Class names from ``batches.meta.txt``: one per line, blank lines ignored."""
    try:
        names = [line.strip() for line in Path(path).read_text(encoding="ascii").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise MalformedDataError(f"{Path(path).name}: not a readable list of class names ({exc}).") from exc
    if not names:
        raise MalformedDataError(f"{Path(path).name}: no class names found.")
    return names


def read_u8_labels(path: Path, n_classes: int) -> np.ndarray:
    """A raw label file: one uint8 label per byte, each below ``n_classes``."""
    y = np.fromfile(path, dtype=np.uint8)
    if y.size == 0 or int(y.max()) >= n_classes:
        raise MalformedDataError(
            f"{Path(path).name}: expected one label byte per image in 0..{n_classes - 1}; "
            f"got {y.size} bytes" + (f" with maximum {int(y.max())}." if y.size else ".")
        )
    return y


_JPEG_NAME = re.compile(r"(\d{4,})\.jpg")


def read_cifar10_jpeg_tar(archive: Path, labels: Mapping[str, np.ndarray], classes: Sequence[str]) -> dict[str, XY]:
    """Decode the CIFAR-10 JPEG stand-in into ``{split: (images, labels)}`` in the original order.

    ``archive`` is a tar.gz of ``<split>/<class name>/<k:04d>.jpg``; the k-th image of class c
    in ``labels[split]`` (k counted from 0) is ``<split>/<classes[c]>/<k:04d>.jpg``. The archive is
    streamed (nothing is extracted to disk); images come back uint8 ``(N, 32, 32, 3)`` RGB.
    Every slot must be filled exactly once, or :class:`MalformedDataError` names what is wrong.
    """
    from PIL import Image, UnidentifiedImageError

    name = Path(archive).name
    class_index = {c: i for i, c in enumerate(classes)}
    where = {s: [np.flatnonzero(y == c) for c in range(len(classes))] for s, y in labels.items()}
    images = {s: np.zeros((len(y), 32, 32, 3), dtype=np.uint8) for s, y in labels.items()}
    filled = {s: np.zeros(len(y), dtype=bool) for s, y in labels.items()}
    try:
        with tarfile.open(archive, mode="r|gz") as tf:
            for ti in tf:
                if ti.isdir():
                    continue
                member = ti.name.removeprefix("./")
                parts = member.split("/")
                match = _JPEG_NAME.fullmatch(parts[-1]) if len(parts) == 3 else None
                if not ti.isfile() or match is None or parts[0] not in labels or parts[1] not in class_index:
                    raise MalformedDataError(
                        f"{name}: unexpected member {member!r}; expected <split>/<class>/<k:04d>.jpg with "
                        f"split in {sorted(labels)} and a class from batches.meta.txt."
                    )
                split, c, k = parts[0], class_index[parts[1]], int(match.group(1))
                slots = where[split][c]
                if k >= len(slots):
                    raise MalformedDataError(
                        f"{name}: {member!r} is beyond the {len(slots)} images of class {parts[1]!r} that "
                        f"the {split} label sequence lists; archive and labels do not belong together."
                    )
                i = slots[k]
                if filled[split][i]:
                    raise MalformedDataError(f"{name}: {member!r} fills an image slot a second time.")
                raw = tf.extractfile(ti).read()  # type: ignore[union-attr]
                try:
                    with Image.open(io.BytesIO(raw), formats=["JPEG"]) as im:
                        if im.size != (32, 32):
                            raise MalformedDataError(f"{name}: {member!r} is {im.size[0]}×{im.size[1]}, not 32×32.")
                        images[split][i] = np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
                except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
                    raise MalformedDataError(f"{name}: {member!r} is not a readable JPEG ({exc}).") from exc
                filled[split][i] = True
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise MalformedDataError(
            f"{name} could not be read as a tar.gz archive ({exc}); it is probably truncated. "
            "Fix: delete it and fetch it again."
        ) from exc
    out: dict[str, XY] = {}
    for split, y in labels.items():
        missing = np.flatnonzero(~filled[split])
        if missing.size:
            i = int(missing[0])
            c = int(y[i])
            k = int(np.searchsorted(where[split][c], i))
            raise MalformedDataError(
                f"{name}: {missing.size} of the {len(y)} {split} images are missing, e.g. "
                f"{split}/{classes[c]}/{k:04d}.jpg; archive and labels do not belong together."
            )
        out[split] = (images[split], y.copy())
    return out
