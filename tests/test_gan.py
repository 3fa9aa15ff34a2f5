"""dl_utils.gan: shapes, the two generator losses' gradients, a reproducible training epoch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dl_utils import gan, train_torch


def tiny(n_classes=None, batch_norm=True, seed=0):
    torch.manual_seed(seed)
    g = gan.Generator(z_dim=8, width=4, n_classes=n_classes, batch_norm=batch_norm)
    d = gan.Discriminator(width=4, n_classes=n_classes, batch_norm=batch_norm)
    gan.init_weights(g)
    gan.init_weights(d)
    return g, d


@pytest.mark.parametrize("n_classes", [None, 10])
@pytest.mark.parametrize("batch_norm", [True, False])
def test_shapes_and_output_range(n_classes, batch_norm):
    g, d = tiny(n_classes, batch_norm)
    y = torch.arange(6) % 10 if n_classes else None
    images = g(torch.randn(6, 8), y)
    assert images.shape == (6, 1, 28, 28)
    assert images.abs().max() <= 1.0
    assert d(images, y).shape == (6,)


def test_conditional_networks_need_labels():
    g, d = tiny(n_classes=10)
    with pytest.raises(ValueError, match="pass the labels"):
        g(torch.randn(2, 8))
    with pytest.raises(ValueError, match="pass the labels"):
        d(torch.zeros(2, 1, 28, 28))


def test_losses_at_the_equilibrium_and_when_d_wins():
    half = torch.zeros(4)   # logit 0: D(x) = 1/2
    assert gan.discriminator_loss(half, half).item() == pytest.approx(2 * math.log(2))
    assert gan.generator_loss(half).item() == pytest.approx(math.log(2))
    # D confidently rejects the fakes (logit -8): the saturating loss has almost no gradient left
    grads = {}
    for loss in gan.LOSSES:
        logits = torch.full((1,), -8.0, requires_grad=True)
        gan.generator_loss(logits, loss).backward()
        grads[loss] = abs(logits.grad.item())
    assert grads["non_saturating"] > 0.99 and grads["saturating"] < 1e-3
    with pytest.raises(ValueError, match="unknown generator loss"):
        gan.generator_loss(half, "wasserstein")


def test_init_weights_follows_dcgan():
    g, _ = tiny()
    w = g.project.weight
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002


def run_epoch(loss="non_saturating", n_classes=None):
    g, d = tiny(n_classes)
    opt_g, opt_d = gan.adam_pair(g, d)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (64, 1, 28, 28)).astype("float32")
    y = rng.integers(0, 10, 64)
    loader = train_torch.make_loader(x, y, batch_size=16, shuffle=True, seed=0)
    stats = gan.train_epoch(g, d, opt_g, opt_d, loader, loss=loss, seed=1)
    return g, stats


@pytest.mark.parametrize("loss", gan.LOSSES)
def test_train_epoch_is_finite_and_reproducible(loss):
    g1, s1 = run_epoch(loss, n_classes=10)
    g2, s2 = run_epoch(loss, n_classes=10)
    assert set(s1) == {"loss_d", "loss_g", "d_real", "d_fake"}
    assert all(np.isfinite(v) for v in s1.values())
    assert s1 == s2
    for p1, p2 in zip(g1.parameters(), g2.parameters(), strict=True):
        assert torch.equal(p1, p2)


def test_sample_is_seeded_and_keeps_the_mode():
    g, _ = run_epoch()
    g.train()
    a, b = gan.sample(g, 5, seed=3), gan.sample(g, 5, seed=3)
    assert a.shape == (5, 28, 28) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert g.training
    gc, _ = run_epoch(n_classes=10)
    assert gan.sample(gc, 4, labels=[0, 1, 2, 3]).shape == (4, 28, 28)
    with pytest.raises(ValueError, match="pass labels"):
        gan.sample(gc, 4)


def test_interpolate_ends_and_norm():
    z0, z1 = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0])
    path = gan.interpolate(z0, z1, steps=5)
    assert path.shape == (5, 2)
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[-1], z1)
    torch.testing.assert_close(path.norm(dim=1), torch.full((5,), 3.0))       # slerp keeps the norm
    line = gan.interpolate(z0, z1, steps=5, spherical=False)
    assert line[2].norm() < 3.0                                               # a straight line cuts inside
    with pytest.raises(ValueError):
        gan.interpolate(z0, torch.zeros(3))


def test_step_log_and_embedding_path():
    g, d = tiny(n_classes=10)
    opt_g, opt_d = gan.adam_pair(g, d)
    x = np.zeros((32, 1, 28, 28), dtype="float32")
    loader = train_torch.make_loader(x, np.arange(32) % 10, batch_size=8)
    log = []
    gan.train_epoch(g, d, opt_g, opt_d, loader, step_log=log)
    assert len(log) == 4 and all(len(step) == 2 for step in log)
    g.eval()
    z, y = torch.randn(3, 8), torch.tensor([1, 2, 3])
    torch.testing.assert_close(g.from_embedding(z, g.embed(y)), g(z, y))


def test_tile_lays_images_out_row_by_row():
    images = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    mosaic = gan.tile(images, ncols=2, pad=1, fill=-1)
    assert mosaic.shape == (3 * 3 - 1, 2 * 4 - 1)
    np.testing.assert_array_equal(mosaic[3:5, 4:7], images[3])
    assert (mosaic[6:8, 4:7] == -1).all()          # the empty sixth place
    with pytest.raises(ValueError):
        gan.tile(np.zeros((4, 4)))
