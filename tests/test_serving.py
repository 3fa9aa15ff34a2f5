"""The model service (serving/) and the model directories of dl_utils.export, over real HTTP.

The service runs in uvicorn on a free 127.0.0.1 port (a thread of this process) and is called
with httpx. Its model directories are built here through ``dl_utils.export``, without running a
notebook: a small churn MLP with random weights on a synthetic customer table, preprocessed by
the same ``ColumnTransformer`` as notebook 15; and an image model on the real pip-installed
EfficientNet-Lite0 backbone (at 64 px, so it is fast) with the ImageNet ant/bee rows as its head.
Their expected predictions are computed the way the notebooks compute them (scikit-learn,
``vision.load_image`` + ``vision.eval_transform``), not through the service's code.
Where the committed ``models/churn`` and ``models/ants_bees`` exist (or ``DL_MODELS_DIR`` points
at exports, e.g. ``models/local`` after smoke runs), the service must also reproduce the
predictions the notebooks stored in them.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import uvicorn
from PIL import Image
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from dl_utils import config, export, train_torch, vision
from serving import create_app
from serving.predictors import MAX_IMAGE_BYTES, MAX_SIDE, MIN_SIDE

TOL = 1e-5
IMAGE_SIZE = 64
YES_NO = ["No", "Yes"]
SERVICES = ["No", "No internet service", "Yes"]
CATEGORIES = {
    "gender": ["Female", "Male"], "Partner": YES_NO, "Dependents": YES_NO, "PhoneService": YES_NO,
    "MultipleLines": ["No", "No phone service", "Yes"], "InternetService": ["DSL", "Fiber optic", "No"],
    "OnlineSecurity": SERVICES, "OnlineBackup": SERVICES, "DeviceProtection": SERVICES, "TechSupport": SERVICES,
    "StreamingTV": SERVICES, "StreamingMovies": SERVICES, "Contract": ["Month-to-month", "One year", "Two year"],
    "PaperlessBilling": YES_NO,
    "PaymentMethod": ["Bank transfer (automatic)", "Credit card (automatic)", "Electronic check", "Mailed check"],
}
NUMERIC = ["tenure", "MonthlyCharges", "TotalCharges"]


# --------------------------------------------------------------------------- building model directories


def customers(n: int, seed: int = 0) -> pd.DataFrame:
    """A synthetic table with the Telco churn columns and types (brand-new customers have blank TotalCharges)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.choice(v, n) for c, v in CATEGORIES.items()})
    frame["SeniorCitizen"] = rng.integers(0, 2, n)
    frame["tenure"] = rng.integers(0, 73, n)
    frame["MonthlyCharges"] = rng.uniform(18, 119, n).round(2)
    frame["TotalCharges"] = (frame["tenure"] * frame["MonthlyCharges"]).where(frame["tenure"] > 0)
    return frame


def notebook15_preprocess() -> ColumnTransformer:
    """The ColumnTransformer of notebook 15, as written there."""
    categorical = list(CATEGORIES)
    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="constant", fill_value=0.0), FunctionTransformer(np.log1p),
                              StandardScaler()), NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore", drop="if_binary"), categorical),
        ("bin", "passthrough", ["SeniorCitizen"]),
    ], sparse_threshold=0)


def build_churn_dir(path: Path) -> dict:
    train, test = customers(300, seed=0), customers(40, seed=1)
    preprocess = notebook15_preprocess().fit(train)
    x_test = preprocess.transform(test).astype(np.float32)
    torch.manual_seed(0)
    net = export.MLP(x_test.shape[1], [8], dropout=0.3).eval()
    probabilities = train_torch.predict_proba(net, x_test)
    export.save_model_dir(
        "churn", notebook="15_customer_churn", profile="smoke", task="binary-tabular", weights=net,
        model={"architecture": export.mlp_architecture(x_test.shape[1], [8], 0.3), "threshold": 0.5,
               "classes": ["stays", "churns"], "seed": 0},
        preprocessing=export.tabular_preprocessing(preprocess, train),
        examples={"inputs": export.records(test), "probabilities": probabilities},
        metrics={"test_roc_auc": 0.5}, path=path, quiet=True)
    return {"preprocess": preprocess, "test": test, "x_test": x_test, "probabilities": probabilities}


def sample_images(folder: Path) -> dict[str, bytes]:
    """A few small images of different kinds (RGB JPEG, grey PNG, RGBA PNG, noise), written to ``folder``."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 120, dtype=np.uint8)
    images = {
        "gradient.jpg": Image.fromarray(np.stack([np.tile(ramp, (90, 1)), np.tile(ramp[::-1], (90, 1)),
                                                  np.full((90, 120), 90, np.uint8)], axis=-1)),
        "grey.png": Image.fromarray(np.tile(ramp[:80], (100, 1))),
        "rgba.png": Image.fromarray(rng.integers(0, 256, (70, 50, 4), dtype=np.uint8), "RGBA"),
        "noise.png": Image.fromarray(rng.integers(0, 256, (40, 64, 3), dtype=np.uint8)),
    }
    out = {}
    for name, im in images.items():
        buf = io.BytesIO()
        im.save(buf, format="JPEG" if name.endswith(".jpg") else "PNG")
        out[name] = buf.getvalue()
        (folder / name).write_bytes(out[name])
    return out


def notebook17_proba(backbone, head, photo: Path) -> np.ndarray:
    """Class probabilities the way notebook 17 computes them: load_image, eval_transform, pooled features, head."""
    x = vision.eval_transform(IMAGE_SIZE)(vision.load_image(photo, round(IMAGE_SIZE * 256 / 224))).unsqueeze(0)
    with torch.no_grad():
        features = F.adaptive_avg_pool2d(backbone.extract_features(x), 1).flatten(1)
        return head(features).softmax(1)[0].numpy()


def build_image_dir(path: Path, photos: Path) -> dict:
    backbone, _ = vision.load_efficientnet_lite0(image_size=IMAGE_SIZE)
    head = vision.head_from_classifier(backbone, [vision.IMAGENET_ANT, vision.IMAGENET_BEE]).eval()
    images = sample_images(photos)
    expected = {name: notebook17_proba(backbone, head, photos / name) for name in images}
    export.save_model_dir(
        "ants_bees", notebook="17_transfer_learning", profile="smoke", task="image-classification", weights=head,
        model={"architecture": {"kind": "linear-head", "in_features": vision.FEATURE_DIM, "out_features": 2},
               "classes": ["ants", "bees"], "seed": 0},
        preprocessing=export.image_preprocessing(IMAGE_SIZE),
        external={"backbone": export.efficientnet_lite0_backbone(IMAGE_SIZE)},
        examples={"inputs": [{"path": name, "dataset": "test images"} for name in images],
                  "probabilities": [expected[name] for name in images]},
        metrics={"test_accuracy": 0.5}, path=path, quiet=True)
    return {"images": images, "expected": expected}


# --------------------------------------------------------------------------- a real server


class Server:
    """uvicorn serving ``app`` on a free 127.0.0.1 port in a background thread."""

    def __init__(self, app):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the service did not answer /health within 20 s")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope="module")
def one_thread():
    """One PyTorch thread per request (as `make serve`): on a busy 2-core machine, more stall small models."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def built(tmp_path_factory, one_thread):
    """Model directories built through dl_utils.export, with a results record for /models to find."""
    root = tmp_path_factory.mktemp("serving")
    models, photos, results_dir = root / "models", root / "photos", root / "results"
    photos.mkdir()
    (results_dir / "local").mkdir(parents=True)
    saved = {"notebook": "15_customer_churn", "profile": "smoke", "passed": True, "headline": "test_roc_auc",
              "metrics": {"test_roc_auc": 0.81, "threshold": 0.2}, "git_commit": "abc1234", "date": "2026-01-01"}
    (results_dir / "local" / "15_customer_churn.smoke.json").write_text(json.dumps(saved))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DL_RESULTS_DIR", str(results_dir))
        mp.delenv("DL_RESULTS_OFFICIAL", raising=False)
        churn = build_churn_dir(models / "churn")
        image = build_image_dir(models / "ants_bees", photos)
        app = create_app(models)
    return {"root": root, "models": models, "photos": photos, "churn": churn, "image": image, "app": app}


@pytest.fixture(scope="module")
def service(built):
    server = Server(built["app"])
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
    server.stop()


def record(built, i: int = 0) -> dict:
    return export.records(built["churn"]["test"].iloc[[i]])[0]


def upload(client: httpx.Client, data: bytes, name: str = "photo.png", **params) -> httpx.Response:
    return client.post("/predict/image", files={"file": (name, data, "application/octet-stream")}, params=params)


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height), 128 if mode == "L" else (120, 90, 60)).save(buf, format="PNG")
    return buf.getvalue()


# --------------------------------------------------------------------------- export, without HTTP


def test_tabular_spec_reproduces_the_fitted_column_transformer(built):
    spec = export.load_model_dir(built["models"] / "churn").preprocessing
    test = built["churn"]["test"]
    assert test["TotalCharges"].isna().any(), "the test rows include a blank TotalCharges (imputed)"
    got = export.tabular_matrix(spec, export.records(test))
    np.testing.assert_allclose(got, built["churn"]["x_test"], rtol=0, atol=1e-6)
    cat = built["churn"]["preprocess"].named_transformers_["cat"]
    listed = {f["name"]: f["categories"] for f in spec["features"] if f["kind"] == "categorical"}
    assert listed == {c: list(v) for c, v in zip(CATEGORIES, cat.categories_, strict=True)}


def test_model_dir_round_trip_and_layout(built):
    md = export.load_model_dir(built["models"] / "churn")
    assert sorted(p.name for p in md.path.iterdir()) == ["examples.json", "manifest.json", "model.json",
                                                         "preprocessing.json", "weights.safetensors"]
    assert md.name == "churn" and md.task == "binary-tabular" and len(md.version) == 12
    assert md.manifest["results_record"] == "local/15_customer_churn.smoke.json"
    assert set(md.weights) == {"net.0.weight", "net.0.bias", "net.3.weight", "net.3.bias"}
    head = export.load_model_dir(built["models"] / "ants_bees")
    assert head.manifest["external"]["backbone"]["sha256"] == vision.EFFICIENTNET_LITE0_SHA256
    assert (head.path / "weights.safetensors").stat().st_size < 12_000   # 2,562 float32 numbers + header


def test_export_goes_to_models_local_unless_official_full(monkeypatch, tmp_path):
    monkeypatch.setenv("DL_MODELS_DIR", str(tmp_path))
    monkeypatch.delenv("DL_RESULTS_OFFICIAL", raising=False)
    assert export.model_dir_path("churn", "full") == tmp_path / "local" / "churn"
    monkeypatch.setenv("DL_RESULTS_OFFICIAL", "1")
    assert export.model_dir_path("churn", "smoke") == tmp_path / "local" / "churn"
    assert export.model_dir_path("churn", "full") == tmp_path / "churn"
    with pytest.raises(ValueError):
        export.model_dir_path("../churn", "full")


# --------------------------------------------------------------------------- tampering


def tampered_copy(built, tmp_path: Path, name: str, file: str) -> Path:
    import shutil

    root = tmp_path / "models"
    shutil.copytree(built["models"] / name, root / name)
    target = root / name / file
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    target.write_bytes(bytes(raw))
    return root


@pytest.mark.parametrize("file", ["weights.safetensors", "model.json", "preprocessing.json", "examples.json"])
def test_a_tampered_file_refuses_to_load(built, tmp_path, file):
    root = tampered_copy(built, tmp_path, "churn", file)
    expected = export.read_manifest(root / "churn")["files"][file]["sha256"]
    actual = export.sha256_bytes((root / "churn" / file).read_bytes())
    with pytest.raises(export.ModelDirError) as err:
        export.load_model_dir(root / "churn")
    message = str(err.value)
    assert file in message and expected in message and actual in message and "sha256 mismatch" in message
    with pytest.raises(export.ModelDirError, match="sha256 mismatch"):
        create_app(root)


def test_a_missing_file_or_manifest_is_refused(built, tmp_path):
    import shutil

    shutil.copytree(built["models"] / "churn", tmp_path / "churn")
    (tmp_path / "churn" / "weights.safetensors").unlink()
    with pytest.raises(export.ModelDirError, match="weights.safetensors is missing"):
        export.load_model_dir(tmp_path / "churn")
    with pytest.raises(export.ModelDirError, match="manifest.json is missing"):
        export.load_model_dir(tmp_path)
    with pytest.raises(export.ModelDirError, match="no exported model"):
        create_app(tmp_path / "empty")


def test_the_cli_refuses_a_backbone_with_another_hash_and_imports_no_tensorflow(built, tmp_path):
    import shutil

    shutil.copytree(built["models"] / "ants_bees", tmp_path / "ants_bees")
    manifest = json.loads((tmp_path / "ants_bees" / "manifest.json").read_text())
    manifest["external"]["backbone"]["sha256"] = "0" * 64
    (tmp_path / "ants_bees" / "manifest.json").write_text(json.dumps(manifest))
    script = ("import sys; from serving.__main__ import main; rc = main(['--models-dir', sys.argv[1], '--port', '0']); "
              "print('tensorflow imported' if 'tensorflow' in sys.modules else 'no tensorflow'); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120,
                          cwd=config.REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2, proc.stderr
    assert "no tensorflow" in proc.stdout
    assert "the backbone is refused" in proc.stderr and "0" * 64 in proc.stderr
    assert vision.EFFICIENTNET_LITE0_SHA256 in proc.stderr


# --------------------------------------------------------------------------- correct answers over HTTP


def test_health_models_and_openapi(service, built):
    health = service.get("/health").json()
    assert health["status"] == "ok"
    assert {n: m["status"] for n, m in health["models"].items()} == {"churn": "ready", "ants_bees": "ready"}
    models = {m["name"]: m for m in service.get("/models").json()["models"]}
    churn = models["churn"]
    assert churn["version"] == export.read_manifest(built["models"] / "churn")["version"]
    assert churn["results_record"]["found"] is True and churn["metrics"]["test_roc_auc"] == 0.81
    assert churn["threshold"] == 0.5 and churn["exported_model_metrics"] == {"test_roc_auc": 0.5}
    assert models["ants_bees"]["results_record"]["found"] is False   # no record written for it here
    assert models["ants_bees"]["classes"] == ["ants", "bees"]
    spec = service.get("/openapi.json").json()
    assert {"/health", "/models", "/predict/churn", "/predict/image"} <= set(spec["paths"])
    assert service.get("/docs").status_code == 200


def test_churn_single_and_batch_reproduce_the_expected_probabilities(service, built):
    expected = built["churn"]["probabilities"]
    one = service.post("/predict/churn", json=record(built, 0))
    assert one.status_code == 200, one.text
    body = one.json()
    assert abs(body["churn_probability"] - expected[0]) < TOL
    assert body["churn"] == (body["churn_probability"] >= body["threshold"])
    assert body["label"] == ("churns" if body["churn"] else "stays")
    rows = export.records(built["churn"]["test"])
    batch = service.post("/predict/churn", json=rows)
    assert batch.status_code == 200, batch.text
    got = np.array([p["churn_probability"] for p in batch.json()["predictions"]])
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)


def test_image_predictions_reproduce_the_expected_probabilities(service, built):
    for name, data in built["image"]["images"].items():
        r = upload(service, data, name, top_k=2)
        assert r.status_code == 200, r.text
        body = r.json()
        got = {p["label"]: p["probability"] for p in body["predictions"]}
        expected = built["image"]["expected"][name]
        assert abs(got["ants"] - expected[0]) < TOL and abs(got["bees"] - expected[1]) < TOL
        assert [p["probability"] for p in body["predictions"]] == sorted(got.values(), reverse=True)
        with Image.open(io.BytesIO(data)) as im:
            assert (body["image"]["width"], body["image"]["height"]) == im.size
    top1 = upload(service, built["image"]["images"]["grey.png"], top_k=1).json()["predictions"]
    assert len(top1) == 1


def test_concurrent_requests_all_succeed_with_the_right_answers(service, built):
    expected_churn = built["churn"]["probabilities"]
    images = list(built["image"]["images"].items())

    def call(i: int) -> float:
        if i % 2:
            name, data = images[i % len(images)]
            r = upload(service, data, name, top_k=2)
            assert r.status_code == 200, r.text
            got = {p["label"]: p["probability"] for p in r.json()["predictions"]}["bees"]
            return abs(got - built["image"]["expected"][name][1])
        k = i % len(expected_churn)
        r = service.post("/predict/churn", json=record(built, k))
        assert r.status_code == 200, r.text
        return abs(r.json()["churn_probability"] - expected_churn[k])

    with ThreadPoolExecutor(32) as pool:
        errors = list(pool.map(call, range(64)))
    assert len(errors) == 64 and max(errors) < TOL


# --------------------------------------------------------------------------- bad churn input


def _with(built, **changes) -> dict:
    r = record(built, 1)
    r.update(changes)
    return r


def _without(built, field: str) -> dict:
    r = record(built, 1)
    del r[field]
    return r


BAD_CHURN = {
    # name: (body builder, expected status, words the message must contain)
    "missing field": (lambda b: _without(b, "Contract"), 422, ["Contract", "missing"]),
    "wrong type: tenure as a string": (lambda b: _with(b, tenure="12"), 422, ["tenure", "valid integer"]),
    "wrong type: tenure as a fraction": (lambda b: _with(b, tenure=1.5), 422, ["tenure", "valid integer"]),
    "wrong type: charges as text": (lambda b: _with(b, MonthlyCharges="cheap"), 422, ["MonthlyCharges", "valid number"]),
    "wrong type: a boolean for SeniorCitizen": (lambda b: _with(b, SeniorCitizen=True), 422, ["SeniorCitizen"]),
    "SeniorCitizen outside 0/1": (lambda b: _with(b, SeniorCitizen=2), 422, ["SeniorCitizen", "less than or equal to 1"]),
    "unknown category": (lambda b: _with(b, Contract="Weekly"), 422, ["Contract", "Month-to-month", '"Weekly"']),
    "category in the wrong case": (lambda b: _with(b, gender="male"), 422, ["gender", "'Female' or 'Male'"]),
    "negative tenure": (lambda b: _with(b, tenure=-3), 422, ["tenure", "greater than or equal to 0"]),
    "negative charges": (lambda b: _with(b, TotalCharges=-1.0), 422, ["TotalCharges", "greater than or equal to 0"]),
    "null where nothing imputes": (lambda b: _with(b, SeniorCitizen=None), 422, ["SeniorCitizen"]),
    "unknown field": (lambda b: _with(b, customerID="7590-VHVEG"), 422, ["customerID", "not an input"]),
    "not an object": (lambda b: "a customer", 422, ["body", "valid dictionary"]),
    "empty batch": (lambda b: [], 422, ["empty list"]),
    "a bad record inside a batch": (lambda b: [record(b, 0), _with(b, tenure=-1)], 422, ["record 1", "tenure"]),
    "batch over the limit": (lambda b: [record(b, 0)] * 1001, 422, ["1001 records", "at most 1000"]),
}


@pytest.mark.parametrize("case", list(BAD_CHURN), ids=list(BAD_CHURN))
def test_bad_churn_input_gets_a_4xx_naming_the_problem(service, built, case):
    make, status, words = BAD_CHURN[case]
    r = service.post("/predict/churn", json=make(built))
    assert r.status_code == status, r.text
    message = r.json()["message"]
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert len(r.content) < 5000, "the error does not echo a whole batch back"


RAW_CHURN = {
    "empty body": (b"", {"content-type": "application/json"}, 422, ["body is empty"]),
    "invalid JSON": (b'{"tenure": 3,', {"content-type": "application/json"}, 422, ["not valid JSON"]),
    "NaN": (None, {"content-type": "application/json"}, 422, ["MonthlyCharges", "finite number"]),
    "body over 2 MiB": (b"[" + b" " * (3 * 1024 * 1024) + b"]", {"content-type": "application/json"}, 413,
                        ["3,145,730 bytes", "at most 2,097,152"]),
}


@pytest.mark.parametrize("case", list(RAW_CHURN), ids=list(RAW_CHURN))
def test_malformed_churn_bodies_get_a_4xx_naming_the_problem(service, built, case):
    body, headers, status, words = RAW_CHURN[case]
    if body is None:   # Python's JSON reader accepts NaN; the record model must not
        body = json.dumps(_with(built, MonthlyCharges=float("nan"))).encode()
    r = service.post("/predict/churn", content=body, headers=headers)
    assert r.status_code == status, r.text
    for word in words:
        assert word in r.json()["message"], r.json()["message"]


def test_an_oversized_body_without_content_length_is_cut_off(service):
    def chunks():
        for _ in range(40):
            yield b" " * 65536

    r = service.post("/predict/churn", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "over 2,097,152 bytes" in r.json()["message"]


# --------------------------------------------------------------------------- bad image input


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, format="GIF")
    return buf.getvalue()


def _truncated_jpeg(built) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (200, 300, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()[: buf.tell() * 3 // 4]   # the header is intact, the scan data stops


def _noise_png(side: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)).save(
        buf, format="PNG", compress_level=0)
    return buf.getvalue()


BAD_IMAGES = {
    "not an image": (lambda b: b"just some text, not a picture", {}, 415, ["not an image"]),
    "a GIF": (lambda b: _gif(), {}, 415, ["GIF", "JPEG and PNG"]),
    "an empty file": (lambda b: b"", {}, 422, ["empty"]),
    "too small": (lambda b: png(16, 40), {}, 422, ["16×40 px", f"at least {MIN_SIDE} px"]),
    "too large in pixels": (lambda b: png(MAX_SIDE + 1, 40, "L"), {}, 422, [f"{MAX_SIDE + 1}×40 px",
                                                                              f"at most {MAX_SIDE} px"]),
    "truncated JPEG": (_truncated_jpeg, {}, 422, ["could not be decoded"]),
    "top_k of 0": (lambda b: png(64, 64), {"top_k": 0}, 422, ["top_k", "greater than or equal to 1"]),
    "top_k above the classes": (lambda b: png(64, 64), {"top_k": 3}, 422, ["top_k", "less than or equal to 2"]),
    "top_k not a number": (lambda b: png(64, 64), {"top_k": "all"}, 422, ["top_k", "valid integer"]),
}


@pytest.mark.parametrize("case", list(BAD_IMAGES), ids=list(BAD_IMAGES))
def test_bad_image_input_gets_a_4xx_naming_the_problem(service, built, case):
    make, params, status, words = BAD_IMAGES[case]
    r = upload(service, make(built), **params)
    assert r.status_code == status, r.text
    for word in words:
        assert word in r.json()["message"], r.json()["message"]


def test_an_upload_over_the_byte_limit_gets_413(service):
    data = _noise_png(1400)   # about 5.9 MB: over the 5 MiB limit
    assert len(data) > MAX_IMAGE_BYTES
    r = upload(service, data)
    assert r.status_code == 413, r.text
    assert "at most" in r.json()["message"] and "/predict/image" in r.json()["message"]


def test_a_request_without_a_file_gets_422(service):
    r = service.post("/predict/image", data={"photo": "x"})
    assert r.status_code == 422 and "file is missing" in r.json()["message"]


def test_a_model_that_was_not_exported_answers_503(built, tmp_path):
    import shutil

    shutil.copytree(built["models"] / "churn", tmp_path / "churn")
    server = Server(create_app(tmp_path))
    try:
        health = httpx.get(f"{server.url}/health").json()["models"]
        assert health["churn"]["status"] == "ready" and health["ants_bees"]["status"] == "not exported"
        r = httpx.post(f"{server.url}/predict/image", files={"file": ("a.png", png(64, 64), "image/png")})
        assert r.status_code == 503 and "'ants_bees' is not loaded" in r.json()["message"]
        assert httpx.post(f"{server.url}/predict/churn", json=record(built, 0)).status_code == 200
    finally:
        server.stop()


def test_unknown_paths_get_404(service):
    r = service.get("/predict/cats")
    assert r.status_code == 404 and r.json()["message"] == "Not Found"


# --------------------------------------------------------------------------- serving.client: the service in a subprocess


def test_client_runs_the_service_in_a_subprocess_and_stops_it_cleanly(built, tmp_path):
    import signal

    from serving import client

    log = tmp_path / "server.log"
    with client.start_server(built["models"], log_path=log, timeout=120) as server:
        assert server.url.startswith("http://127.0.0.1:") and server.returncode is None
        health = httpx.get(f"{server.url}/health").json()
        assert {n: m["status"] for n, m in health["models"].items()} == {"churn": "ready", "ants_bees": "ready"}
        r = httpx.post(f"{server.url}/predict/churn", json=record(built, 0))
        assert abs(r.json()["churn_probability"] - built["churn"]["probabilities"][0]) < TOL
        with httpx.Client(base_url=server.url) as http:
            timing = client.run_load(lambda i: http.get("/health").status_code == 200, 6, 2, budget=30)
        assert timing["requests"] == 6 and timing["failures"] == 0 and len(timing["latencies_ms"]) == 6
        assert 0 < timing["p50_ms"] <= timing["p99_ms"]
    assert server.clean_exit and not server.killed and server.returncode in (0, -signal.SIGTERM)
    assert server.stop() == server.returncode, "stop() is safe to call again"
    text = log.read_text()
    assert "loaded churn (version" in text and "Finished server process" in text
    assert '"POST /predict/churn HTTP/1.1" 200' in text and server.log() == text
    assert client.in_process_ms(lambda i: sum(range(1000)), 5, budget=10) > 0


def test_client_reports_a_service_that_cannot_start(tmp_path):
    from serving import client

    with pytest.raises(client.ServerError, match=r"exited with code 2(.|\n)*no exported model"):
        client.start_server(tmp_path / "nothing", timeout=60)


# --------------------------------------------------------------------------- the notebooks' own exports


@pytest.fixture(scope="module")
def exported(one_thread):
    """A service on the notebooks' exports: DL_MODELS_DIR if set (e.g. models/local after smoke runs),
    else the committed models/."""
    root = export.models_dir()
    present = [n for n in ("churn", "ants_bees") if (root / n / export.MANIFEST).is_file()]
    if not present:
        yield root, None
        return
    server = Server(create_app(root, names=present))
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield root, client
    server.stop()


def _need(root: Path, client, name: str, notebook: str) -> None:
    if client is None or not (root / name / export.MANIFEST).is_file():
        pytest.skip(f"{export.shown(root / name)} is not there: the committed model comes from `make execute NB="
                    f"{notebook}` (or set DL_MODELS_DIR=models/local after a smoke run of notebook {notebook}); "
                    "the comparison with the notebook's own predictions is skipped")


def test_the_service_reproduces_notebook_15(exported):
    root, client = exported
    _need(root, client, "churn", "15")
    examples = export.load_model_dir(root / "churn").examples
    r = client.post("/predict/churn", json=examples["inputs"])
    assert r.status_code == 200, r.text
    got = np.array([p["churn_probability"] for p in r.json()["predictions"]])
    np.testing.assert_allclose(got, examples["probabilities"], rtol=0, atol=TOL)


def test_the_service_reproduces_notebook_17(exported):
    root, client = exported
    _need(root, client, "ants_bees", "17")
    from dl_utils import data

    examples = export.load_model_dir(root / "ants_bees").examples
    photos = data.fetch("hymenoptera")
    for example, expected in zip(examples["inputs"], examples["probabilities"], strict=True):
        r = upload(client, (photos / example["path"]).read_bytes(), Path(example["path"]).name, top_k=2)
        assert r.status_code == 200, r.text
        got = {p["label"]: p["probability"] for p in r.json()["predictions"]}
        np.testing.assert_allclose([got["ants"], got["bees"]], expected, rtol=0, atol=TOL)
