"""In-process predictors built from verified model directories (no HTTP here).

    md = export.load_model_dir("models/churn")
    churn = ChurnPredictor(md)
    churn.predict_proba([record, ...])          # (N,) probabilities of churn
    image = ImagePredictor(export.load_model_dir("models/ants_bees"))
    image.predict_proba(jpeg_bytes)             # (C,) class probabilities

Both are safe to call from several threads at once: inference only reads the weights.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dl_utils import config, export

MIN_SIDE = 32              # pixels; smaller images carry too little to classify
MAX_SIDE = 4096            # pixels; larger ones cost seconds to decode for no gain at 224 px
MAX_IMAGE_BYTES = 5 * 1024 * 1024
IMAGE_FORMATS = ("JPEG", "PNG")


class BadInput(ValueError):
    """A request's input cannot be used; ``status`` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


class Predictor:
    """What every served model has: its directory, metadata and the results record it came from."""

    def __init__(self, md: export.ModelDir):
        self.md = md
        self.name, self.version, self.task = md.name, md.version, md.task
        self.record = results_record(md.manifest)

    def info(self) -> dict[str, Any]:
        """Name, version, provenance and metrics, for ``/models``."""
        m = self.md.manifest
        record = self.record
        return {
            "name": self.name, "task": self.task, "version": self.version, "created": m.get("created"),
            "notebook": m.get("notebook"), "profile": m.get("profile"), "git_commit": m.get("git_commit"),
            "source_clean": m.get("source_clean"), "seed": self.md.model.get("seed"),
            "metrics": record.get("metrics", {}),
            "results_record": {k: record.get(k) for k in ("path", "found", "profile", "passed", "headline",
                                                           "summary", "git_commit", "date")},
            "exported_model_metrics": m.get("metrics", {}),
            "files": {n: f["sha256"] for n, f in m["files"].items()},
            "external": m.get("external", {}),
        }


def results_record(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The ``results/`` record the model's notebook run wrote (``found: False`` if it is not there)."""
    rel = Path(str(manifest.get("results_record") or ""))
    shown = (Path("results") / rel).as_posix()
    if not rel.parts or rel.is_absolute() or ".." in rel.parts:
        return {"path": shown, "found": False}
    path = config.results_dir() / rel
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"path": shown, "found": False}
    keep = ("profile", "passed", "headline", "summary", "git_commit", "date", "metrics")
    return {"path": shown, "found": True, **{k: saved.get(k) for k in keep}}


@dataclass(frozen=True)
class ChurnOutput:
    probability: float
    decision: bool
    label: str


class ChurnPredictor(Predictor):
    """Notebook 15's MLP with its preprocessing and cost-tuned threshold."""

    def __init__(self, md: export.ModelDir):
        if md.task != "binary-tabular":
            raise export.ModelDirError(f"{md.path}: task {md.task!r}, expected 'binary-tabular'")
        super().__init__(md)
        self.spec = md.preprocessing
        arch = md.model["architecture"]
        if arch.get("in_features") != self.spec.get("n_outputs"):
            raise export.ModelDirError(f"{md.path}: the network takes {arch.get('in_features')} inputs but the "
                                       f"preprocessing makes {self.spec.get('n_outputs')}")
        self.net = export.build_mlp(arch, md.weights)
        self.threshold = float(md.model["threshold"])
        self.classes = list(md.model.get("classes", ["negative", "positive"]))

    def predict_proba(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Probability of the positive class for each record (validated records: see ``serving.schemas``)."""
        try:
            x = export.tabular_matrix(self.spec, rows)
        except (KeyError, ValueError, TypeError) as exc:
            raise BadInput(f"cannot encode the input: {exc}") from None
        with torch.inference_mode():
            return torch.sigmoid(self.net(torch.from_numpy(x)).float()).numpy()

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> list[ChurnOutput]:
        """Probabilities and decisions at the exported threshold."""
        return [ChurnOutput(float(p), bool(p >= self.threshold), self.classes[int(p >= self.threshold)])
                for p in self.predict_proba(rows)]

    def info(self) -> dict[str, Any]:
        return {**super().info(), "threshold": self.threshold, "classes": self.classes,
                "inputs": [f["name"] for f in self.spec["features"]]}


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int


def inspect_image(data: bytes, max_bytes: int = MAX_IMAGE_BYTES) -> ImageInfo:
    """Check an upload before decoding it: a PNG or JPEG, not empty, at most ``max_bytes``, each side
    between :data:`MIN_SIDE` and :data:`MAX_SIDE` pixels. Raises :class:`BadInput` saying which."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise BadInput("the uploaded file is empty")
    if len(data) > max_bytes:
        raise BadInput(f"the image is {len(data):,} bytes; at most {max_bytes:,} are accepted", 413)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                fmt, (width, height) = im.format, im.size
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        if isinstance(exc, UnidentifiedImageError):
            raise BadInput("the uploaded file is not an image (PIL cannot read it); send a PNG or JPEG", 415) from None
        raise BadInput(f"the image is too large to decode safely ({exc})") from None
    except Exception as exc:  # a damaged header can raise many things; none of them may become a 500
        raise BadInput(f"the uploaded file is not a readable image ({type(exc).__name__}: {exc})", 415) from None
    if fmt not in IMAGE_FORMATS:
        raise BadInput(f"the image is {fmt}; only {' and '.join(IMAGE_FORMATS)} are accepted", 415)
    if min(width, height) < MIN_SIDE:
        raise BadInput(f"the image is {width}×{height} px; each side must be at least {MIN_SIDE} px")
    if max(width, height) > MAX_SIDE:
        raise BadInput(f"the image is {width}×{height} px; each side must be at most {MAX_SIDE} px")
    return ImageInfo(fmt, width, height)


class ImagePredictor(Predictor):
    """Notebook 17's frozen EfficientNet-Lite0 backbone (the verified pip-installed weights) with the
    exported linear head on its pooled features."""

    def __init__(self, md: export.ModelDir):
        if md.task != "image-classification":
            raise export.ModelDirError(f"{md.path}: task {md.task!r}, expected 'image-classification'")
        super().__init__(md)
        from dl_utils import vision

        spec = md.manifest.get("external", {}).get("backbone")
        if not spec or spec.get("name") != "efficientnet-lite0" or "sha256" not in spec:
            raise export.ModelDirError(f"{md.path}: the manifest names no EfficientNet-Lite0 backbone with a sha256")
        try:
            backbone, _ = vision.load_efficientnet_lite0(image_size=int(spec["image_size"]),
                                                         expected_sha256=spec["sha256"])
        except vision.WeightsError as exc:
            raise export.ModelDirError(f"{md.path}: the backbone is refused: {exc}") from None
        backbone._fc = None    # the ImageNet classifier is not used: the exported head replaces it
        self.backbone = backbone.eval()
        arch = md.model["architecture"]
        if arch.get("kind") != "linear-head":
            raise export.ModelDirError(f"{md.path}: architecture kind {arch.get('kind')!r} is not 'linear-head'")
        self.head = nn.Linear(int(arch["in_features"]), int(arch["out_features"]))
        try:
            self.head.load_state_dict(dict(md.weights), strict=True)
        except RuntimeError as exc:
            raise export.ModelDirError(f"{md.path}: the weights do not fit a {arch} head: {exc}") from None
        self.head.eval()
        self.classes = list(md.model["classes"])
        if len(self.classes) != self.head.out_features:
            raise export.ModelDirError(f"{md.path}: {len(self.classes)} class names for {self.head.out_features} outputs")
        self.spec = md.preprocessing
        self.transform = export.image_transform(self.spec)

    def tensor(self, data: bytes) -> torch.Tensor:
        """The preprocessed image ``(3, crop, crop)``; raises :class:`BadInput` if it cannot be decoded."""
        try:
            return export.image_tensor(data, self.spec, self.transform)
        except Exception as exc:  # truncated or corrupt data past the header
            raise BadInput(f"the image could not be decoded ({type(exc).__name__}: {exc})") from None

    def predict_proba(self, data: bytes) -> np.ndarray:
        """Class probabilities ``(C,)`` for one encoded image (call :func:`inspect_image` first)."""
        x = self.tensor(data).unsqueeze(0)
        with torch.inference_mode():
            features = F.adaptive_avg_pool2d(self.backbone.extract_features(x), 1).flatten(1)
            return self.head(features).float().softmax(1)[0].numpy()

    def info(self) -> dict[str, Any]:
        return {**super().info(), "classes": self.classes, "preprocessing": self.spec}


PREDICTORS = {"binary-tabular": ChurnPredictor, "image-classification": ImagePredictor}


def load_predictor(path: str | Path) -> Predictor:
    """Verify and load a model directory into the predictor for its task."""
    md = export.load_model_dir(path)
    return PREDICTORS[md.task](md)
