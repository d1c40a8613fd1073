"""EfficientNet-Lite in Keras: the pinned weights fill every layer, and they help on generated photos."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from PIL import Image, ImageDraw

from training.config import UserError
from training.features.pretrained import PRETRAINED, build_efficientnet_lite, load_pretrained, load_state_dict
from training.features.pretrained.efficientnet_lite import block_table, torch_prefix

SIZE = 224


@pytest.fixture(scope="module")
def lite0_state() -> dict[str, np.ndarray]:
    return load_pretrained("efficientnet_lite0")


@pytest.fixture(scope="module")
def random_lite0() -> keras.Model:
    keras.utils.set_random_seed(0)
    return build_efficientnet_lite("efficientnet_lite0", include_top=True, weights=False)


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_block_table_matches_the_state_dict(name):
    state = load_pretrained(name)
    blocks = block_table(PRETRAINED[name]["width"], PRETRAINED[name]["depth"])
    assert len(blocks) == 1 + max(int(k.split(".")[1]) for k in state if k.startswith("_blocks."))
    for n, b in enumerate(blocks):
        hidden = b.filters_in * b.expand
        assert state[f"_blocks.{n}._depthwise_conv.weight"].shape == (hidden, 1, b.kernel, b.kernel)
        assert state[f"_blocks.{n}._project_conv.weight"].shape == (b.filters_out, hidden, 1, 1)
        assert (f"_blocks.{n}._expand_conv.weight" in state) == (b.expand != 1)
    assert state["_conv_head.weight"].shape == (1280, blocks[-1].filters_out, 1, 1)


def test_layer_names_map_to_torch_modules():
    assert torch_prefix("block3_dw_conv") == "_blocks.3._depthwise_conv"
    assert torch_prefix("block12_expand_bn") == "_blocks.12._bn0"
    assert torch_prefix("head_bn") == "_bn1"
    assert torch_prefix("block3_add") is None and torch_prefix("avg_pool") is None


def test_every_tensor_is_used_once_and_every_weight_is_set(random_lite0, lite0_state):
    load_state_dict(random_lite0, lite0_state)
    weights = [v for layer in random_lite0.layers for v in layer.weights]
    floats = {k: v for k, v in lite0_state.items() if not k.endswith("num_batches_tracked")}
    assert len(weights) == len(floats) == 247
    assert sum(int(np.prod(v.shape)) for v in weights) == sum(v.size for v in floats.values())
    stem = random_lite0.get_layer("stem_conv").kernel.numpy()
    np.testing.assert_array_equal(stem, lite0_state["_conv_stem.weight"].transpose(2, 3, 1, 0))
    dw = random_lite0.get_layer("block5_dw_conv").kernel.numpy()
    np.testing.assert_array_equal(dw[:, :, 7, 0], lite0_state["_blocks.5._depthwise_conv.weight"][7, 0])
    bn = random_lite0.get_layer("head_bn")
    np.testing.assert_array_equal(bn.moving_variance.numpy(), lite0_state["_bn1.running_var"])
    assert bn.epsilon == 1e-3


def test_a_missing_extra_or_misshapen_tensor_is_refused(random_lite0, lite0_state):
    state = dict(lite0_state)
    with pytest.raises(UserError, match="1 tensors left unused, e.g. _extra.weight"):
        load_state_dict(random_lite0, {**state, "_extra.weight": np.zeros(3, "float32")})
    del state["_blocks.7._bn1.running_mean"]
    with pytest.raises(UserError, match=r"_blocks\.7\._bn1\.running_mean is missing"):
        load_state_dict(random_lite0, state)
    state = {**lite0_state, "_fc.bias": np.zeros(999, "float32")}
    with pytest.raises(UserError, match="_fc has shapes"):
        load_state_dict(random_lite0, state)


def test_features_shape_and_freezing():
    model = build_efficientnet_lite("efficientnet_lite0", image_size=64, weights=False)
    assert model.output_shape == (None, 1280)
    assert not model.trainable_weights
    model = build_efficientnet_lite("efficientnet_lite0", image_size=64, weights=False, trainable_blocks=2)
    names = {v.path.split("/")[0] for v in model.trainable_weights}
    assert names == {
        "block14_expand_conv",
        "block14_dw_conv",
        "block14_project_conv",
        "block15_expand_conv",
        "block15_dw_conv",
        "block15_project_conv",
        "head_conv",
    }
    with pytest.raises(UserError, match="trainable_blocks must be 0..16"):
        build_efficientnet_lite("efficientnet_lite0", image_size=64, weights=False, trainable_blocks=17)


def test_round_trips_inside_a_functional_model(tmp_path):
    keras.utils.set_random_seed(1)
    encoder = build_efficientnet_lite("efficientnet_lite0", image_size=48, weights=False, trainable_blocks=1)
    photo = keras.Input((48, 48, 3), name="photo")
    outer = keras.Model(photo, keras.layers.Dense(1, name="price")(encoder(photo)))
    x = np.random.default_rng(0).uniform(0, 255, (2, 48, 48, 3)).astype("float32")
    outer.save(tmp_path / "outer.keras")
    back = keras.models.load_model(tmp_path / "outer.keras")
    np.testing.assert_allclose(back(x).numpy(), outer(x).numpy(), rtol=1e-5, atol=1e-5)


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _stripes(rng: np.random.Generator) -> Image.Image:
    """Parallel bars of random period, width, phase, colours and angle."""
    image = Image.new("RGB", (SIZE, SIZE), _colour(rng))
    draw, ink = ImageDraw.Draw(image), _colour(rng)
    period = int(rng.integers(12, 40))
    width, phase = max(3, int(period * rng.uniform(0.3, 0.6))), int(rng.integers(0, period))
    for x in range(-SIZE, 2 * SIZE, period):
        draw.rectangle([x + phase, -SIZE, x + phase + width, 2 * SIZE], fill=ink)
    return image.rotate(float(rng.uniform(0, 180)))


def _dots(rng: np.random.Generator) -> Image.Image:
    """A grid of discs of random period, radius, offset and colours."""
    image = Image.new("RGB", (SIZE, SIZE), _colour(rng))
    draw, ink = ImageDraw.Draw(image), _colour(rng)
    period = int(rng.integers(16, 44))
    radius, (ox, oy) = max(3, int(period * rng.uniform(0.2, 0.35))), rng.integers(0, period, 2)
    for x in range(-period, SIZE + period, period):
        for y in range(-period, SIZE + period, period):
            draw.ellipse([x + ox - radius, y + oy - radius, x + ox + radius, y + oy + radius], fill=ink)
    return image


def _separability(features: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Leave-one-out nearest-centroid accuracy and Fisher ratio of unit-normalised features."""
    f = features / np.linalg.norm(features, axis=1, keepdims=True).clip(1e-12)
    hits = 0
    for i in range(len(f)):
        rest = np.arange(len(f)) != i
        centroids = [f[rest & (labels == k)].mean(0) for k in (0, 1)]
        hits += int(np.argmin([np.sum((f[i] - c) ** 2) for c in centroids]) == labels[i])
    means = [f[labels == k].mean(0) for k in (0, 1)]
    within = np.mean([np.sum((f[labels == k] - means[k]) ** 2, axis=1).mean() for k in (0, 1)])
    return hits / len(f), float(np.sum((means[0] - means[1]) ** 2) / within)


def test_pretrained_features_separate_stripes_from_dots_better_than_random_init():
    rng = np.random.default_rng(123)
    n = 16
    x = np.stack([np.asarray(make(rng), dtype="float32") for make in (_stripes, _dots) for _ in range(n)])
    labels = np.repeat([0, 1], n)
    pretrained = build_efficientnet_lite("efficientnet_lite0", weights=True)
    keras.utils.set_random_seed(0)
    random_init = build_efficientnet_lite("efficientnet_lite0", weights=False)
    acc, fisher = _separability(pretrained(x).numpy(), labels)
    acc0, fisher0 = _separability(random_init(x).numpy(), labels)
    assert acc >= 0.9 and acc >= acc0 + 0.15, (acc, acc0)
    assert fisher > 2 * fisher0, (fisher, fisher0)
