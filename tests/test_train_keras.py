"""train_keras on sklearn's moons with the torch backend (conftest sets KERAS_BACKEND=torch)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_moons

keras = pytest.importorskip("keras")

from dl_utils import train_keras  # noqa: E402


@pytest.fixture(scope="module")
def moons():
    x, y = make_moons(600, noise=0.15, random_state=0)
    return x.astype(np.float32), y.astype(np.float32)


def small_model(lr: float, width: int = 32) -> keras.Model:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(width, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def test_keras_callbacks_and_history(moons, tmp_path):
    x, y = moons
    keras.utils.set_random_seed(0)
    model = small_model(0.02)
    cbs = train_keras.standard_callbacks(15, patience=3, checkpoint=tmp_path / "best.keras", reduce_lr_patience=2)
    hist = model.fit(x[:400], y[:400], validation_data=(x[400:], y[400:]), epochs=15, batch_size=32,
                     verbose=0, callbacks=cbs)
    frame = train_keras.history_frame(hist)
    assert frame["epoch"].iloc[0] == 1 and "val_accuracy" in frame
    assert frame["val_accuracy"].max() > 0.9
    assert (tmp_path / "best.keras").exists()
    assert train_keras.count_params(model) == {"trainable": 2 * 32 + 32 + 32 + 1, "non_trainable": 0,
                                               "total": 129}


def test_standard_callbacks_are_what_was_asked_for(tmp_path):
    cbs = train_keras.standard_callbacks(patience=3, checkpoint=tmp_path / "m.keras", reduce_lr_patience=2,
                                         progress=False)
    assert type(cbs) is list and [type(cb) for cb in cbs] == [keras.callbacks.EarlyStopping, keras.callbacks.ModelCheckpoint,
                                        keras.callbacks.ReduceLROnPlateau]
    assert all(cb.verbose == 0 for cb in cbs)
    assert train_keras.standard_callbacks(progress=False) == []
    bar_only = train_keras.standard_callbacks(10)  # the old call `standard_callbacks(EPOCHS)`: just the bar
    assert [type(cb) for cb in bar_only] == [train_keras.TqdmProgress]
    assert isinstance(train_keras.progress_callback(), train_keras.TqdmProgress)
    assert train_keras.early_stopping_result(bar_only) == {"stopped_epoch": None, "best_epoch": None}


def test_early_stopping_is_quiet_and_reports_what_it_did(moons, capfd):
    """Over-fit 12 points: validation loss rises, training stops early and the best weights come back."""
    x, y = moons
    keras.utils.set_random_seed(0)
    model = small_model(0.05, width=64)
    cbs = train_keras.standard_callbacks(patience=4, reduce_lr_patience=2, progress=False)
    hist = model.fit(x[:12], y[:12], validation_data=(x[400:], y[400:]), epochs=200, batch_size=4, verbose=0,
                     callbacks=cbs)
    val_loss = hist.history["val_loss"]
    assert len(val_loss) < 200
    result = train_keras.early_stopping_result(cbs)
    assert result["stopped_epoch"] == len(val_loss)
    assert result["best_epoch"] == int(np.argmin(val_loss)) + 1 < result["stopped_epoch"]
    restored = model.evaluate(x[400:], y[400:], verbose=0, return_dict=True)["loss"]
    assert restored == pytest.approx(min(val_loss), rel=1e-4)
    assert "learning_rate" in hist.history  # ReduceLROnPlateau's record, instead of its log lines
    out, err = capfd.readouterr()
    assert "early stopping" not in (out + err).lower() and "restoring" not in (out + err).lower()
    assert "reducelronplateau" not in (out + err).lower()


def test_progress_bar_reads_epochs_from_fit(moons):
    x, y = moons
    model = small_model(0.01)
    bar = train_keras.progress_callback()
    model.fit(x[:64], y[:64], epochs=3, batch_size=32, verbose=0, callbacks=[bar])
    assert bar.bar.total == 3 and bar.bar.n == 3
