"""One pure-ASGI middleware per request: body size limit (Content-Length first, then counted
while streaming), Prometheus metrics, the key=value log line, and a JSON 500 as a last resort."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import BodyTimeout, BodyTooLarge, error_body
from service.schemas.request import base64_length

logger = logging.getLogger("service.access")
error_logger = logging.getLogger(__name__)

LOG_KEY = "service.log"
KNOWN_ROUTES = (
    "/",
    "/v1/predict",
    "/v1/predict/upload",
    "/v1/predict/batch",
    "/v1/model",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/redoc",
)
FIELDS_ALLOWANCE = 1024 * 1024  # room for the non-image fields of one item


def request_log(scope: Scope) -> dict[str, Any]:
    """The per-request dict that handlers fill (model_version, batch_size, items)."""
    return scope.setdefault(LOG_KEY, {})


class RequestMiddleware:
    """See the module docstring; ``service`` is the app's ServiceState."""

    def __init__(self, app: ASGIApp, service: Any) -> None:
        self.app = app
        self.service = service

    def body_limit(self, path: str) -> int:
        """Largest body accepted on ``path``, derived from the image and batch limits."""
        settings = self.service.settings
        model = self.service.registry.current
        images = max(1, model.schema.photo_slots) if model else 1  # several photos per item: max_photos
        fields = FIELDS_ALLOWANCE + (len(model.schema.inputs) if model else 16) * (settings.max_text_chars * 6)
        if path == "/v1/predict":
            return images * (base64_length(settings.max_image_bytes) + 1024) + fields
        if path == "/v1/predict/upload":
            return images * (settings.max_image_bytes + 1024) + fields
        if path == "/v1/predict/batch":
            return settings.max_batch_body_bytes
        return 64 * 1024

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        log = request_log(scope)
        path = scope["path"]
        limit = self.body_limit(path)
        exchange = _Exchange(receive, send, limit, self.service.settings.body_timeout_s)
        try:
            declared = Headers(scope=scope).get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                # Refused before a byte of the body is read.
                await self._send_json(exchange.send, 413, BodyTooLarge(limit).detail)
            else:
                await self.app(scope, exchange.receive, exchange.send)
        except ClientDisconnect:  # the client went away mid-body: nobody to answer, not our fault
            exchange.status = 499
        except Exception:
            error_logger.exception("event=unhandled_error path=%s", path)
            if not exchange.response_started:
                await self._send_json(exchange.send, 500, "internal error")
        finally:
            self._record(scope, exchange.status, time.perf_counter() - started, log)

    def _record(self, scope: Scope, status: int, elapsed: float, log: dict[str, Any]) -> None:
        """The request's metrics and its access log line."""
        path = scope["path"]
        route = scope.get("route")
        label = getattr(route, "path", None) or (path if path in KNOWN_ROUTES else "unmatched")
        metrics = self.service.metrics
        metrics.requests.labels(route=label, method=scope["method"], status=str(status)).inc()
        metrics.latency.labels(route=label).observe(elapsed)
        logger.info(
            "method=%s route=%s status=%s latency_ms=%.1f model_version=%s batch_size=%s items=%s",
            scope["method"],
            label,
            status,
            elapsed * 1000,
            log.get("model_version", "-"),
            log.get("batch_size", "-"),
            log.get("items", "-"),
        )

    @staticmethod
    async def _send_json(send: Send, status: int, detail: str) -> None:
        body = json.dumps(error_body(detail)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _Exchange:
    """One request's ``receive`` and ``send``, wrapped: the body's deadline and size limit are
    enforced while it streams in, and the answer's status is noted for the log."""

    def __init__(self, receive: Receive, send: Send, limit: int, body_timeout_s: float) -> None:
        self._receive = receive
        self._send = send
        self.limit = limit
        self.body_timeout_s = body_timeout_s
        self.body_deadline = time.monotonic() + body_timeout_s
        self.received = 0
        self.body_done = False
        self.status = 500
        self.response_started = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.response_started = True
        await self._send(message)

    async def receive(self) -> Message:
        if self.body_done:  # later calls only wait for a disconnect: no deadline
            return await self._receive()
        try:  # asyncio.timeout: no extra task per receive, unlike wait_for
            async with asyncio.timeout(max(self.body_deadline - time.monotonic(), 0.001)):
                message = await self._receive()
        except TimeoutError:
            raise BodyTimeout(self.body_timeout_s) from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                raise BodyTooLarge(self.limit)
            self.body_done = not message.get("more_body", False)
        return message
