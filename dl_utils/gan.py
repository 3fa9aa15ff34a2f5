"""A DCGAN (optionally class-conditional) for 28×28 greyscale images, and its training epoch.

    G, D = Generator(z_dim=64, n_classes=10), Discriminator(n_classes=10)
    opt_g, opt_d = adam_pair(G, D)                        # Adam, lr 2e-4, betas (0.5, 0.999)
    stats = train_epoch(G, D, opt_g, opt_d, loader, loss="non_saturating", seed=epoch)
    images = sample(G, 1000, labels=np.repeat(np.arange(10), 100), seed=0)   # (1000, 28, 28) in [-1, 1]

The architecture follows the DCGAN rules of Radford et al. (2016): no pooling (strided
convolutions in D, transposed convolutions in G), batch norm in both networks (not on G's output
nor D's input), ReLU in G with a tanh output, LeakyReLU(0.2) in D, weights drawn from N(0, 0.02).
Images live in [-1, 1] (tanh's range). Labels enter both networks through learned embeddings: G
concatenates ``embed(y)`` to ``z``; D reads ``embed(y)`` as a second 28×28 input channel.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LOSSES = ("non_saturating", "saturating")


def _norm2d(channels: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


class Generator(nn.Module):
    """z (and a label) → 28×28 image in [-1, 1]: project to 2w×7×7, then two ×2 transposed convolutions."""

    def __init__(self, z_dim: int = 64, width: int = 32, n_classes: int | None = None, embed_dim: int = 16,
                 batch_norm: bool = True) -> None:
        super().__init__()
        self.z_dim, self.n_classes = z_dim, n_classes
        self.embed = nn.Embedding(n_classes, embed_dim) if n_classes else None
        in_dim = z_dim + (embed_dim if n_classes else 0)
        self.project = nn.Linear(in_dim, 2 * width * 7 * 7, bias=not batch_norm)
        self.body = nn.Sequential(
            nn.Unflatten(1, (2 * width, 7, 7)), _norm2d(2 * width, batch_norm), nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=not batch_norm),    # 7 → 14
            _norm2d(width, batch_norm), nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Tanh(),                        # 14 → 28
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is None:
            return self.body(self.project(z))
        if y is None:
            raise ValueError("this generator is conditional: pass the labels y")
        return self.from_embedding(z, self.embed(y))

    def from_embedding(self, z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """Images from latents and label *embeddings* ``(N, embed_dim)``, e.g. mixtures of two classes'."""
        if self.embed is None:
            raise ValueError("an unconditional generator has no label embedding")
        return self.body(self.project(torch.cat([z, e], dim=1)))


class Discriminator(nn.Module):
    """28×28 image (and a label) → one logit: two stride-2 convolutions, then a 7×7 convolution."""

    def __init__(self, width: int = 32, n_classes: int | None = None, batch_norm: bool = True) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.embed = nn.Embedding(n_classes, 28 * 28) if n_classes else None
        in_ch = 2 if n_classes else 1
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, width, 4, 2, 1), nn.LeakyReLU(0.2),                      # 28 → 14, no BN on the input
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=not batch_norm),               # 14 → 7
            _norm2d(2 * width, batch_norm), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 7), nn.Flatten(0),                                # 7 → 1: the logit
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            if y is None:
                raise ValueError("this discriminator is conditional: pass the labels y")
            x = torch.cat([x, self.embed(y).view(-1, 1, 28, 28)], dim=1)
        return self.body(x)


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv/linear weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def adam_pair(generator: nn.Module, discriminator: nn.Module, lr: float = 2e-4,
              beta1: float = 0.5) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """The DCGAN optimizers: Adam with lr 2e-4 and β1 = 0.5 (β2 = 0.999) for each network."""
    return (torch.optim.Adam(generator.parameters(), lr=lr, betas=(beta1, 0.999)),
            torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(beta1, 0.999)))


def generator_loss(fake_logits: torch.Tensor, loss: str = "non_saturating") -> torch.Tensor:
    """G's loss from D's logits on generated images.

    ``non_saturating``: −log D(G(z)) (Goodfellow et al. 2014's practical choice; strong gradient
    while D rejects the fakes). ``saturating``: log(1 − D(G(z))), the minimax game's own term,
    whose gradient vanishes exactly when D confidently rejects the fakes.
    """
    if loss == "non_saturating":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if loss == "saturating":
        return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    raise ValueError(f"unknown generator loss {loss!r}; use one of {LOSSES}")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """−log D(x) − log(1 − D(G(z))), batch means; 2·ln 2 ≈ 1.386 when D outputs ½ everywhere."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def train_epoch(generator: Generator, discriminator: Discriminator, opt_g: torch.optim.Optimizer,
                opt_d: torch.optim.Optimizer, batches: Iterable, *, loss: str = "non_saturating",
                seed: int = 0, step_log: list[tuple[float, float]] | None = None) -> dict[str, float]:
    """One pass over ``batches`` of ``(images,)`` or ``(images, labels)``: a D step, then a G step each.

    The latent vectors come from a ``torch.Generator`` seeded with ``seed`` (on the CPU, then moved
    to the networks' device), so an epoch is reproducible. Returns the epoch's mean ``loss_d``,
    ``loss_g`` (as defined by ``loss``: the saturating loss is negative), ``d_real`` (mean D(x)) and
    ``d_fake`` (mean D(G(z)) before the D step).
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown generator loss {loss!r}; use one of {LOSSES}")
    rng = torch.Generator().manual_seed(seed)
    device = next(generator.parameters()).device
    generator.train()
    discriminator.train()
    sums, n = np.zeros(4), 0
    for batch in batches:
        x = batch[0].to(device)
        y = batch[1].to(device) if generator.n_classes else None
        z = torch.randn(len(x), generator.z_dim, generator=rng).to(device)
        fake = generator(z, y)
        # D step: real images towards 1, generated ones (detached: G is not updated here) towards 0
        real_logits, fake_logits = discriminator(x, y), discriminator(fake.detach(), y)
        loss_d = discriminator_loss(real_logits, fake_logits)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # G step: through the updated D, G's images should be called real
        loss_g = generator_loss(discriminator(fake, y), loss)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        with torch.no_grad():
            d_real, d_fake = torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean()
        values = np.array([loss_d.item(), loss_g.item(), d_real.item(), d_fake.item()])
        sums += len(x) * values
        n += len(x)
        if step_log is not None:
            step_log.append((float(values[0]), float(values[1])))
    if n == 0:
        raise ValueError("no batches: nothing to train on")
    return dict(zip(("loss_d", "loss_g", "d_real", "d_fake"), (sums / n).tolist(), strict=True))


@torch.no_grad()
def sample(generator: Generator, n: int | None = None, *, z: torch.Tensor | None = None,
           labels: np.ndarray | torch.Tensor | None = None, seed: int = 0, batch_size: int = 1000) -> np.ndarray:
    """``(N, 28, 28)`` float32 images in [-1, 1] from ``z`` or ``n`` fresh N(0, I) latents (seeded).

    Runs the generator in eval mode (batch norm uses its running statistics), then restores the mode.
    Fresh latents are drawn on the CPU, so a seed gives the same images on every device.
    """
    if z is None:
        if n is None:
            raise ValueError("pass n (how many images) or z (the latent vectors)")
        z = torch.randn(n, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    y = None
    if generator.n_classes:
        if labels is None:
            raise ValueError("this generator is conditional: pass labels")
        y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        if len(y) != len(z):
            raise ValueError(f"{len(y)} labels for {len(z)} latent vectors")
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    out = [generator(z[i:i + batch_size].to(device), None if y is None else y[i:i + batch_size].to(device)).cpu()
           for i in range(0, len(z), batch_size)]
    generator.train(was_training)
    return torch.cat(out)[:, 0].numpy()


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int = 10, spherical: bool = True) -> torch.Tensor:
    """``steps`` latent vectors from ``z0`` to ``z1`` (both ends included), shape ``(steps, z_dim)``.

    ``spherical`` (slerp) keeps the norm typical of a Gaussian latent along the path; a straight
    line through the middle passes through vectors shorter than any the generator was trained on.
    """
    if z0.shape != z1.shape or z0.ndim != 1:
        raise ValueError(f"z0 and z1 must be vectors of the same length, got {tuple(z0.shape)}, {tuple(z1.shape)}")
    t = torch.linspace(0, 1, steps)[:, None]
    if not spherical:
        return (1 - t) * z0 + t * z1
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm())
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def tile(images: np.ndarray, ncols: int = 8, pad: int = 1, fill: float | None = None) -> np.ndarray:
    """One mosaic ``(rows·(H+pad)−pad, ncols·(W+pad)−pad)`` of ``(N, H, W)`` images, row by row.

    Drawing one array is much lighter than one matplotlib axis per image (figures of many
    sample grids stay small). Gaps are filled with ``fill`` (default: the images' maximum).
    """
    images = np.asarray(images)
    if images.ndim != 3 or len(images) == 0:
        raise ValueError(f"images must be a non-empty (N, H, W) array, got shape {images.shape}")
    n, h, w = images.shape
    nrows = -(-n // ncols)
    out = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad),
                  images.max() if fill is None else fill, dtype=images.dtype)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = img
    return out
