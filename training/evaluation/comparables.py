"""The comparables as a predictor: the k nearest train and valid listings of each test listing, in
the model's own embedding (``training.model.embedding``), and their similarity-weighted median price.

``comparables_run`` embeds the stored listings (train + valid, what the exported index holds) and
the test listings with the trained model, searches as the service will (``common.neighbours``), and
scores the neighbours' weighted median on test like every other model. Its relevance figure: the
share of the top k that share the test listing's value of ``comparables.relevance_column`` (by
default the report's category column). The ``Comparables`` it returns is what the exporter writes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import pandas as pd

from common.neighbours import Neighbours, choose_search
from training.config import Config
from training.data.dataset import make_dataset
from training.evaluation.scoring import scores
from training.model.embedding import dimension_names, embed, embedding_map, parts_model

log = logging.getLogger(__name__)
NAME = "comparables"
KIND = "knn"


@dataclass
class Comparables:
    """The stored listings, their embedding and the search over it: what the exporter writes."""

    stored: pd.DataFrame  # train + valid rows, in index order
    neighbours: Neighbours
    matrix: np.ndarray  # price parts -> embedding (PriceEmbedding's constants)
    offset: np.ndarray
    dimensions: list[str]


def relevance_column(cfg: Config) -> str:
    c = cfg.comparables
    if c.relevance_column:
        return c.relevance_column
    if cfg.train.report_category in cfg.data.categorical:
        return cfg.train.report_category
    return cfg.data.categorical[0] if cfg.data.categorical else ""


def _parts(cfg: Config, model: keras.Model, frame: pd.DataFrame) -> np.ndarray:
    ds = make_dataset(cfg, frame, training=False, with_target=False, columns=list(model.input))
    parts = parts_model(model).predict(ds, verbose=0)
    return np.asarray(parts, dtype="float64").reshape(len(frame), -1)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row, the value where the weights' running sum (values sorted) first reaches half."""
    order = np.argsort(values, axis=1, kind="stable")
    v = np.take_along_axis(values, order, axis=1)
    w = np.take_along_axis(np.maximum(weights, 1e-12), order, axis=1)
    cum = np.cumsum(w, axis=1)
    pick = (cum < cum[:, -1:] / 2.0).sum(axis=1)
    return v[np.arange(len(v)), pick]


def _examples(
    cfg: Config, stored: pd.DataFrame, test: pd.DataFrame, idx: np.ndarray, sims: np.ndarray, column: str, n: int = 3
) -> list[dict[str, Any]]:
    """A few test listings and their comparables, for the report."""
    d, shown = cfg.data, [f for f in cfg.comparables.fields if f != column][:2]
    cols = [c for c in (column, *shown) if c]

    def row(frame: pd.DataFrame, i: int) -> dict[str, Any]:
        return {"id": str(frame[d.id].iloc[i]), "price": float(frame[d.target].iloc[i])} | {
            c: str(frame[c].iloc[i])[:60] for c in cols
        }

    return [
        {
            "listing": row(test, t),
            "comparables": [
                row(stored, int(j)) | {"similarity": float(s)} for j, s in zip(idx[t], sims[t], strict=True)
            ],
        }
        for t in range(min(n, len(test)))
    ]


def comparables_run(
    cfg: Config, model: keras.Model, train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame
) -> tuple[dict[str, Any], np.ndarray, Comparables] | None:
    """The kNN entry of the evaluation, its test log-price predictions, and the index to export."""
    c = cfg.comparables
    if not c.enabled:
        return None
    started = time.time()
    stored = pd.concat([train, valid], ignore_index=True)
    parts = _parts(cfg, model, stored)
    matrix, offset = embedding_map(model, parts, c.emphasis)
    vectors = embed(parts, matrix, offset)
    search = choose_search(len(stored), c.search, c.exact_max)
    neighbours = Neighbours.build(vectors, search, metric="l2")
    queries = embed(_parts(cfg, model, test), matrix, offset)
    idx, sims = neighbours.search(queries, c.k)
    log_prices = np.log(stored[cfg.data.target].to_numpy(dtype="float64"))
    pred = weighted_median(log_prices[idx], sims.astype("float64"))
    entry: dict[str, Any] = {
        "kind": KIND,
        "modalities": [],
        "description": f"similarity-weighted median price of the {c.k} nearest train/valid listings in the "
        f"model's embedding ({search} search over {len(stored):,})",
        "test": scores(test[cfg.data.target].to_numpy(), pred),
        "k": c.k,
        "search": search,
        "stored": len(stored),
        "dimensions": dimension_names(model),
        "similarity": {"median_top1": float(np.median(sims[:, 0])), "median_topk": float(np.median(sims[:, -1]))},
    }
    column = relevance_column(cfg)
    if column:
        same = stored[column].to_numpy(dtype=object)[idx] == test[column].to_numpy(dtype=object)[:, None]
        entry["relevance"] = {
            "column": column,
            "share_same": float(same.mean()),
            "share_top1_same": float(same[:, 0].mean()),
            "k": c.k,
        }
    entry["examples"] = _examples(cfg, stored, test, idx, sims, column)
    entry["seconds"] = round(time.time() - started, 1)
    log.info(
        "event=comparables stored=%d dims=%d search=%s test_rmsle=%.4f relevance=%s seconds=%.0f",
        len(stored),
        vectors.shape[1],
        search,
        entry["test"]["rmsle"],
        f"{entry['relevance']['share_same']:.3f}" if "relevance" in entry else "none",
        entry["seconds"],
    )
    return entry, pred, Comparables(stored, neighbours, matrix, offset, dimension_names(model))


__all__ = ["KIND", "NAME", "Comparables", "comparables_run", "relevance_column", "weighted_median"]
