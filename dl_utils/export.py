"""Model directories: what a notebook exports for serving, and how it is read back and verified.

A notebook writes one folder per model with everything inference needs and nothing pickled::

    models/<name>/
        manifest.json          name, task, version, notebook, profile, commit, results record, metrics,
                               the sha256 and size of every file below, external files (the backbone)
        model.json             architecture, classes, decision threshold, ...
        weights.safetensors    the trained tensors (safetensors: no code, only arrays)
        preprocessing.json     how raw inputs become the network's input (plain numbers and lists)
        examples.json          a few test inputs with the notebook's own predictions for them

    path = export.save_model_dir("churn", notebook="15_customer_churn", profile=PROFILE, task="binary-tabular",
                                 weights=model, model={...}, preprocessing={...}, examples={...})
    md = export.load_model_dir(path)        # every file's sha256 checked before it is parsed

Where it goes follows the rule of ``dl_utils.results``: the committed ``models/<name>/`` only from
a documented run (``DL_RESULTS_OFFICIAL=1`` and the full profile, i.e. ``make execute``); any
other run writes the git-ignored ``models/local/<name>/`` and says so. ``DL_MODELS_DIR`` moves
the whole ``models/`` folder (the service reads it too).

The tabular helpers turn a fitted scikit-learn ``ColumnTransformer`` (imputer → function →
scaler pipelines, one-hot encoders, passthrough columns) into JSON and apply that JSON to new
records without scikit-learn; the image helpers describe and apply the decode → resize → crop →
normalise steps of :mod:`dl_utils.vision`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import config

FORMAT = "dl-in-practice-model/1"
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
JSON_FILES = ("model.json", "preprocessing.json", "examples.json")
TASKS = ("binary-tabular", "image-classification")


class ModelDirError(RuntimeError):
    """A model directory is missing, incomplete, of an unknown format, or a file's hash is wrong."""


# --------------------------------------------------------------------------- where


def models_dir() -> Path:
    """The models folder: ``DL_MODELS_DIR`` or ``models/`` in the repository."""
    return Path(os.environ.get("DL_MODELS_DIR") or config.REPO_ROOT / "models").expanduser().resolve()


def model_dir_path(name: str, profile: str) -> Path:
    """Where an export goes: ``models/<name>`` for an official full run, else ``models/local/<name>``."""
    _check_name(name)
    if os.environ.get("DL_RESULTS_OFFICIAL") == "1" and profile == "full":
        return models_dir() / name
    return models_dir() / "local" / name


def shown(path: str | Path) -> str:
    """A path for printing that does not reveal the machine's directories (``$DL_MODELS_DIR/…`` outside the repository)."""
    return config.shown_path(path, (models_dir(), "$DL_MODELS_DIR"))


def _check_name(name: str) -> None:
    if not name or name in {".", "..", "local"} or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"model name {name!r}: use letters, digits, '_' and '-' (and not 'local')")


# --------------------------------------------------------------------------- hashing and JSON


def sha256_bytes(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _jsonable(value: Any) -> Any:
    """NumPy/torch scalars and arrays, tuples and paths as plain JSON values; NaN → None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return value.as_posix()
    return value


def _dumps(obj: Any) -> bytes:
    return (json.dumps(_jsonable(obj), indent=1, allow_nan=False) + "\n").encode()


def records(frame) -> list[dict[str, Any]]:  # frame: pandas.DataFrame
    """The rows of a DataFrame as JSON records (plain Python values; missing values → None)."""
    return json.loads(frame.to_json(orient="records"))


# --------------------------------------------------------------------------- save


def _state_dict(weights: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = weights.state_dict() if isinstance(weights, nn.Module) else dict(weights)
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def save_model_dir(name: str, *, notebook: str, profile: str, task: str,
                   weights: nn.Module | Mapping[str, torch.Tensor], model: dict[str, Any],
                   preprocessing: dict[str, Any], examples: dict[str, Any],
                   metrics: dict[str, float] | None = None, external: dict[str, dict[str, Any]] | None = None,
                   path: str | Path | None = None, quiet: bool = False) -> Path:
    """Write a model directory and return its path.

    ``weights``: a module (its ``state_dict``) or a dict of tensors, stored as safetensors.
    ``model``: architecture, classes, threshold, ... (``model.json``). ``preprocessing``: JSON that
    turns a raw input into the network's input (see :func:`tabular_preprocessing`,
    :func:`image_preprocessing`). ``examples``: ``{"inputs": [...], "probabilities": [...]}``, a few
    test inputs and the notebook's predictions for them. ``metrics``: this exported model's own
    numbers. ``external``: files the model needs that are not copied into the folder (the
    pip-installed backbone), each ``{"file", "sha256", ...}``; the loader refuses a different file.
    ``path`` overrides :func:`model_dir_path` (tests). The folder is written under a temporary
    name and renamed, so a reader never sees half of it.
    """
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {TASKS}")
    if not {"inputs", "probabilities"} <= set(examples):
        raise ValueError("examples needs 'inputs' and 'probabilities'")
    if len(examples["inputs"]) != len(examples["probabilities"]):
        raise ValueError(f"{len(examples['inputs'])} example inputs but {len(examples['probabilities'])} predictions")
    from safetensors.torch import save as save_safetensors

    from . import results

    dest = Path(path) if path is not None else model_dir_path(name, config.get_profile(profile))
    blobs = {WEIGHTS: save_safetensors(_state_dict(weights)), "model.json": _dumps(model),
             "preprocessing.json": _dumps(preprocessing), "examples.json": _dumps(examples)}
    files = {n: {"sha256": sha256_bytes(b), "bytes": len(b)} for n, b in sorted(blobs.items())}
    commit, clean = results.source_state(notebook)
    record = results.output_path(notebook, config.get_profile(profile))
    try:
        record_rel = record.relative_to(config.results_dir()).as_posix()
    except ValueError:
        record_rel = record.name
    manifest = {
        "format": FORMAT, "name": name, "task": task,
        "version": _version(files, external or {}),
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "notebook": notebook, "profile": config.get_profile(profile), "git_commit": commit, "source_clean": clean,
        "results_record": record_rel, "metrics": metrics or {}, "files": files, "external": external or {},
    }
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    tmp.chmod(0o755)   # mkdtemp makes it private; a service running as another user must read it
    try:
        for n, b in blobs.items():
            (tmp / n).write_bytes(b)
        (tmp / MANIFEST).write_bytes(_dumps(manifest))
        old = None
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            dest.rename(old)
        tmp.rename(dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if not quiet:
        where = "" if dest.parent == models_dir() else " (only `make execute` writes the committed models/)"
        kb = sum(f["bytes"] for f in files.values()) / 1e3
        print(f"model '{name}' (version {manifest['version']}, {kb:.0f} kB) exported to {shown(dest)}{where}")
    return dest


def _version(files: dict[str, dict[str, Any]], external: dict[str, Any]) -> str:
    """A content address: the first 12 hex digits of a sha256 over the files' hashes (and the
    external files' entries), so an identical export keeps its version and any change gets a new one."""
    text = "".join(f"{n}:{f['sha256']}\n" for n, f in sorted(files.items()))
    if external:
        text += json.dumps(_jsonable(external), sort_keys=True)
    return sha256_bytes(text.encode())[:12]


# --------------------------------------------------------------------------- load and verify


@dataclass
class ModelDir:
    """A verified model directory: the manifest, the parsed JSON files and the weights."""

    path: Path
    manifest: dict[str, Any]
    model: dict[str, Any]
    preprocessing: dict[str, Any]
    examples: dict[str, Any]
    weights: dict[str, torch.Tensor] = field(repr=False)

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def task(self) -> str:
        return self.manifest["task"]


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of a model directory, checked for format and file names (no hashing)."""
    path = Path(path)
    file = path / MANIFEST
    if not file.is_file():
        raise ModelDirError(f"{path} is not a model directory: {MANIFEST} is missing. Export the model by running "
                            "its notebook (see the README, 'Serving a model').")
    try:
        manifest = json.loads(file.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelDirError(f"{file}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ModelDirError(f"{file}: format {got!r}, expected {FORMAT!r}")
    files = manifest.get("files")
    needed = {WEIGHTS, *JSON_FILES}
    if not isinstance(files, dict) or not needed <= set(files):
        missing = sorted(needed - set(files or {}))
        raise ModelDirError(f"{file}: the manifest lists no hash for {missing}")
    for n, entry in files.items():
        if Path(n).name != n or n in {".", ".."} or not isinstance(entry, dict) or "sha256" not in entry:
            raise ModelDirError(f"{file}: bad file entry {n!r}")
    if manifest.get("task") not in TASKS:
        raise ModelDirError(f"{file}: unknown task {manifest.get('task')!r}; this code serves {TASKS}")
    return manifest


def _read_verified(path: Path, name: str, expected: str) -> bytes:
    file = path / name
    if not file.is_file():
        raise ModelDirError(f"{file} is missing (the manifest lists it with sha256 {expected})")
    data = file.read_bytes()
    actual = sha256_bytes(data)
    if actual != expected:
        raise ModelDirError(f"sha256 mismatch for {file}: expected {expected}, got {actual}. The model directory is "
                            "damaged or was edited after export; export it again by running its notebook.")
    return data


def verify_model_dir(path: str | Path) -> dict[str, Any]:
    """Check every file of a model directory against the manifest's sha256; return the manifest."""
    path = Path(path)
    manifest = read_manifest(path)
    for n, entry in manifest["files"].items():
        _read_verified(path, n, entry["sha256"])
    return manifest


def load_model_dir(path: str | Path) -> ModelDir:
    """Read a model directory, refusing it (:class:`ModelDirError`, naming the file and both hashes)
    when any file differs from its manifest. Each file is hashed and parsed from the same bytes;
    the weights are read with safetensors (tensors only)."""
    from safetensors.torch import load as load_safetensors

    path = Path(path)
    manifest = read_manifest(path)
    blobs = {n: _read_verified(path, n, e["sha256"]) for n, e in manifest["files"].items()}
    parsed = {}
    for n in JSON_FILES:
        try:
            parsed[n] = json.loads(blobs[n])
        except ValueError as exc:
            raise ModelDirError(f"{path / n}: not valid JSON ({exc})") from None
    try:
        weights = load_safetensors(blobs[WEIGHTS])
    except Exception as exc:  # safetensors raises its own error types
        raise ModelDirError(f"{path / WEIGHTS}: not a safetensors file ({exc})") from None
    return ModelDir(path, manifest, parsed["model.json"], parsed["preprocessing.json"], parsed["examples.json"], weights)


# --------------------------------------------------------------------------- networks


class MLP(nn.Module):
    """A feed-forward binary classifier: Linear → ReLU (→ Dropout) per hidden layer, then one logit.

    The layer layout (``net.0``, ``net.1``, ...) is that of notebook 15's ``ChurnNet``, so its
    ``state_dict`` loads as is. ``forward`` returns logits of shape ``(N,)``.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def mlp_architecture(in_features: int, hidden: Sequence[int], dropout: float = 0.0) -> dict[str, Any]:
    """The ``model.json`` architecture entry of an :class:`MLP`."""
    return {"kind": "mlp", "in_features": int(in_features), "hidden": [int(h) for h in hidden],
            "dropout": float(dropout), "activation": "relu", "output": "one logit (sigmoid: probability of class 1)"}


def build_mlp(architecture: dict[str, Any], weights: Mapping[str, torch.Tensor]) -> MLP:
    """An :class:`MLP` from its architecture entry, with ``weights`` loaded strictly, in eval mode."""
    if architecture.get("kind") != "mlp":
        raise ModelDirError(f"architecture kind {architecture.get('kind')!r} is not 'mlp'")
    net = MLP(architecture["in_features"], architecture["hidden"], architecture.get("dropout", 0.0))
    try:
        net.load_state_dict(dict(weights), strict=True)
    except RuntimeError as exc:
        raise ModelDirError(f"the weights do not fit the architecture {architecture}: {exc}") from None
    return net.eval()


def efficientnet_lite0_backbone(image_size: int) -> dict[str, Any]:
    """The ``external`` entry for the pip-installed EfficientNet-Lite0 weights (file, sha256, image size)."""
    from . import vision

    return {"name": "efficientnet-lite0", "file": vision.EFFICIENTNET_LITE0_FILE,
            "sha256": vision.EFFICIENTNET_LITE0_SHA256, "package": vision.WEIGHTS_PACKAGE,
            "code_package": vision.MODEL_PACKAGE, "image_size": int(image_size),
            "features": "global average pool of the last feature map", "feature_dim": vision.FEATURE_DIM}


# --------------------------------------------------------------------------- tabular preprocessing


def tabular_preprocessing(column_transformer, frame, minimum: dict[str, float | None] | None = None) -> dict[str, Any]:
    """A fitted ``ColumnTransformer`` as JSON: the network's input columns in order.

    Supported blocks: a pipeline of ``SimpleImputer`` (its fitted fill value), ``FunctionTransformer``
    of ``np.log1p`` and ``StandardScaler`` (means and scales) on numeric columns;
    ``OneHotEncoder`` (its ``categories_`` and dropped category, exactly as fitted); ``"passthrough"``.
    ``frame`` is the training DataFrame, read for each column's type (integer or number), the
    values of passthrough columns, and a lower bound: ``minimum[col]``, else 0 for a numeric
    column whose training values are all ≥ 0 (counts, amounts of money), else none.
    Anything else raises ``ValueError``: a spec that silently differed from the pipeline would be worse.
    """
    from sklearn.pipeline import Pipeline

    minimum = minimum or {}
    features: list[dict[str, Any]] = []
    for block, transformer, columns in column_transformer.transformers_:
        if transformer == "drop" or (block == "remainder" and not len(columns)):
            continue
        columns = [frame.columns[c] if isinstance(c, (int, np.integer)) else c for c in columns]
        if _is_identity(transformer):   # fitted "passthrough" blocks become FunctionTransformer(func=None)
            for c in columns:
                values = sorted(frame[c].dropna().unique().tolist())
                features.append({"name": c, "kind": "passthrough", "dtype": _dtype(frame[c]),
                                 "allowed": values if len(values) <= 10 else None})
            continue
        steps = transformer.steps if isinstance(transformer, Pipeline) else [(block, transformer)]
        kinds = [type(s).__name__ for _, s in steps]
        if kinds == ["OneHotEncoder"]:
            enc = steps[0][1]
            drops = enc.drop_idx_ if enc.drop_idx_ is not None else [None] * len(columns)
            for c, cats, drop in zip(columns, enc.categories_, drops, strict=True):
                cats = [_plain(v) for v in cats]
                features.append({"name": c, "kind": "categorical", "categories": cats,
                                 "drop": None if drop is None else cats[int(drop)]})
            continue
        numeric = [{"name": c, "kind": "numeric", "dtype": _dtype(frame[c]), "impute": None, "transform": None,
                    "mean": 0.0, "scale": 1.0} for c in columns]
        for _, step in steps:
            kind = type(step).__name__
            if kind == "SimpleImputer":
                for f, v in zip(numeric, step.statistics_, strict=True):
                    f["impute"] = float(v)
            elif _is_identity(step):
                continue
            elif kind == "FunctionTransformer":
                if step.func is not np.log1p or step.kw_args:
                    raise ValueError(f"FunctionTransformer({step.func!r}) is not supported (only np.log1p)")
                for f in numeric:
                    f["transform"] = "log1p"
            elif kind == "StandardScaler":
                means = step.mean_ if step.with_mean else np.zeros(len(numeric))
                scales = step.scale_ if step.with_std else np.ones(len(numeric))
                for f, m, s in zip(numeric, means, scales, strict=True):
                    f["mean"], f["scale"] = float(m), float(s)
            else:
                raise ValueError(f"{kind} in block {block!r} is not supported by tabular_preprocessing")
        for f in numeric:
            c = f["name"]
            f["nullable"] = f["impute"] is not None
            low = minimum.get(c, 0.0 if float(np.nanmin(frame[c].to_numpy(dtype=float))) >= 0 else None)
            f["minimum"] = None if low is None else float(low)
        features.extend(numeric)
    width = sum(_width(f) for f in features)
    return {"kind": "tabular", "features": features, "n_outputs": width,
            "columns": [f["name"] for f in features]}


def _is_identity(transformer: Any) -> bool:
    if isinstance(transformer, str):
        return transformer == "passthrough"
    return type(transformer).__name__ == "FunctionTransformer" and transformer.func is None


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _dtype(series) -> str:
    from pandas.api import types

    if types.is_bool_dtype(series):
        return "string"
    return "integer" if types.is_integer_dtype(series) else "number" if types.is_numeric_dtype(series) else "string"


def _width(feature: dict[str, Any]) -> int:
    if feature["kind"] == "categorical":
        return len(feature["categories"]) - (feature["drop"] is not None)
    return 1


def tabular_matrix(spec: dict[str, Any], rows: Iterable[Mapping[str, Any]]) -> np.ndarray:
    """Apply a :func:`tabular_preprocessing` spec to records: a float32 matrix ``(N, n_outputs)``.

    Reproduces ``column_transformer.transform(frame).astype(np.float32)``. Raises ``ValueError``
    naming the row and column for a missing value, an unknown category or a value below the
    column's minimum (inputs are validated before this in the service; this is the last line).
    """
    rows = list(rows)
    out = np.zeros((len(rows), spec["n_outputs"]), dtype=np.float64)
    col = 0
    for f in spec["features"]:
        name = f["name"]
        if f["kind"] == "categorical":
            cats = f["categories"]
            kept = [c for c in cats if c != f["drop"]]
            index = {c: i for i, c in enumerate(kept)}
            for r, row in enumerate(rows):
                v = row[name]
                if v not in cats:
                    raise ValueError(f"row {r}, {name}: unknown category {v!r}; expected one of {cats}")
                if v in index:
                    out[r, col + index[v]] = 1.0
            col += len(kept)
            continue
        values = np.array([np.nan if row[name] is None else float(row[name]) for row in rows], dtype=np.float64)
        if f["kind"] == "numeric":
            missing = np.isnan(values)
            if missing.any():
                if f["impute"] is None:
                    raise ValueError(f"row {int(np.flatnonzero(missing)[0])}, {name}: a value is required")
                values[missing] = f["impute"]
            if f.get("minimum") is not None and (values < f["minimum"]).any():
                r = int(np.flatnonzero(values < f["minimum"])[0])
                raise ValueError(f"row {r}, {name}: {values[r]:g} is below the minimum {f['minimum']:g}")
            if f["transform"] == "log1p":
                values = np.log1p(values)
            values = (values - f["mean"]) / f["scale"]
        elif np.isnan(values).any():
            raise ValueError(f"row {int(np.flatnonzero(np.isnan(values))[0])}, {name}: a value is required")
        out[:, col] = values
        col += 1
    return out.astype(np.float32)


# --------------------------------------------------------------------------- image preprocessing


def image_preprocessing(image_size: int, short_side: int | None = None,
                        mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> dict[str, Any]:
    """The evaluation preprocessing of :mod:`dl_utils.vision` as JSON.

    Steps, in order: decode to RGB (JPEG decoding told the target size, as ``vision.load_image``),
    shorter side to ``short_side`` (PIL bilinear; default ``round(image_size·256/224)``), torchvision
    ``Resize(short_side)``, centre crop ``image_size``, scale to [0, 1], subtract ``mean``, divide by ``std``.
    """
    from . import vision

    short_side = short_side or round(image_size * 256 / 224)
    return {"kind": "image", "short_side": int(short_side), "jpeg_draft": True, "interpolation": "bilinear",
            "resize": int(short_side), "crop": int(image_size), "mean": list(mean or vision.MEAN),
            "std": list(std or vision.STD), "channels": "RGB", "exif_orientation": "ignored"}


def image_transform(spec: dict[str, Any]):  # -> torchvision.transforms.Compose
    """The torchvision transform (after decoding) of an :func:`image_preprocessing` spec."""
    from . import vision

    return vision.eval_transform(spec["crop"], resize=spec["resize"], mean=spec["mean"], std=spec["std"])


def image_tensor(image: bytes | str | Path, spec: dict[str, Any], transform=None) -> torch.Tensor:
    """Decode an image (bytes or a path) and preprocess it as the notebook did: ``(3, crop, crop)``."""
    from . import vision

    source = io.BytesIO(image) if isinstance(image, (bytes, bytearray)) else image
    pil = vision.load_image(source, spec["short_side"])
    return (transform or image_transform(spec))(pil)


def dataset_path(path: str | Path, root: str | Path) -> str:
    """``path`` relative to a dataset folder ``root``, with forward slashes (for ``examples.json``)."""
    return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
