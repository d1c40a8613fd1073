"""Request and response models. The request models are built at load time from the model card's
``inputs`` (docs/contract.md), so a model with other fields is served with no code change."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    create_model,
)

ROLES = ("categorical", "numeric", "text", "image")
MAX_REPORTED_ERRORS = 50  # an answer lists at most this many errors (a body can hold millions)
_STRING_DTYPES = {"categorical": "string", "text": "string", "image": "string"}


# --------------------------------------------------------------------------- errors


class InputError(Exception):
    """Bad client input: ``status`` (4xx) and a list of ``{loc, msg, type}`` errors."""

    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        self.status = status
        self.errors = errors
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        return "; ".join(f"{format_loc(e['loc'])}: {e['msg']}" for e in self.errors)

    @classmethod
    def single(cls, status: int, loc: Sequence[str | int], msg: str, kind: str) -> InputError:
        return cls(status, [{"loc": list(loc), "msg": msg, "type": kind}])


def format_loc(loc: Sequence[str | int]) -> str:
    """('items', 3, 'brand') -> 'items[3].brand'; an empty location is the body itself."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def worst_status(statuses: Sequence[int]) -> int:
    """One status for several errors: a size problem beats a type problem beats the rest."""
    for status in (413, 415):
        if status in statuses:
            return status
    return 422


# --------------------------------------------------------------------------- the card


class CardError(ValueError):
    """A model card the service cannot serve (the version is refused)."""


@dataclass(frozen=True)
class InputSpec:
    """One model input as described by the model card."""

    name: str
    role: str
    vocabulary: tuple[str, ...] = ()
    examples: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    image_size: tuple[int, int] | None = None

    @property
    def accepted_range(self) -> tuple[float, float] | None:
        """Numbers accepted for a numeric input: the training range widened by its own width on
        each side, and kept non-negative when training saw no negative value."""
        if self.minimum is None or self.maximum is None:
            return None
        width = max(self.maximum - self.minimum, 1.0)
        low = self.minimum - width
        if self.minimum >= 0:
            low = 0.0
        return low, self.maximum + width

    def example(self) -> Any:
        """A plausible value for examples and warm-up."""
        if self.examples:
            return self.examples[0]
        if self.role == "categorical":
            return self.vocabulary[0] if self.vocabulary else ""
        if self.role == "numeric":
            if self.mean is not None:
                return self.mean
            return self.minimum if self.minimum is not None else 0.0
        return ""


def _finite_or_none(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CardError(f"{what} must be a finite number")
    return float(value)


def parse_inputs(card: Mapping[str, Any]) -> tuple[InputSpec, ...]:
    """Read and check the card's ``inputs``; raises CardError when they cannot be served."""
    raw = card.get("inputs")
    if not isinstance(raw, list) or not raw:
        raise CardError("model card has no 'inputs' list")
    specs: list[InputSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            raise CardError(f"inputs[{index}] is not an object")
        name, role = entry.get("name"), entry.get("role")
        if not isinstance(name, str) or not name or len(name) > 100:
            raise CardError(f"inputs[{index}] has no usable name")
        if name in seen:
            raise CardError(f"input {name!r} is listed twice")
        seen.add(name)
        if role not in ROLES:
            raise CardError(f"input {name!r} has unknown role {role!r}")
        dtype = entry.get("dtype", "float32" if role == "numeric" else "string")
        expected = "float32" if role == "numeric" else _STRING_DTYPES[role]
        if dtype != expected:
            raise CardError(f"input {name!r} ({role}) has dtype {dtype!r}, expected {expected!r}")
        vocabulary = entry.get("vocabulary") or ()
        if not isinstance(vocabulary, list | tuple) or not all(isinstance(v, str) for v in vocabulary):
            raise CardError(f"input {name!r} has a vocabulary that is not a list of strings")
        examples = entry.get("examples") or ()
        if not isinstance(examples, list | tuple):
            raise CardError(f"input {name!r} has examples that are not a list")
        if role == "numeric":
            examples = tuple(
                float(e)
                for e in examples
                if isinstance(e, int | float) and not isinstance(e, bool) and math.isfinite(e)
            )
        elif role in ("categorical", "text"):
            examples = tuple(e for e in examples if isinstance(e, str))
        else:
            examples = ()
        size = entry.get("image_size")
        image_size = None
        if role == "image" and size is not None:
            if (
                not isinstance(size, list | tuple)
                or len(size) != 2
                or not all(isinstance(s, int) and 0 < s <= 4096 for s in size)
            ):
                raise CardError(f"input {name!r} has a bad image_size {size!r}")
            image_size = (size[0], size[1])
        minimum = _finite_or_none(entry.get("min"), f"input {name!r} min")
        maximum = _finite_or_none(entry.get("max"), f"input {name!r} max")
        if minimum is not None and maximum is not None and minimum > maximum:
            raise CardError(f"input {name!r} has min > max")
        specs.append(
            InputSpec(
                name=name,
                role=role,
                vocabulary=tuple(vocabulary),
                examples=tuple(examples),
                minimum=minimum,
                maximum=maximum,
                mean=_finite_or_none(entry.get("mean"), f"input {name!r} mean"),
                image_size=image_size,
            )
        )
    return tuple(specs)


# --------------------------------------------------------------------------- request models


def base64_length(n_bytes: int) -> int:
    """Characters of standard base64 for n bytes."""
    return 4 * math.ceil(n_bytes / 3)


def _tiny_png(size: tuple[int, int] | None) -> bytes:
    from PIL import Image

    width, height = size or (12, 12)
    image = Image.new("RGB", (width, height), (200, 120, 80))
    for x in range(width):
        image.putpixel((x, x % height), (30, 60, 200))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@dataclass(frozen=True)
class Limits:
    """Size limits applied by the request models."""

    max_text_chars: int
    max_category_chars: int
    max_image_bytes: int
    max_batch_items: int


@dataclass
class ModelSchema:
    """Everything request handling needs to know about one served model's inputs."""

    inputs: tuple[InputSpec, ...]
    currency: str
    limits: Limits
    item_model: type[BaseModel] = field(init=False)
    form_model: type[BaseModel] = field(init=False)
    batch_model: type[BaseModel] = field(init=False)

    def __post_init__(self) -> None:
        self.item_model = self._make_item_model("PredictRequest", with_images=True)
        self.form_model = self._make_item_model("PredictForm", with_images=False)
        self.batch_model = create_model(
            "PredictBatchRequest",
            __config__=ConfigDict(extra="forbid"),
            items=(
                Annotated[
                    list[self.item_model],  # type: ignore[name-defined]
                    Field(
                        min_length=1,
                        max_length=self.limits.max_batch_items,
                        description="The items to price, answered in the same order.",
                    ),
                ],
                ...,
            ),
        )

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.inputs]

    @property
    def image_inputs(self) -> list[InputSpec]:
        return [spec for spec in self.inputs if spec.role == "image"]

    def spec(self, name: str) -> InputSpec | None:
        return next((s for s in self.inputs if s.name == name), None)

    def _field(self, spec: InputSpec, strict_numbers: bool) -> tuple[Any, Any]:
        limits = self.limits
        if spec.role == "numeric":
            bounds = spec.accepted_range
            seen = (
                f" Seen in training: {spec.minimum:g} to {spec.maximum:g}; accepted: {bounds[0]:g} to {bounds[1]:g}."
                if bounds and spec.minimum is not None and spec.maximum is not None
                else ""
            )
            return (
                Annotated[
                    float,
                    Field(
                        alias=spec.name,
                        allow_inf_nan=False,
                        strict=strict_numbers,
                        ge=bounds[0] if bounds else None,
                        le=bounds[1] if bounds else None,
                        description=f"Numeric input (a finite number).{seen}",
                        examples=[spec.example()],
                    ),
                ],
                ...,
            )
        if spec.role == "image":
            return (
                Annotated[
                    str,  # its size is checked when decoded (413), the body limit bounds it
                    Field(
                        alias=spec.name,
                        description="The photo file (JPEG, PNG, WebP or GIF) as base64, standard "
                        "or URL-safe; a `data:image/...;base64,` prefix is allowed.",
                        examples=[self.example_image_base64(spec)],
                    ),
                ],
                ...,
            )
        max_len = limits.max_text_chars if spec.role == "text" else limits.max_category_chars
        description = "Free text." if spec.role == "text" else "Categorical input."
        if spec.role == "categorical" and spec.vocabulary:
            shown = ", ".join(spec.vocabulary[:20]) + (", ..." if len(spec.vocabulary) > 20 else "")
            description += f" Known values: {shown}. Another value is accepted with a warning."
        return (
            Annotated[
                str,
                StringConstraints(max_length=max_len),
                Field(alias=spec.name, description=description, examples=[spec.example()]),
            ],
            ...,
        )

    def _make_item_model(self, model_name: str, with_images: bool) -> type[BaseModel]:
        fields: dict[str, Any] = {}
        for index, spec in enumerate(self.inputs):
            if spec.role == "image" and not with_images:
                continue
            # Python names are placeholders; clients use the aliases (the input names).
            # JSON numbers must be numbers (not true/false or "12"); form fields are text.
            fields[f"f{index}"] = self._field(spec, strict_numbers=with_images)
        return create_model(
            model_name,
            __config__=ConfigDict(extra="forbid", json_schema_extra={"example": self.example_item()}),
            **fields,
        )

    def example_image_base64(self, spec: InputSpec) -> str:
        return base64.b64encode(_tiny_png(spec.image_size)).decode()

    def example_item(self, image_bytes: bool = False) -> dict[str, Any]:
        """One valid request item (images as base64, or as bytes when ``image_bytes``)."""
        item: dict[str, Any] = {}
        for spec in self.inputs:
            if spec.role == "image":
                png = _tiny_png(spec.image_size)
                item[spec.name] = png if image_bytes else base64.b64encode(png).decode()
            else:
                item[spec.name] = spec.example()
        return item

    def warnings(self, row: Mapping[str, Any]) -> list[str]:
        """Warnings for values the model never saw (it still predicts)."""
        out = []
        for spec in self.inputs:
            if spec.role == "categorical" and spec.vocabulary:
                value = row.get(spec.name)
                if isinstance(value, str) and value not in spec.vocabulary:
                    out.append(
                        f"{spec.name}: {value!r} is not a value the model was trained on; it is treated as unknown"
                    )
        return out

    # ------------------------------------------------------------------ validation

    def validation_error(self, exc: ValidationError, prefix: Sequence[str | int] = ()) -> InputError:
        """A pydantic ValidationError as an InputError with readable messages."""
        errors = []
        for error in exc.errors(include_url=False, include_input=False)[:MAX_REPORTED_ERRORS]:
            loc = [*prefix, *error["loc"]]
            errors.append({"loc": loc, "msg": self._message(error), "type": error["type"]})
        return InputError(422, errors)

    def _message(self, error: Mapping[str, Any]) -> str:
        kind, loc = error["type"], error["loc"]
        name = loc[-1] if loc else None
        spec = self.spec(name) if isinstance(name, str) else None
        if kind == "missing":
            return "field required"
        if kind == "extra_forbidden":
            return "unknown field; this model's inputs are: " + ", ".join(self.names)
        if kind in ("model_type", "dict_type", "model_attributes_type"):
            return "must be a JSON object"
        if kind == "json_invalid":
            return f"body is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})"
        if kind == "finite_number":
            return "must be a finite number"
        if kind in ("float_type", "float_parsing"):
            return "must be a number"
        if kind == "list_type":
            return "must be a JSON array"
        if kind == "string_type":
            return "must be a string"
        if kind == "string_too_long":
            limit = error.get("ctx", {}).get("max_length")
            return f"is longer than {limit} characters"
        if kind in ("greater_than_equal", "less_than_equal") and spec and spec.accepted_range:
            low, high = spec.accepted_range
            return (
                f"is out of range: accepted {low:g} to {high:g} "
                f"(seen in training: {spec.minimum:g} to {spec.maximum:g})"
            )
        if kind in ("too_long", "too_short") and loc and loc[-1] == "items":
            return f"must hold 1 to {self.limits.max_batch_items} items (MAX_BATCH_ITEMS)"
        return str(error["msg"])


# --------------------------------------------------------------------------- responses


class PriceRangeOut(BaseModel):
    """A calibrated range around the price: on held-out data, a share ``level`` of true prices
    fell inside it (split conformal calibration, see the model card's ``interval``)."""

    low: float = Field(description="Lower end, rounded to cents; never above the price.", examples=[35.2])
    high: float = Field(description="Upper end, rounded to cents; never below the price.", examples=[51.9])
    level: float = Field(description="The range's calibrated coverage (e.g. 0.8 = 80%).", examples=[0.8])


class Contribution(BaseModel):
    """How much one modality moved the price."""

    amount: float = Field(
        description="Price minus the price with this modality's inputs set to a neutral baseline, in the "
        "currency, rounded to cents (negative: it lowered the price).",
        examples=[12.3],
    )
    share: float = Field(description="|amount| / sum of |amount| over the modalities (0 to 1).", examples=[0.55])


class Contributions(BaseModel):
    """What drove the price, per modality (occlusion, see the model card's ``explain``). A modality
    the model has no input for is left out."""

    metadata: Contribution | None = Field(
        None, description="The categorical and numeric inputs.", examples=[{"amount": 12.3, "share": 0.55}]
    )
    text: Contribution | None = Field(None, description="The text inputs.", examples=[{"amount": -2.1, "share": 0.09}])
    image: Contribution | None = Field(None, description="The photo.", examples=[{"amount": 8.0, "share": 0.36}])


RANGE_DESCRIPTION = (
    "Calibrated price range at the requested `level` (default: the model's, usually 0.8). Missing when the "
    "model version has no calibrated range (an older model card)."
)
CONTRIBUTIONS_DESCRIPTION = (
    "What drove the price. Missing with `explain=false`, or when the model version has no neutral "
    "baseline (an older model card)."
)
RANGE_EXAMPLE = {"low": 35.2, "high": 51.9, "level": 0.8}
CONTRIBUTIONS_EXAMPLE = {
    "metadata": {"amount": 12.3, "share": 0.55},
    "text": {"amount": -2.1, "share": 0.09},
    "image": {"amount": 8.0, "share": 0.36},
}


class PredictResponse(BaseModel):
    """The suggested price of one item."""

    price: float = Field(description="Suggested price, rounded to cents.", examples=[42.5])
    currency: str = Field(description="ISO 4217 code of the price.", examples=["EUR"])
    model_version: str = Field(description="The model version that answered.", examples=["1"])
    warnings: list[str] = Field(
        default_factory=list,
        description="Input the model could use but never saw in training (e.g. a new brand).",
        examples=[["brand: 'acme' is not a value the model was trained on; it is treated as unknown"]],
    )
    range: PriceRangeOut | None = Field(None, description=RANGE_DESCRIPTION, examples=[RANGE_EXAMPLE])
    contributions: Contributions | None = Field(
        None, description=CONTRIBUTIONS_DESCRIPTION, examples=[CONTRIBUTIONS_EXAMPLE]
    )


class BatchPrediction(BaseModel):
    """One item's answer inside a batch."""

    price: float = Field(examples=[42.5])
    warnings: list[str] = Field(default_factory=list, examples=[[]])
    range: PriceRangeOut | None = Field(None, description=RANGE_DESCRIPTION, examples=[RANGE_EXAMPLE])
    contributions: Contributions | None = Field(
        None, description=CONTRIBUTIONS_DESCRIPTION, examples=[CONTRIBUTIONS_EXAMPLE]
    )


class BatchResponse(BaseModel):
    """Answers of a batch, in the order of the request's items."""

    predictions: list[BatchPrediction]
    currency: str = Field(examples=["EUR"])
    model_version: str = Field(examples=["1"])


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(examples=[["body", "age_months"]])
    msg: str = Field(examples=["must be a finite number"])
    type: str = Field(examples=["finite_number"])


class ErrorResponse(BaseModel):
    """Every error answer: a readable ``detail`` naming the field, and the errors one by one."""

    detail: str = Field(examples=["age_months: must be a finite number"])
    errors: list[ErrorItem] = Field(default_factory=list)


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    status: Literal["ready"] = "ready"
    model_version: str = Field(examples=["1"])
