"""A small VGG-style CNN for CIFAR-10 ablations, and augmentation that lives inside the model.

    model = nn.Sequential(RandomShiftFlip(translate=4, seed=0), SmallCNN(downsample="strided"))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(epochs, warmup_epochs=1))
    history = train_torch.fit(model, train_loader, val_loader, loss_fn, optimizer, epochs, scheduler=scheduler)

:class:`SmallCNN` has three stages of two 3×3 convolutions (conv → batch norm → ReLU) at 32×32, 16×16
and 8×8 pixels, then global average pooling and a linear classifier. Each design choice an ablation
asks about is one constructor argument: how the resolution is halved between stages, batch norm on or
off, dropout before the classifier. :class:`RandomShiftFlip` makes augmentation part of the model:
in training mode it flips and shifts the batch, in eval mode it passes it through, so evaluation and
prediction see the images unchanged and ``train_torch.fit`` needs no augmentation hook. Inputs are
normalised float images ``(N, 3, 32, 32)`` as :func:`dl_utils.fast_cifar.to_tensor` makes them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn

from dl_utils import fast_cifar

Downsample = Literal["maxpool", "strided"]


def conv_block(c_in: int, c_out: int, stride: int = 1, batch_norm: bool = True) -> list[nn.Module]:
    """3×3 convolution (padding 1) → batch norm (if on) → ReLU. The convolution has a bias only without
    batch norm: batch norm subtracts the channel mean, which would cancel any bias, and adds its own shift."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU(inplace=True))
    return layers


class SmallCNN(nn.Module):
    """Three stages of two 3×3 conv blocks, global average pooling, (dropout,) linear classifier.

    ``widths``: channels of the three stages (default 32, 64, 128: about 0.29 M parameters).
    ``downsample``: how the resolution is halved before stages 2 and 3 (32 → 16 → 8 pixels):

    - ``"maxpool"``: a 2×2 max-pool between the stages; each convolution then runs at stride 1.
    - ``"strided"``: no pooling layer; the first convolution of stages 2 and 3 has stride 2.

    What changes between the two: the parameters are identical (pooling has none, and a stride does not
    change a kernel's size). The multiply-adds are identical too: a stride-2 convolution computes its
    outputs at exactly the 16×16 (8×8) positions at which the convolution after the pool does, each
    over the same number of input channels and taps. What differs is what those outputs see. After a
    max-pool, a 3×3 kernel covers 6×6 pixels of the previous stage's features, each summarised by the
    strongest response of its 2×2 window (a little shift-invariance for free); the strided convolution
    covers only 3×3 of them and simply skips every other position, learning its own subsampling. The
    max-pool also costs one extra pass over the largest feature maps, which shows up in time, not in
    multiply-adds.

    ``batch_norm``: a ``BatchNorm2d`` after every convolution (which then has no bias). ``dropout``:
    if > 0, an ``nn.Dropout`` on the pooled 128 features, before the classifier. Convolutions start
    from He (Kaiming) normal initialisation, the classifier from PyTorch's default, biases at zero.
    """

    def __init__(self, widths: Sequence[int] = (32, 64, 128), downsample: Downsample = "maxpool",
                 batch_norm: bool = True, dropout: float = 0.0, num_classes: int = 10):
        super().__init__()
        if len(widths) != 3:
            raise ValueError(f"widths must give three stages, got {tuple(widths)}")
        if downsample not in ("maxpool", "strided"):
            raise ValueError(f"downsample must be 'maxpool' or 'strided', got {downsample!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.widths, self.downsample, self.batch_norm, self.dropout = tuple(widths), downsample, batch_norm, dropout
        layers: list[nn.Module] = []
        c_in = 3
        for stage, width in enumerate(self.widths):
            stride = 1
            if stage > 0:
                if downsample == "maxpool":
                    layers.append(nn.MaxPool2d(2))
                else:
                    stride = 2
            layers += conv_block(c_in, width, stride, batch_norm)
            layers += conv_block(width, width, 1, batch_norm)
            c_in = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Flatten(), *([nn.Dropout(dropout)] if dropout > 0 else []),
                                  nn.Linear(c_in, num_classes))
        for m in self.features.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for images ``(N, 3, H, W)``."""
        return self.head(self.pool(self.features(x)))


class RandomShiftFlip(nn.Module):
    """Training-mode augmentation: mirror a random half of the batch, shift each image by up to
    ``translate`` whole pixels (reflect padding, :func:`dl_utils.fast_cifar.augment`). Identity in eval mode.

    The random numbers come from a generator the module owns, seeded by ``seed``, so two modules with
    the same seed augment the same batches identically, whatever else uses PyTorch's global generator.
    The generator lives on the CPU (the flips and shifts are drawn there and moved to the batch's device).
    """

    def __init__(self, translate: int = 4, flip: bool = True, seed: int = 0):
        super().__init__()
        if translate < 0:
            raise ValueError(f"translate must be ≥ 0, got {translate}")
        self.translate, self.flip, self.seed = translate, flip, seed
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The batch augmented (training mode) or unchanged (eval mode)."""
        if not self.training or (not self.flip and not self.translate):
            return x
        flips = torch.rand(len(x), generator=self.generator) < 0.5
        if not self.flip:
            flips = torch.zeros_like(flips)
        return fast_cifar.augment(x, flips.to(x.device), self.translate, self.generator)

    def extra_repr(self) -> str:
        return f"translate={self.translate}, flip={self.flip}, seed={self.seed}"


def warmup_cosine(epochs: int, warmup_epochs: int = 1) -> Callable[[int], float]:
    """Learning-rate multipliers for a ``LambdaLR`` stepped once per epoch: a linear warm-up over
    ``warmup_epochs``, then a cosine from 1 down towards 0 over the remaining epochs.

    A scheduler stepped per epoch holds each epoch's rate constant, so the continuous one-cycle-like
    curve is sampled at the middle of each epoch: warm-up epoch ``e`` runs at ``(e + 0.5) / warmup_epochs``
    of the peak, and the ``k``-th of the ``n`` cosine epochs at ``(1 + cos(π (k + 0.5) / n)) / 2`` — so no
    epoch is spent at exactly 0. Six epochs with one warm-up epoch: 0.5, 0.98, 0.79, 0.5, 0.21, 0.02.
    """
    if warmup_epochs < 0 or epochs <= warmup_epochs:
        raise ValueError(f"need 0 <= warmup_epochs < epochs, got warmup_epochs={warmup_epochs}, epochs={epochs}")
    n = epochs - warmup_epochs

    def factor(epoch: int) -> float:
        if epoch < warmup_epochs:
            return (epoch + 0.5) / warmup_epochs
        k = min(epoch - warmup_epochs, n - 1)  # LambdaLR also asks for the epoch after the last
        return 0.5 * (1 + math.cos(math.pi * (k + 0.5) / n))

    return factor
