"""metrics against scikit-learn; plots draw real figures and reject wrong shapes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sklearn import metrics as skm  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from dl_utils import metrics, plots  # noqa: E402


@pytest.fixture(scope="module")
def binary():
    x, y = load_breast_cancer(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    model = LogisticRegression(max_iter=5000).fit(xtr, ytr)
    return yte, model.predict_proba(xte)[:, 1]


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    pred = LogisticRegression(max_iter=5000).fit(xtr, ytr).predict(xte)
    return yte, pred


def test_binary_scores_match_sklearn(binary):
    y, s = binary
    got = metrics.binary_scores(y, s, threshold=0.3)
    pred = (s >= 0.3).astype(int)
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert got["pr_auc"] == pytest.approx(skm.average_precision_score(y, s))


def test_threshold_sweep_matches_sklearn_at_each_threshold(binary):
    y, s = binary
    sweep = metrics.threshold_sweep(y, s, thresholds=[0.2, 0.5, 0.8], cost_fn=5, cost_fp=1)
    for _, row in sweep.iterrows():
        pred = (s >= row["threshold"]).astype(int)
        assert row["precision"] == pytest.approx(skm.precision_score(y, pred, zero_division=0))
        assert row["recall"] == pytest.approx(skm.recall_score(y, pred))
        tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
        assert (row["tp"], row["fp"], row["fn"], row["tn"]) == (tp, fp, fn, tn)
        assert row["cost"] == 5 * fn + fp


def test_tune_threshold_rules(binary):
    y, s = binary
    t_recall = metrics.tune_threshold(y, s, min_recall=0.99)
    assert skm.recall_score(y, s >= t_recall) >= 0.99
    sweep = metrics.threshold_sweep(y, s, metrics.candidate_thresholds(s), cost_fn=10, cost_fp=1)
    t_cost = metrics.tune_threshold(y, s, cost_fn=10, cost_fp=1)
    assert sweep.loc[sweep["threshold"] == t_cost, "cost"].iloc[0] == sweep["cost"].min()
    t_f1 = metrics.tune_threshold(y, s)
    assert sweep.loc[sweep["threshold"] == t_f1, "f1"].iloc[0] == sweep["f1"].max()
    # the default candidates include "everything positive", so any recall is reachable …
    assert metrics.tune_threshold(np.array([1, 0]), np.array([0.01, 0.99]), min_recall=1.0) == 0.01
    with pytest.raises(ValueError, match="no threshold reaches"):  # … but not from a grid that starts above it
        metrics.tune_threshold(np.array([1, 0]), np.array([0.01, 0.99]), min_recall=1.0, thresholds=[0.05, 0.5])


def test_candidate_thresholds_cover_every_operating_point():
    s = np.array([0.3, 0.1, 0.3, 0.9, 0.5, 0.1])
    t = metrics.candidate_thresholds(s)
    assert np.all(np.diff(t) > 0) and len(t) == len(np.unique(s)) + 1
    assert t[0] == 0.1 and t[-1] > 0.9  # everything positive … nothing positive
    np.testing.assert_allclose(t[1:-1], [0.2, 0.4, 0.7])  # midpoints between distinct scores
    positives = [int((s >= x).sum()) for x in t]
    assert positives == [6, 4, 2, 1, 0]  # each candidate a different prediction, none missed
    close = np.array([0.5, np.nextafter(0.5, 1)])  # neighbours one float apart stay distinct
    assert [int((close >= x).sum()) for x in metrics.candidate_thresholds(close)] == [2, 1, 0]


@pytest.mark.parametrize("low", [True, False])
def test_tune_threshold_finds_optima_outside_the_old_grid(low):
    """Scores crowded near 0 (rare positives) or near 1: the best threshold is < 0.05 or > 0.95."""
    rng = np.random.default_rng(0)
    neg, pos = rng.uniform(0.0, 0.02, 300), rng.uniform(0.03, 0.045, 30)
    if not low:
        neg, pos = 1 - pos[::-1], 1 - neg[:30] / 10  # negatives in 0.955–0.97, positives above 0.998
    y, s = np.r_[np.zeros(len(neg)), np.ones(len(pos))], np.r_[neg, pos]
    for t in (metrics.tune_threshold(y, s), metrics.tune_threshold(y, s, cost_fn=5, cost_fp=1)):
        assert (t < 0.05) if low else (t > 0.95)
        assert metrics.binary_scores(y, s, threshold=t)["f1"] == 1.0  # separates the classes perfectly
    old_grid = np.round(np.linspace(0.05, 0.95, 91), 4)
    assert metrics.binary_scores(y, s, threshold=metrics.tune_threshold(y, s, thresholds=old_grid))["f1"] < 1.0


def _brute_force(y, s, objective):
    """The best value of ``objective(pred)`` over every possible prediction ``s >= t``."""
    return max(objective(s >= t) for t in [*np.unique(s), np.inf])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tune_threshold_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    s = np.round(np.clip(0.25 * y + rng.normal(0.4, 0.25, 300), 0, 1), 2)  # ties and 0/1 scores included

    def cost(pred):
        return 5 * np.sum(~pred & (y == 1)) + 1 * np.sum(pred & (y == 0))

    t = metrics.tune_threshold(y, s, cost_fn=5, cost_fp=1)
    assert cost(s >= t) == -_brute_force(y, s, lambda p: -cost(p))
    t = metrics.tune_threshold(y, s)
    f1 = skm.f1_score(y, s >= t)
    assert f1 == pytest.approx(_brute_force(y, s, lambda p: skm.f1_score(y, p, zero_division=0)))
    prec, rec, _ = skm.precision_recall_curve(y, s)  # and sklearn's curve agrees on the best F1
    assert f1 == pytest.approx(np.max(2 * prec * rec / np.maximum(prec + rec, 1e-12)))
    t = metrics.tune_threshold(y, s, min_recall=0.9)  # the fewest predicted positives reaching recall 0.9
    assert skm.recall_score(y, s >= t) >= 0.9
    assert (s >= t).sum() == -_brute_force(y, s, lambda p: -p.sum() if skm.recall_score(y, p) >= 0.9 else -1e9)
    t = metrics.tune_threshold(y, s, min_recall=0.9, cost_fn=1, cost_fp=1)
    assert skm.recall_score(y, s >= t) >= 0.9
    assert cost(s >= t) >= -_brute_force(y, s, lambda p: -cost(p))


def test_threshold_sweep_rejects_nan_scores():
    with pytest.raises(ValueError, match="NaN"):
        metrics.tune_threshold([0, 1, 1], [0.2, np.nan, 0.9])


def test_multiclass_and_report(digits):
    y, p = digits
    got = metrics.multiclass_scores(y, p)
    assert got["macro_f1"] == pytest.approx(skm.f1_score(y, p, average="macro"))
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, p))
    frame = metrics.classification_report_frame(y, p, target_names=[str(d) for d in range(10)])
    assert list(frame.columns) == ["precision", "recall", "f1-score", "support"]
    assert frame.loc["3", "recall"] == pytest.approx(skm.recall_score(y, p, labels=[3], average=None)[0])
    assert frame.loc["macro avg", "f1-score"] == pytest.approx(got["macro_f1"])


def test_regression_errors():
    y, p = np.array([100.0, 200.0, 300.0]), np.array([110.0, 190.0, 330.0])
    got = metrics.regression_errors(y, p)
    assert got["rmse"] == pytest.approx(np.sqrt((100 + 100 + 900) / 3))
    assert got["mae"] == pytest.approx(50 / 3)
    assert got["mape"] == pytest.approx(100 * (0.1 + 0.05 + 0.1) / 3)


def test_length_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="same length"):
        metrics.binary_scores([0, 1, 1], [0.2, 0.9])


def test_plots_draw(binary, digits):
    y, s = binary
    yd, pd_ = digits
    figs = [
        plots.plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8]}),
        plots.plot_confusion_matrix(yd, pd_, labels=[str(d) for d in range(10)], normalize=True),
        plots.plot_roc_pr(y, {"logreg": s, "noise": np.linspace(0, 1, len(y))}),
        plots.plot_image_grid(np.random.rand(5, 8, 8), titles=list("abcde"), ncols=3),
        plots.plot_image_grid(np.random.rand(2, 8, 8, 3)),
        plots.plot_forecast(pd.Series([1.0, 2, 3, 4]), {"naive": pd.Series([1.0, 2], index=[2, 3])}, split=2),
        plots.plot_decision_boundary(lambda p: (p[:, 0] > 0).astype(int), np.random.randn(20, 2),
                                     np.arange(20) % 2, steps=20),
    ]
    for fig in figs:
        assert isinstance(fig, plt.Figure) and fig.axes
        plt.close(fig)


def test_plot_history_names_the_second_split():
    hist = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "learning_rate": [0.1, 0.05]}
    fig = plots.plot_history(hist, val_label="test")
    (ax,) = fig.axes  # learning_rate (from ReduceLROnPlateau) is not a metric panel
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train loss", "test loss"]
    plt.close(fig)
    fig = plots.plot_history(hist)
    assert fig.axes[0].get_legend().get_texts()[1].get_text() == "validation loss"
    plt.close(fig)


def test_image_grid_signed_values_get_symmetric_limits_and_a_colour_bar():
    filters = np.random.default_rng(0).normal(size=(6, 3, 3)) + 0.5
    fig = plots.plot_image_grid(filters, ncols=3)
    tiles = [ax for ax in fig.axes if ax.images]
    lim = np.abs(filters).max()
    assert len(tiles) == 6 and len(fig.axes) == 6 + 1  # a 2×3 grid of tiles and one colour bar
    for ax in tiles:
        assert ax.images[0].get_clim() == pytest.approx((-lim, lim))
        assert ax.images[0].get_cmap().name == "RdBu_r"
    plt.close(fig)
    pixels = plots.plot_image_grid(np.random.default_rng(0).uniform(size=(4, 5, 5)))
    assert len(pixels.axes) == 4 and pixels.axes[0].images[0].get_cmap().name == "gray"  # no bar for [0, 1] data
    plt.close(pixels)


@pytest.mark.parametrize("call", [
    lambda: plots.plot_image_grid(np.zeros((4, 4))),
    lambda: plots.plot_image_grid(np.zeros((2, 4, 4)), titles=["one"]),
    lambda: plots.plot_confusion_matrix([0, 1], [0, 1, 1]),
    lambda: plots.plot_roc_pr(np.array([0, 1]), {"m": [0.1, 0.2, 0.3]}),
    lambda: plots.plot_decision_boundary(lambda p: p[:, 0], np.zeros((3, 3)), np.zeros(3)),
    lambda: plots.plot_history({}),
    lambda: plots.plot_history({"loss": [1.0]}, metrics=["accuracy"]),
])
def test_plots_reject_wrong_shapes(call):
    with pytest.raises(ValueError):
        call()
    plt.close("all")


def test_tune_threshold_accepts_custom_candidates(binary):
    y, s = binary
    t = metrics.tune_threshold(y, s, cost_fn=5, cost_fp=1, thresholds=[0.01, 0.02, 0.5])
    assert t in {0.01, 0.02, 0.5}


def test_show_jpeg_displays_a_jpeg_and_closes_the_figure(capsys):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.imshow(np.random.default_rng(0).random((8, 8)))
    plots.show_jpeg(fig, quality=80)
    assert not plt.fignum_exists(fig.number)
    assert "Image" in capsys.readouterr().out     # outside a notebook, IPython prints the displayed object's repr
