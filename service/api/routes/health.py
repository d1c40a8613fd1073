"""Liveness, readiness and metrics; open even when API_KEY is set."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from service.api.deps import ServiceDep
from service.api.errors import error_body
from service.schemas.response import ErrorResponse, HealthResponse, ReadyResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse, summary="The process is alive")
async def healthz() -> HealthResponse:
    return HealthResponse()


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    summary="A model is loaded and warmed up",
    responses={503: {"model": ErrorResponse, "description": "No model is loaded yet."}},
)
async def readyz(service: ServiceDep) -> ReadyResponse | JSONResponse:
    model = service.registry.current
    if model is None:
        return JSONResponse(error_body("no model is loaded yet"), status_code=503, headers={"Retry-After": "5"})
    return ReadyResponse(model_version=str(model.version))


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(service: ServiceDep) -> Response:
    return Response(service.metrics.render(), media_type=service.metrics.content_type)
