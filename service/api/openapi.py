"""OpenAPI document whose request schemas and examples come from the served model's card.

The prediction routes read their bodies themselves (the schema is only known once a model is
loaded), so their request bodies are filled in here, and the document is rebuilt after a swap.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from common.card import subset_key
from service.schemas.request import ModelSchema

DESCRIPTION = """Suggests a price for a second-hand item from its details and a photo.

The request fields are the served model's inputs (see `GET /v1/model`); the schemas below are
those of the model loaded when this page was generated. Errors are JSON with a readable `detail`
naming the field. When the service runs with `API_KEY`, `/v1/*` needs
`Authorization: Bearer <API_KEY>`.

Every prediction also carries a calibrated `range` (`low`, `high`, `level`: on held-out data that
share of true prices fell inside it; `level=` picks another calibrated level) and `contributions`:
per modality (`metadata`, `text`, `image`) the `amount` the price moves when that modality's inputs
are replaced by a neutral baseline, in the currency, and its `share` of the total movement.
`explain=false` skips the contributions (they cost one extra model row per modality and item).
Models whose card predates these fields answer without them.

When the model card has a `missing` block (see `served.optional_inputs` in `GET /v1/model`),
every input may be left out (absent, null, or `""` for a category or a text), at least one must be
given, and a listing may carry several photos (`images`: a list of base64 files, or several
`image` file parts, up to `max_photos`). Each answer lists the inputs it did not get (`missing`);
its `range` is calibrated for the input groups given (wider with less), `range_if_given` gives the
range each missing group would bring, and a group not given contributes `"missing"`. Older models
require every input and take one photo.
"""


def _schema_with_defs(model: type, components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[schema.get("title", model.__name__)] = schema
    return {"$ref": f"#/components/schemas/{schema.get('title', model.__name__)}"}


def _fill(document: dict[str, Any], schema: ModelSchema) -> None:
    components = document.setdefault("components", {}).setdefault("schemas", {})
    example = schema.example_item()
    paths = document.get("paths", {})

    item_ref = _schema_with_defs(schema.item_model, components)
    batch_ref = _schema_with_defs(schema.batch_model, components)
    form_schema = copy.deepcopy(schema.form_model.model_json_schema(by_alias=True))
    form_schema.pop("title", None)
    for spec in schema.image_inputs:
        photo = {"type": "string", "format": "binary", "description": "The photo file (JPEG, PNG, WebP or GIF)."}
        if schema.takes_list(spec):
            form_schema.setdefault("properties", {})[spec.name] = {
                "type": "array",
                "items": photo,
                "maxItems": schema.slots(spec),
                "description": f"Up to {schema.slots(spec)} photo files, each a `{spec.name}` file part"
                + (" (none: no photo)." if schema.optional else "."),
            }
        else:
            form_schema.setdefault("properties", {})[spec.name] = photo
        if not schema.optional:
            form_schema.setdefault("required", []).append(spec.name)
    item_examples = {"item": {"summary": "One item", "value": example}}
    if schema.optional:
        for group in schema.all_groups:
            item_examples[f"only_{group}"] = {
                "summary": f"Only the {group} (the other inputs missing)",
                "value": schema.example_partial(group),
            }

    bodies = {
        "/v1/predict": {
            "application/json": {
                "schema": item_ref,
                "examples": item_examples,
            }
        },
        "/v1/predict/batch": {
            "application/json": {
                "schema": batch_ref,
                "examples": {"two": {"summary": "Two items", "value": {"items": [example] * 2}}},
            }
        },
        "/v1/predict/upload": {"multipart/form-data": {"schema": form_schema}},
    }
    for path, content in bodies.items():
        operation = paths.get(path, {}).get("post")
        if operation is not None:
            operation["requestBody"] = {"required": True, "content": content}


def _fill_answers(document: dict[str, Any], model: Any) -> None:
    """Answer examples as the served model gives them: with a `range` and `contributions` for each
    of its modalities when its card has them."""
    schema = model.schema
    item: dict[str, Any] = {"price": 42.5, "warnings": []}
    # a model that takes incomplete items: the example lacks its last group (often the photo)
    lacking = schema.all_groups[-1] if schema.optional and len(schema.all_groups) > 1 else None
    given = [g for g in schema.all_groups if g != lacking]
    item["missing"] = schema.inputs_of(lacking) if lacking else []
    if model.price_range is not None:
        level = model.price_range.level
        low, high = model.price_range.bounds(42.5, level, subset_key(given))
        item["range"] = {"low": round(low, 2), "high": round(high, 2), "level": level}
        groups = {g: schema.inputs_of(g) for g in schema.all_groups}
        item["range_if_given"] = model.price_range.if_given(42.5, level, given, groups) if lacking else []
    if model.occlusion is not None:
        amounts = {"metadata": 12.3, "text": -2.1, "image": 8.0}
        chosen = {m: amounts[m] for m in model.occlusion.groups if m != lacking}
        total = sum(abs(a) for a in chosen.values()) or 1.0
        item["contributions"] = {
            m: {"amount": chosen[m], "share": round(abs(chosen[m]) / total, 4)} if m in chosen else "missing"
            for m in model.occlusion.groups
        }
    meta = {"currency": model.schema.currency, "model_version": str(model.version)}
    single = {"price": item["price"], **meta, **{k: v for k, v in item.items() if k != "price"}}
    answers = {
        "/v1/predict": single,
        "/v1/predict/upload": single,
        "/v1/predict/batch": {"predictions": [item, item], **meta},
    }
    for path, example in answers.items():
        operation = document.get("paths", {}).get(path, {}).get("post")
        content = (operation or {}).get("responses", {}).get("200", {}).get("content", {}).get("application/json")
        if content is not None:
            content["example"] = example


def _drop_security(document: dict[str, Any]) -> None:
    """Without API_KEY no route needs a key: say so (the bearer scheme would claim otherwise)."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.pop("security", None)
            operation.get("responses", {}).pop("401", None)
    document.get("components", {}).pop("securitySchemes", None)


def install_openapi(app: FastAPI) -> None:
    """Replace ``app.openapi`` by a version that follows the served model."""

    def openapi() -> dict[str, Any]:
        model = app.state.service.registry.current
        key = model.version if model is not None else None
        cached = getattr(app.state, "openapi_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=DESCRIPTION,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        if model is not None:
            _fill(document, model.schema)
            _fill_answers(document, model)
            document["info"]["x-model-version"] = str(model.version)
        if app.state.service.settings.api_key is None:
            _drop_security(document)
        app.state.openapi_cache = (key, document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
