"""uvicorn's h11 protocol with a deadline on the request head.

uvicorn closes a connection that stays idle after an answer (``timeout_keep_alive``), but not one
that sends nothing after connecting, nor one that sends its request line and headers a byte at a
time: such slow clients (slowloris) each hold a socket forever, until the process runs out of file
descriptors. Here every connection must deliver a complete request head within HEADER_TIMEOUT_S
of connecting or of its previous answer, or it is closed (with a 408 if it had started one). The
body has its own deadline (BODY_TIMEOUT_S), enforced by the request middleware.
"""

from __future__ import annotations

import asyncio
import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class GuardedH11Protocol(H11Protocol):
    """``uvicorn.run(..., http=GuardedH11Protocol)``; set ``head_timeout_s`` before serving."""

    head_timeout_s: float = 10.0

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_timer()  # the next request head on this connection has the same deadline

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        if self.head_timeout_s > 0 and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.conn.their_state is not h11.IDLE or (self.cycle is not None and not self.cycle.response_complete):
            return  # a request head arrived: the body deadline and the app take over
        if self.conn.trailing_data[0]:  # part of a head arrived: say why before closing
            body = json.dumps(
                {"detail": f"request headers not received within {self.head_timeout_s:g} s", "errors": []}
            ).encode()
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
        self.transport.close()
