"""POST /v1/predict, /v1/predict/upload and /v1/predict/batch.

The request bodies are validated against the served model's schema (built from its card at load
time), so the handlers read the body themselves; the OpenAPI request schemas are filled in from
the same models by ``service.api.openapi``. Every answer carries the calibrated price range and,
unless ``explain=false``, what drove the price (``service.explain``), when the card allows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.deps import ServedDep, ServiceState
from service.api.middleware import request_log
from service.batcher import BatcherClosed, Outcome
from service.comparables import MAX_K
from service.explain import plan_rows
from service.model import LoadedModel, RowError
from service.prepare import PreparedRow, prepare_batch, prepare_form, prepare_json
from service.schemas.errors import InputError
from service.schemas.response import BatchPrediction, BatchResponse, ErrorResponse, PredictResponse
from service.settings import Settings

router = APIRouter(prefix="/v1", tags=["predict"])

ERRORS = {
    401: {"model": ErrorResponse, "description": "API_KEY is set and the key is missing or wrong."},
    408: {"model": ErrorResponse, "description": "The body did not arrive within BODY_TIMEOUT_S."},
    413: {"model": ErrorResponse, "description": "The body or an image is over its limit."},
    415: {"model": ErrorResponse, "description": "An image of a type the service refuses."},
    422: {"model": ErrorResponse, "description": "A missing, unknown or invalid field (named)."},
    503: {"model": ErrorResponse, "description": "No model is loaded yet."},
    504: {"model": ErrorResponse, "description": "The prediction took too long."},
}


ExplainQuery = Annotated[
    bool,
    Query(
        description="Also say what drove the price (`contributions`): scores each item beside one copy per "
        "modality (metadata, text, photo) with that modality's inputs set to a neutral baseline, in the same "
        "model call. `false` skips that work; the `range` is always there.",
    ),
]
ComparablesQuery = Annotated[
    int | None,
    Query(
        ge=0,
        le=MAX_K,
        description="How many comparables to answer with: the most similar train and valid listings, with their "
        "price, similarity and the fields the model's config shows (see `comparables` in GET /v1/model). "
        "0..20; default: the model's (usually 5); 0 skips the search. Versions without an index answer "
        "without them.",
        examples=[5],
    ),
]
LevelQuery = Annotated[
    float | None,
    Query(
        description="Coverage level of the `range`: one of the levels the model was calibrated at "
        "(see `interval.quantiles` in GET /v1/model; usually 0.5, 0.8, 0.9, 0.95). Default: the "
        "model's (usually 0.8). Another value gives 422.",
        examples=[0.8],
    ),
]


def _range_level(model: LoadedModel, level: float | None) -> float | None:
    """The stored level the answer's range uses; None when the model has no range."""
    if model.price_range is None:
        if level is not None:
            msg = "this model version has no calibrated range (its model card predates it)"
            raise InputError.single(422, ["level"], msg, "no_range")
        return None
    matched = model.price_range.match(level)
    if matched is None:
        shown = ", ".join(f"{lv:g}" for lv in model.price_range.levels)
        msg = f"must be one of {shown} (the levels this model version was calibrated at)"
        raise InputError.single(422, ["level"], msg, "level")
    return matched


async def _price(
    service: ServiceState,
    model: LoadedModel,
    prepared: Sequence[PreparedRow],
    request: Request,
    explain: bool,
    level: float | None,
    comparables: int | None = None,
) -> list[dict[str, Any]]:
    """Price, range, contributions and comparables of each prepared item; all rows go to the
    micro-batcher at once (with ``explain``, each item brings one neutral copy per modality; an
    item's own row also asks for its comparables, searched in the same call)."""
    occlusion = model.occlusion if explain else None
    schema = model.schema
    plan = plan_rows([p.row for p in prepared], occlusion, [p.given for p in prepared])
    index = model.comparables
    k = (index.default_k if comparables is None else comparables) if index is not None else 0
    first = plan.first_rows
    ks = [k if i in first else 0 for i in range(len(plan.rows))]
    outcomes = await _run(service, model, plan.rows, request, owners=plan.owners, ks=ks)
    answers = []
    for item, prices in enumerate(plan.item_prices([o.price or 0.0 for o in outcomes])):
        given = prepared[item].given
        answer: dict[str, Any] = {"price": round(prices[0], 2), "missing": prepared[item].missing}
        if level is not None and model.price_range is not None:
            texts = [n for n in schema.inputs_of("text") if prepared[item].row.get(n)]
            key = model.price_range.key(given, texts)
            answer["range"] = model.price_range.answer(prices[0], level, key)
            if prepared[item].missing:
                groups = {g: schema.inputs_of(g) for g in schema.all_groups}
                answer["range_if_given"] = model.price_range.if_given(prices[0], level, given, groups, texts)
        if occlusion is not None:
            answer["contributions"] = occlusion.contributions(prices, given)
        found = outcomes[plan.starts[item]].neighbours
        if index is not None and k > 0 and found is not None:
            answer["comparables"] = index.answer(found[0], found[1], model.version)
        answers.append(answer)
    return answers


async def _run(
    service: ServiceState,
    model: LoadedModel,
    rows: Sequence[dict[str, Any]],
    request: Request,
    owners: Sequence[int] | None = None,
    ks: Sequence[int] | None = None,
) -> list[Outcome]:
    """Price model rows through the micro-batcher; row failures become 422 naming the item
    (``owners``: the request item of each row, default one row per item; ``ks``: comparables
    per row)."""
    assert service.batcher is not None
    owners = list(owners) if owners is not None else list(range(len(rows)))
    items = len(set(owners))
    try:
        async with asyncio.timeout(service.settings.inference_timeout_s):  # no extra task, unlike wait_for
            outcomes = await service.batcher.predict(model, rows, ks)
    except TimeoutError:
        raise HTTPException(504, "the prediction took longer than INFERENCE_TIMEOUT_S") from None
    except BatcherClosed:
        raise HTTPException(503, "the service is shutting down") from None
    log = request_log(request.scope)
    log["batch_size"] = max(o.batch_size for o in outcomes)
    errors = []
    failed: set[int] = set()
    for owner, outcome in zip(owners, outcomes, strict=True):
        if isinstance(outcome.error, RowError):
            if owner in failed:  # one error per item, even if its neutral copies failed too
                continue
            failed.add(owner)
            loc: list[str | int] = ["items", owner] if items > 1 else []
            msg = f"the model could not process this item ({outcome.error})"
            errors.append({"loc": loc, "msg": msg, "type": "model_input"})
        elif outcome.error is not None:
            raise HTTPException(500, "the model failed on this request") from outcome.error
    if errors:
        raise InputError(422, errors)
    return outcomes


# A /v1/predict body this small, with a photo of at most this many pixels, is checked on the event
# loop: about 0.4 ms of work for a phone-sized thumbnail, less than the two thread switches it
# would otherwise cost (0.5-1.5 ms on a busy 2-core machine). A larger body, or a photo with more
# pixels (whose decoding could hold the loop for longer), is prepared in a worker thread.
INLINE_BODY_BYTES = 64 * 1024
INLINE_IMAGE_PIXELS = 512 * 512


@lru_cache(maxsize=8)
def _inline_settings(settings: Settings) -> Settings:
    """``settings`` with MAX_IMAGE_PIXELS capped for the on-loop path."""
    return settings.model_copy(update={"max_image_pixels": min(settings.max_image_pixels, INLINE_IMAGE_PIXELS)})


async def _prepare_one(prepare: Callable[..., PreparedRow], size: int, settings: Settings, *args: Any) -> PreparedRow:
    """``prepare(*args, settings)`` for one item: on the loop when the body is small and its photo
    too (a photo over the capped pixel limit, or any other image error, is redone in a worker
    thread with the real limits, so answers and errors are those of the threaded path)."""
    if size <= INLINE_BODY_BYTES:
        try:
            return prepare(*args, _inline_settings(settings))
        except InputError as exc:
            if not any(error.get("type") == "image" for error in exc.errors):
                raise
    return await run_in_threadpool(prepare, *args, settings)


def _require_content_type(request: Request, accepted: tuple[str, ...]) -> None:
    given = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if given not in accepted and not (given.endswith("+json") and "application/json" in accepted):
        raise HTTPException(415, f"Content-Type {given or '(none)'!r} is not accepted; send {accepted[0]}")


def _json(answer: PredictResponse | BatchResponse) -> Response:
    """The answer as JSON, serialised by pydantic-core in one step: the object was validated when
    it was built, and FastAPI's own response handling (validate again, then encode) cost a lone
    request about 0.3 ms. The route's ``response_model`` still documents it in OpenAPI."""
    return Response(answer.model_dump_json(exclude_none=True), media_type="application/json")


def _json_one(answer: dict[str, Any], model: LoadedModel, prepared: PreparedRow) -> Response:
    """One item's answer (`/v1/predict` and `/v1/predict/upload` give the same)."""
    return _json(
        PredictResponse(
            **answer, currency=model.schema.currency, model_version=str(model.version), warnings=prepared.warnings
        )
    )


def _log_model(request: Request, model: LoadedModel, items: int) -> None:
    log = request_log(request.scope)
    log["model_version"] = model.version
    log["items"] = items


@router.post(
    "/predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    summary="Suggest a price for one item (JSON, image as base64)",
    responses=ERRORS,
)
async def predict(
    request: Request,
    served: ServedDep,
    explain: ExplainQuery = True,
    level: LevelQuery = None,
    comparables: ComparablesQuery = None,
) -> Response:
    """Fields are the model's inputs by name (see GET /v1/model); `image` is the photo file
    as base64, or `images` a list of them (up to the model's `max_photos`). A categorical value the
    model never saw is accepted with a warning. When the model card has a `missing` block every
    field may be left out (absent, null, or "" for a category or a text), at least one must be
    given: the answer lists the inputs it did not get (`missing`), its `range` is the one
    calibrated for what was given, and `range_if_given` says how much each missing group would
    narrow it. The answer holds the price, its calibrated `range` and (unless `explain=false`) the
    `contributions` of metadata, text and photo ("missing" for one not given)."""
    service, model = served.service, served.model
    _log_model(request, model, 1)
    _require_content_type(request, ("application/json",))
    range_level = _range_level(model, level)
    body = await request.body()
    prepared = await _prepare_one(prepare_json, len(body), service.settings, model.schema, body)
    [answer] = await _price(service, model, [prepared], request, explain, range_level, comparables)
    return _json_one(answer, model, prepared)


@router.post(
    "/predict/upload",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    summary="Suggest a price for one item (multipart form, photo as a file part)",
    responses=ERRORS,
)
async def predict_upload(
    request: Request,
    served: ServedDep,
    explain: ExplainQuery = True,
    level: LevelQuery = None,
    comparables: ComparablesQuery = None,
) -> Response:
    """The same inputs as `/v1/predict` as `multipart/form-data`: the photo as the file part
    named after the image input (`image`; several such parts, up to the model's `max_photos`), the
    other inputs as form fields (an empty field or file part is an input not given, when the model
    card has a `missing` block; such a model also takes `application/x-www-form-urlencoded`, a form
    without photos). The same answer."""
    service, model = served.service, served.model
    _log_model(request, model, 1)
    settings = service.settings
    n_images = model.schema.photo_slots
    # a model that prices items without a photo also takes a plain form (no file part to send)
    forms = ("multipart/form-data", "application/x-www-form-urlencoded") if model.schema.optional else ()
    _require_content_type(request, forms or ("multipart/form-data",))
    range_level = _range_level(model, level)
    fields: dict[str, list[str]] = {}
    files: dict[str, list[bytes]] = {}
    try:
        async with request.form(
            max_files=n_images + 4,  # a few over the photo slots: those get a 422 that counts them
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
    size = sum(len(v) for parts in fields.values() for v in parts) + sum(
        len(b) for parts in files.values() for b in parts
    )
    prepared = await _prepare_one(prepare_form, size, settings, model.schema, fields, files)
    [answer] = await _price(service, model, [prepared], request, explain, range_level, comparables)
    return _json_one(answer, model, prepared)


@router.post(
    "/predict/batch",
    response_model=BatchResponse,
    response_model_exclude_none=True,
    summary="Suggest prices for up to MAX_BATCH_ITEMS items (JSON)",
    responses=ERRORS,
)
async def predict_batch(
    request: Request,
    served: ServedDep,
    explain: ExplainQuery = True,
    level: LevelQuery = None,
    comparables: ComparablesQuery = None,
) -> Response:
    """`{"items": [...]}`, each item as the body of `/v1/predict` (each may leave out other
    inputs); the answers (price, missing, range, contributions) come in the same order. An invalid
    item gives 422 naming its index and field."""
    service, model = served.service, served.model
    _require_content_type(request, ("application/json",))
    range_level = _range_level(model, level)
    body = await request.body()
    prepared = await run_in_threadpool(prepare_batch, model.schema, body, service.settings)
    _log_model(request, model, len(prepared))
    answers = await _price(service, model, prepared, request, explain, range_level, comparables)
    return _json(
        BatchResponse(
            predictions=[
                BatchPrediction(**answer, warnings=p.warnings) for answer, p in zip(answers, prepared, strict=True)
            ],
            currency=model.schema.currency,
            model_version=str(model.version),
        )
    )
