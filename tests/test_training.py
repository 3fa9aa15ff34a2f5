"""train_torch on small real problems (sklearn's moons), not on mocks (train_keras: test_train_keras.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons
from sklearn.metrics import roc_auc_score
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


def auc_metric(logits, targets):
    """ROC-AUC of class 1: not a mean over samples, so a per-batch average would be wrong."""
    return roc_auc_score(targets.numpy(), torch.softmax(logits, dim=-1)[:, 1].numpy())


def count_forwards(model):
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_training_columns_are_free_running_values(moons):
    """By default no extra pass: the history's training columns come from the training steps."""
    x, y = moons
    config.seed_everything(0)
    # 401 rows in batches of 40: the last batch holds one row, where a per-batch ROC-AUC cannot exist
    train = train_torch.make_loader(x[:401], y[:401], batch_size=40, shuffle=True, seed=0)
    val = train_torch.make_loader(x[401:], y[401:], batch_size=100)
    model = mlp()
    calls = count_forwards(model)
    # lr=0: the weights never move, so the running values must equal a clean pass exactly
    hist = train_torch.fit(model, train, val, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.0),
                           epochs=2, metrics={"accuracy": train_torch.accuracy, "auc": auc_metric}, progress=False)
    assert list(hist.columns) == ["epoch", "loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc",
                                  "lr", "seconds"]
    assert len(calls) == 2 * (len(train) + len(val))  # one forward per training and validation batch
    clean = train_torch.evaluate(model, train, nn.CrossEntropyLoss(), {"accuracy": train_torch.accuracy,
                                                                       "auc": auc_metric})
    last = hist.iloc[-1]
    assert last["loss"] == pytest.approx(clean["loss"], rel=1e-5)  # weighted by batch size (last batch: 1 row)
    assert last["accuracy"] == pytest.approx(clean["accuracy"])
    assert last["auc"] == pytest.approx(clean["auc"])  # over the epoch's outputs, not a mean of batch AUCs


def test_eval_train_pays_a_clean_pass(moons):
    x, y = moons
    config.seed_everything(0)
    train = train_torch.make_loader(x[:400], y[:400], batch_size=32, shuffle=True, seed=0)
    val = train_torch.make_loader(x[400:], y[400:], batch_size=100)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 2))
    calls = count_forwards(model)
    hist = train_torch.fit(model, train, val, nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=0.02),
                           epochs=3, metrics={"accuracy": train_torch.accuracy}, progress=False, eval_train=True)
    assert len(calls) == 3 * (2 * len(train) + len(val))
    assert list(hist.columns) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"]
    # the clean pass: eval mode (no dropout), end-of-epoch weights
    clean = train_torch.evaluate(model, train, nn.CrossEntropyLoss(), {"accuracy": train_torch.accuracy})
    assert hist["loss"].iloc[-1] == pytest.approx(clean["loss"], rel=1e-5)
    assert hist["accuracy"].iloc[-1] == pytest.approx(clean["accuracy"])


@pytest.mark.parametrize("checkpoint", [None, "best.pt"])
def test_early_stopping_restores_the_best_not_the_last_weights(moons, tmp_path, checkpoint):
    """Over-fit 12 points: validation loss bottoms out, then rises until patience runs out."""
    x, y = moons
    config.seed_everything(0)
    train = train_torch.make_loader(x[:12], y[:12], batch_size=4, shuffle=True, seed=0)
    val = train_torch.make_loader(x[400:], y[400:], batch_size=100)
    model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    ckpt = tmp_path / checkpoint if checkpoint else None
    hist = train_torch.fit(model, train, val, nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=0.03),
                           epochs=100, patience=5, checkpoint=ckpt, progress=False)
    best = hist["val_loss"].min()
    assert len(hist) < 100  # stopped early, so the last epoch is not the best one
    assert hist["val_loss"].iloc[-1] > 1.5 * best  # and the last weights are clearly worse
    assert train_torch.evaluate(model, val, nn.CrossEntropyLoss())["loss"] == pytest.approx(best, rel=1e-5)
    if ckpt is not None:
        assert ckpt.exists()


def test_make_loader_dtypes_and_lengths(moons):
    import pandas as pd

    x, y = moons
    xy = next(iter(train_torch.make_loader(x.astype(np.float64), y, batch_size=8)))
    assert xy[0].dtype == torch.float32 and xy[1].dtype == torch.int64  # class indices for CrossEntropyLoss
    assert torch.equal(xy[0], torch.from_numpy(x[:8]))  # no shuffle: the original order
    assert next(iter(train_torch.make_loader(x, y.astype(float))))[1].dtype == torch.float32
    binary = next(iter(train_torch.make_loader(x, y, target_dtype=torch.float32)))  # for BCEWithLogitsLoss
    assert binary[1].dtype == torch.float32
    frame = next(iter(train_torch.make_loader(pd.DataFrame(x), pd.Series(y == 1), torch.from_numpy(y))))
    assert [t.dtype for t in frame] == [torch.float32, torch.float32, torch.int64]  # several inputs, a tensor target
    (only_x,) = next(iter(train_torch.make_loader(x, batch_size=len(x))))
    assert only_x.shape == (600, 2)
    with pytest.raises(ValueError, match="same length"):
        train_torch.make_loader(x, y[:-1])
    with pytest.raises(ValueError, match="at least one"):
        train_torch.make_loader()


def test_make_loader_seeded_shuffle_is_reproducible(moons):
    x, y = moons
    idx = np.arange(len(y))

    def orders(seed):
        loader = train_torch.make_loader(x, idx, batch_size=600, shuffle=True, seed=seed)
        return [next(iter(loader))[1].tolist() for _ in range(2)]  # two epochs

    first = orders(1)
    assert first == orders(1)
    assert first[0] != first[1]  # each epoch reshuffles
    assert first != orders(2)
    assert sorted(first[0]) == idx.tolist()


def test_predict_proba_binary_and_multiclass(moons):
    x, _ = moons
    config.seed_everything(0)
    one_logit = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 1))
    p = train_torch.predict_proba(one_logit, x, batch_size=64)
    with torch.no_grad():
        one_logit.eval()
        expected = torch.sigmoid(one_logit(torch.from_numpy(x))).squeeze(-1).numpy()
    assert isinstance(p, np.ndarray) and p.shape == (600,)
    np.testing.assert_allclose(p, expected, rtol=1e-6)
    one_logit.train()
    np.testing.assert_allclose(train_torch.predict_proba(one_logit, x), expected, rtol=1e-6)  # eval mode: no dropout
    loader = train_torch.make_loader(x, np.zeros(len(x)), batch_size=100)  # (inputs, target): target ignored
    np.testing.assert_allclose(train_torch.predict_proba(one_logit, loader), expected, rtol=1e-6)

    three = nn.Linear(2, 3)
    q = train_torch.predict_proba(three, torch.from_numpy(x))
    assert q.shape == (600, 3)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-6)
    with torch.no_grad():
        np.testing.assert_allclose(q, torch.softmax(three(torch.from_numpy(x)), dim=1).numpy(), rtol=1e-6)


def test_torch_layer_table_counts_by_hand():
    from dl_utils import fast_cifar

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Sequential(nn.Conv2d(4, 8, 1), nn.BatchNorm2d(8)), nn.Flatten(), nn.Linear(8 * 16 * 16, 10))
    table = train_torch.layer_table(model, (3, 8 * 4, 8 * 4))
    assert table["layer"].tolist() == ["0", "1", "2", "3.0", "3.1", "4", "5"]
    assert table["output"].tolist()[:3] == ["4×32×32", "4×32×32", "4×16×16"]
    macs = [32 * 32 * 4 * 27, 0, 0, 16 * 16 * 8 * 4, 0, 0, 8 * 16 * 16 * 10]
    assert table["multiply_adds"].tolist() == macs
    assert table["parameters"].sum() == sum(p.numel() for p in model.parameters())
    top = train_torch.layer_table(model, (3, 32, 32), leaves=False)
    assert top["layer"].tolist() == ["0", "1", "2", "3", "4", "5"]
    assert top.loc[3, "multiply_adds"] == macs[3] and top.loc[3, "parameters"] == 4 * 8 + 8 + 16
    assert train_torch.multiply_adds(model) == sum(macs)
    assert train_torch.multiply_adds(fast_cifar.Net()) > 100_000_000
