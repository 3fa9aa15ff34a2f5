"""dl_utils.cifar and the Keras cost helpers: the pieces every CIFAR-10 notebook reports with."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dl_utils import cifar, train_keras  # noqa: E402
from dl_utils.data.loaders import CIFAR10ExactSample  # noqa: E402


def test_holdout_is_stratified_disjoint_and_seeded():
    y = np.repeat(np.arange(10, dtype=np.uint8), 50)
    x = np.arange(len(y))[:, None]
    (xt, yt), (xv, yv) = cifar.holdout(x, y, n_val=100, seed=3)
    assert len(yv) == 100 and np.bincount(yv).tolist() == [10] * 10
    assert not set(xt[:, 0]) & set(xv[:, 0]) and len(xt) + len(xv) == len(y)
    (_, _), (xv2, _) = cifar.holdout(x, y, n_val=100, seed=3)
    assert np.array_equal(xv, xv2)
    with pytest.raises(ValueError, match="n_val"):
        cifar.holdout(x, y, n_val=0, seed=0)


def test_exact_sample_report_counts_both_versions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 20).astype(np.uint8)
    x = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    x_jpeg = x.copy()
    x_jpeg[:5] = 0  # the "JPEG" version of the first five images looks different

    def predict(images):  # right on unchanged images, class 0 on the zeroed ones
        out = np.zeros((len(images), 10))
        seen = images.reshape(len(images), -1).any(1)
        out[np.arange(len(images)), np.where(seen, y, 0)] = 1
        return out

    rep = cifar.exact_sample_report(predict, CIFAR10ExactSample(x, y, x_jpeg))
    expected_jpeg = (15 + (y[:5] == 0).sum()) / 20
    assert rep["exact"] == 1.0 and rep["n"] == 20
    assert rep["jpeg_twins"] == pytest.approx(expected_jpeg)
    assert rep["same_prediction"] == pytest.approx(expected_jpeg)
    assert "jpeg_twins" not in cifar.exact_sample_report(predict, CIFAR10ExactSample(x, y, None))


def test_accuracy_and_per_class():
    y = np.array([0, 0, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0])
    acc = cifar.per_class_accuracy(y, pred, ["a", "b", "c"])
    assert acc.tolist() == [0.5, 1.0, 0.0] and list(acc.index) == ["a", "b", "c"]
    assert cifar.accuracy(np.eye(3)[pred], y) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="scores"):
        cifar.accuracy(np.eye(3)[pred][:4], y)


def test_plot_misclassified_shows_most_confident_errors():
    y = np.array([0, 1, 2, 3])
    probs = np.array([[0.9, 0.1, 0, 0], [0.7, 0.3, 0, 0], [0.2, 0, 0.8, 0], [0, 0.95, 0, 0.05]])
    fig = cifar.plot_misclassified(np.zeros((4, 32, 32, 3), np.uint8), y, probs, ["a", "b", "c", "d"], n=4)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["d →\nb (0.95)", "b →\na (0.70)"]


def test_softmax_rows_sum_to_one():
    p = cifar.softmax(np.array([[1000.0, 0.0], [1.0, 1.0]]))
    assert np.allclose(p.sum(1), 1) and p[0, 0] == pytest.approx(1.0) and p[1, 0] == pytest.approx(0.5)


def test_layer_table_and_multiply_adds_count_by_hand():
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Flatten(name="flat")(x)
    out = keras.layers.Dense(10, name="fc")(x)
    model = keras.Model(inp, out)
    table = train_keras.layer_table(model)
    assert table["layer"].tolist() == ["conv", "dw", "pool", "flat", "fc"]
    assert table["output"].tolist() == ["8×8×4", "8×8×4", "4×4×4", "64", "10"]
    assert table["parameters"].tolist() == [3 * 3 * 3 * 4 + 4, 3 * 3 * 4 + 4, 0, 0, 64 * 10 + 10]
    macs = [8 * 8 * 4 * 27, 8 * 8 * 4 * 9, 0, 0, 640]
    assert table["multiply_adds"].tolist() == macs
    assert train_keras.multiply_adds(model) == sum(macs)
    assert table["parameters"].sum() == model.count_params()


def test_epoch_timer_excludes_validation_and_first_epoch():
    timer = train_keras.EpochTimer()
    timer.seconds = [10.0, 2.0, 2.0]
    assert timer.images_per_second(100) == pytest.approx(50.0)
    assert timer.images_per_second(100, skip_first=False) == pytest.approx(300 / 14)
    with pytest.raises(ValueError, match="timed"):
        train_keras.EpochTimer().images_per_second(100)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    timer = train_keras.EpochTimer()
    model.fit(np.zeros((8, 4)), np.zeros((8, 2)), validation_data=(np.zeros((4, 4)), np.zeros((4, 2))),
              epochs=2, batch_size=4, verbose=0, callbacks=[timer])
    assert len(timer.seconds) == 2 and all(s > 0 for s in timer.seconds)


def test_cifar_augmentation_changes_training_images_only():
    aug = train_keras.cifar_augmentation(translate=4, flip=True, brightness=0.2, seed=0)
    x = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype("float32")
    assert np.array_equal(keras.ops.convert_to_numpy(aug(x, training=False)), x)
    out = keras.ops.convert_to_numpy(aug(x, training=True))
    assert out.shape == x.shape and not np.array_equal(out, x)
    assert out.min() >= 0 and out.max() <= 255
    shift_only = train_keras.cifar_augmentation(translate=4, flip=False, seed=1)
    moved = keras.ops.convert_to_numpy(shift_only(x, training=True))
    assert np.isin(moved, np.append(x.ravel(), 0)).all()  # whole pixels moved, zero fill, no blending
    with pytest.raises(ValueError, match="at least one"):
        train_keras.cifar_augmentation(translate=0, flip=False)
