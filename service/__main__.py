"""``python -m service``: serve on HOST:PORT with the settings from the environment."""

from __future__ import annotations

import uvicorn

from service.protocol import GuardedH11Protocol
from service.settings import get_settings


def main() -> None:
    settings = get_settings()
    GuardedH11Protocol.head_timeout_s = settings.header_timeout_s
    uvicorn.run(
        "service.main:app",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,  # the service writes its own key=value line per request
        http=GuardedH11Protocol,  # h11 with a deadline on request heads (slow clients)
    )


if __name__ == "__main__":
    main()
