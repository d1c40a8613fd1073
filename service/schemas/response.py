"""The answers' models (their JSON Schemas are the OpenAPI document's)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class PriceRangeOut(BaseModel):
    """A calibrated range around the price: on held-out data, a share ``level`` of true prices
    fell inside it (split conformal calibration, see the model card's ``interval``)."""

    low: float = Field(description="Lower end, rounded to cents; never above the price.", examples=[35.2])
    high: float = Field(description="Upper end, rounded to cents; never below the price.", examples=[51.9])
    level: float = Field(description="The range's calibrated coverage (e.g. 0.8 = 80%).", examples=[0.8])


class Contribution(BaseModel):
    """How much one modality moved the price."""

    amount: float = Field(
        description="Price minus the price with this modality's inputs set to a neutral baseline, in the "
        "currency, rounded to cents (negative: it lowered the price).",
        examples=[12.3],
    )
    share: float = Field(description="|amount| / sum of |amount| over the modalities (0 to 1).", examples=[0.55])


MissingContribution = Literal["missing"]
NOT_GIVEN = ' `"missing"` when the item did not give any of them (not scored).'


class Contributions(BaseModel):
    """What drove the price, per modality (occlusion, see the model card's ``explain``). A modality
    the model has no input for is left out; one the item did not give is ``"missing"``."""

    metadata: Contribution | MissingContribution | None = Field(
        None,
        description="The categorical and numeric inputs." + NOT_GIVEN,
        examples=[{"amount": 12.3, "share": 0.55}],
    )
    text: Contribution | MissingContribution | None = Field(
        None, description="The text inputs." + NOT_GIVEN, examples=[{"amount": -2.1, "share": 0.09}]
    )
    image: Contribution | MissingContribution | None = Field(
        None, description="The photos." + NOT_GIVEN, examples=[{"amount": 8.0, "share": 0.36}]
    )


class RangeIfGiven(BaseModel):
    """The range the same price would get if one more input group were given."""

    group: Literal["metadata", "text", "image"] = Field(description="The input group not given.", examples=["image"])
    inputs: list[str] = Field(description="Its inputs (the request fields to fill).", examples=[["image"]])
    low: float = Field(description="Lower end with it, rounded to cents.", examples=[38.1])
    high: float = Field(description="Upper end with it, rounded to cents.", examples=[47.4])
    relative_width: float = Field(description="(high - low) / price.", examples=[0.22])


class Comparable(BaseModel):
    """One of the most similar train or valid listings: evidence for the price."""

    id: str = Field(description="The listing's id in the training table.", examples=["1042"])
    price: float = Field(description="Its price, in the model's currency.", examples=[31.0])
    similarity: float = Field(
        description="How alike the two listings' prices are made (0 to 1; 1: the same price drivers; see "
        "`comparables.method` in GET /v1/model).",
        examples=[0.93],
    )
    fields: dict[str, str | float | None] = Field(
        default_factory=dict,
        description="The listing's columns the model's config chose to show (`comparables.fields`).",
        examples=[{"title": "Kiabi black dress", "brand": "kiabi"}],
    )
    thumbnail: str | None = Field(
        None,
        description="Relative URL of its small photo (GET /v1/comparables/{id}/thumbnail); missing when it has none.",
        examples=["v1/comparables/1042/thumbnail?version=1"],
    )


COMPARABLES_DESCRIPTION = (
    "The most similar train and valid listings, most similar first (`?comparables=`, default 5). Missing with "
    "`comparables=0` or when the model version has no comparables index."
)
COMPARABLES_EXAMPLE = [
    {
        "id": "1042",
        "price": 31.0,
        "similarity": 0.93,
        "fields": {"title": "Kiabi black dress", "brand": "kiabi"},
        "thumbnail": "v1/comparables/1042/thumbnail?version=1",
    }
]


RANGE_DESCRIPTION = (
    "Calibrated price range at the requested `level` (default: the model's, usually 0.8), calibrated for "
    "the input groups the item gave when the model has per-subset quantiles (wider with less given). "
    "Missing when the model version has no calibrated range (an older model card)."
)
CONTRIBUTIONS_DESCRIPTION = (
    "What drove the price. Missing with `explain=false`, or when the model version has no neutral "
    "baseline (an older model card)."
)
MISSING_DESCRIPTION = (
    'The model\'s inputs this item did not give (absent, null, "" for a category or text; the image '
    "input's name when it has no photo), in the model card's order; [] for a complete item, and always "
    "for a model whose card has no `missing` block (every input required)."
)
RANGE_IF_GIVEN_DESCRIPTION = (
    "For each input group the item did not give, the range the same price would get with that group "
    "added (its calibrated subset), narrowest first: the first is the one to fill in. [] when nothing "
    "is missing, without a `range`, or when the model has no per-subset calibration "
    "(`interval.by_inputs`)."
)
RANGE_IF_GIVEN_EXAMPLE = [{"group": "image", "inputs": ["image"], "low": 38.1, "high": 47.4, "relative_width": 0.2188}]
RANGE_EXAMPLE = {"low": 35.2, "high": 51.9, "level": 0.8}
CONTRIBUTIONS_EXAMPLE = {
    "metadata": {"amount": 12.3, "share": 0.55},
    "text": {"amount": -2.1, "share": 0.09},
    "image": {"amount": 8.0, "share": 0.36},
}


class PredictResponse(BaseModel):
    """The suggested price of one item."""

    price: float = Field(description="Suggested price, rounded to cents.", examples=[42.5])
    currency: str = Field(description="ISO 4217 code of the price.", examples=["EUR"])
    model_version: str = Field(description="The model version that answered.", examples=["1"])
    warnings: list[str] = Field(
        default_factory=list,
        description="Input the model could use but never saw in training (e.g. a new brand).",
        examples=[["brand: 'acme' is not a value the model was trained on; it is treated as unknown"]],
    )
    missing: list[str] = Field(default_factory=list, description=MISSING_DESCRIPTION, examples=[["image"]])
    range: PriceRangeOut | None = Field(None, description=RANGE_DESCRIPTION, examples=[RANGE_EXAMPLE])
    range_if_given: list[RangeIfGiven] = Field(
        default_factory=list, description=RANGE_IF_GIVEN_DESCRIPTION, examples=[RANGE_IF_GIVEN_EXAMPLE]
    )
    contributions: Contributions | None = Field(
        None, description=CONTRIBUTIONS_DESCRIPTION, examples=[CONTRIBUTIONS_EXAMPLE]
    )
    comparables: list[Comparable] | None = Field(
        None, description=COMPARABLES_DESCRIPTION, examples=[COMPARABLES_EXAMPLE]
    )


class BatchPrediction(BaseModel):
    """One item's answer inside a batch."""

    price: float = Field(examples=[42.5])
    warnings: list[str] = Field(default_factory=list, examples=[[]])
    missing: list[str] = Field(default_factory=list, description=MISSING_DESCRIPTION, examples=[["image"]])
    range: PriceRangeOut | None = Field(None, description=RANGE_DESCRIPTION, examples=[RANGE_EXAMPLE])
    range_if_given: list[RangeIfGiven] = Field(
        default_factory=list, description=RANGE_IF_GIVEN_DESCRIPTION, examples=[RANGE_IF_GIVEN_EXAMPLE]
    )
    contributions: Contributions | None = Field(
        None, description=CONTRIBUTIONS_DESCRIPTION, examples=[CONTRIBUTIONS_EXAMPLE]
    )
    comparables: list[Comparable] | None = Field(
        None, description=COMPARABLES_DESCRIPTION, examples=[COMPARABLES_EXAMPLE]
    )


class BatchResponse(BaseModel):
    """Answers of a batch, in the order of the request's items."""

    predictions: list[BatchPrediction]
    currency: str = Field(examples=["EUR"])
    model_version: str = Field(examples=["1"])


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(examples=[["body", "age_months"]])
    msg: str = Field(examples=["must be a finite number"])
    type: str = Field(examples=["finite_number"])


class ErrorResponse(BaseModel):
    """Every error answer: a readable ``detail`` naming the field, and the errors one by one."""

    detail: str = Field(examples=["age_months: must be a finite number"])
    errors: list[ErrorItem] = Field(default_factory=list)


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    status: Literal["ready"] = "ready"
    model_version: str = Field(examples=["1"])
