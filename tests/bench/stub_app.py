"""A stand-in server for the benchmark's smoke test: the routes the load generator and the
server helper use, no model (so the test needs no TensorFlow and takes seconds)."""

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
