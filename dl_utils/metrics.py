"""Thin helpers over ``sklearn.metrics``: tables a reader can scan, threshold tuning, errors."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import linalg
from sklearn import metrics as skm


def _check_same_length(**arrays: np.ndarray) -> None:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"inputs must have the same length, got {lengths}")


def classification_report_frame(y_true: Sequence, y_pred: Sequence,
                                target_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support, plus macro/weighted averages, as a DataFrame."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    _check_same_length(y_true=y_true, y_pred=y_pred)
    labels = None
    if target_names is not None:
        labels = np.arange(len(target_names))
    rep = skm.classification_report(y_true, y_pred, labels=labels, target_names=target_names,
                                    output_dict=True, zero_division=0)
    rep.pop("accuracy", None)
    return pd.DataFrame(rep).T[["precision", "recall", "f1-score", "support"]]


def binary_scores(y_true: Sequence, scores: Sequence, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision, recall, F1 at a threshold, plus threshold-free ROC-AUC and PR-AUC."""
    y_true, scores = np.asarray(y_true), np.asarray(scores, dtype=float)
    _check_same_length(y_true=y_true, scores=scores)
    pred = (scores >= threshold).astype(int)
    return {
        "accuracy": skm.accuracy_score(y_true, pred),
        "precision": skm.precision_score(y_true, pred, zero_division=0),
        "recall": skm.recall_score(y_true, pred, zero_division=0),
        "f1": skm.f1_score(y_true, pred, zero_division=0),
        "roc_auc": skm.roc_auc_score(y_true, scores),
        "pr_auc": skm.average_precision_score(y_true, scores),
    }


def multiclass_scores(y_true: Sequence, y_pred: Sequence) -> dict[str, float]:
    """Accuracy, balanced accuracy and macro-F1: the three numbers to compare under imbalance."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    _check_same_length(y_true=y_true, y_pred=y_pred)
    return {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y_true, y_pred),
        "macro_f1": skm.f1_score(y_true, y_pred, average="macro", zero_division=0),
    }


def candidate_thresholds(scores: Sequence[float]) -> np.ndarray:
    """Every threshold that gives a different set of predicted positives (``score >= t``).

    The midpoints between consecutive distinct scores, plus the lowest score (everything
    positive) and the float just above the highest (nothing positive). Midpoints rather than
    the scores themselves, so that new data scoring between two validation scores is not
    decided by which one the threshold happened to sit on.
    """
    u = np.unique(np.asarray(scores, dtype=float).ravel())
    u = u[np.isfinite(u)]
    if u.size == 0:
        raise ValueError("no finite scores: nothing to choose a threshold from")
    mid = (u[:-1] + u[1:]) / 2
    mid = np.where(mid > u[:-1], mid, u[1:])  # neighbours one ulp apart: the midpoint rounds down
    return np.concatenate([u[:1], mid, [np.nextafter(u[-1], np.inf)]])


def _sweep_arrays(y_true: np.ndarray, scores: np.ndarray, thresholds: np.ndarray) -> dict[str, np.ndarray]:
    """Confusion counts, precision, recall and F1 at every threshold (``score >= t``), vectorized.

    Sorting once and counting with ``searchsorted`` is O((n + k) log n), so sweeping every
    distinct score of a large validation set costs milliseconds, not a loop over thresholds.
    """
    if np.isnan(scores).any():
        raise ValueError(f"{int(np.isnan(scores).sum())} scores are NaN: no threshold can rank them")
    pos, neg = np.sort(scores[y_true == 1]), np.sort(scores[y_true == 0])
    tp = pos.size - np.searchsorted(pos, thresholds, side="left")
    fp = neg.size - np.searchsorted(neg, thresholds, side="left")
    fn, tn = pos.size - tp, neg.size - fp
    precision = np.divide(tp, tp + fp, out=np.zeros(len(thresholds)), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros(len(thresholds)), where=(tp + fn) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(len(thresholds)),
                   where=(precision + recall) > 0)
    return {"threshold": thresholds, "precision": precision, "recall": recall, "f1": f1,
            "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def threshold_sweep(y_true: Sequence, scores: Sequence, thresholds: Sequence[float] | None = None,
                    cost_fn: float | None = None, cost_fp: float | None = None) -> pd.DataFrame:
    """Precision, recall, F1 and confusion counts at each threshold (and expected cost if priced).

    A sample is predicted positive when ``score >= threshold``. ``thresholds`` defaults to the
    readable grid 0.05, 0.06, …, 0.95 (for tables and plots); pass
    ``candidate_thresholds(scores)`` to see every distinct operating point.
    ``cost_fn`` is the cost of a missed positive (e.g. a churner nobody contacted) and
    ``cost_fp`` of a false alarm (e.g. a retention offer to a loyal customer).
    """
    y_true, scores = np.asarray(y_true).astype(int).ravel(), np.asarray(scores, dtype=float).ravel()
    _check_same_length(y_true=y_true, scores=scores)
    if thresholds is None:
        thresholds = np.round(np.linspace(0.05, 0.95, 91), 4)
    sweep = pd.DataFrame(_sweep_arrays(y_true, scores, np.asarray(thresholds, dtype=float).ravel()))
    if cost_fn is not None and cost_fp is not None:
        sweep["cost"] = sweep["fn"] * cost_fn + sweep["fp"] * cost_fp
    return sweep


def tune_threshold(y_true: Sequence, scores: Sequence, *, min_recall: float | None = None,
                   cost_fn: float | None = None, cost_fp: float | None = None,
                   thresholds: Sequence[float] | None = None) -> float:
    """Choose a decision threshold (predict positive when ``score >= t``) on validation data.

    With ``cost_fn``/``cost_fp``: the threshold of least expected cost (among those reaching
    ``min_recall`` if given). With only ``min_recall``: the highest threshold whose recall
    still reaches it (the fewest false alarms at that recall). Otherwise: the best F1.
    Ties go to the higher threshold. ``thresholds`` are the candidates; by default every
    distinct operating point of ``scores`` (``candidate_thresholds``), so an optimum below
    0.05 or above 0.95, or on scores that are not probabilities, is found too.
    """
    y_arr, s_arr = np.asarray(y_true).astype(int).ravel(), np.asarray(scores, dtype=float).ravel()
    _check_same_length(y_true=y_arr, scores=s_arr)
    if thresholds is None:
        thresholds = candidate_thresholds(s_arr)
    sweep = threshold_sweep(y_arr, s_arr, thresholds, cost_fn=cost_fn, cost_fp=cost_fp)
    if min_recall is not None:
        ok = sweep[sweep["recall"] >= min_recall]
        if ok.empty:
            raise ValueError(f"no threshold reaches recall {min_recall}; the best is "
                             f"{sweep['recall'].max():.3f}")
        sweep = ok
    if "cost" in sweep:
        return float(sweep.sort_values(["cost", "threshold"], ascending=[True, False]).iloc[0]["threshold"])
    if min_recall is not None:
        return float(sweep["threshold"].max())
    return float(sweep.sort_values(["f1", "threshold"], ascending=[False, False]).iloc[0]["threshold"])


def regression_errors(y_true: Sequence, y_pred: Sequence) -> dict[str, float]:
    """RMSE, MAE and MAPE (in %) of a forecast or regression."""
    y_true, y_pred = np.asarray(y_true, dtype=float).ravel(), np.asarray(y_pred, dtype=float).ravel()
    _check_same_length(y_true=y_true, y_pred=y_pred)
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "mape": float(100 * skm.mean_absolute_percentage_error(y_true, y_pred)),
    }


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``(N, D)`` and ``(M, D)``.

    ``‖μ_a − μ_b‖² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½)``: the squared 2-Wasserstein distance between
    the two Gaussians. With Inception-v3 pool features it is the FID of Heusel et al. (2017); with
    another network's features the value is on that network's own scale. The estimate is biased
    upwards for small samples (it shrinks as N grows), so compare values computed with the same N.
    The matrix square root (``scipy.linalg.sqrtm``) can carry tiny imaginary parts from rounding;
    they are dropped, and the result is clipped at 0.
    """
    a, b = np.asarray(features_a, dtype=np.float64), np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"features must be 2-D (samples, dimensions), got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} and {b.shape[1]}")
    if min(len(a), len(b)) < 2:
        raise ValueError(f"need at least 2 samples per set for a covariance, got {len(a)} and {len(b)}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b)
                  - 2 * _trace_sqrt_product(cov_a, cov_b))
    return max(value, 0.0)


def _trace_sqrt_product(cov_a: np.ndarray, cov_b: np.ndarray) -> float:
    """tr((Σ_a Σ_b)^½) with ``scipy.linalg.sqrtm``, keeping its real part.

    Σ_a Σ_b has the same (real, non-negative) eigenvalues as the symmetric Σ_a^½ Σ_b Σ_a^½, so the
    exact result is real: an imaginary part is rounding. When the product is (nearly) singular,
    sqrtm warns, or returns non-finite values or a large imaginary part; the trace is then taken from
    the eigenvalues of the symmetric form instead, which is stable.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(cov_a @ cov_b)
    singular = any(issubclass(w.category, linalg.LinAlgWarning) for w in caught)
    if not singular and np.isfinite(covmean).all():
        imag = float(np.abs(np.imag(covmean)).max()) if np.iscomplexobj(covmean) else 0.0
        if imag <= 1e-3 * max(float(np.abs(covmean).max()), 1e-12):
            return float(np.trace(np.real(covmean)))
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    eig = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    return float(np.sqrt(np.clip(eig, 0, None)).sum())
