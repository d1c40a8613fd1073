"""Request models, built at load time from the served model's inputs (``InputSpec``, read from its
card): pydantic checks every field's type, size and range; ``validation_error`` turns its errors
into readable messages naming the field."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, create_model

from service.schemas.errors import MAX_REPORTED_ERRORS, InputError
from service.schemas.inputs import InputSpec

_MESSAGES = {  # pydantic error type -> what the answer says
    "missing": "field required",
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "finite_number": "must be a finite number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "list_type": "must be a JSON array",
    "string_type": "must be a string",
}


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
        kind, loc, ctx = error["type"], error["loc"], error.get("ctx", {})
        if kind in _MESSAGES:
            return _MESSAGES[kind]
        if kind == "extra_forbidden":
            return "unknown field; this model's inputs are: " + ", ".join(self.names)
        if kind == "json_invalid":
            return f"body is not valid JSON ({ctx.get('error', 'parse error')})"
        if kind == "string_too_long":
            return f"is longer than {ctx.get('max_length')} characters"
        spec = self.spec(loc[-1]) if loc and isinstance(loc[-1], str) else None
        if kind in ("greater_than_equal", "less_than_equal") and spec and spec.accepted_range:
            low, high = spec.accepted_range
            return (
                f"is out of range: accepted {low:g} to {high:g} "
                f"(seen in training: {spec.minimum:g} to {spec.maximum:g})"
            )
        if kind in ("too_long", "too_short") and loc and loc[-1] == "items":
            return f"must hold 1 to {self.limits.max_batch_items} items (MAX_BATCH_ITEMS)"
        return str(error["msg"])
