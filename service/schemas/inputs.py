"""The served model's inputs, as request handling sees them, from its validated model card."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.card import GROUPS, MODALITY_OF_ROLE, CategoricalInput, ImageInput, Input, NumericInput, ServableCard


@dataclass(frozen=True)
class InputSpec:
    """One model input as described by the model card."""

    name: str
    role: str
    vocabulary: tuple[str, ...] = ()
    examples: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    image_size: tuple[int, int] | None = None
    max_photos: int | None = None  # image: photo slots of the signature's [batch, N] argument (None: one, [batch])

    @classmethod
    def from_card(cls, entry: Input) -> InputSpec:
        if isinstance(entry, NumericInput):
            return cls(entry.name, "numeric", examples=tuple(entry.examples), minimum=entry.min, maximum=entry.max,
                       mean=entry.mean)  # fmt: skip
        if isinstance(entry, ImageInput):
            return cls(entry.name, "image", image_size=entry.image_size, max_photos=entry.max_photos)
        vocabulary = tuple(entry.vocabulary) if isinstance(entry, CategoricalInput) else ()
        return cls(entry.name, entry.role, vocabulary=vocabulary, examples=tuple(entry.examples))

    @property
    def group(self) -> str:
        """The input group (metadata, text, image) the input belongs to."""
        return MODALITY_OF_ROLE[self.role]

    @property
    def list_name(self) -> str:
        """An image input's request field for a list of photos ("image" -> "images")."""
        return f"{self.name}s"

    @property
    def accepted_range(self) -> tuple[float, float] | None:
        """Numbers accepted for a numeric input: the training range widened by its own width on
        each side, and kept non-negative when training saw no negative value."""
        if self.minimum is None or self.maximum is None:
            return None
        width = max(self.maximum - self.minimum, 1.0)
        low = self.minimum - width
        if self.minimum >= 0:
            low = 0.0
        return low, self.maximum + width

    def example(self) -> Any:
        """A plausible value for examples and warm-up."""
        if self.examples:
            return self.examples[0]
        if self.role == "categorical":
            return self.vocabulary[0] if self.vocabulary else ""
        if self.role == "numeric":
            if self.mean is not None:
                return self.mean
            return self.minimum if self.minimum is not None else 0.0
        return ""


def input_specs(card: ServableCard) -> tuple[InputSpec, ...]:
    """The card's inputs, in signature order."""
    return tuple(InputSpec.from_card(entry) for entry in card.inputs)


def input_groups(card: ServableCard) -> dict[str, tuple[str, ...]] | None:
    """The card's ``missing.groups`` (group -> input names, in GROUPS order) when every input may be
    left out; None for an older card (every input required). An input the groups do not name
    falls in the group of its role."""
    if card.missing is None:
        return None
    groups = {group: list(names) for group, names in card.missing.groups.items()}
    named = {name for names in groups.values() for name in names}
    for entry in card.inputs:
        if entry.name not in named:
            groups.setdefault(MODALITY_OF_ROLE[entry.role], []).append(entry.name)
    known = {entry.name for entry in card.inputs}
    kept = {g: tuple(n for n in groups.get(g, ()) if n in known) for g in GROUPS}
    return {g: names for g, names in kept.items() if names}
