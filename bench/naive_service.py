"""The naive service the benchmark compares against: the way tutorials serve a Keras model.

A module-level model loaded at import, a pydantic request model, and one FastAPI route that
decodes the base64 photo, opens it with Pillow (the usual "is it an image" check), and calls
``model.predict`` on that one item: no batching across requests, FastAPI's thread pool for the
blocking call (a plain ``def`` route, as FastAPI's docs advise for blocking code).

``NAIVE_CALL=signature`` calls the SavedModel's signature instead of Keras ``model.predict``
(the same route without Keras' per-call ``predict`` machinery: a stronger naive baseline).
Run: ``MODEL_DIR=models/price uvicorn bench.naive_service:app``. Not for production.
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from PIL import Image  # noqa: E402
from pydantic import BaseModel, create_model  # noqa: E402

from common.files import newest  # noqa: E402

MODEL_DIR = Path(os.environ.get("MODEL_DIR", "models/price"))
CALL = os.environ.get("NAIVE_CALL", "predict")
VERSION = newest(MODEL_DIR)
CARD = json.loads((VERSION / "model_card.json").read_text())
INPUTS = CARD["inputs"]

if CALL == "signature":
    loaded = tf.saved_model.load(str(VERSION))
    signature = loaded.signatures["serving_default"]
else:
    layer = keras.layers.TFSMLayer(str(VERSION), call_endpoint="serve")
    inputs = {  # a card's photo input with max_photos takes that many slots per row
        s["name"]: keras.Input(
            shape=(s["max_photos"],) if s.get("max_photos") else (),
            dtype="float32" if s["role"] == "numeric" else "string",
            name=s["name"],
        )
        for s in INPUTS
    }
    model = keras.Model(inputs, layer(inputs))

Item: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "Item", **{s["name"]: (float if s["role"] == "numeric" else str, ...) for s in INPUTS}
)

app = FastAPI(title="naive price service")


@app.get("/readyz")
def readyz() -> dict[str, str]:
    return {"status": "ready"}


@app.post("/v1/predict")
def predict(item: Item) -> dict[str, Any]:  # type: ignore[valid-type]
    values = item.model_dump()  # type: ignore[attr-defined]
    feeds = {}
    for spec in INPUTS:
        name = spec["name"]
        if spec["role"] == "image":
            data = base64.b64decode(values[name])
            Image.open(io.BytesIO(data)).convert("RGB")  # decode it: is it an image?
            slots = spec.get("max_photos")  # several photo slots: this one photo, the others empty
            feeds[name] = tf.constant([[data] + [b""] * (slots - 1)] if slots else [data])
        elif spec["role"] == "numeric":
            feeds[name] = tf.constant([values[name]], dtype=tf.float32)
        else:
            feeds[name] = tf.constant([values[name]])
    if CALL == "signature":
        price = signature(**feeds)["price"].numpy()[0]
    else:
        price = model.predict(feeds, verbose=0)["price"][0]
    return {"price": round(float(price), 2), "currency": CARD["currency"]}
