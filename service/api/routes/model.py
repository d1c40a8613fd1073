"""GET /v1/model: the served model card."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service.api.deps import ServedDep
from service.api.routes.predict import ERRORS

router = APIRouter(prefix="/v1", tags=["model"])


@router.get(
    "/model",
    summary="The served model card",
    responses={k: ERRORS[k] for k in (401, 503)},
    response_description="The model card as exported (docs/contract.md) plus a `served` block.",
)
async def model_card(served: ServedDep) -> dict[str, Any]:
    """Version, input schema (with the accepted range of each numeric input), metrics, created
    time, as written by the exporter; `served` says which folder answers and since when, the
    levels a `range` can be asked at, whether answers carry `contributions`, whether inputs may be
    left out (`optional_inputs`, the card's `missing` block) and in which groups, the photos each
    image input takes (`max_photos`) and the subsets with their own calibrated range."""
    model = served.model
    card = dict(model.card)
    card["inputs"] = [
        dict(entry, accepted_range=list(spec.accepted_range))
        if isinstance(entry, dict)
        and (spec := model.schema.spec(entry.get("name"))) is not None
        and spec.accepted_range is not None
        else entry
        for entry in card.get("inputs", [])
    ]
    card["served"] = {
        "version": str(model.version),
        "path": str(model.path),
        "loaded_at": model.loaded_at,
        "currency": model.schema.currency,
        "range_levels": model.price_range.levels if model.price_range else [],
        "contributions": model.occlusion is not None,
        "comparables": model.comparables.neighbours.size if model.comparables is not None else 0,
        "optional_inputs": model.schema.optional,
        "input_groups": {g: model.schema.inputs_of(g) for g in model.schema.all_groups},
        "max_photos": {spec.name: model.schema.slots(spec) for spec in model.schema.image_inputs},
        "range_subsets": sorted(model.price_range.by_inputs) if model.price_range else [],
    }
    return card
