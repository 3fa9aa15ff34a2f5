"""The figures every notebook needs, with one look: curves, confusion matrices, ROC/PR,
image grids, forecasts and decision boundaries. Each returns the matplotlib Figure."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn import metrics as skm


def plot_history(history: Mapping[str, Sequence[float]] | pd.DataFrame,
                 metrics: Sequence[str] | None = None, title: str = "",
                 val_label: str = "validation") -> plt.Figure:
    """Training curves: one panel per metric, ``val_<metric>`` drawn beside ``<metric>``.

    Accepts a Keras ``History.history`` dict, a DataFrame from ``train_torch.fit`` or any
    mapping of metric name → per-epoch values. ``val_label`` names the second split in the
    legend: say ``"test"`` when the ``val_*`` columns were computed on the test set.
    """
    df = pd.DataFrame(dict(history)) if not isinstance(history, pd.DataFrame) else history
    if df.empty:
        raise ValueError("history is empty: nothing to plot (did training run any epoch?)")
    names = list(metrics) if metrics else [c for c in df.columns
                                           if not c.startswith("val_") and c not in {"epoch", "lr", "seconds",
                                                                                     "learning_rate"}]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
    epochs = df["epoch"] if "epoch" in df else np.arange(1, len(df) + 1)
    for ax, name in zip(axes[0], names, strict=True):
        if name not in df:
            raise ValueError(f"metric {name!r} not in history columns {list(df.columns)}")
        ax.plot(epochs, df[name], "o-", ms=3, label=f"train {name}")
        if f"val_{name}" in df:
            ax.plot(epochs, df[f"val_{name}"], "s-", ms=3, label=f"{val_label} {name}")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(y_true: Sequence, y_pred: Sequence, labels: Sequence[str] | None = None,
                          normalize: bool = False, ax: plt.Axes | None = None,
                          title: str = "") -> plt.Figure:
    """A seaborn heat map of the confusion matrix (counts, or row-normalized recall)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must have the same shape")
    classes = np.arange(len(labels)) if labels is not None else np.unique(np.concatenate([y_true, y_pred]))
    cm = skm.confusion_matrix(y_true, y_pred, labels=classes)
    if normalize:
        cm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    if ax is None:
        size = max(4.0, 0.55 * len(classes) + 2)
        fig, ax = plt.subplots(figsize=(size, size * 0.85))
    else:
        fig = ax.figure
    names = list(labels) if labels is not None else [str(c) for c in classes]
    sns.heatmap(cm, annot=True, fmt=".2f" if normalize else "d", cmap="Blues", cbar=False,
                xticklabels=names, yticklabels=names, ax=ax)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or ("confusion matrix (row-normalized)" if normalize else "confusion matrix"))
    fig.tight_layout()
    return fig


def plot_roc_pr(y_true: Sequence, scores: Mapping[str, Sequence[float]] | Sequence[float],
                title: str = "") -> plt.Figure:
    """ROC and precision-recall curves side by side, one line per model in ``scores``."""
    y_true = np.asarray(y_true)
    curves = scores if isinstance(scores, Mapping) else {"model": scores}
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(11, 4.4))
    for name, s in curves.items():
        s = np.asarray(s, dtype=float)
        if s.shape != y_true.shape:
            raise ValueError(f"scores for {name!r} have shape {s.shape}, labels {y_true.shape}")
        fpr, tpr, _ = skm.roc_curve(y_true, s)
        ax_roc.plot(fpr, tpr, label=f"{name} (AUC {skm.roc_auc_score(y_true, s):.3f})")
        prec, rec, _ = skm.precision_recall_curve(y_true, s)
        ax_pr.plot(rec, prec, label=f"{name} (AP {skm.average_precision_score(y_true, s):.3f})")
    ax_roc.plot([0, 1], [0, 1], "k--", lw=0.8, label="chance")
    ax_pr.axhline(y_true.mean(), color="k", ls="--", lw=0.8, label=f"base rate {y_true.mean():.2f}")
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title="ROC")
    ax_pr.set(xlabel="recall", ylabel="precision", title="precision-recall")
    for ax in (ax_roc, ax_pr):
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_image_grid(images: np.ndarray, titles: Sequence[str] | None = None, ncols: int = 8,
                    cmap: str | None = None, title: str = "", size: float = 1.4,
                    signed: bool | None = None) -> plt.Figure:
    """A grid of images: ``(N, H, W)`` greyscale or ``(N, H, W, 3)`` colour.

    Signed single-channel values (filters, weights, gradients; ``signed=None`` detects clearly
    negative values) share symmetric limits ±max|value| on a diverging map (``RdBu_r`` unless
    ``cmap`` is given), so white is 0 in every tile, with one colour bar. Otherwise each tile is
    scaled on its own, ``gray`` by default.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
        raise ValueError(f"images must be (N, H, W) or (N, H, W, 1|3), got shape {images.shape}")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images")
    colour = images.ndim == 4 and images.shape[-1] == 3
    lim = float(np.abs(images).max()) if images.size else 0.0
    if signed is None:
        signed = not colour and lim > 0 and float(images.min()) < -1e-3 * lim
    if signed and colour:
        raise ValueError("signed=True needs single-channel images (N, H, W) or (N, H, W, 1)")
    cmap = cmap or ("RdBu_r" if signed else "gray")
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    bar_width = 0.6 if signed else 0.0
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + bar_width, size * nrows + (0.3 if title else 0)),
                             squeeze=False)
    shown = None
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            img = images[i].squeeze(-1) if images.ndim == 4 and images.shape[-1] == 1 else images[i]
            limits = {"vmin": -lim, "vmax": lim} if signed else {}
            shown = ax.imshow(img, cmap=cmap if img.ndim == 2 else None, **limits)
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if title:
        fig.suptitle(title)
    if signed and shown is not None:
        right = 1 - bar_width / fig.get_figwidth()
        fig.tight_layout(rect=(0, 0, right, 1))
        cax = fig.add_axes((right + 0.15 * (1 - right), 0.15, 0.25 * (1 - right), 0.7))
        fig.colorbar(shown, cax=cax)
    else:
        fig.tight_layout()
    return fig


def plot_forecast(actual: pd.Series, forecasts: Mapping[str, pd.Series],
                  split: object | None = None, title: str = "", ylabel: str = "") -> plt.Figure:
    """An observed series with one or more forecasts, and the train/test boundary."""
    fig, ax = plt.subplots(figsize=(11, 4.2))
    ax.plot(actual.index, actual.values, "k-", lw=1.8, label="actual")
    for name, f in forecasts.items():
        ax.plot(f.index, f.values, "--", lw=1.3, label=name)
    if split is not None:
        ax.axvline(split, color="grey", ls=":", lw=1)
        ax.text(split, ax.get_ylim()[1], " test →", va="top", color="grey")
    ax.set(title=title, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_decision_boundary(predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, y: np.ndarray,
                           ax: plt.Axes | None = None, title: str = "", steps: int = 200) -> plt.Figure:
    """Shade the class ``predict`` gives each point of the plane, with the data on top.

    ``predict`` maps an ``(M, 2)`` array to ``(M,)`` labels or probabilities of class 1.
    """
    X, y = np.asarray(X), np.asarray(y).ravel()
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X must be (N, 2) to draw a 2-D boundary, got {X.shape}")
    pad = 0.5
    xx, yy = np.meshgrid(np.linspace(X[:, 0].min() - pad, X[:, 0].max() + pad, steps),
                         np.linspace(X[:, 1].min() - pad, X[:, 1].max() + pad, steps))
    zz = np.asarray(predict(np.c_[xx.ravel(), yy.ravel()])).reshape(xx.shape)
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 4))
    else:
        fig = ax.figure
    ax.contourf(xx, yy, zz, levels=20 if zz.dtype.kind == "f" else None, cmap="RdBu", alpha=0.45)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu", edgecolor="k", s=14)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def show_jpeg(fig: plt.Figure, quality: int = 85) -> None:
    """Display a figure as a JPEG in the notebook and close it.

    For figures made of photographs or image mosaics: a fraction of a PNG's size, with no visible
    difference, which keeps committed notebooks small.
    """
    import io

    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", dpi=fig.dpi, bbox_inches="tight", pil_kwargs={"quality": quality})
    plt.close(fig)
    display(Image(buf.getvalue()))
