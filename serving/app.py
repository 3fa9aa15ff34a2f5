"""The FastAPI application: ``create_app()`` loads the exported models and defines the endpoints.

    GET  /health           the service is up; which models are loaded
    GET  /models           name, version, provenance and metrics (from the results record) of each model
    POST /predict/churn    one JSON record, or a list of up to 1,000 → churn probability and decision
    POST /predict/image    multipart upload ``file`` (PNG/JPEG), ``?top_k=`` → the top classes
    GET  /docs, /openapi.json   the API as FastAPI documents it

Models are read from ``DL_MODELS_DIR`` (default ``models/`` in the repository): ``<dir>/churn``
and ``<dir>/ants_bees``. A directory whose files differ from its manifest stops the service from
starting (``ModelDirError``); a model that was never exported is reported by ``/health`` and its
endpoint answers 503. Bad input gets a 4xx whose ``message`` says what is wrong, never a 500.
"""

# No `from __future__ import annotations` here: FastAPI must see the route signatures' types as
# objects, and the churn body type is built at run time (a local name a string could not resolve).
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dl_utils import export

from . import schemas
from .predictors import (
    MAX_IMAGE_BYTES,
    BadInput,
    ChurnPredictor,
    ImagePredictor,
    Predictor,
    inspect_image,
    load_predictor,
)

DEFAULT_MODELS = ("churn", "ants_bees")
MAX_JSON_BYTES = 2 * 1024 * 1024                       # 1,000 churn records are about 0.6 MB
MAX_UPLOAD_BYTES = MAX_IMAGE_BYTES + 64 * 1024          # the image plus multipart headers
MAX_OTHER_BYTES = 64 * 1024
DRAIN_BYTES = 64 * 1024 * 1024                         # an oversized body is read and dropped up to this much


class BodyLimit:
    """ASGI middleware: refuse a request body over the path's limit with 413, before any parsing.

    The body is read here (at most ``limit`` bytes, whether or not ``Content-Length`` is sent) and
    replayed to the application, so no handler ever sees more than the limit. The rest of an
    oversized body is read and dropped (up to :data:`DRAIN_BYTES`) before the 413 goes out: a
    server that closes a connection with unread data makes the client's TCP stack discard the answer.
    """

    def __init__(self, app, limits: dict[str, int], default: int):
        self.app, self.limits, self.default = app, limits, default

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = self.limits.get(path, self.default)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await _send_json(send, 400, {"detail": "the Content-Length header is not a number"})
                return
            if int(length) > limit:
                await _drain(receive, DRAIN_BYTES)
                await _send_json(send, 413, {"detail": f"the request body is {int(length):,} bytes; {path} accepts "
                                                       f"at most {limit:,}"})
                return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                if message.get("more_body", False):
                    await _drain(receive, DRAIN_BYTES)
                await _send_json(send, 413, {"detail": f"the request body is over {limit:,} bytes; {path} accepts "
                                                       f"at most {limit:,}"})
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _drain(receive, budget: int) -> None:
    """Read and drop the rest of a request body, at most ``budget`` bytes."""
    while budget > 0:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            return
        budget -= len(message.get("body", b""))


async def _send_json(send, status: int, content: dict[str, Any]) -> None:
    content.setdefault("message", content.get("detail"))
    body = json.dumps(content).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _where(loc: Sequence[Any]) -> str:
    """A readable location from a pydantic error ``loc`` such as ('body', 'batch', 3, 'tenure')."""
    parts = [p for p in loc if p not in ("body", "record", "query", "batch")]
    if len(loc) > 2 and loc[1] == "batch" and isinstance(loc[2], int):
        return f"record {loc[2]}" + (f", field {'.'.join(map(str, parts[1:]))}" if parts[1:] else "")
    if loc and loc[0] == "query":
        return f"query parameter {'.'.join(map(str, parts))}"
    return f"field {'.'.join(map(str, parts))}" if parts else "body"


def _message(errors: Sequence[dict[str, Any]]) -> str:
    """One sentence per validation error, naming the field, the problem and (briefly) the input."""
    lines = []
    for e in errors:
        loc, kind = tuple(e.get("loc", ())), e.get("type", "")
        if kind == "missing" and loc == ("body",):
            lines.append("the request body is empty: send one JSON record or a list of records")
        elif kind == "json_invalid":
            lines.append(f"the body is not valid JSON ({e.get('ctx', {}).get('error', 'decode error')})")
        elif kind == "too_long" and loc[:2] == ("body", "batch"):
            ctx = e.get("ctx", {})
            lines.append(f"the batch has {ctx.get('actual_length')} records; at most {ctx.get('max_length')} per request")
        elif kind == "too_short" and loc[:2] == ("body", "batch"):
            lines.append("the batch is an empty list; send at least one record")
        elif kind == "missing":
            lines.append(f"{_where(loc)} is missing")
        elif kind == "extra_forbidden":
            lines.append(f"{_where(loc)} is not an input of this model")
        else:
            shown = json.dumps(e.get("input"), default=str)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            lines.append(f"{_where(loc)}: {e.get('msg')} (got {shown})")
    return "; ".join(lines[:10]) + (f"; and {len(lines) - 10} more" if len(lines) > 10 else "")


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as strings: JSON has no such numbers (an echoed NaN input
    would otherwise turn a 422 into a 500 while the response is rendered)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _slim(errors: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validation errors without huge echoed inputs (a 1,001-record batch is not sent back)."""
    out = []
    for e in errors[:50]:
        e = dict(e)
        if len(json.dumps(e.get("input"), default=str)) > 200:
            e.pop("input", None)
        e.pop("url", None)
        out.append(_finite(e))
    return out


def load_models(models_dir: str | Path | None = None,
                names: Sequence[str] = DEFAULT_MODELS) -> tuple[dict[str, Predictor], dict[str, str]]:
    """Load ``<models_dir>/<name>`` for each name: the predictors, and a reason for each one not there.

    A directory that exists but fails verification raises :class:`dl_utils.export.ModelDirError`.
    """
    root = Path(models_dir) if models_dir is not None else export.models_dir()
    loaded, missing = {}, {}
    for name in names:
        path = root / name
        if not (path / export.MANIFEST).is_file():
            missing[name] = (f"{export.shown(path)} holds no exported model: run its notebook (make execute), or set "
                             "DL_MODELS_DIR to a folder that has it (a smoke run writes models/local/)")
            continue
        loaded[name] = load_predictor(path)
    return loaded, missing


def create_app(models_dir: str | Path | None = None, names: Sequence[str] = DEFAULT_MODELS,
               max_batch: int = schemas.MAX_BATCH) -> FastAPI:
    """The application serving the models under ``models_dir`` (default: ``DL_MODELS_DIR`` or ``models/``).

    Raises :class:`dl_utils.export.ModelDirError` when a model directory fails verification, or when
    none of ``names`` has been exported.
    """
    predictors, missing = load_models(models_dir, names)
    if not predictors:
        root = Path(models_dir) if models_dir is not None else export.models_dir()
        raise export.ModelDirError(f"no exported model under {export.shown(root)} (looked for {', '.join(names)}). "
                                   "Run notebooks 15 and 17 (`make execute NB=15`, `NB=17`), or point DL_MODELS_DIR "
                                   "at a folder holding them, e.g. DL_MODELS_DIR=models/local after a smoke run.")
    app = FastAPI(title="Deep Learning in Practice: model service",
                  description="Serves the models the notebooks export (dl_utils.export): notebook 15's churn network "
                              "and notebook 17's ants-vs-bees classifier. Errors carry a `message` naming the problem.",
                  version="1")
    app.state.predictors = predictors
    app.add_middleware(BodyLimit, limits={"/predict/churn": MAX_JSON_BYTES, "/predict/image": MAX_UPLOAD_BYTES},
                       default=MAX_OTHER_BYTES)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        return JSONResponse(status_code=422, content=jsonable_encoder({"detail": _slim(errors),
                                                                       "message": _message(errors)}))

    @app.exception_handler(BadInput)
    async def bad_input(request: Request, exc: BadInput) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content={"detail": str(exc), "message": str(exc)})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, headers=getattr(exc, "headers", None),
                            content={"detail": exc.detail, "message": str(exc.detail)})

    def unavailable(name: str) -> HTTPException:
        return HTTPException(503, f"model {name!r} is not loaded: {missing.get(name, 'not configured')}")

    @app.get("/health", response_model=schemas.Health, response_model_exclude_none=True,
             summary="Liveness, and which models are loaded")
    def health() -> dict[str, Any]:
        models = {n: {"status": "ready", "version": p.version} for n, p in predictors.items()}
        models.update({n: {"status": "not exported", "detail": why} for n, why in missing.items()})
        return {"status": "ok", "models": models}

    @app.get("/models", response_model=schemas.ModelList, summary="Each model's version, provenance and metrics")
    def models() -> dict[str, Any]:
        return {"models": [p.info() for p in predictors.values()]}

    responses = {413: {"model": schemas.Error}, 422: {"model": schemas.Error}, 503: {"model": schemas.Error}}
    churn = predictors.get("churn")
    if isinstance(churn, ChurnPredictor):
        examples = churn.md.examples.get("inputs") or [None]
        Record = schemas.record_model(churn.spec, examples[0])  # noqa: N806 (a class)
        Payload = schemas.churn_body(Record, max_batch)  # noqa: N806

        @app.post("/predict/churn", response_model=schemas.ChurnResponse | schemas.ChurnBatchResponse,
                  responses=responses, summary="Churn probability and decision for one customer or a batch")
        def predict_churn(payload: Annotated[Payload, Body(description=f"one record, or a list of 1 to {max_batch}")]
                          ) -> dict[str, Any]:
            batch = isinstance(payload, list)
            rows = [r.model_dump() for r in (payload if batch else [payload])]
            out = [{"churn_probability": o.probability, "churn": o.decision, "label": o.label}
                   for o in churn.predict(rows)]
            head = {"model": churn.name, "version": churn.version, "threshold": churn.threshold}
            return {**head, "predictions": out} if batch else {**head, **out[0]}
    else:
        @app.post("/predict/churn", responses=responses, summary="Churn probability (model not loaded)")
        def predict_churn_missing() -> None:
            raise unavailable("churn")

    image = predictors.get("ants_bees")
    n_classes = len(image.classes) if isinstance(image, ImagePredictor) else 1000

    @app.post("/predict/image", response_model=schemas.ImageResponse, responses={415: {"model": schemas.Error},
                                                                                   **responses},
              summary="Top-k classes of an uploaded PNG or JPEG photo")
    def predict_image(file: Annotated[UploadFile, File(description="a PNG or JPEG image, at most 5 MiB, "
                                                                   "sides 32 to 4096 px")],
                      top_k: Annotated[int, Query(ge=1, le=n_classes, description="how many classes to return")]
                      = min(5, n_classes)) -> dict[str, Any]:
        if not isinstance(image, ImagePredictor):
            raise unavailable("ants_bees")
        data = file.file.read(MAX_IMAGE_BYTES + 1)
        meta = inspect_image(data)
        probs = image.predict_proba(data)
        order = probs.argsort()[::-1][:top_k]
        return {"model": image.name, "version": image.version,
                "predictions": [{"label": image.classes[i], "probability": float(probs[i])} for i in order],
                "image": {"format": meta.format, "width": meta.width, "height": meta.height}}

    return app
