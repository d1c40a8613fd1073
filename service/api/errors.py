"""Error answers: always JSON with a readable ``detail`` (and ``errors`` for input problems)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.schemas.errors import InputError, format_loc

logger = logging.getLogger(__name__)


class BodyTooLarge(StarletteHTTPException):
    """Raised while a request body is read, as soon as it passes its limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"request body is larger than the limit of {limit} bytes for this route",
        )


class BodyTimeout(StarletteHTTPException):
    """Raised while a request body is read, once BODY_TIMEOUT_S has passed (slow clients)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            status_code=408,
            detail=f"request body not received within {seconds:g} s (BODY_TIMEOUT_S)",
            headers={"Connection": "close"},
        )


def error_body(detail: str, errors: list | None = None) -> dict:
    return {"detail": detail, "errors": errors or []}


async def _input_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InputError)
    return JSONResponse(error_body(exc.detail, exc.errors), status_code=exc.status)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return JSONResponse(error_body(detail), status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")} for e in exc.errors()
    ]
    detail = "; ".join(f"{format_loc(e['loc'][1:] or e['loc'])}: {e['msg']}" for e in errors)
    return JSONResponse(error_body(detail or "invalid request", errors), status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
