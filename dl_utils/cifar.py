"""What every CIFAR-10 notebook (08–12) does after training, framework-neutral.

    (x_tr, y_tr), (x_val, y_val) = cifar.holdout(x_train, y_train, n_val=10_000, seed=SEED)
    cifar.exact_sample_report(predict, data.load_cifar10_exact_test_sample())
    # {'exact': 0.886, 'jpeg_twins': 0.871, 'n': 1017, 'same_prediction': 0.93}

``predict`` maps uint8 images ``(N, 32, 32, 3)`` to class scores ``(N, 10)``, so Keras and PyTorch
models are evaluated by the same code. The exact sample is the first 1,017 canonical test images;
their JPEG twins are the stand-in's versions of the same images, so the two accuracies differ only
by what the JPEG re-encoding costs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from dl_utils.data.loaders import CIFAR10_CLASSES, CIFAR10ExactSample
from dl_utils.scratch import softmax  # noqa: F401  (re-exported: row-wise softmax of logits, stable)

CLASSES: list[str] = list(CIFAR10_CLASSES)

Predict = Callable[[np.ndarray], np.ndarray]


def holdout(x: np.ndarray, y: np.ndarray, n_val: int, seed: int) -> tuple[tuple[np.ndarray, np.ndarray],
                                                                            tuple[np.ndarray, np.ndarray]]:
    """A stratified validation split of ``n_val`` images from the training set (seeded)."""
    if not 0 < n_val < len(y):
        raise ValueError(f"n_val must be between 1 and {len(y) - 1}, got {n_val}")
    idx_tr, idx_val = train_test_split(np.arange(len(y)), test_size=n_val, stratify=y, random_state=seed)
    idx_tr, idx_val = np.sort(idx_tr), np.sort(idx_val)
    return (x[idx_tr], y[idx_tr]), (x[idx_val], y[idx_val])


def accuracy(scores: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of class scores ``(N, C)`` against labels ``(N,)``."""
    scores, y = np.asarray(scores), np.asarray(y)
    if scores.ndim != 2 or len(scores) != len(y):
        raise ValueError(f"scores must be (N, C) with N = len(y) = {len(y)}, got {scores.shape}")
    return float((scores.argmax(1) == y).mean())


def exact_sample_report(predict: Predict, sample: CIFAR10ExactSample) -> dict[str, float]:
    """Accuracy on the 1,017 exact canonical test images and on their JPEG twins (if available).

    ``same_prediction``: the share of images whose predicted class is the same on both versions.
    """
    scores = np.asarray(predict(sample.x))
    out = {"exact": accuracy(scores, sample.y), "n": float(len(sample.y))}
    if sample.x_jpeg is not None:
        scores_jpeg = np.asarray(predict(sample.x_jpeg))
        out["jpeg_twins"] = accuracy(scores_jpeg, sample.y)
        out["same_prediction"] = float((scores.argmax(1) == scores_jpeg.argmax(1)).mean())
    return out


def per_class_accuracy(y_true: Sequence[int], y_pred: Sequence[int],
                       classes: Sequence[str] = CLASSES) -> pd.Series:
    """Accuracy (recall) of each class, named, in class order."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must have the same shape")
    acc = [float((y_pred[y_true == k] == k).mean()) if (y_true == k).any() else float("nan")
           for k in range(len(classes))]
    return pd.Series(acc, index=list(classes), name="accuracy")


def plot_misclassified(x: np.ndarray, y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str] = CLASSES,
                       n: int = 16, ncols: int = 8, title: str = "") -> plt.Figure:
    """The ``n`` most confidently wrong images, titled ``true → predicted (confidence)``."""
    probs, y_true = np.asarray(probs), np.asarray(y_true)
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != y_true)
    order = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:n]
    cols = max(1, min(ncols, len(order)))
    rows = max(1, int(np.ceil(len(order) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.75 * rows + (0.3 if title else 0)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, order, strict=False):
        ax.imshow(x[i])
        ax.set_title(f"{classes[y_true[i]]} →\n{classes[pred[i]]} ({probs[i, pred[i]]:.2f})", fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig

