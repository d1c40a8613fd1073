"""The price range and what drove the price, from the model card's `interval` and `explain` blocks.

Range: the card stores log-price quantiles (q_low, q_high) per level, calibrated on held-out data
(docs/contract.md); low = price * exp(q_low), high = price * exp(q_high). It costs nothing. A card
with ``interval.by_inputs`` has quantiles per subset of given input groups ("metadata+image"): an
item's range uses its subset's, or the global ones where the subset has none (or too few rows).

Contributions (occlusion): each item is scored beside one copy per modality whose inputs are
replaced by the card's neutral baseline, all rows in the same batched model call; a modality's
contribution is price - price without it, its share |contribution| / sum of |contributions|.
Which inputs make a modality follows their role: categorical and numeric -> metadata, text -> text,
image -> image. A modality the item did not give is not scored: its contribution is "missing". A card without these blocks (an older model) still serves, without them; the
blocks are validated with the card (common/card.py), an unusable one is dropped there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.card import FIRST_TEXT_ONLY, MODALITY_OF_ROLE, Explain, Interval, image_bytes, subset_key
from service.schemas.inputs import InputSpec

MODALITIES = ("metadata", "text", "image")
MISSING = "missing"  # the contribution of a modality the item did not give

Pair = tuple[float, float]


def _level_in(quantiles: Mapping[float, Pair], level: float) -> Pair | None:
    return next((pair for lv, pair in quantiles.items() if abs(lv - level) < 1e-9), None)


# --------------------------------------------------------------------------- range


@dataclass(frozen=True)
class PriceRange:
    """The card's calibrated range: a default level and (q_low, q_high) per stored level; and per
    subset key the levels that subset has enough rows for (``by_inputs``)."""

    level: float
    quantiles: Mapping[float, Pair]
    method: str = ""
    by_inputs: Mapping[str, Mapping[float, Pair]] = field(default_factory=dict)
    first_text: str | None = None  # a listing whose only text is this input has keys of its own

    def key(self, given: Sequence[str], texts: Sequence[str] = ()) -> str:
        """The subset key of a listing giving the groups ``given`` and the text inputs ``texts``."""
        return subset_key(given, self.first_text is not None and list(texts) == [self.first_text])

    @property
    def levels(self) -> list[float]:
        return sorted(self.quantiles)

    def match(self, level: float | None) -> float | None:
        """The stored level equal to ``level`` (default: the card's), or None if there is none."""
        if level is None:
            return self.level
        return next((lv for lv in self.quantiles if abs(lv - level) < 1e-9), None)

    def pair(self, level: float, key: str | None = None) -> Pair:
        """(q_low, q_high) at ``level`` for subset ``key``: the subset's (a ``|first_text_only`` key
        without its own: the subset's without it), else the global ones."""
        for k in (key, key.removesuffix(FIRST_TEXT_ONLY)) if key is not None else ():
            subset = self.by_inputs.get(k)
            found = _level_in(subset, level) if subset else None
            if found is not None:
                return found
        return self.quantiles[level]

    def bounds(self, price: float, level: float, key: str | None = None) -> tuple[float, float]:
        """(low, high) around ``price``; always low <= price <= high."""
        q_low, q_high = self.pair(level, key)
        return min(price * math.exp(q_low), price), max(price * math.exp(q_high), price)

    def answer(self, price: float, level: float, key: str | None = None) -> dict[str, float]:
        """The response's ``range`` (rounded to cents, like the price)."""
        low, high = self.bounds(price, level, key)
        rounded = round(price, 2)
        return {"low": min(round(low, 2), rounded), "high": max(round(high, 2), rounded), "level": level}

    def if_given(
        self,
        price: float,
        level: float,
        given: Sequence[str],
        groups: Mapping[str, Sequence[str]],
        texts: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """For each group of ``groups`` not ``given``: the range the same price would get with that
        group added (the same text inputs ``texts``), narrowest first ([] without ``by_inputs``)."""
        if not self.by_inputs:
            return []
        out = []
        for group, names in groups.items():
            if group in given:
                continue
            answer = self.answer(price, level, self.key([*given, group], texts))
            width = (answer["high"] - answer["low"]) / price if price > 0 else 0.0
            out.append(
                {"group": group, "inputs": list(names), "low": answer["low"], "high": answer["high"],
                 "relative_width": round(width, 4)}
            )  # fmt: skip
        return sorted(out, key=lambda entry: entry["relative_width"])  # stable: GROUPS order on ties


def range_from_card(interval: Interval | None) -> PriceRange | None:
    """The card's validated ``interval`` block; None when the card has none (an older model). A
    subset's levels listed in its ``too_few_rows_for`` are left out (the global ones answer)."""
    if interval is None:
        return None
    level = interval.stored_level(interval.level)
    assert level is not None  # the card's validation checked it
    by_inputs = {
        key: {
            lv: pair
            for lv, pair in subset.quantiles.items()
            if not any(abs(lv - few) < 1e-9 for few in subset.too_few_rows_for)
        }
        for key, subset in interval.by_inputs.items()
    }
    return PriceRange(
        level=level,
        quantiles=dict(interval.quantiles),
        method=interval.method,
        by_inputs=by_inputs,
        first_text=interval.first_text,
    )


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

    def scored(self, given: Sequence[str] | None = None) -> tuple[str, ...]:
        """The modalities an item's copies are made for: those it gave (default: all)."""
        return tuple(m for m in self.groups if given is None or m in given)

    def rows(self, row: Mapping[str, Any], given: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The item, then one copy per modality it gave with that modality's inputs neutral."""
        out = [dict(row)]
        for modality in self.scored(given):
            out.append({**row, **{name: self.baseline[name] for name in self.groups[modality]}})
        return out

    def contributions(self, prices: Sequence[float], given: Sequence[str] | None = None) -> dict[str, Any]:
        """``prices``: the item's price, then one per copy (as from ``rows`` with the same ``given``)
        -> the response's ``contributions``: per modality the amount (in the currency) and the
        share; "missing" for a modality the item did not give."""
        price = prices[0]
        amounts = {m: price - without for m, without in zip(self.scored(given), prices[1:], strict=True)}
        total = sum(abs(a) for a in amounts.values())
        return {
            m: {"amount": round(amounts[m], 2), "share": round(abs(amounts[m]) / total, 4) if total > 0 else 0.0}
            if m in amounts
            else MISSING
            for m in self.groups
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
    starts: list[int]  # each item's first row (its own), then one past the last row

    def item_prices(self, prices: Sequence[float]) -> list[list[float]]:
        return [list(prices[a:b]) for a, b in zip(self.starts, self.starts[1:], strict=False)]

    @property
    def first_rows(self) -> set[int]:
        return set(self.starts[:-1])


def plan_rows(
    items: Sequence[Mapping[str, Any]],
    occlusion: Occlusion | None,
    given: Sequence[Sequence[str] | None] | None = None,
) -> Plan:
    """Rows to score for ``items``: with ``occlusion`` each item brings a copy per modality it gave
    (``given``: per item its given groups, default all)."""
    rows: list[dict[str, Any]] = []
    owners: list[int] = []
    starts: list[int] = []
    for index, item in enumerate(items):
        starts.append(len(rows))
        block = occlusion.rows(item, given[index] if given else None) if occlusion is not None else [dict(item)]
        rows += block
        owners += [index] * len(block)
    return Plan(rows=rows, owners=owners, starts=[*starts, len(rows)])


__all__ = [
    "MISSING",
    "MODALITIES",
    "MODALITY_OF_ROLE",
    "Occlusion",
    "Plan",
    "PriceRange",
    "occlusion_from_card",
    "range_from_card",
    "plan_rows",
]
