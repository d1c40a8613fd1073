"""The service's configuration, read from environment variables (one class, cached)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MB = 1024 * 1024


class Settings(BaseSettings):
    """Every option of the service; each is read from the environment variable of the same
    name in upper case (``MODEL_DIR``, ``PORT``...). Documented in the README."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    model_dir: Path = Field(
        Path("models/price"),
        description="Folder holding the integer model versions 1/, 2/ ...; the highest is served.",
    )
    host: str = Field("127.0.0.1", description="Address `python -m service` listens on.")
    port: int = Field(8000, ge=0, le=65535, description="Port `python -m service` listens on.")
    max_image_bytes: int = Field(10 * MB, gt=0, description="Largest accepted image file, in bytes (413 above).")
    max_image_pixels: int = Field(
        50_000_000,
        gt=0,
        description="Largest accepted image, in pixels (width x height); stops decompression "
        "bombs before they are decoded (413 above).",
    )
    max_batch_items: int = Field(256, gt=0, description="Most items accepted by POST /v1/predict/batch (422 above).")
    max_batch_body_bytes: int = Field(
        128 * MB, gt=0, description="Largest request body of POST /v1/predict/batch (413 above)."
    )
    max_text_chars: int = Field(5000, gt=0, description="Longest accepted value of a text input, in characters.")
    max_category_chars: int = Field(
        200, gt=0, description="Longest accepted value of a categorical input, in characters."
    )
    batch_max_size: int = Field(
        32,
        ge=1,
        description="Most rows gathered into one SavedModel call; 1 turns micro-batching off. Rows that "
        "arrive while a call runs go together into the next call; a row that finds the model idle is sent at once.",
    )
    batch_max_wait_ms: float = Field(
        0.0,
        ge=0,
        description="Extra wait for company before each model call: the first queued row waits at most this "
        "long for others. 0 (the default): no wait, batches form only from the rows that queue during a call.",
    )
    inference_timeout_s: float = Field(30.0, gt=0, description="A prediction not answered within this time gets 504.")
    reload_interval_s: float = Field(
        10.0,
        ge=0,
        description="How often MODEL_DIR is checked for a newer version, in seconds; 0 turns "
        "watching off (the version found at start is served until restart).",
    )
    warmup_runs: int = Field(
        3, ge=1, description="Prediction calls made on a freshly loaded version before serving it."
    )
    header_timeout_s: float = Field(
        10.0,
        ge=0,
        description="A connection must send a complete request head within this time of connecting "
        "(or of its previous answer), else it is closed (408 if it had started one); 0 turns it off. "
        "Applies to `python -m service`.",
    )
    body_timeout_s: float = Field(
        60.0,
        gt=0,
        description="A request body must arrive whole within this time of its headers (408 after).",
    )
    cors_origins: str = Field(
        "",
        description="Comma-separated origins allowed to call the API from a browser on another site "
        "(e.g. `https://shop.example`); empty (the default): CORS is off, no Access-Control-* header.",
    )
    api_key: SecretStr | None = Field(
        None,
        description="When set, every /v1/* route needs `Authorization: Bearer <API_KEY>`.",
    )
    log_level: str = Field("INFO", description="Python logging level of the service's logs.")

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"}:
            raise ValueError("must be one of CRITICAL, ERROR, WARNING, INFO, DEBUG")
        return level

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def batching_enabled(self) -> bool:
        """Micro-batching is off when a call may take only one row."""
        return self.batch_max_size > 1


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, read once from the environment."""
    return Settings()
