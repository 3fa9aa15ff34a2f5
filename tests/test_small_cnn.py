"""dl_utils.small_cnn: the ablation CNN's shapes, parameter and multiply-add counts, its switches, the
in-model augmentation and the per-epoch learning-rate schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dl_utils import train_torch
from dl_utils.small_cnn import RandomShiftFlip, SmallCNN, warmup_cosine

TINY = (2, 3, 4)


def _count(model: nn.Module, kind: type[nn.Module]) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


@pytest.mark.parametrize("downsample", ["maxpool", "strided"])
def test_output_and_feature_shapes(downsample):
    net = SmallCNN(downsample=downsample)
    x = torch.randn(2, 3, 32, 32)
    assert net(x).shape == (2, 10)
    assert net.features(x).shape == (2, 128, 8, 8)  # 32 → 16 → 8 pixels, 128 channels
    assert SmallCNN(TINY, downsample=downsample, num_classes=5)(x).shape == (2, 5)


def test_parameter_counts_by_hand_and_equal_for_both_downsamplings():
    # convolutions 3·2·9 + 2·2·9 + 2·3·9 + 3·3·9 + 3·4·9 + 4·4·9 = 477; linear 4·5 + 5 = 25
    convs, linear = 477, 25
    with_bn = convs + 2 * (2 + 2 + 3 + 3 + 4 + 4) + linear       # batch norm: a scale and a shift per channel
    without_bn = convs + (2 + 2 + 3 + 3 + 4 + 4) + linear         # a bias per convolution channel instead
    for downsample in ("maxpool", "strided"):
        assert sum(p.numel() for p in SmallCNN(TINY, downsample, num_classes=5).parameters()) == with_bn == 538
        assert sum(p.numel() for p in SmallCNN(TINY, downsample, batch_norm=False,
                                               num_classes=5).parameters()) == without_bn == 520
    default = SmallCNN()
    assert sum(p.numel() for p in default.parameters()) == sum(p.numel() for p in SmallCNN(downsample="strided").parameters())


def test_multiply_adds_by_hand_equal_for_both_downsamplings():
    # output positions × output channels × input channels × 9, at 32², 16² and 8² pixels; linear 4·5
    by_hand = (1024 * 2 * 3 * 9 + 1024 * 2 * 2 * 9 + 256 * 3 * 2 * 9 + 256 * 3 * 3 * 9
               + 64 * 4 * 3 * 9 + 64 * 4 * 4 * 9 + 4 * 5)
    assert train_torch.multiply_adds(SmallCNN(TINY, "maxpool", num_classes=5)) == by_hand == 142_868
    assert train_torch.multiply_adds(SmallCNN(TINY, "strided", num_classes=5)) == by_hand


def test_downsampling_layers():
    pooled, strided = SmallCNN(downsample="maxpool"), SmallCNN(downsample="strided")
    assert _count(pooled, nn.MaxPool2d) == 2 and _count(strided, nn.MaxPool2d) == 0
    assert [c.stride for c in pooled.modules() if isinstance(c, nn.Conv2d)] == [(1, 1)] * 6
    assert [c.stride[0] for c in strided.modules() if isinstance(c, nn.Conv2d)] == [1, 1, 2, 1, 2, 1]


def test_batch_norm_switch_changes_the_modules_and_the_biases():
    on, off = SmallCNN(), SmallCNN(batch_norm=False)
    assert _count(on, nn.BatchNorm2d) == 6 and _count(off, nn.BatchNorm2d) == 0
    assert all(c.bias is None for c in on.modules() if isinstance(c, nn.Conv2d))
    assert all(c.bias is not None for c in off.modules() if isinstance(c, nn.Conv2d))
    assert len(list(on.modules())) != len(list(off.modules()))


def test_dropout_only_when_asked_and_before_the_classifier():
    assert _count(SmallCNN(), nn.Dropout) == 0
    net = SmallCNN(dropout=0.3)
    drops = [m for m in net.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 1 and drops[0].p == 0.3
    assert isinstance(net.head[-2], nn.Dropout) and isinstance(net.head[-1], nn.Linear)
    net.eval()
    x = torch.randn(4, 3, 32, 32)
    assert torch.equal(net(x), net(x))  # dropout is off in eval mode


def test_invalid_arguments():
    with pytest.raises(ValueError, match="downsample"):
        SmallCNN(downsample="avgpool")
    with pytest.raises(ValueError, match="three stages"):
        SmallCNN(widths=(8, 16))
    with pytest.raises(ValueError, match="dropout"):
        SmallCNN(dropout=1.0)
    with pytest.raises(ValueError, match="translate"):
        RandomShiftFlip(translate=-1)


def test_augmentation_is_identity_in_eval_and_not_in_training():
    x = torch.randn(64, 3, 32, 32)
    aug = RandomShiftFlip(translate=4, seed=0)
    assert aug.eval()(x) is x
    out = aug.train()(x)
    assert out.shape == x.shape and not torch.equal(out, x)
    assert RandomShiftFlip(translate=0, flip=False).train()(x) is x


def test_flip_only_mirrors_about_half_of_the_batch():
    x = torch.randn(400, 3, 8, 8)
    out = RandomShiftFlip(translate=0, flip=True, seed=1).train()(x)
    mirrored = torch.tensor([torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x, strict=True)])
    kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x, strict=True)])
    assert bool((mirrored ^ kept).all())
    assert 140 < int(mirrored.sum()) < 260


def test_shift_only_moves_whole_pixels_within_range():
    x = torch.arange(4 * 3 * 8 * 8, dtype=torch.float32).view(4, 3, 8, 8)
    out = RandomShiftFlip(translate=2, flip=False, seed=0).train()(x)
    for i in range(4):
        padded = nn.functional.pad(x[i:i + 1], (2, 2, 2, 2), mode="reflect")[0]
        assert any(torch.equal(out[i], padded[:, a:a + 8, b:b + 8]) for a in range(5) for b in range(5))


def test_augmentation_is_seeded():
    x = torch.randn(32, 3, 32, 32)
    a, b, c = (RandomShiftFlip(seed=s).train() for s in (7, 7, 8))
    first_a, first_b = a(x), b(x)
    assert torch.equal(first_a, first_b) and torch.equal(a(x), b(x))  # the same sequence of batches
    assert not torch.equal(first_a, c(x))
    torch.manual_seed(0)
    torch.rand(10)  # the global generator does not matter
    assert torch.equal(RandomShiftFlip(seed=7).train()(x), first_a)


def test_warmup_cosine_schedule():
    f = warmup_cosine(6, warmup_epochs=1)
    assert [round(f(e), 3) for e in range(6)] == [0.5, 0.976, 0.794, 0.5, 0.206, 0.024]
    assert f(6) == f(5)
    assert warmup_cosine(1, warmup_epochs=0)(0) == pytest.approx(0.5)
    g = warmup_cosine(10, warmup_epochs=2)
    assert [g(0), g(1)] == [0.25, 0.75] and g(2) == pytest.approx(0.5 * (1 + math.cos(math.pi / 16)))
    with pytest.raises(ValueError):
        warmup_cosine(1, warmup_epochs=1)


def test_model_trains_with_fit_and_is_seeded():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 96)
    x = (rng.normal(0, 1, (10, 3, 32, 32))[y] + rng.normal(0, 0.5, (96, 3, 32, 32))).astype(np.float32)

    def run() -> tuple[nn.Module, list[float]]:
        torch.manual_seed(0)
        model = nn.Sequential(RandomShiftFlip(translate=2, seed=0), SmallCNN((4, 8, 8), dropout=0.2))
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(2, 1))
        hist = train_torch.fit(model, train_torch.make_loader(x, y, batch_size=32, shuffle=True, seed=0),
                               train_torch.make_loader(x, y, batch_size=96), nn.CrossEntropyLoss(), opt, 2,
                               scheduler=sched, metrics={"accuracy": train_torch.accuracy}, progress=False)
        return model, hist["val_loss"].tolist()

    (m1, h1), (m2, h2) = run(), run()
    assert h1 == h2 and all(math.isfinite(v) for v in h1)
    for p1, p2 in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(p1, p2)
    m1.eval()
    xt = torch.as_tensor(x[:8])
    assert torch.equal(m1(xt), m1[1](xt))  # eval mode: the augmentation passes the batch through
