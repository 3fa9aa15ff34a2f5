"""Fast CIFAR-10 training in the manner of airbench (Keller Jordan, 2024), for notebook 11.

    net = fast_cifar.Net().to(memory_format=torch.channels_last)
    fast_cifar.init_whitening(net, x_train[:5000])
    result = fast_cifar.train(net, x_train, y_train, x_val, y_val, fast_cifar.Recipe(epochs=8), seed=SEED)
    logits = fast_cifar.predict_logits(net, x_test, tta=2)

What is taken from airbench's published method (github.com/KellerJordan/cifar10-airbench): a small
VGG-like network (a frozen 2×2 patch-whitening convolution, three blocks of conv → max-pool → batch
norm → GELU → conv → batch norm → GELU with 64/256/256 channels, a final max-pool and a linear layer
scaled by 1/9); identity ("dirac") initialisation of half of each convolution's filters; batch norm
without a trained scale; label smoothing 0.2; SGD with Nesterov momentum and a triangular learning-rate
schedule over a batch of 1,024 with a 64× larger rate for the batch-norm biases; "lookahead" averaging
of the weights; random 2-pixel translations and alternating horizontal flips; test-time augmentation
with flips and 1-pixel translations. Everything here is fp32 on any device; the inputs are uint8 images
``(N, 32, 32, 3)`` as :func:`dl_utils.data.load_cifar10` returns them.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def to_tensor(x: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 images ``(N, 32, 32, 3)`` → normalised float32 ``(N, 3, 32, 32)`` in channels-last memory."""
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 images (N, H, W, 3), got {x.dtype} {x.shape}")
    t = torch.as_tensor(x, device=device).permute(0, 3, 1, 2).float().div_(255)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    return ((t - mean) / std).contiguous(memory_format=torch.channels_last)


class ConvGroup(nn.Module):
    """conv 3×3 → max-pool 2 → batch norm → GELU → conv 3×3 → batch norm → GELU."""

    def __init__(self, c_in: int, c_out: int, bn_momentum: float = 0.4):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = nn.BatchNorm2d(c_out, momentum=bn_momentum, eps=1e-12)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(c_out, momentum=bn_momentum, eps=1e-12)
        self.act = nn.GELU()
        for norm in (self.norm1, self.norm2):
            norm.weight.requires_grad_(False)  # the scale stays 1: only the bias is trained
        for conv in (self.conv1, self.conv2):
            w = conv.weight.data
            nn.init.dirac_(w[: w.size(1)])  # the first c_in filters start as the identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


class Net(nn.Module):
    """airbench94's network: whitening 2×2 conv (24 filters) → GELU → 3 ConvGroups → max-pool 3 → linear / 9."""

    def __init__(self, widths: tuple[int, int, int] = (64, 256, 256), num_classes: int = 10, scale: float = 1 / 9):
        super().__init__()
        self.whiten = nn.Conv2d(3, 24, 2, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)
        self.act = nn.GELU()
        self.groups = nn.Sequential(ConvGroup(24, widths[0]), ConvGroup(widths[0], widths[1]),
                                    ConvGroup(widths[1], widths[2]))
        self.pool = nn.MaxPool2d(3)
        self.fc = nn.Linear(widths[2], num_classes, bias=False)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.groups(self.act(self.whiten(x))))
        return self.fc(torch.flatten(x, 1)) * self.scale


@torch.no_grad()
def init_whitening(net: Net, x: np.ndarray, eps: float = 5e-4) -> torch.Tensor:
    """Set the first layer to whiten 2×2×3 patches of ``x`` (uint8 training images): the eigenvectors of
    the patch covariance scaled by 1/√(eigenvalue + eps), and their negatives. Returns the eigenvalues."""
    t = to_tensor(x).contiguous()
    patches = t.unfold(2, 2, 1).unfold(3, 2, 1)                  # N, 3, 31, 31, 2, 2
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 12).double()
    cov = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)
    filters = (eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]).reshape(12, 3, 2, 2)
    net.whiten.weight.copy_(torch.cat([filters, -filters]).float())
    return eigenvalues.float()


def augment(x: torch.Tensor, flips: torch.Tensor, translate: int, generator: torch.Generator) -> torch.Tensor:
    """Flip the images marked in ``flips`` and shift each by up to ``translate`` pixels (reflect padding)."""
    x = torch.where(flips.view(-1, 1, 1, 1), x.flip(-1), x)
    if not translate:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (translate,) * 4, mode="reflect")
    dx = torch.randint(0, 2 * translate + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * translate + 1, (n,), generator=generator)
    out = torch.empty_like(x)
    for i in range(2 * translate + 1):
        for j in range(2 * translate + 1):
            sel = (dy == i) & (dx == j)
            if sel.any():
                out[sel] = padded[sel, :, i:i + h, j:j + w]
    return out


@dataclass(frozen=True)
class Recipe:
    """airbench94's published hyper-parameters (per 1,024 images), with ``epochs`` as the budget."""

    epochs: float = 8.0
    batch_size: int = 1024
    lr: float = 11.5
    momentum: float = 0.85
    weight_decay: float = 0.0153
    bias_scaler: float = 64.0
    label_smoothing: float = 0.2
    whiten_bias_epochs: int = 3
    translate: int = 2
    warmup: float = 0.23
    lookahead_every: int = 5


@dataclass
class TrainResult:
    """Per-epoch history and timing of one :func:`train` run."""

    history: list[dict[str, float]]
    train_seconds: float
    images_seen: int
    recipe: dict

    @property
    def images_per_second(self) -> float:
        """Training images per second over the whole run (validation passes excluded)."""
        return self.images_seen / self.train_seconds


def _optimizer(net: Net, recipe: Recipe) -> torch.optim.SGD:
    scale = 1024 * (1 + 1 / (1 - recipe.momentum))
    lr = recipe.lr / scale
    wd = recipe.weight_decay * recipe.batch_size / scale
    biases = [p for name, p in net.named_parameters() if p.requires_grad and "norm" in name]
    others = [p for name, p in net.named_parameters() if p.requires_grad and "norm" not in name]
    # PyTorch multiplies weight decay by the learning rate; dividing by it makes the decay per step
    # ``wd`` times the schedule's factor, the same for both groups (airbench's convention).
    groups = [{"params": biases, "lr": lr * recipe.bias_scaler, "weight_decay": wd / (lr * recipe.bias_scaler)},
              {"params": others, "lr": lr, "weight_decay": wd / lr}]
    return torch.optim.SGD(groups, momentum=recipe.momentum, nesterov=True)


@torch.no_grad()
def predict_logits(net: nn.Module, x: np.ndarray | torch.Tensor, tta: int = 0, batch_size: int = 2000) -> np.ndarray:
    """Logits for uint8 images (or :func:`to_tensor` output). ``tta``: 0 none, 1 + horizontal flip,
    2 + 1-pixel translations (airbench's level 2: half weight on the image and its mirror, half on
    the two shifted copies and their mirrors)."""
    t = to_tensor(x) if isinstance(x, np.ndarray) else x
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    outs = []
    for i in range(0, len(t), batch_size):
        b = t[i:i + batch_size].to(device)
        mirror = (net(b) + net(b.flip(-1))) / 2 if tta >= 1 else net(b)
        if tta >= 2:
            p = F.pad(b, (1,) * 4, mode="reflect")
            shifted = [p[:, :, :-2, :-2], p[:, :, 2:, 2:]]
            trans = sum((net(s) + net(s.flip(-1))) / 2 for s in shifted) / 2
            mirror = (mirror + trans) / 2
        outs.append(mirror.float().cpu())
    net.train(was_training)
    return torch.cat(outs).numpy()


def train(net: Net, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray | None = None,
          y_val: np.ndarray | None = None, recipe: Recipe = Recipe(), *, seed: int = 0,
          device: torch.device | str = "cpu", progress: bool = True) -> TrainResult:
    """Train ``net`` (whitening already initialised) with ``recipe``; validate after each epoch.

    Seeded: the same ``seed``, data and device give the same weights. Returns the history (epoch,
    train loss and accuracy, val accuracy without TTA, learning rate, seconds) and the timing.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = to_tensor(x_train), torch.as_tensor(np.asarray(y_train), dtype=torch.long)
    xv = to_tensor(x_val) if x_val is not None else None
    n = len(yt)
    steps_per_epoch = int(np.ceil(n / recipe.batch_size))
    total = int(np.ceil(recipe.epochs * steps_per_epoch))
    opt = _optimizer(net, recipe)
    base = [g["lr"] for g in opt.param_groups]
    sched = np.interp(np.arange(total + 1), [0, int(recipe.warmup * total), total], [0.2, 1.0, 0.07])
    alphas = 0.95 ** recipe.lookahead_every * (np.arange(total + 1) / total) ** 3
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing, reduction="sum")
    net.to(device, memory_format=torch.channels_last).train()
    ema = [p.detach().clone() for p in net.state_dict().values()]  # the lookahead average, on the device
    # Alternating flips: a random half of the images is mirrored in even epochs, the other half in odd
    # ones, so every image is seen both ways within any two epochs.
    first_flips = torch.rand(n, generator=gen) < 0.5
    history, step, seconds, seen = [], 0, 0.0, 0
    bar = tqdm(total=total, desc="training", unit="step", disable=not progress, leave=False)
    epoch = 0
    while step < total:
        start = time.perf_counter()
        net.whiten.bias.requires_grad_(epoch < recipe.whiten_bias_epochs)
        order = torch.randperm(n, generator=gen)
        flips = first_flips if epoch % 2 == 0 else ~first_flips
        loss_sum = correct = count = 0.0
        for i in range(steps_per_epoch):
            if step >= total:
                break
            idx = order[i * recipe.batch_size:(i + 1) * recipe.batch_size]
            xb = augment(xt[idx], flips[idx], recipe.translate, gen)
            xb = xb.to(device).contiguous(memory_format=torch.channels_last)
            yb = yt[idx].to(device)
            for g, lr in zip(opt.param_groups, base, strict=True):
                g["lr"] = lr * sched[step]
            out = net(xb)
            loss = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step % recipe.lookahead_every == 0 or step == total:
                alpha = 1.0 if step == total else float(alphas[step])
                with torch.no_grad():  # lookahead: pull the weights towards their running average
                    for e, p in zip(ema, net.state_dict().values(), strict=True):
                        if p.dtype.is_floating_point:
                            e.lerp_(p, 1 - alpha)
                            p.copy_(e)
            loss_sum += float(loss.detach())
            correct += float((out.detach().argmax(1) == yb).sum())
            count += len(yb)
            bar.update(1)
        seconds += time.perf_counter() - start
        seen += int(count)
        row = {"epoch": epoch + 1, "loss": loss_sum / count, "accuracy": correct / count,
               "lr": float(sched[min(step, total)] * base[1]), "seconds": seconds}
        if xv is not None and y_val is not None:
            row["val_accuracy"] = float((predict_logits(net, xv).argmax(1) == np.asarray(y_val)).mean())
        history.append(row)
        bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k in ("loss", "val_accuracy")})
        epoch += 1
    bar.close()
    return TrainResult(history, seconds, seen, asdict(recipe))
