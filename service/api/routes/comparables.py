"""GET /v1/comparables/{id}/thumbnail: the small photo of a comparable listing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response

from service.api.deps import ServedDep
from service.api.routes.predict import ERRORS
from service.schemas.response import ErrorResponse

router = APIRouter(prefix="/v1", tags=["comparables"])


@router.get(
    "/comparables/{listing_id}/thumbnail",
    summary="The thumbnail of a comparable listing (JPEG)",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The JPEG (about 64 px on its longest side)."},
        404: {
            "model": ErrorResponse,
            "description": "No such listing with a thumbnail in the served version, or another version.",
        },
        422: {"model": ErrorResponse, "description": "A `version` below 0 or not a number, an id over 200 characters."},
        **{k: ERRORS[k] for k in (401, 503)},
    },
)
async def thumbnail(
    served: ServedDep,
    listing_id: Annotated[str, Path(max_length=200, description="The comparable's `id`.")],
    version: Annotated[
        int | None,
        Query(ge=0, description="The model version that answered (a comparable's `thumbnail` URL carries it)."),
    ] = None,
) -> Response:
    model = served.model
    if version is not None and version != model.version:
        raise HTTPException(404, f"version: {version} is not served any more (the service serves {model.version})")
    index = model.comparables
    jpeg = index.thumbnail(listing_id) if index is not None else None
    if jpeg is None:
        raise HTTPException(404, f"listing_id: no listing {listing_id!r} with a thumbnail in version {model.version}")
    return Response(
        jpeg,
        media_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=86400", "X-Model-Version": str(model.version)},
    )
