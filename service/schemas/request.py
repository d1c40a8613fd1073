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

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError, create_model

from common.card import GROUPS
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


def _blank_to_none(value: Any) -> Any:
    """A form's empty number field ("" or spaces) is a number not given."""
    return None if isinstance(value, str) and not value.strip() else value


@dataclass
class ModelSchema:
    """Everything request handling needs to know about one served model's inputs.

    ``groups`` (the card's ``missing.groups``): every input may be left out, at least one must be
    given; None (an older card): every input is required, as before. An image input with
    ``max_photos`` (or of a card with ``groups``) also takes ``images``, a list of photos.
    """

    inputs: tuple[InputSpec, ...]
    currency: str
    limits: Limits
    groups: Mapping[str, tuple[str, ...]] | None = None
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
                        description="The items to price, answered in the same order; each may leave out "
                        "other inputs when the model allows it.",
                    ),
                ],
                ...,
            ),
        )

    @property
    def optional(self) -> bool:
        """Every input may be left out (the card has a ``missing`` block)."""
        return self.groups is not None

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.inputs]

    @property
    def field_names(self) -> list[str]:
        """The request fields: the input names, and ``images`` after an image input that takes a list."""
        out = []
        for spec in self.inputs:
            out.append(spec.name)
            if self.takes_list(spec):
                out.append(spec.list_name)
        return out

    @property
    def image_inputs(self) -> list[InputSpec]:
        return [spec for spec in self.inputs if spec.role == "image"]

    @property
    def photo_slots(self) -> int:
        """Photos one item may carry, over all image inputs (the body limits follow it)."""
        return sum(self.slots(spec) for spec in self.image_inputs)

    def slots(self, spec: InputSpec) -> int:
        """Photos an image input takes: ``max_photos``, or one (an older card)."""
        return spec.max_photos or 1

    def takes_list(self, spec: InputSpec) -> bool:
        """An image input whose request also accepts ``images`` (a list of base64 photos)."""
        return spec.role == "image" and (spec.max_photos is not None or self.optional)

    def spec(self, name: str) -> InputSpec | None:
        return next((s for s in self.inputs if s.name == name), None)

    def group_of(self, name: str) -> str:
        """The input group of an input: the card's ``missing.groups``, else that of its role."""
        for group, names in (self.groups or {}).items():
            if name in names:
                return group
        spec = self.spec(name)
        return spec.group if spec is not None else ""

    @property
    def all_groups(self) -> tuple[str, ...]:
        """The model's input groups, in GROUPS order."""
        present = {self.group_of(spec.name) for spec in self.inputs}
        return tuple(g for g in GROUPS if g in present)

    def inputs_of(self, group: str) -> list[str]:
        return [spec.name for spec in self.inputs if self.group_of(spec.name) == group]

    def needed_message(self) -> str:
        """What a request that gives no input at all is told."""
        names = [f"{spec.name} (or {spec.list_name})" if self.takes_list(spec) else spec.name for spec in self.inputs]
        return "at least one input is needed; this model's inputs are: " + ", ".join(names)

    def _field(self, spec: InputSpec, strict_numbers: bool) -> tuple[Any, Any]:
        limits = self.limits
        optional = self.optional
        default = None if optional else ...
        leave_out = " May be left out (absent or null): the model prices without it." if optional else ""
        if spec.role == "numeric":
            bounds = spec.accepted_range
            seen = (
                f" Seen in training: {spec.minimum:g} to {spec.maximum:g}; accepted: {bounds[0]:g} to {bounds[1]:g}."
                if bounds and spec.minimum is not None and spec.maximum is not None
                else ""
            )
            number = Annotated[
                float,
                Field(
                    allow_inf_nan=False,
                    strict=strict_numbers,
                    ge=bounds[0] if bounds else None,
                    le=bounds[1] if bounds else None,
                ),
            ]
            info = Field(
                alias=spec.name, description=f"Numeric input (a finite number).{seen}{leave_out}",
                examples=[spec.example()],
            )  # fmt: skip
            if not optional:
                return Annotated[number, info], ...
            if strict_numbers:
                return Annotated[number | None, info], None
            return Annotated[number | None, BeforeValidator(_blank_to_none), info], None
        if spec.role == "image":
            several = (
                f" For several photos (up to {self.slots(spec)}) send `{spec.list_name}` instead."
                if self.takes_list(spec)
                else ""
            )
            return (
                Annotated[
                    str | None if optional or self.takes_list(spec) else str,  # its size is checked when decoded
                    Field(
                        alias=spec.name,
                        description="The photo file (JPEG, PNG, WebP or GIF) as base64, standard "
                        f"or URL-safe; a `data:image/...;base64,` prefix is allowed.{several}{leave_out}",
                        examples=[self.example_image_base64(spec)],
                    ),
                ],
                None if optional or self.takes_list(spec) else ...,
            )
        max_len = limits.max_text_chars if spec.role == "text" else limits.max_category_chars
        description = "Free text." if spec.role == "text" else "Categorical input."
        if spec.role == "categorical" and spec.vocabulary:
            shown = ", ".join(spec.vocabulary[:20]) + (", ..." if len(spec.vocabulary) > 20 else "")
            description += f" Known values: {shown}. Another value is accepted with a warning."
        if optional:
            description += ' May be left out (absent, null or ""): the model prices without it.'
        text = Annotated[str, StringConstraints(max_length=max_len)]
        return (
            Annotated[
                text | None if optional else text,
                Field(alias=spec.name, description=description, examples=[spec.example()]),
            ],
            default,
        )

    def _list_field(self, spec: InputSpec) -> tuple[Any, Any]:
        """``images``: up to ``max_photos`` photos of an image input, as base64."""
        slots = self.slots(spec)
        return (
            Annotated[
                list[str] | None,
                Field(
                    alias=spec.list_name,
                    max_length=slots,
                    description=f"The listing's photos (1 to {slots}), each as `{spec.name}` takes one: a JPEG, "
                    f"PNG, WebP or GIF file as base64. Not with `{spec.name}`; absent, null or [] means no photo. "
                    "The model pools them: their order does not matter.",
                    examples=[[self.example_image_base64(spec)]],
                ),
            ],
            None,
        )

    def _make_item_model(self, model_name: str, with_images: bool) -> type[BaseModel]:
        fields: dict[str, Any] = {}
        for index, spec in enumerate(self.inputs):
            if spec.role == "image" and not with_images:
                continue
            # Python names are placeholders; clients use the aliases (the input names).
            # JSON numbers must be numbers (not true/false or "12"); form fields are text.
            fields[f"f{index}"] = self._field(spec, strict_numbers=with_images)
            if self.takes_list(spec):
                fields[f"f{index}_list"] = self._list_field(spec)
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

    def example_partial(self, group: str) -> dict[str, Any]:
        """A request item that gives only ``group``'s inputs (the photos as ``images``)."""
        item: dict[str, Any] = {}
        for name, value in self.example_item().items():
            spec = self.spec(name)
            if spec is None or self.group_of(name) != group:
                continue
            if self.takes_list(spec):
                item[spec.list_name] = [value]
            else:
                item[name] = value
        return item

    def missing_value(self, spec: InputSpec) -> Any:
        """What the model is sent for an input not given: "" (categorical, text), NaN (numeric), no
        photo (an image: every slot "")."""
        if spec.role == "numeric":
            return math.nan
        if spec.role == "image":
            return [] if spec.max_photos is not None else b""
        return ""

    def model_row(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """A row for the model with ``given``'s values (images as bytes) and every other input missing."""
        return {spec.name: given[spec.name] if spec.name in given else self.missing_value(spec) for spec in self.inputs}

    def warnings(self, row: Mapping[str, Any], missing: Sequence[str] = ()) -> list[str]:
        """Warnings for values the model never saw (it still predicts); not for inputs not given."""
        out = []
        for spec in self.inputs:
            if spec.role == "categorical" and spec.vocabulary and spec.name not in missing:
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
            return "unknown field; this model's inputs are: " + ", ".join(self.field_names)
        if kind == "json_invalid":
            return f"body is not valid JSON ({ctx.get('error', 'parse error')})"
        if kind == "string_too_long":
            return f"is longer than {ctx.get('max_length')} characters"
        if kind == "too_long" and loc and isinstance(loc[-1], str):
            image = next((s for s in self.image_inputs if s.list_name == loc[-1]), None)
            if image is not None:
                return (
                    f"holds {ctx.get('actual_length')} photos; this model takes at most {self.slots(image)} "
                    "per listing (max_photos)"
                )
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
