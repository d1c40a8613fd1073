"""A stand-in server (the ``stub_server`` fixture) for the benchmark's smoke test and the harness
tests: the routes the load generator and harness/server.py use, no model (so those tests need no
TensorFlow and take seconds)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

app = FastAPI()


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ready"}


@app.post("/v1/predict")
async def predict(item: dict[str, Any]) -> dict[str, Any]:
    return {"price": float(len(item)), "currency": "EUR"}
