"""Residual networks built from their blocks: the CIFAR-style ResNet (and its plain twin) and ResNet-50.

    net = cifar_resnet(depth=20)                    # He et al. (2016), section 4.2: 6n + 2 layers, 16-32-64 channels
    plain = cifar_resnet(depth=20, residual=False)  # the same layers without the shortcuts
    r50 = resnet50()                                # ImageNet ResNet-50: 25,557,032 parameters

The layer names of :class:`Bottleneck` and :class:`ResNet` follow ``torchvision.models.resnet`` (``conv1``,
``bn1``, ``layer1`` … ``layer4``, ``downsample``, ``fc``), so a torchvision state dict loads into
:func:`resnet50` unchanged; the tests use that to check the whole network against torchvision, output
for output. The CIFAR network uses projection shortcuts (1×1 convolution + batch norm) where the
shape changes, as torchvision does, rather than the paper's zero-padding "option A".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    """A 3×3 convolution with padding 1 and no bias (batch norm follows)."""
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Module | None:
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))


class BasicBlock(nn.Module):
    """Two 3×3 convolutions; ``residual=True`` adds the input (or its projection) before the last ReLU."""

    expansion = 1

    def __init__(self, c_in: int, c_out: int, stride: int = 1, residual: bool = True):
        super().__init__()
        self.residual = residual
        self.conv1, self.bn1 = conv3x3(c_in, c_out, stride), nn.BatchNorm2d(c_out)
        self.conv2, self.bn2 = conv3x3(c_out, c_out), nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(c_in, c_out, stride) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 (carries the stride, as torchvision's "ResNet v1.5") → 1×1 expand ×4, plus the shortcut."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1, residual: bool = True):
        super().__init__()
        c_out = width * self.expansion
        self.residual = residual
        self.conv1, self.bn1 = nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = conv3x3(width, width, stride), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, c_out, 1, bias=False), nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(c_in, c_out, stride) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class ResNet(nn.Module):
    """The ImageNet ResNet: a 7×7 stride-2 stem and max-pool, four stages of blocks, global pooling, ``fc``."""

    def __init__(self, block: type[BasicBlock | Bottleneck], layers: Sequence[int], num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1, self.relu = nn.BatchNorm2d(64), nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c_in, stages = 64, []
        for i, (n, width) in enumerate(zip(layers, (64, 128, 256, 512), strict=True)):
            blocks = []
            for j in range(n):
                blocks.append(block(c_in, width, stride=2 if (i > 0 and j == 0) else 1))
                c_in = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet50(num_classes: int = 1000) -> ResNet:
    """ResNet-50: bottleneck stages of 3, 4, 6 and 3 blocks (25,557,032 parameters with 1,000 classes)."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes)


class CifarResNet(nn.Module):
    """He et al.'s CIFAR network: a 3×3 stem, three stages of ``n`` basic blocks (16, 32, 64 channels at
    ``width=16``; 32×32 → 16×16 → 8×8), global pooling and a linear classifier: ``6n + 2`` weighted layers.
    ``residual=False`` gives the plain network of the same depth and width (no shortcuts at all)."""

    def __init__(self, depth: int = 20, num_classes: int = 10, width: int = 16, residual: bool = True):
        super().__init__()
        if (depth - 2) % 6 or depth < 8:
            raise ValueError(f"depth must be 6n + 2 with n ≥ 1 (8, 14, 20, 32, 56, …), got {depth}")
        n = (depth - 2) // 6
        self.stem = nn.Sequential(conv3x3(3, width), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        c_in, stages = width, []
        for i in range(3):
            c_out = width * 2 ** i
            stages.append(nn.Sequential(*[BasicBlock(c_in if j == 0 else c_out, c_out,
                                                     stride=2 if (i > 0 and j == 0) else 1, residual=residual)
                                          for j in range(n)]))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def cifar_resnet(depth: int = 20, num_classes: int = 10, width: int = 16, residual: bool = True) -> CifarResNet:
    """A CIFAR ResNet of ``depth`` = 6n + 2 layers, or its plain twin with ``residual=False``."""
    return CifarResNet(depth, num_classes, width, residual)


def _init(model: nn.Module) -> None:
    # He (Kaiming) normal initialisation for convolutions, batch norm at γ = 1, β = 0: as torchvision does
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def layer_gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """The gradient norm of each convolution's weight for one cross-entropy step on ``(x, y)``, in forward
    order: at initialisation, how much signal reaches each depth (the degradation study of notebook 11)."""
    model.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()
    norms = {name: float(m.weight.grad.norm()) for name, m in model.named_modules()
             if isinstance(m, nn.Conv2d) and m.weight.grad is not None and m.kernel_size != (1, 1)}
    model.zero_grad(set_to_none=True)
    return norms
