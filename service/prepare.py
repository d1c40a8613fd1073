"""Turns a raw request (JSON bytes or form fields) into rows the model takes: validates against
the served model's schema, decodes and checks images, collects warnings. Blocking (JSON parsing,
base64, Pillow): called from a worker thread, before the batch is formed.

With a card's ``missing`` block every input may be left out: an input not given goes to the model
as its missing value ("" categorical and text, NaN numeric, no photo), and the row says which
inputs it lacked; at least one input must be given. An image input with ``max_photos`` takes a
list of photos (``images``, or several file parts), sent as that many slots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from service.images import ImageError, decode_base64_image, prepare_image
from service.schemas.errors import MAX_REPORTED_ERRORS, InputError, worst_status
from service.schemas.inputs import InputSpec
from service.schemas.request import ModelSchema
from service.settings import Settings

Errors = list[tuple[int, dict[str, Any]]]
Photos = list[tuple[list[str | int], bytes | str]]  # each photo with its place in the request


@dataclass
class PreparedRow:
    """One item ready for the model, with its warnings; ``missing``: the card's inputs it did not
    give (card order; [] for an older card), ``given``: the input groups it gave (GROUPS order)."""

    row: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    given: tuple[str, ...] = ()


def _row_from_model(item: BaseModel) -> dict[str, Any]:
    return item.model_dump(by_alias=True)


def _is_given(spec: InputSpec, value: Any) -> bool:
    """A value a request gave: a string not empty after strip, a number (not null)."""
    if spec.role == "numeric":
        return value is not None
    return isinstance(value, str) and bool(value.strip())


def _error(errors: Errors, loc: Sequence[str | int], msg: str, kind: str, status: int = 422) -> None:
    errors.append((status, {"loc": list(loc), "msg": msg, "type": kind}))


def _json_photos(
    schema: ModelSchema, spec: InputSpec, values: Mapping[str, Any], loc: Sequence[str | int], errors: Errors
) -> Photos:
    """The photos of image input ``spec`` in a JSON item: ``image`` (one) or ``images`` (a list)."""
    one = values.get(spec.name)
    several = values.get(spec.list_name) if schema.takes_list(spec) else None
    if one is not None and several is not None:
        msg = f"give either {spec.name} (one photo) or {spec.list_name} (a list of photos), not both"
        _error(errors, [*loc, spec.list_name], msg, "image_and_images")
        return []
    if several is not None:
        return [([*loc, spec.list_name, i], photo) for i, photo in enumerate(several)]
    if one is None and not schema.optional and schema.takes_list(spec):
        _error(errors, [*loc, spec.name], f"a photo is required: give {spec.name} or {spec.list_name}", "missing")
    return [([*loc, spec.name], one)] if one is not None else []


def _decode_photos(photos: Photos, settings: Settings, errors: Errors) -> list[bytes]:
    """Each photo decoded and checked (prepare_image); a bad one's error names its place."""
    out = []
    for where, photo in photos:
        try:
            data = decode_base64_image(photo, settings.max_image_bytes) if isinstance(photo, str) else photo
            out.append(
                prepare_image(data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels).data
            )
        except ImageError as exc:
            errors.append((exc.status, {"loc": where, "msg": exc.message, "type": "image"}))
    return out


def _finish_row(
    schema: ModelSchema,
    values: Mapping[str, Any],
    photos: Mapping[str, Photos],
    settings: Settings,
    errors: Errors,
) -> PreparedRow:
    """Validated request fields and the photos of each image input -> the model's row: photos
    decoded (errors appended), inputs not given set to the model's missing value (a card with
    ``missing``; an older card's fields are all there)."""
    row: dict[str, Any] = {}
    missing: list[str] = []
    for spec in schema.inputs:
        if spec.role == "image":
            decoded = _decode_photos(photos.get(spec.name, []), settings, errors)
            if not photos.get(spec.name):
                missing.append(spec.name)
            if spec.max_photos is not None:
                row[spec.name] = decoded  # the model's slots: padded with "" when it is called
            else:
                row[spec.name] = decoded[0] if decoded else schema.missing_value(spec)
        elif not schema.optional or _is_given(spec, values.get(spec.name)):
            row[spec.name] = values.get(spec.name)
        else:
            row[spec.name] = schema.missing_value(spec)
            missing.append(spec.name)
    if not schema.optional:
        return PreparedRow(row, schema.warnings(row), [], schema.all_groups)
    given = tuple(g for g in schema.all_groups if any(n not in missing for n in schema.inputs_of(g)))
    return PreparedRow(row, schema.warnings(row, missing), missing, given)


def _require_one(
    schema: ModelSchema, prepared: PreparedRow, loc: Sequence[str | int], errors: Errors, before: int
) -> None:
    """A request that gave no input at all (and has no other error since ``before``): 422."""
    if schema.optional and not prepared.given and len(errors) == before:
        _error(errors, loc, schema.needed_message(), "missing_inputs")


def _json_row(
    schema: ModelSchema, item: BaseModel, settings: Settings, loc: Sequence[str | int], errors: Errors
) -> PreparedRow:
    before = len(errors)
    values = _row_from_model(item)
    photos = {spec.name: _json_photos(schema, spec, values, loc, errors) for spec in schema.image_inputs}
    prepared = _finish_row(schema, values, photos, settings, errors)
    _require_one(schema, prepared, loc, errors, before)
    return prepared


def _raise(errors: list[tuple[int, dict[str, Any]]]) -> None:
    if errors:
        raise InputError(
            worst_status([status for status, _ in errors]),
            [e for _, e in errors[:MAX_REPORTED_ERRORS]],
        )


def _parse_json(body: bytes) -> Any:
    """Parse a body with pydantic's own JSON parser (NaN and Infinity are parsed, then refused by
    the models as non-finite numbers naming the field)."""
    try:
        return from_json(body)
    except ValueError as exc:
        raise InputError.single(422, [], f"body is not valid JSON ({exc})", "json_invalid") from None


def _check_field_count(schema: ModelSchema, value: Any, loc: Sequence[str | int]) -> None:
    """Refuse at once an object with far more fields than the model has inputs: validating a
    million unknown fields one by one costs seconds of CPU and a huge error list."""
    limit = len(schema.inputs) + MAX_REPORTED_ERRORS
    if isinstance(value, dict) and len(value) > limit:
        msg = f"has {len(value)} fields; this model's inputs are: " + ", ".join(schema.names)
        raise InputError.single(422, loc, msg, "too_many_fields")


def prepare_json(schema: ModelSchema, body: bytes, settings: Settings) -> PreparedRow:
    """A /v1/predict body -> one row. Raises InputError (422/413/415)."""
    if not body:
        raise InputError.single(422, [], "body is empty; send a JSON object", "missing")
    value = _parse_json(body)
    _check_field_count(schema, value, [])
    try:
        item = schema.item_model.model_validate(value)
    except ValidationError as exc:
        raise schema.validation_error(exc) from None
    errors: Errors = []
    prepared = _json_row(schema, item, settings, [], errors)
    _raise(errors)
    return prepared


def prepare_batch(schema: ModelSchema, body: bytes, settings: Settings) -> list[PreparedRow]:
    """A /v1/predict/batch body -> rows in order. Errors name the item index and field."""
    if not body:
        raise InputError.single(422, [], 'body is empty; send {"items": [...]}', "missing")
    value = _parse_json(body)
    _check_field_count(schema, value, [])
    items = value.get("items") if isinstance(value, dict) else None
    if isinstance(items, list):
        for index, item in enumerate(items[: settings.max_batch_items]):
            _check_field_count(schema, item, ["items", index])
    try:
        batch = schema.batch_model.model_validate(value)
    except ValidationError as exc:
        raise schema.validation_error(exc) from None
    errors: Errors = []
    prepared = [
        _json_row(schema, item, settings, ["items", index], errors)
        for index, item in enumerate(batch.items)  # type: ignore[attr-defined]
    ]
    _raise(errors)
    return prepared


def _form_values(schema: ModelSchema, fields: Mapping[str, list[str]], errors: Errors) -> dict[str, str]:
    """The form's text fields, one value each (a photo sent as text is refused, unless it is the
    empty value of a file field left empty on a card with ``missing``)."""
    image_names = {spec.name for spec in schema.image_inputs}
    values: dict[str, str] = {}
    for name, given in fields.items():
        if name in image_names:
            if not (schema.optional and not any(given)):
                _error(errors, [name], "must be a file part of the form", "file")
        elif len(given) > 1:
            _error(errors, [name], "given more than once", "repeat")
        else:
            values[name] = given[0]
    return values


def _form_photos(
    schema: ModelSchema, fields: Mapping[str, list[str]], files: Mapping[str, list[bytes]], errors: Errors
) -> dict[str, Photos]:
    """The file parts of each image input: one (``image``), or up to ``max_photos`` (``image[i]``
    in errors). On a card with ``missing`` an empty part is no photo (a file field left empty)."""
    specs = {spec.name: spec for spec in schema.image_inputs}
    photos: dict[str, Photos] = {}
    for name, parts in files.items():
        spec = specs.get(name)
        if spec is None:
            msg = "unknown file part; this model's image inputs are: " + ", ".join(sorted(specs))
            _error(errors, [name], msg, "extra_forbidden")
            continue
        parts = [part for part in parts if part] if schema.optional else list(parts)
        if not schema.takes_list(spec):
            if len(parts) > 1:
                _error(errors, [name], "given more than once", "repeat")
            photos[name] = [([name], part) for part in parts[:1]]
        elif len(parts) > schema.slots(spec):
            msg = f"holds {len(parts)} photos; this model takes at most {schema.slots(spec)} per listing (max_photos)"
            _error(errors, [name], msg, "too_long")
        else:
            photos[name] = [([name, i], part) for i, part in enumerate(parts)]
    if not schema.optional:
        for name in sorted(set(specs) - set(files) - set(fields)):
            _error(errors, [name], "file part required", "missing")
    return photos


def prepare_form(
    schema: ModelSchema,
    fields: Mapping[str, list[str]],
    files: Mapping[str, list[bytes]],
    settings: Settings,
) -> PreparedRow:
    """A /v1/predict/upload form (text fields and file parts by name) -> one row."""
    errors: Errors = []
    values = _form_values(schema, fields, errors)
    photos = _form_photos(schema, fields, files, errors)
    try:
        item: BaseModel | None = schema.form_model.model_validate(values)
    except ValidationError as exc:
        errors.extend((422, e) for e in schema.validation_error(exc).errors)
        item = None
    prepared = _finish_row(schema, _row_from_model(item) if item else {}, photos, settings, errors)  # image errors too
    _require_one(schema, prepared, [], errors, 0)  # only when the form has no other error
    _raise(errors)
    return prepared
