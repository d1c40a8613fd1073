"""Shared dependencies of the routes, as ``Annotated`` aliases.

All are ``async def``: they do no blocking work, and FastAPI runs a plain ``def`` dependency in
its thread pool, a thread hop per dependency per request (about 1-2 ms on a busy machine)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.batcher import MicroBatcher
from service.metrics import Metrics
from service.model import LoadedModel
from service.registry import ModelRegistry
from service.settings import Settings


@dataclass
class ServiceState:
    """What the lifespan builds and the routes use; stored as ``app.state.service``."""

    settings: Settings
    metrics: Metrics
    registry: ModelRegistry
    batcher: MicroBatcher | None = None


async def get_service(request: Request) -> ServiceState:
    return request.app.state.service


ServiceDep = Annotated[ServiceState, Depends(get_service)]


async def get_app_settings(service: ServiceDep) -> Settings:
    return service.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_model(service: ServiceDep) -> LoadedModel:
    """The served model, taken once for the whole request (a swap cannot split a request)."""
    model = service.registry.current
    if model is None:
        raise HTTPException(
            status_code=503,
            detail="no model is loaded yet; retry shortly (see GET /readyz)",
            headers={"Retry-After": "5"},
        )
    return model


ModelDep = Annotated[LoadedModel, Depends(get_model)]

_bearer = HTTPBearer(
    auto_error=False,
    description="Needed on /v1/* when the service runs with API_KEY set.",
)


async def require_api_key(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 unless API_KEY is unset or the request carries ``Authorization: Bearer <API_KEY>``."""
    if settings.api_key is None:
        return
    expected = settings.api_key.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials else b""
    if not hmac.compare_digest(given, expected):
        raise HTTPException(
            status_code=401,
            detail="missing or wrong API key: send the header 'Authorization: Bearer <API_KEY>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
