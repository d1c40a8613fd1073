"""Warm start of the model's wide path: fit it in closed form as a Ridge regression.

The wide path (one offset per category value, one weight per text n-gram) is a linear model on the
same features that make Ridge on one-hot + tf-idf a strong price baseline. Gradient descent reaches
that solution slowly while the deep branches fit the training set fast, so the deep parts won the
race and overfitted (Myntra: valid RMSLE 0.200 against Ridge's 0.183). Here the features are made
by the model's own layers (its StringLookup and TextVectorization + UnitNormalization), Ridge is
solved on them (penalty chosen on the valid split), its coefficients are written into the wide
layers, which are then frozen: the deep branches, the photo's among them, learn what the linear
model leaves over. They learn it from out-of-fold residuals: the training target of each row is
shifted by (full Ridge - out-of-fold Ridge) on that row, so the deep part sees the linear model's
error as it is on rows it did not fit, not the near-zero error on its own training rows.
"""

from __future__ import annotations

import logging
import time

import keras
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

from training.config import Config
from training.model.layers import WideDeepBlend

log = logging.getLogger(__name__)
ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0)
FOLDS = 5


def _wide_layers(model: keras.Model, cfg: Config) -> list[tuple]:
    """(column, kind, feature layer, wide layer, idf or None) for every wide term the model has."""
    found = []
    for enc_name, cols, kind, feat in (
        ("metadata_encoder", cfg.data.categorical, "categorical", "lookup"),
        ("text_encoder", cfg.data.text, "text", "vectorizer"),
    ):
        try:
            enc = model.get_layer(enc_name)
        except ValueError:
            continue
        for c in cols:
            idf = None
            if kind == "text" and any(layer.name == f"{c}_idf" for layer in enc.layers):
                idf = np.asarray(enc.get_layer(f"{c}_idf").idf, dtype="float32")
            found.append((c, kind, enc.get_layer(f"{c}_{feat}"), enc.get_layer(f"{c}_wide"), idf))
    return found


def _blend_layer(model: keras.Model):
    """The model's WideDeepBlend output layer, or None when the wide terms are summed in."""
    try:
        layer = model.get_layer("log_price")
    except ValueError:
        return None
    return layer if isinstance(layer, WideDeepBlend) else None


def _features(layers, frame: pd.DataFrame) -> sp.csr_matrix:
    blocks = []
    for c, kind, feat, wide, idf in layers:
        values = frame[c].to_numpy(dtype=object).astype(str)
        if kind == "categorical":
            n = wide.get_weights()[0].shape[0]
            ids = np.asarray(feat(values)).reshape(-1)
            blocks.append(
                sp.csr_matrix((np.ones(len(ids), "float32"), (np.arange(len(ids)), ids)), shape=(len(ids), n))
            )
        else:
            parts = []
            for start in range(0, len(values), 1024):
                bag = np.asarray(feat(values[start : start + 1024]), dtype="float32")
                if idf is not None:
                    bag = bag * idf
                norm = np.linalg.norm(bag, axis=1, keepdims=True)
                parts.append(sp.csr_matrix(np.divide(bag, norm, out=np.zeros_like(bag), where=norm > 0)))
            blocks.append(sp.vstack(parts))
    return sp.hstack(blocks).tocsr()


def init_wide_from_ridge(model: keras.Model, cfg: Config, train: pd.DataFrame, valid: pd.DataFrame) -> dict | None:
    """Solve the wide path as Ridge on log price; write and freeze it.

    Returns what was chosen, with `train_shift`: per training row, the log-price offset to add to
    the target so that the deep branches learn the out-of-fold residual.
    """
    layers = _wide_layers(model, cfg)
    if not layers:
        return None
    t0 = time.time()
    x_train, x_valid = _features(layers, train), _features(layers, valid)
    y_train = np.log(train[cfg.data.target].to_numpy(dtype="float64"))
    y_valid = np.log(valid[cfg.data.target].to_numpy(dtype="float64"))
    scores = {}
    for alpha in ALPHAS:
        fitted = Ridge(alpha=alpha, solver="sparse_cg", tol=1e-5).fit(x_train, y_train)
        scores[alpha] = float(np.sqrt(np.mean((fitted.predict(x_valid) - y_valid) ** 2)))
    alpha = min(scores, key=scores.get)
    ridge = Ridge(alpha=alpha, solver="sparse_cg", tol=1e-5).fit(x_train, y_train)
    # Out-of-fold predictions: on its own training rows Ridge is far better than on new rows, so
    # the residual the deep branches should learn is the out-of-fold one (cross-fitting).
    oof = np.zeros_like(y_train)
    for fit_rows, held in KFold(FOLDS, shuffle=True, random_state=cfg.train.seed).split(y_train):
        part = Ridge(alpha=alpha, solver="sparse_cg", tol=1e-5).fit(x_train[fit_rows], y_train[fit_rows])
        oof[held] = part.predict(x_train[held])
    blend = _blend_layer(model)
    # blended, the deep network learns the price itself (no shift); summed, the out-of-fold residual
    shift = np.zeros_like(y_train) if blend is not None else ridge.predict(x_train) - oof
    offset = 0
    for _, _, _, wide, _ in layers:
        kernel = wide.get_weights()[0]
        kernel[:, 0] = ridge.coef_[offset : offset + kernel.shape[0]]
        offset += kernel.shape[0]
        wide.set_weights([kernel])
        wide.trainable = False
    if blend is not None:
        blend.intercept.assign(float(ridge.intercept_))
    else:
        head = model.get_layer("head_linear")
        kernel, _ = head.get_weights()
        head.set_weights([kernel, np.array([ridge.intercept_], dtype="float32")])
    chosen = {
        "alpha": alpha,
        "valid_log_rmse": scores[alpha],
        "features": int(x_train.shape[1]),
        "oof_log_rmse": float(np.sqrt(np.mean((oof - y_train) ** 2))),
        "seconds": round(time.time() - t0, 1),
    }
    log.info("event=wide_init %s", " ".join(f"{k}={v}" for k, v in chosen.items()))
    chosen["train_shift"] = shift
    return chosen


def fit_blend(model: keras.Model, valid_ds) -> dict | None:
    """Choose the blend's deep weight on the valid split (least squares, clipped to [0, 1]).

    Training used the configured weight for early stopping; the two estimates are then scored on
    the valid rows (`valid_ds` yields features and log prices) and mixed as well as they can be.
    Returns None for models without a blend.
    """
    blend = _blend_layer(model)
    if blend is None:
        return None
    start = float(blend.deep_weight.numpy())
    wide, deep, y = [], [], []
    for x, log_price in valid_ds:  # both estimates of a batch in the same pass as its labels
        for w, out in ((0.0, wide), (1.0, deep)):
            blend.deep_weight.assign(w)
            out.append(np.asarray(model(x, training=False)).reshape(-1))
        y.append(np.asarray(log_price).reshape(-1))
    wide, deep, y = (np.concatenate(v).astype("float64") for v in (wide, deep, y))
    gap = deep - wide
    weight = float(np.clip(np.dot(gap, y - wide) / max(np.dot(gap, gap), 1e-12), 0.0, 1.0))
    blend.deep_weight.assign(weight)
    rmsle = {
        name: round(float(np.sqrt(np.mean((p - y) ** 2))), 5)
        for name, p in (("wide", wide), ("deep", deep), ("blend", wide + weight * gap))
    }
    chosen = {
        "deep_weight": round(weight, 4),
        "trained_with": start,
        **{f"valid_log_rmse_{k}": v for k, v in rmsle.items()},
    }
    log.info("event=blend %s", " ".join(f"{k}={v}" for k, v in chosen.items()))
    return chosen
