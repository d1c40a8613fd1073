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
from training.data.dataset import make_dataset
from training.data.subsets import given_index, group_columns, index_name, subsets, without
from training.model.layers import SubsetBlend, SubsetWide

log = logging.getLogger(__name__)
ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0)
FOLDS = 5


def _wide_layers(model: keras.Model, cfg: Config, suffix: str = "wide", group: str | None = None) -> list[tuple]:
    """(column, kind, feature layer, wide layer, idf or None) for every wide term the model has
    (`suffix` "wide_alone": the terms of a group's own Ridge; `group`: only that group's)."""
    found = []
    for name, enc_name, cols, kind, feat in (
        ("metadata", "metadata_encoder", cfg.data.categorical, "categorical", "lookup"),
        ("text", "text_encoder", cfg.data.text, "text", "vectorizer"),
    ):
        if group not in (None, name):
            continue
        try:
            enc = model.get_layer(enc_name)
        except ValueError:
            continue
        for c in cols:
            if not any(layer.name == f"{c}_{suffix}" for layer in enc.layers):
                continue
            idf = None
            if kind == "text" and any(layer.name == f"{c}_idf" for layer in enc.layers):
                idf = np.asarray(enc.get_layer(f"{c}_idf").idf, dtype="float32")
            found.append((c, kind, enc.get_layer(f"{c}_{feat}"), enc.get_layer(f"{c}_{suffix}"), idf))
    return found


def _blend_layer(model: keras.Model):
    """The model's SubsetBlend output layer, or None when the wide terms are summed in."""
    try:
        layer = model.get_layer("log_price")
    except ValueError:
        return None
    return layer if isinstance(layer, SubsetBlend) else None


def _subset_wide(model: keras.Model):
    try:
        layer = model.get_layer("subset_wide")
    except ValueError:
        return None
    return layer if isinstance(layer, SubsetWide) else None


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


def _solve(layers, cfg: Config, train: pd.DataFrame, valid: pd.DataFrame, folds: bool) -> dict:
    """Ridge on these wide layers' features, penalty chosen on valid; written into the layers and frozen.

    Returns the intercept, the figures, and with `folds` the shift (full - out-of-fold) per train row."""
    x_train, x_valid = _features(layers, train), _features(layers, valid)
    y_train = np.log(train[cfg.data.target].to_numpy(dtype="float64"))
    y_valid = np.log(valid[cfg.data.target].to_numpy(dtype="float64"))
    scores = {}
    for alpha in ALPHAS:
        fitted = Ridge(alpha=alpha, solver="sparse_cg", tol=1e-5).fit(x_train, y_train)
        scores[alpha] = float(np.sqrt(np.mean((fitted.predict(x_valid) - y_valid) ** 2)))
    alpha = min(scores, key=scores.get)
    ridge = Ridge(alpha=alpha, solver="sparse_cg", tol=1e-5).fit(x_train, y_train)
    out = {"alpha": alpha, "valid_log_rmse": scores[alpha], "features": int(x_train.shape[1])}
    if folds:
        # Out-of-fold predictions: on its own training rows Ridge is far better than on new rows, so
        # the residual the deep branches should learn is the out-of-fold one (cross-fitting).
        oof = np.zeros_like(y_train)
        for fit_rows, held in KFold(FOLDS, shuffle=True, random_state=cfg.train.seed).split(y_train):
            part = Ridge(alpha=alpha, solver="sparse_cg", tol=1e-5).fit(x_train[fit_rows], y_train[fit_rows])
            oof[held] = part.predict(x_train[held])
        out["oof_log_rmse"] = float(np.sqrt(np.mean((oof - y_train) ** 2)))
        out["shift"] = ridge.predict(x_train) - oof
    offset = 0
    for _, _, _, wide, _ in layers:
        kernel = wide.get_weights()[0]
        kernel[:, 0] = ridge.coef_[offset : offset + kernel.shape[0]]
        offset += kernel.shape[0]
        wide.set_weights([kernel])
        wide.trainable = False
    out["intercept"] = float(ridge.intercept_)
    return out


def init_wide_from_ridge(model: keras.Model, cfg: Config, train: pd.DataFrame, valid: pd.DataFrame) -> dict | None:
    """Solve the wide path as Ridge on log price, once per pattern of given groups; write and freeze it.

    The patterns: metadata + text (every wide term), and, when the model has both, the metadata
    alone and the text alone (the `_wide_alone` terms): a listing that gives one of them is priced
    by the Ridge of that group, as a model trained on it alone would be. Returns what was chosen,
    with `train_shift`: per training row and pattern ([rows, 3]), the log-price offset to add to the
    target so that the deep branches learn the out-of-fold residual (zeros under a blend).
    """
    layers = _wide_layers(model, cfg)
    subset_wide = _subset_wide(model)
    if not layers or subset_wide is None:
        return None
    t0 = time.time()
    blend = _blend_layer(model)
    folds = blend is None  # blended, the deep network learns the price itself (no shift)
    full = _solve(layers, cfg, train, valid, folds)
    intercepts = [full["intercept"], full["intercept"], full["intercept"]]
    shift = np.zeros((len(train), 3))
    if folds:
        shift[:] = full["shift"][:, None]
    chosen = {k: v for k, v in full.items() if k not in ("shift", "intercept")}
    for i, group in ((1, "metadata"), (2, "text")):
        alone = _wide_layers(model, cfg, "wide_alone", group)
        if alone:
            part = _solve(alone, cfg, train, valid, folds)
            intercepts[i] = part["intercept"]
            if folds:
                shift[:, i] = part["shift"]
            chosen[f"{group}_alone_valid_log_rmse"] = part["valid_log_rmse"]
    mean = float(np.log(train[cfg.data.target].to_numpy(dtype="float64")).mean())
    subset_wide.intercepts.assign(np.array([*intercepts, mean], dtype="float32"))
    if blend is None:  # the intercepts are the wide path's: the linear read-outs start at zero
        for name in ("head_linear", "head_linear_partial"):
            if any(layer.name == name for layer in model.layers):
                head = model.get_layer(name)
                kernel, bias = head.get_weights()
                head.set_weights([kernel, np.zeros_like(bias)])
    chosen["seconds"] = round(time.time() - t0, 1)
    log.info("event=wide_init %s", " ".join(f"{k}={v}" for k, v in chosen.items()))
    chosen["train_shift"] = shift if folds else None
    return chosen


def fit_blend(model: keras.Model, cfg: Config, valid: pd.DataFrame) -> dict | None:
    """Choose the blend's deep weight per subset of given groups on the valid split (least squares,
    clipped to [0, 1]).

    Training used the configured weight for early stopping; then the valid rows are scored with
    each subset of groups removed in turn (`training.data.subsets`), both estimates (wide alone,
    deep alone) per row, and each subset's rows get the mix that is best for them. Returns None
    for models without a blend.
    """
    blend = _blend_layer(model)
    if blend is None:
        return None
    start = float(blend.deep_weights.numpy()[0])
    cols = list(model.input)
    groups = [g for g in ("metadata", "text", "image") if any(c in cols for c in group_columns(cfg, g))]
    wide, deep, y, index = [], [], [], []
    for keep in subsets(cfg, tuple(groups)):
        frame = without(cfg, valid, keep)
        ds = make_dataset(cfg, frame, training=False, with_target=False, columns=cols)
        for w, out in ((0.0, wide), (1.0, deep)):
            blend.deep_weights.assign(np.full(8, w, dtype="float32"))
            out.append(np.asarray(model.predict(ds, verbose=0)).reshape(-1))
        y.append(np.log(frame[cfg.data.target].to_numpy(dtype="float64")))
        index.append(given_index(cfg, frame))
    wide, deep, y, index = (np.concatenate(v).astype("float64") for v in (wide, deep, y, index))
    weights = np.full(8, start)
    chosen: dict = {"trained_with": start, "deep_weight_by_subset": {}}
    for i in sorted(set(index.astype(int).tolist())):
        rows = index == i
        gap = deep[rows] - wide[rows]
        weights[i] = float(np.clip(np.dot(gap, y[rows] - wide[rows]) / max(np.dot(gap, gap), 1e-12), 0.0, 1.0))
        chosen["deep_weight_by_subset"][index_name(i) or "none"] = round(float(weights[i]), 4)
    blend.deep_weights.assign(weights.astype("float32"))
    full = getattr(model, "full_subset", 7)
    rows = index == full
    gap = deep[rows] - wide[rows]
    chosen["deep_weight"] = round(float(weights[full]), 4)
    for name, p in (("wide", wide[rows]), ("deep", deep[rows]), ("blend", wide[rows] + weights[full] * gap)):
        chosen[f"valid_log_rmse_{name}"] = round(float(np.sqrt(np.mean((p - y[rows]) ** 2))), 5)
    log.info(
        "event=blend deep_weight=%s by_subset=%s valid_log_rmse_blend=%s",
        chosen["deep_weight"],
        chosen["deep_weight_by_subset"],
        chosen["valid_log_rmse_blend"],
    )
    return chosen
