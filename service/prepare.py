"""Turns a raw request (JSON bytes or form fields) into rows the model takes: validates against
the served model's schema, decodes and checks images, collects warnings. Blocking (JSON parsing,
base64, Pillow): called from a worker thread, before the batch is formed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from service.images import ImageError, decode_base64_image, prepare_image
from service.schemas.errors import MAX_REPORTED_ERRORS, InputError, worst_status
from service.schemas.request import ModelSchema
from service.settings import Settings


@dataclass
class PreparedRow:
    """One item ready for the model, with its warnings."""

    row: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def _row_from_model(item: BaseModel) -> dict[str, Any]:
    return item.model_dump(by_alias=True)


def _finish_row(
    schema: ModelSchema,
    row: dict[str, Any],
    images: Mapping[str, bytes | str],
    settings: Settings,
    loc: Sequence[str | int],
    errors: list[tuple[int, dict[str, Any]]],
) -> PreparedRow:
    """Decode/check each image (base64 text or raw bytes) into ``row``; errors are appended."""
    for name, value in images.items():
        try:
            data = decode_base64_image(value, settings.max_image_bytes) if isinstance(value, str) else value
            row[name] = prepare_image(
                data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels
            ).data
        except ImageError as exc:
            errors.append((exc.status, {"loc": [*loc, name], "msg": exc.message, "type": "image"}))
    return PreparedRow(row, schema.warnings(row))


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
    row = _row_from_model(item)
    images = {spec.name: row[spec.name] for spec in schema.image_inputs}
    errors: list[tuple[int, dict[str, Any]]] = []
    prepared = _finish_row(schema, row, images, settings, [], errors)
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
    errors: list[tuple[int, dict[str, Any]]] = []
    prepared = []
    for index, item in enumerate(batch.items):  # type: ignore[attr-defined]
        row = _row_from_model(item)
        images = {spec.name: row[spec.name] for spec in schema.image_inputs}
        prepared.append(_finish_row(schema, row, images, settings, ["items", index], errors))
    _raise(errors)
    return prepared


def prepare_form(
    schema: ModelSchema,
    fields: Mapping[str, list[str]],
    files: Mapping[str, list[bytes]],
    settings: Settings,
) -> PreparedRow:
    """A /v1/predict/upload form (text fields and file parts by name) -> one row."""
    errors: list[tuple[int, dict[str, Any]]] = []
    image_names = {spec.name for spec in schema.image_inputs}
    values: dict[str, str] = {}
    for name, given in fields.items():
        if name in image_names:
            errors.append((422, {"loc": [name], "msg": "must be a file part of the form", "type": "file"}))
        elif len(given) > 1:
            errors.append((422, {"loc": [name], "msg": "given more than once", "type": "repeat"}))
        else:
            values[name] = given[0]
    images: dict[str, bytes | str] = {}
    for name, parts in files.items():
        if name not in image_names:
            errors.append(
                (
                    422,
                    {
                        "loc": [name],
                        "msg": "unknown file part; this model's image inputs are: " + ", ".join(sorted(image_names)),
                        "type": "extra_forbidden",
                    },
                )
            )
        elif len(parts) > 1:
            errors.append((422, {"loc": [name], "msg": "given more than once", "type": "repeat"}))
        else:
            images[name] = parts[0]
    for name in sorted(image_names - set(files) - set(fields)):
        errors.append((422, {"loc": [name], "msg": "file part required", "type": "missing"}))
    try:
        item = schema.form_model.model_validate(values)
        row = _row_from_model(item)
    except ValidationError as exc:
        errors.extend((422, e) for e in schema.validation_error(exc).errors)
        row = {}
    if row:
        prepared = _finish_row(schema, row, images, settings, [], errors)
    else:
        prepared = PreparedRow(row)
        _finish_row(schema, {}, images, settings, [], errors)  # report image problems too
    _raise(errors)
    return prepared
