"""Small builders shared by several test modules (imported as ``from _helpers import ...``)."""

from __future__ import annotations

import numpy as np


def cifar_batch(n: int, seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    """``n`` random records in the canonical CIFAR-10 binary format, with their images and labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 256, (n, 32, 32, 3)).astype(np.uint8)
    planes = images.transpose(0, 3, 1, 2).reshape(n, -1)  # R plane, G plane, B plane
    return np.concatenate([labels[:, None], planes], axis=1).tobytes(), images, labels
