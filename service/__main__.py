"""``python -m service``: serve on HOST:PORT with the settings from the environment."""

from __future__ import annotations

import uvicorn

from service.settings import get_settings


def main() -> None:
    settings = get_settings()
    uvicorn.run(
        "service.main:app",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,  # the service writes its own key=value line per request
    )


if __name__ == "__main__":
    main()
