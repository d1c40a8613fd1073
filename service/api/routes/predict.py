"""POST /v1/predict, /v1/predict/upload and /v1/predict/batch.

The request bodies are validated against the served model's schema (built from its card at load
time), so the handlers read the body themselves; the OpenAPI request schemas are filled in from
the same models by ``service.api.openapi``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.deps import ModelDep, ServiceDep, require_api_key
from service.api.middleware import request_log
from service.batcher import BatcherClosed, Outcome
from service.prepare import PreparedRow, prepare_batch, prepare_form, prepare_json
from service.registry import LoadedModel, RowError
from service.schemas import (
    BatchPrediction,
    BatchResponse,
    ErrorResponse,
    InputError,
    PredictResponse,
)

router = APIRouter(prefix="/v1", tags=["predict"], dependencies=[Depends(require_api_key)])

ERRORS = {
    401: {"model": ErrorResponse, "description": "API_KEY is set and the key is missing or wrong."},
    413: {"model": ErrorResponse, "description": "The body or an image is over its limit."},
    415: {"model": ErrorResponse, "description": "An image of a type the service refuses."},
    422: {"model": ErrorResponse, "description": "A missing, unknown or invalid field (named)."},
    503: {"model": ErrorResponse, "description": "No model is loaded yet."},
    504: {"model": ErrorResponse, "description": "The prediction took too long."},
}


async def _run(service: ServiceDep, model: LoadedModel, rows: Sequence[PreparedRow], request: Request) -> list[Outcome]:
    """Price prepared rows through the micro-batcher; row failures become 422 naming the item."""
    assert service.batcher is not None
    try:
        outcomes = await asyncio.wait_for(
            service.batcher.predict(model, [r.row for r in rows]),
            service.settings.inference_timeout_s,
        )
    except TimeoutError:
        raise HTTPException(504, "the prediction took longer than INFERENCE_TIMEOUT_S") from None
    except BatcherClosed:
        raise HTTPException(503, "the service is shutting down") from None
    log = request_log(request.scope)
    log["batch_size"] = max(o.batch_size for o in outcomes)
    errors = []
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome.error, RowError):
            loc: list[str | int] = ["items", index] if len(rows) > 1 else []
            msg = f"the model could not process this item ({outcome.error})"
            errors.append({"loc": loc, "msg": msg, "type": "model_input"})
        elif outcome.error is not None:
            raise HTTPException(500, "the model failed on this request") from outcome.error
    if errors:
        raise InputError(422, errors)
    return outcomes


def _require_content_type(request: Request, accepted: tuple[str, ...]) -> None:
    given = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if given not in accepted and not (given.endswith("+json") and "application/json" in accepted):
        raise HTTPException(415, f"Content-Type {given or '(none)'!r} is not accepted; send {accepted[0]}")


def _log_model(request: Request, model: LoadedModel, items: int) -> None:
    log = request_log(request.scope)
    log["model_version"] = model.version
    log["items"] = items


@router.post(
    "/predict",
    response_model=PredictResponse,
    summary="Suggest a price for one item (JSON, image as base64)",
    responses=ERRORS,
)
async def predict(request: Request, model: ModelDep, service: ServiceDep) -> PredictResponse:
    """Fields are the model's inputs by name (see GET /v1/model); `image` is the photo file
    as base64. A categorical value the model never saw is accepted with a warning."""
    _log_model(request, model, 1)
    _require_content_type(request, ("application/json",))
    body = await request.body()
    prepared = await run_in_threadpool(prepare_json, model.schema, body, service.settings)
    [outcome] = await _run(service, model, [prepared], request)
    return PredictResponse(
        price=round(outcome.price or 0.0, 2),
        currency=model.schema.currency,
        model_version=str(model.version),
        warnings=prepared.warnings,
    )


@router.post(
    "/predict/upload",
    response_model=PredictResponse,
    summary="Suggest a price for one item (multipart form, photo as a file part)",
    responses=ERRORS,
)
async def predict_upload(request: Request, model: ModelDep, service: ServiceDep) -> PredictResponse:
    """The same inputs as `/v1/predict` as `multipart/form-data`: the photo as the file part
    named after the image input (`image`), the other inputs as form fields."""
    _log_model(request, model, 1)
    settings = service.settings
    n_images = len(model.schema.image_inputs)
    _require_content_type(request, ("multipart/form-data",))
    fields: dict[str, list[str]] = {}
    files: dict[str, list[bytes]] = {}
    try:
        async with request.form(
            max_files=n_images + 1,
            max_fields=len(model.schema.inputs) + 8,
            max_part_size=settings.max_text_chars * 4 + 1024,
        ) as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files.setdefault(key, []).append(await value.read())
                else:
                    fields.setdefault(key, []).append(value)
    except StarletteHTTPException as exc:  # what Starlette's form parser raises
        if exc.status_code != 400:
            raise
        raise InputError.single(422, [], f"the multipart form could not be read ({exc.detail})", "form") from None
    prepared = await run_in_threadpool(prepare_form, model.schema, fields, files, settings)
    [outcome] = await _run(service, model, [prepared], request)
    return PredictResponse(
        price=round(outcome.price or 0.0, 2),
        currency=model.schema.currency,
        model_version=str(model.version),
        warnings=prepared.warnings,
    )


@router.post(
    "/predict/batch",
    response_model=BatchResponse,
    summary="Suggest prices for up to MAX_BATCH_ITEMS items (JSON)",
    responses=ERRORS,
)
async def predict_batch(request: Request, model: ModelDep, service: ServiceDep) -> BatchResponse:
    """`{"items": [...]}`, each item as the body of `/v1/predict`; the answers come in the same
    order. An invalid item gives 422 naming its index and field."""
    _require_content_type(request, ("application/json",))
    body = await request.body()
    prepared = await run_in_threadpool(prepare_batch, model.schema, body, service.settings)
    _log_model(request, model, len(prepared))
    outcomes = await _run(service, model, prepared, request)
    return BatchResponse(
        predictions=[
            BatchPrediction(price=round(o.price or 0.0, 2), warnings=p.warnings)
            for o, p in zip(outcomes, prepared, strict=True)
        ],
        currency=model.schema.currency,
        model_version=str(model.version),
    )
