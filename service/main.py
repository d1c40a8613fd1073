"""Wires the service together: ``create_app()`` and the lifespan. Run with
``uvicorn service.main:app`` or ``python -m service``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

import common.quiet_tf  # noqa: F401  (first: `uvicorn service.main:app` starts quietly too)
from service.api.deps import ServiceState
from service.api.errors import install_error_handlers
from service.api.middleware import RequestMiddleware
from service.api.openapi import install_openapi
from service.api.routes import comparables, health, model, page, predict
from service.batcher import MicroBatcher
from service.metrics import Metrics
from service.registry import ModelRegistry
from service.settings import Settings, get_settings

TAGS = [
    {"name": "predict", "description": "Price suggestions."},
    {"name": "model", "description": "The served model."},
    {"name": "health", "description": "Liveness, readiness and metrics (never need a key)."},
    {"name": "page", "description": "The sellers' web page."},
]


def configure_logging(level: str) -> None:
    """Give the service's loggers a level, and a handler when nothing else configured one."""
    package = logging.getLogger("service")
    package.setLevel(level)
    if not logging.getLogger().handlers and not package.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        package.addHandler(handler)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the micro-batcher and the registry (which loads, warms up and then watches the
    model folder in a background thread; /readyz turns 200 once a version serves)."""
    service: ServiceState = app.state.service
    settings = service.settings
    configure_logging(settings.log_level)
    service.batcher = MicroBatcher(
        max_size=settings.batch_max_size,
        max_wait_ms=settings.batch_max_wait_ms,
        metrics=service.metrics,
    )
    await service.batcher.start()
    service.registry.start()
    try:
        yield
    finally:
        await asyncio.to_thread(service.registry.stop)
        await service.batcher.stop()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; nothing is loaded until the lifespan runs."""
    settings = settings or get_settings()
    metrics = Metrics()
    service = ServiceState(settings=settings, metrics=metrics, registry=ModelRegistry(settings, metrics))
    app = FastAPI(
        title="Price suggestion service",
        version="1.0.0",
        lifespan=lifespan,
        openapi_tags=TAGS,
    )
    app.state.service = service
    install_error_handlers(app)
    app.add_middleware(RequestMiddleware, service=service)
    if settings.cors_origin_list:  # off unless CORS_ORIGINS names the sites allowed to call us
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    app.include_router(predict.router)
    app.include_router(model.router)
    app.include_router(comparables.router)
    app.include_router(health.router)
    app.include_router(page.router)
    install_openapi(app)
    return app


app = create_app()
