"""dl_utils.fast_cifar: the airbench-style network, whitening, augmentation, seeded training and TTA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dl_utils import fast_cifar


def _images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.uint8)
    base = rng.integers(0, 256, (10, 32, 32, 3))
    x = np.clip(base[y] + rng.normal(0, 30, (n, 32, 32, 3)), 0, 255).astype(np.uint8)
    return x, y


def test_to_tensor_normalises_to_channels_last_and_checks_input():
    x, _ = _images(4)
    t = fast_cifar.to_tensor(x)
    assert t.shape == (4, 3, 32, 32) and t.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(t[0, 1, 0, 0], torch.tensor((x[0, 0, 0, 1] / 255 - 0.4822) / 0.2435, dtype=torch.float32))
    with pytest.raises(ValueError, match="uint8"):
        fast_cifar.to_tensor(x.astype(np.float32))


def test_network_shape_parameters_and_dirac_start():
    net = fast_cifar.Net()
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    # whitening bias 24; convs 24·64·9 + 64·64·9 + 64·256·9 + 256·256·9 + 2·256·256·9; BN biases; fc 2,560
    convs = 9 * (24 * 64 + 64 * 64 + 64 * 256 + 256 * 256 + 256 * 256 + 256 * 256)
    assert trainable == 24 + convs + 2 * (64 + 256 + 256) + 2560
    w = net.groups[1].conv1.weight
    assert torch.equal(w[0, 0], torch.tensor([[0.0, 0, 0], [0, 1, 0], [0, 0, 0]]))


def test_whitening_decorrelates_patches():
    x, _ = _images(64)
    net = fast_cifar.Net()
    eig = fast_cifar.init_whitening(net, x, eps=0.0)
    assert eig.shape == (12,) and bool((eig > 0).all())
    out = torch.nn.functional.conv2d(fast_cifar.to_tensor(x).contiguous(), net.whiten.weight[:12])
    flat = out.permute(0, 2, 3, 1).reshape(-1, 12).double()
    cov = flat.T @ flat / len(flat)
    assert torch.allclose(cov, torch.eye(12, dtype=torch.float64), atol=1e-3)


def test_augment_flips_marked_images_and_shifts_whole_pixels():
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    flips = torch.tensor([True, False])
    out = fast_cifar.augment(x, flips, translate=0, generator=gen)
    assert torch.equal(out[0], x[0].flip(-1)) and torch.equal(out[1], x[1])
    shifted = fast_cifar.augment(x, torch.tensor([False, False]), translate=2, generator=gen)
    for i in range(2):
        padded = torch.nn.functional.pad(x[i:i + 1], (2, 2, 2, 2), mode="reflect")[0]
        windows = [padded[:, a:a + 8, b:b + 8] for a in range(5) for b in range(5)]
        assert any(torch.equal(shifted[i], w) for w in windows)


def test_training_is_seeded_learns_and_tta_keeps_shapes():
    x, y = _images(256)
    recipe = fast_cifar.Recipe(epochs=2, batch_size=64)

    def run() -> tuple[fast_cifar.Net, fast_cifar.TrainResult]:
        torch.manual_seed(0)
        net = fast_cifar.Net(widths=(16, 32, 32))
        fast_cifar.init_whitening(net, x)
        return net, fast_cifar.train(net, x, y, x[:64], y[:64], recipe, seed=1, progress=False)

    net_a, res_a = run()
    net_b, res_b = run()
    for pa, pb in zip(net_a.state_dict().values(), net_b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    assert [r["epoch"] for r in res_a.history] == [1, 2] and res_a.images_seen == 512
    assert res_a.history[-1]["val_accuracy"] > 0.3  # ten well-separated synthetic classes
    assert res_a.images_per_second > 0
    for level in (0, 1, 2):
        logits = fast_cifar.predict_logits(net_a, x[:10], tta=level)
        assert logits.shape == (10, 10) and np.isfinite(logits).all()

