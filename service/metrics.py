"""Prometheus metrics of one app instance (own registry, so several apps can live in a test)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """The service's metrics; ``render()`` gives the /metrics text."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from request start to the end of the response, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "model_batch_size",
            "Rows per SavedModel call (micro-batches and /v1/predict/batch chunks).",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.inference = Histogram(
            "model_inference_duration_seconds",
            "Time of one SavedModel call.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model_version = Gauge(
            "model_version",
            "Version number of the served model (0 while none is loaded).",
            registry=self.registry,
        )
        self.model_info = Gauge(
            "model_info",
            "1 for the served model, labelled with its name, version and currency.",
            ["name", "version", "currency"],
            registry=self.registry,
        )
        self.model_loads = Counter(
            "model_loads_total",
            "Model versions loaded (result=loaded) or refused (result=refused).",
            ["result"],
            registry=self.registry,
        )

    def set_model(self, name: str, version: int, currency: str) -> None:
        self.model_info.clear()
        self.model_info.labels(name=name, version=str(version), currency=currency).set(1)
        self.model_version.set(version)

    def render(self) -> bytes:
        return generate_latest(self.registry)
