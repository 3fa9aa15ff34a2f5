"""train_torch and train_keras on small real problems (sklearn's moons), not on mocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dl_utils import config, train_torch


@pytest.fixture(scope="module")
def moons():
    x, y = make_moons(600, noise=0.15, random_state=0)
    return x.astype(np.float32), y


def loaders(x, y):
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    train = DataLoader(TensorDataset(xt[:400], yt[:400]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(xt[400:], yt[400:]), batch_size=100)
    return train, val


def mlp():
    return nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))


def test_fit_learns_and_reports_history(moons, tmp_path):
    config.seed_everything(0)
    train, val = loaders(*moons)
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    hist = train_torch.fit(model, train, val, nn.CrossEntropyLoss(), opt, epochs=12, scheduler=sched,
                           metrics={"accuracy": train_torch.accuracy}, progress=False)
    assert list(hist["epoch"]) == list(range(1, 13))
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr"} <= set(hist.columns)
    assert hist["lr"].iloc[-1] < hist["lr"].iloc[0]  # the schedule ran
    assert hist["val_accuracy"].iloc[-1] > 0.95
    scores = train_torch.evaluate(model, val, nn.CrossEntropyLoss(), {"accuracy": train_torch.accuracy})
    assert scores["accuracy"] == pytest.approx(hist["val_accuracy"].iloc[-1])
    out, target = train_torch.predict(model, val)
    assert out.shape == (200, 2) and target.shape == (200,)


def test_early_stopping_restores_best_checkpoint(moons, tmp_path):
    config.seed_everything(0)
    train, val = loaders(*moons)
    model = mlp()
    # a learning rate far too high: validation loss soon stops improving
    opt = torch.optim.SGD(model.parameters(), lr=5.0)
    ckpt = tmp_path / "best.pt"
    hist = train_torch.fit(model, train, val, nn.CrossEntropyLoss(), opt, epochs=40, patience=2,
                           checkpoint=ckpt, progress=False)
    assert len(hist) < 40 and ckpt.exists()
    best = hist["val_loss"].min()
    assert train_torch.evaluate(model, val, nn.CrossEntropyLoss())["loss"] == pytest.approx(best, rel=1e-5)


def test_checkpoints_refuse_pickled_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2, 2), "payload": _Evil()}, path)
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        train_torch.load_checkpoint(nn.Linear(2, 2), path)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_fit_rejects_zero_epochs_and_empty_loaders(moons):
    train, _ = loaders(*moons)
    model = mlp()
    with pytest.raises(ValueError, match="epochs"):
        train_torch.fit(model, train, None, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), 0.1), 0)
    empty = DataLoader(TensorDataset(torch.zeros(0, 2), torch.zeros(0).long()), batch_size=4)
    with pytest.raises(ValueError, match="empty"):
        train_torch.evaluate(model, empty, nn.CrossEntropyLoss())


def test_keras_callbacks_and_history(moons, tmp_path):
    keras = pytest.importorskip("keras")
    from dl_utils import train_keras

    x, y = moons
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="binary_crossentropy", metrics=["accuracy"])
    cbs = train_keras.standard_callbacks(15, patience=3, checkpoint=tmp_path / "best.keras", reduce_lr_patience=2)
    hist = model.fit(x[:400], y[:400], validation_data=(x[400:], y[400:]), epochs=15, batch_size=32,
                     verbose=0, callbacks=cbs)
    frame = train_keras.history_frame(hist)
    assert frame["epoch"].iloc[0] == 1 and "val_accuracy" in frame
    assert frame["val_accuracy"].max() > 0.9
    assert (tmp_path / "best.keras").exists()
    assert train_keras.count_params(model) == {"trainable": 2 * 32 + 32 + 32 + 1, "non_trainable": 0,
                                               "total": 129}
