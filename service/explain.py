"""The price range and what drove the price, from the model card's `interval` and `explain` blocks.

Range: the card stores log-price quantiles (q_low, q_high) per level, calibrated on held-out data
(docs/contract.md); low = price * exp(q_low), high = price * exp(q_high). It costs nothing.

Contributions (occlusion): each item is scored beside one copy per modality whose inputs are
replaced by the card's neutral baseline, all rows in the same batched model call; a modality's
contribution is price - price without it, its share |contribution| / sum of |contributions|.
Which inputs make a modality follows their role: categorical and numeric -> metadata, text -> text,
image -> image. A card without these blocks (an older model) still serves, without them; the
blocks are validated with the card (common/card.py), an unusable one is dropped there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from common.card import MODALITY_OF_ROLE, Explain, Interval, image_bytes
from service.schemas.inputs import InputSpec

MODALITIES = ("metadata", "text", "image")


# --------------------------------------------------------------------------- range


@dataclass(frozen=True)
class PriceRange:
    """The card's calibrated range: a default level and (q_low, q_high) per stored level."""

    level: float
    quantiles: Mapping[float, tuple[float, float]]
    method: str = ""

    @property
    def levels(self) -> list[float]:
        return sorted(self.quantiles)

    def match(self, level: float | None) -> float | None:
        """The stored level equal to ``level`` (default: the card's), or None if there is none."""
        if level is None:
            return self.level
        return next((lv for lv in self.quantiles if abs(lv - level) < 1e-9), None)

    def bounds(self, price: float, level: float) -> tuple[float, float]:
        """(low, high) around ``price``; always low <= price <= high."""
        q_low, q_high = self.quantiles[level]
        return min(price * math.exp(q_low), price), max(price * math.exp(q_high), price)

    def answer(self, price: float, level: float) -> dict[str, float]:
        """The response's ``range`` (rounded to cents, like the price)."""
        low, high = self.bounds(price, level)
        rounded = round(price, 2)
        return {"low": min(round(low, 2), rounded), "high": max(round(high, 2), rounded), "level": level}


def range_from_card(interval: Interval | None) -> PriceRange | None:
    """The card's validated ``interval`` block; None when the card has none (an older model)."""
    if interval is None:
        return None
    level = interval.stored_level(interval.level)
    assert level is not None  # the card's validation checked it
    return PriceRange(level=level, quantiles=dict(interval.quantiles), method=interval.method)


# --------------------------------------------------------------------------- contributions


@dataclass(frozen=True)
class Occlusion:
    """Neutral values per input and the inputs of each modality the model has."""

    groups: Mapping[str, tuple[str, ...]]  # modality -> input names, in MODALITIES order
    baseline: Mapping[str, Any]  # input name -> value as the model takes it (image: encoded bytes)
    method: str = ""

    @property
    def copies(self) -> int:
        """Extra rows scored per item."""
        return len(self.groups)

    def rows(self, row: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The item, then one copy per modality with that modality's inputs neutral."""
        out = [dict(row)]
        for names in self.groups.values():
            out.append({**row, **{name: self.baseline[name] for name in names}})
        return out

    def contributions(self, prices: Sequence[float]) -> dict[str, dict[str, float]]:
        """``prices``: the item's price, then one per copy (as from ``rows``) -> the response's
        ``contributions``: per modality the amount (in the currency) and the share."""
        price = prices[0]
        amounts = {m: price - without for m, without in zip(self.groups, prices[1:], strict=True)}
        total = sum(abs(a) for a in amounts.values())
        return {
            m: {"amount": round(a, 2), "share": round(abs(a) / total, 4) if total > 0 else 0.0}
            for m, a in amounts.items()
        }


def occlusion_from_card(explain: Explain | None, inputs: Sequence[InputSpec]) -> Occlusion | None:
    """The card's validated ``explain`` block (a baseline for every input) as the model takes it:
    numbers as floats (null: NaN, missing), the photo as encoded bytes. None when there is none."""
    if explain is None:
        return None
    baseline: dict[str, Any] = {}
    groups: dict[str, list[str]] = {}
    for spec in inputs:
        value = explain.baseline[spec.name]
        if spec.role == "numeric":
            value = float("nan") if value is None else float(value)
        elif spec.role == "image":
            value = image_bytes(value, spec.name)
        baseline[spec.name] = value
        groups.setdefault(MODALITY_OF_ROLE[spec.role], []).append(spec.name)
    ordered = {m: tuple(groups[m]) for m in MODALITIES if m in groups}
    return Occlusion(groups=ordered, baseline=baseline, method=explain.method)


# --------------------------------------------------------------------------- one request


@dataclass
class Plan:
    """The model rows of a request: per item its own row, then its copies when explaining."""

    rows: list[dict[str, Any]]
    owners: list[int]  # item index of each row
    per_item: int

    def item_prices(self, prices: Sequence[float]) -> list[list[float]]:
        return [list(prices[i * self.per_item : (i + 1) * self.per_item]) for i in range(len(prices) // self.per_item)]


def plan_rows(items: Sequence[Mapping[str, Any]], occlusion: Occlusion | None) -> Plan:
    """Rows to score for ``items``: with ``occlusion`` each item brings its copies along."""
    rows: list[dict[str, Any]] = []
    owners: list[int] = []
    for index, item in enumerate(items):
        block = occlusion.rows(item) if occlusion is not None else [dict(item)]
        rows += block
        owners += [index] * len(block)
    return Plan(rows=rows, owners=owners, per_item=1 + (occlusion.copies if occlusion is not None else 0))


__all__ = [
    "MODALITIES",
    "MODALITY_OF_ROLE",
    "Occlusion",
    "Plan",
    "PriceRange",
    "occlusion_from_card",
    "range_from_card",
    "plan_rows",
]
