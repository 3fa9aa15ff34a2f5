"""Pydantic models: the churn record (built from the exported preprocessing) and every response.

The record model is generated from ``preprocessing.json``, so the API accepts exactly what the
exported pipeline can encode: every column required (no silent defaults), categories limited to
the ones the encoder was fitted on, integers where the training data held integers, numbers
finite and at least the column's minimum, ``null`` only where the pipeline imputes, no unknown
fields, and no type coercion (``"12"`` is not a tenure).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model

MAX_BATCH = 1000


def _field_type(feature: dict[str, Any]) -> Any:
    kind = feature["kind"]
    if kind == "categorical":
        return Literal[tuple(feature["categories"])]
    allowed = feature.get("allowed")
    if feature.get("dtype") == "integer":
        if allowed and all(isinstance(v, int) for v in allowed):
            if allowed == list(range(min(allowed), max(allowed) + 1)):
                return Annotated[int, Field(ge=min(allowed), le=max(allowed))]
            return Literal[tuple(allowed)]
        base: Any = Annotated[int, Field(ge=feature.get("minimum"))] if feature.get("minimum") is not None else int
    elif feature.get("dtype") == "string":
        base = Literal[tuple(allowed)] if allowed else str
    else:
        extra = {"ge": feature["minimum"]} if feature.get("minimum") is not None else {}
        base = Annotated[float, Field(allow_inf_nan=False, **extra)]
    return base | None if feature.get("nullable") else base


def _describe(feature: dict[str, Any]) -> str:
    if feature["kind"] == "categorical":
        return "one of the categories the encoder was fitted on"
    words = [feature.get("dtype", "number")]
    if feature.get("minimum") is not None:
        words.append(f"≥ {feature['minimum']:g}")
    if feature.get("nullable"):
        words.append(f"null allowed (filled with {feature.get('impute')})")
    return ", ".join(words)


def record_model(spec: dict[str, Any], example: dict[str, Any] | None = None, name: str = "ChurnRecord") -> type[BaseModel]:
    """A strict pydantic model of one input record for a :func:`dl_utils.export.tabular_preprocessing` spec."""
    fields: dict[str, Any] = {}
    for f in spec["features"]:
        if not f["name"].isidentifier():
            raise ValueError(f"column {f['name']!r} is not a valid field name")
        fields[f["name"]] = (_field_type(f), Field(..., description=_describe(f)))
    config = ConfigDict(strict=True, extra="forbid",
                        json_schema_extra={"examples": [example]} if example else None)
    return create_model(name, __config__=config, **fields)


def _which(value: Any) -> str:
    return "batch" if isinstance(value, list) else "record"


def churn_body(record: type[BaseModel], max_batch: int = MAX_BATCH) -> Any:
    """The ``/predict/churn`` body: one record, or a list of 1 to ``max_batch`` records."""
    batch = Annotated[list[record], Field(min_length=1, max_length=max_batch)]  # type: ignore[valid-type]
    return Annotated[Annotated[record, Tag("record")] | Annotated[batch, Tag("batch")], Discriminator(_which)]


class ChurnPrediction(BaseModel):
    churn_probability: float = Field(description="the network's probability that the customer churns")
    churn: bool = Field(description="churn_probability ≥ threshold: contact this customer")
    label: str = Field(description="the decision as a class name")


class ChurnServedBy(BaseModel):
    """Which model answered, and the threshold behind its decisions (the first fields of every churn answer)."""

    model: str
    version: str
    threshold: float = Field(description="the decision threshold the notebook tuned on validation (cost 5:1)")


class ChurnResponse(ChurnPrediction, ChurnServedBy):   # fields: model, version, threshold, then the prediction
    pass


class ChurnBatchResponse(ChurnServedBy):
    predictions: list[ChurnPrediction]


class ClassProbability(BaseModel):
    label: str
    probability: float


class ImageMeta(BaseModel):
    format: str
    width: int
    height: int


class ImageResponse(BaseModel):
    model: str
    version: str
    predictions: list[ClassProbability] = Field(description="the top_k classes, most probable first")
    image: ImageMeta


class ModelStatus(BaseModel):
    status: Literal["ready", "not exported"]
    version: str | None = None
    detail: str | None = None


class Health(BaseModel):
    status: Literal["ok"]
    models: dict[str, ModelStatus]


class ModelList(BaseModel):
    models: list[dict[str, Any]]


class Error(BaseModel):
    detail: Any
    message: str | None = None
