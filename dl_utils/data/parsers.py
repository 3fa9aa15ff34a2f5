"""File-format readers: IDX, the CSV/TSV datasets and CIFAR-10 binary batches.

Each reader checks what it reads and raises :class:`MalformedDataError` with the file's name
and what was wrong, instead of letting a shape error surface three cells later.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
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
