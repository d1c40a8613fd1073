"""The wide path's Ridge warm start: solved on the model's own features, written in, then frozen."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.tiny import tiny_config
from training.data.table import load_table
from training.features.preprocessing import fit_preprocessing
from training.fit.wide import init_wide_from_ridge
from training.model.head import build_model


def test_ridge_warm_start_beats_the_mean_and_freezes_the_wide_layers(tiny_dataset, tmp_path):
    cfg, train, valid, model, chosen = _solved(tiny_dataset, tmp_path)
    y = np.log(valid["price"].to_numpy())
    mean_rmsle = float(np.sqrt(np.mean((y - np.log(train["price"]).mean()) ** 2)))
    assert chosen["valid_log_rmse"] < 0.8 * mean_rmsle
    wide = [
        model.get_layer("metadata_encoder").get_layer("condition_wide"),
        model.get_layer("text_encoder").get_layer("description_wide"),
    ]
    for layer in wide:
        assert not layer.trainable and np.abs(layer.get_weights()[0]).sum() > 0
    vocab = model.get_layer("metadata_encoder").get_layer("condition_lookup").get_vocabulary()
    offsets = dict(zip(vocab, wide[0].get_weights()[0][:, 0], strict=False))
    assert offsets["new_with_tags"] > offsets["poor"]  # the generator's condition effect, recovered


def test_blend_passes_the_deep_estimate_while_training_and_blends_in_inference():
    import keras

    from training.model.layers import WideDeepBlend

    layer = WideDeepBlend(0.25)
    deep, wide = np.array([[2.0], [4.0]], "float32"), np.array([[1.0], [0.0]], "float32")
    layer.build([deep.shape, wide.shape])
    layer.intercept.assign(1.0)
    np.testing.assert_allclose(layer([deep, wide], training=True), deep)
    np.testing.assert_allclose(layer([deep, wide], training=False), 0.75 * (wide + 1.0) + 0.25 * deep)
    clone = WideDeepBlend.from_config(keras.saving.serialize_keras_object(layer)["config"])
    assert clone.initial_weight == 0.25


def test_blended_model_puts_the_ridge_intercepts_in_the_wide_path_and_trains_on_the_price(tiny_dataset, tmp_path):
    """With model.blend > 0 the deep network learns the whole price: no out-of-fold shift."""
    cfg = tiny_config(tiny_dataset, tmp_path)
    cfg.model.blend, cfg.model.fusion = 0.4, "sum"
    table = load_table(cfg)
    train, valid = table.part("train"), table.part("valid")
    model = build_model(cfg, fit_preprocessing(cfg, train), ("metadata", "text"))
    chosen = init_wide_from_ridge(model, cfg, train, valid)
    assert chosen["train_shift"] is None
    intercepts = model.get_layer("subset_wide").intercepts.numpy()  # metadata + text, metadata, text, neither
    assert np.all(np.abs(intercepts) > 1.0) and len(set(np.round(intercepts, 4))) == 4
    assert abs(intercepts[3] - np.log(train["price"]).mean()) < 1e-4
    np.testing.assert_allclose(model.get_layer("log_price").deep_weights.numpy(), 0.4, atol=1e-6)
    assert model.get_layer("fusion").__class__.__name__ == "Add"


def test_each_pattern_of_given_groups_gets_its_own_ridge(tiny_dataset, tmp_path):
    """The metadata alone and the text alone have Ridge terms of their own, solved without the other
    group: a listing without its text is priced by the metadata's own Ridge."""
    from training.data.subsets import without
    from training.evaluation.scoring import predict_log

    cfg, train, valid, model, chosen = _solved(tiny_dataset, tmp_path)
    assert chosen["train_shift"].shape == (len(train), 3)
    meta = model.get_layer("metadata_encoder")
    full, alone = (meta.get_layer(f"condition_{s}").get_weights()[0] for s in ("wide", "wide_alone"))
    assert not np.allclose(full, alone)  # without the text, the categories carry more of the price
    y = np.log(valid["price"].to_numpy())
    no_text = predict_log(model, cfg, without(cfg, valid, ("metadata",)))  # the untrained deep part adds ~0
    assert abs(float(np.sqrt(np.mean((no_text - y) ** 2))) - chosen["metadata_alone_valid_log_rmse"]) < 0.05
    assert chosen["metadata_alone_valid_log_rmse"] < 0.9 * float(np.sqrt(np.mean((y - y.mean()) ** 2)))


def _solved(tiny_dataset, tmp_path):
    """The tiny config's metadata + text model with its Ridge solved: (cfg, train, valid, model, chosen)."""
    cfg = tiny_config(tiny_dataset, tmp_path)
    table = load_table(cfg)
    train, valid = table.part("train"), table.part("valid")
    model = build_model(cfg, fit_preprocessing(cfg, train), ("metadata", "text"))
    return cfg, train, valid, model, init_wide_from_ridge(model, cfg, train, valid)


def test_blend_weight_chosen_on_valid_is_never_worse_than_either_estimate(tiny_dataset, tmp_path):
    from training.fit.wide import fit_blend

    cfg = tiny_config(tiny_dataset, tmp_path)
    cfg.model.blend = 0.5
    table = load_table(cfg)
    train, valid = table.part("train"), table.part("valid")
    model = build_model(cfg, fit_preprocessing(cfg, train), ("metadata", "text"))
    init_wide_from_ridge(model, cfg, train, valid)
    chosen = fit_blend(model, cfg, valid)
    assert 0.0 <= chosen["deep_weight"] <= 1.0
    assert chosen["valid_log_rmse_blend"] <= min(chosen["valid_log_rmse_wide"], chosen["valid_log_rmse_deep"]) + 1e-6
    weights = model.get_layer("log_price").deep_weights.numpy()
    assert abs(float(weights[6]) - chosen["deep_weight"]) < 1e-4  # metadata + text: 4 + 2
    assert set(chosen["deep_weight_by_subset"]) == {"metadata+text", "metadata", "text"}


def test_members_train_on_their_own_error_and_average_in_inference(tiny_dataset, tmp_path):
    """model.members = k: k heads side by side; the loss sees each one, inference their mean."""
    from training.model.layers import MemberMean

    layer = MemberMean()
    x = np.array([[1.0, 3.0, 5.0], [0.0, 0.0, 3.0]], "float32")
    np.testing.assert_allclose(layer(x, training=True), x)
    np.testing.assert_allclose(layer(x, training=False), [[3.0], [1.0]])

    cfg = tiny_config(tiny_dataset, tmp_path)
    cfg.model.fusion, cfg.model.members, cfg.model.blend = "sum", 3, 0.5
    table = load_table(cfg)
    train = table.part("train")
    model = build_model(cfg, fit_preprocessing(cfg, train))
    from training.data.dataset import PHOTO_MASK

    x = {c: train[c].to_numpy() for c in model.input if c not in (cfg.data.image, PHOTO_MASK)}
    if cfg.data.image:
        s, p = cfg.model.image_size, cfg.model.max_photos
        x[cfg.data.image] = np.random.default_rng(0).integers(0, 255, (len(train), p, s, s, 3), dtype="uint8")
        x[PHOTO_MASK] = np.ones((len(train), p), "float32")
    x = {c: v[:8] for c, v in x.items()}
    members = np.asarray(model(x, training=True))
    assert members.shape == (8, 3) and np.std(members, axis=1).mean() > 1e-4  # different initialisations
    kernel = model.get_layer("head_dense0").kernel
    assert tuple(kernel.shape)[0] == 3  # one block of weights per member, none shared
    # the squared error is taken against each member: the label broadcasts over the k columns
    from training.fit.trainer import LogPriceRMSE, log_price_mse

    y = np.ones((8,), "float32")  # the pipeline's labels are one log price per row
    np.testing.assert_allclose(np.asarray(log_price_mse(y, members)), np.mean((members - 1) ** 2, axis=1), rtol=1e-5)
    metric = LogPriceRMSE()
    metric.update_state(y, members)
    np.testing.assert_allclose(float(metric.result()), np.sqrt(np.mean((members - 1) ** 2)), rtol=1e-5)
    mean = np.asarray(model(x, training=False))
    assert mean.shape == (8, 1)


@pytest.mark.parametrize("factor", [0.0, 0.25])
def test_incomplete_listings_go_through_their_own_head_and_reach_the_branches_only_by_a_share(
    tiny_dataset, tmp_path, factor
):
    """The full model trained with input dropout: a listing missing a group is priced by the
    partial head, which sends `model.partial_gradient` of its gradient into the photo branch (none
    into the others, nor into the complete head; at 0 complete listings are learnt exactly as
    without dropout)."""
    import tensorflow as tf

    from training.data.dataset import make_dataset
    from training.data.subsets import without

    cfg = tiny_config(tiny_dataset, tmp_path)
    cfg.model.partial_gradient = {"image": factor}
    table = load_table(cfg)
    train = table.part("train")
    model = build_model(cfg, fit_preprocessing(cfg, train))
    init_wide_from_ridge(model, cfg, train, table.part("valid"))  # the wide terms, solved and frozen
    train = train.head(16)
    assert model.get_layer("deep_route") and model.get_layer("head_out_partial")
    cols = list(model.input)
    no_text = without(cfg, train, ("metadata", "image"))
    x, y = next(iter(make_dataset(cfg, no_text, training=False, columns=cols, batch_size=16)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((model(x, training=True) - tf.reshape(y, (-1, 1))) ** 2)
    names = [v.path for v in model.trainable_variables]
    grads = dict(zip(names, tape.gradient(loss, model.trainable_variables), strict=True))
    moved = {n for n, g in grads.items() if g is not None and float(tf.reduce_sum(tf.abs(g))) > 0}
    assert any(n.startswith("head_out_partial") for n in moved)
    assert not any(n.startswith(("head_dense0/", "head_out/", "head_linear/")) for n in moved)  # the complete head
    branches = {n for n in moved if "_partial" not in n}
    if factor == 0:
        assert not branches, branches
    else:
        assert any(n.startswith("stem") for n in branches), branches  # the photo branch learns a share
        assert not any(n.startswith(("brand_embedding", "title_dense")) for n in branches), branches
    ablation = build_model(cfg, fit_preprocessing(cfg, train), ("metadata", "text"))
    assert not any(layer.name == "deep_route" for layer in ablation.layers)  # a dedicated model has one head


@pytest.mark.parametrize("fusion", ["concat", "sum"])
def test_a_branch_with_a_partial_projection_of_its_own_keeps_its_complete_projection_out_of_the_subsets(
    tiny_dataset, tmp_path, fusion
):
    """`model.partial_projections`: the incomplete listings' head reads each named branch through a
    projection of its own, on the same lookups and n-gram bags; their gradient moves that copy and
    not the projection the complete listings are priced through."""
    import tensorflow as tf

    from training.data.dataset import make_dataset
    from training.data.subsets import without

    cfg = tiny_config(tiny_dataset, tmp_path)
    cfg.model.fusion, cfg.model.members = fusion, 1
    cfg.model.partial_projections, cfg.model.partial_gradient = ["metadata", "text"], {}
    table = load_table(cfg)
    train = table.part("train")
    model = build_model(cfg, fit_preprocessing(cfg, train))
    init_wide_from_ridge(model, cfg, train, table.part("valid"))
    x, y = next(
        iter(
            make_dataset(
                cfg,
                without(cfg, train.head(16), ("metadata", "text")),
                training=False,
                columns=list(model.input),
                batch_size=16,
            )
        )
    )
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((model(x, training=True) - tf.reshape(y, (-1, 1))) ** 2)
    names = [v.path for v in model.trainable_variables]
    grads = dict(zip(names, tape.gradient(loss, model.trainable_variables), strict=True))
    moved = {n for n, g in grads.items() if g is not None and float(tf.reduce_sum(tf.abs(g))) > 0}
    complete = ("title_project/", "brand_embedding/") if fusion == "sum" else ("title_dense/", "metadata_dense0/")
    own = (
        ("title_project_partial/", "brand_embedding_partial/")
        if fusion == "sum"
        else ("title_dense_partial/", "metadata_dense0_partial/")
    )
    assert all(any(n.startswith(prefix) for n in moved) for prefix in own), moved
    assert not any(n.startswith(complete) for n in moved), moved
    assert not any(n.startswith(("image_project", "image_dense", "stem")) for n in moved), moved  # share 0, no own copy
    assert any(n.startswith(complete) for n in names)  # the complete projections exist, they just did not move
