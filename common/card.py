"""The model card (``models/<name>/<version>/model_card.json``): one pydantic model for the exporter,
which writes it, and the service, which reads it (docs/contract.md, whose field table is generated
from these classes: ``python -m common.card --doc``).

Policy: strict in what is written, tolerant in what is read.

- Unknown keys are kept and ignored at every level (``extra="allow"``): an older service serves a
  card from a newer exporter that added a block or a field, and ``GET /v1/model`` still shows it.
  The exporter refuses to write keys that are not declared here (``ModelCard.undeclared``), so a
  new field is added to this file first, and appears in the doc.
- Fields newer than the first cards are optional, with defaults: ``interval``, ``explain``,
  ``training``, ``report``, ... A card from the first exporter still loads.
- What a reader cannot work around refuses the card: an input of an unknown ``role`` (the service
  could not feed it), a declared field of the wrong type, two inputs of one name.
- ``ModelCard.read``: a present but unusable optional block (``interval``, ``explain``) is dropped
  with its reason instead, so only its feature goes off.
- ``ServableCard``: what the service needs on top (a currency, at least one input).

To add a field: declare it here with a default (old cards lack it) and a ``description``, run
``python -m common.card --doc``, and set it in ``training/export/card.py``. A new input role is a
new class in ``Input``: older services refuse such a card, with the reason.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

__all__ = [
    "OPTIONAL_BLOCKS",
    "CategoricalInput",
    "ComparablesIndex",
    "Dataset",
    "Explain",
    "ImageInput",
    "Input",
    "Interval",
    "GROUPS",
    "Metrics",
    "MissingInputs",
    "ModelCard",
    "NumericInput",
    "ServableCard",
    "SplitMetrics",
    "SubsetQuantiles",
    "FIRST_TEXT_ONLY",
    "subset_key",
    "TextInput",
    "Thumbnails",
    "Training",
    "describe_errors",
]

OPTIONAL_BLOCKS = ("interval", "explain")  # dropped by ModelCard.read when unusable
GROUPS = ("metadata", "text", "image")  # the input groups, in the order subset keys name them
MISSING_ENCODING = {"categorical": '""', "numeric": "NaN", "text": '""', "image": '"" (an empty slot)'}
MODALITY_OF_ROLE = {"categorical": "metadata", "numeric": "metadata", "text": "text", "image": "image"}

Finite = Annotated[StrictFloat, Field(allow_inf_nan=False)]  # a JSON number, not true/false
Side = Annotated[StrictInt, Field(gt=0, le=4096)]
ImageSize = tuple[Side, Side]
Name = Annotated[str, Field(min_length=1, max_length=100)]
ROLE = "The kind of input; it picks the fields below. An unknown role refuses the card."
DTYPE = "The signature argument's dtype."


def _or_empty(value: Any) -> Any:
    return [] if value is None else value


def _only_strings(value: Any) -> Any:
    """Examples are hints: entries of another type are dropped, not fatal."""
    value = _or_empty(value)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list | tuple) else value


def _only_finite_numbers(value: Any) -> Any:
    value = _or_empty(value)
    if not isinstance(value, list | tuple):
        return value
    return [v for v in value if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)]


class Block(BaseModel):
    """A part of the card: unknown keys are kept, not refused (a newer exporter may add some)."""

    model_config = ConfigDict(extra="allow")


# --------------------------------------------------------------------------- inputs


class CategoricalInput(Block):
    """A category column: a string; a value outside the vocabulary is served as unknown."""

    name: Name = Field(description="The column name: the request field and the signature's argument.")
    role: Literal["categorical"] = Field(description=ROLE)
    dtype: Literal["string"] = Field("string", description=DTYPE)
    vocabulary_size: int | None = Field(None, description="Size of the model's lookup (with its unknown slot).")
    vocabulary: Annotated[list[str], BeforeValidator(_or_empty)] = Field(
        default_factory=list, description="The training values, most frequent first."
    )
    examples: Annotated[list[str], BeforeValidator(_only_strings)] = Field(
        default_factory=list, description="A few values, for the docs and the warm-up."
    )


class NumericInput(Block):
    """A number column: `tf.float32`; non-finite values are treated as missing by the model."""

    name: Name = Field(description="The column name.")
    role: Literal["numeric"] = Field(description=ROLE)
    dtype: Literal["float32"] = Field("float32", description=DTYPE)
    min: Finite | None = Field(None, description="The training split's smallest value.")
    max: Finite | None = Field(None, description="The training split's largest value.")
    mean: Finite | None = Field(None, description="The training mean (the model's normalisation).")
    std: Finite | None = Field(None, description="The training standard deviation.")
    examples: Annotated[list[float], BeforeValidator(_only_finite_numbers)] = Field(
        default_factory=list, description="A few training values."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min > max")
        return self


class TextInput(Block):
    """A free-text column: a string."""

    name: Name = Field(description="The column name.")
    role: Literal["text"] = Field(description=ROLE)
    dtype: Literal["string"] = Field("string", description=DTYPE)
    vocabulary_size: int | None = Field(None, description="Size of the model's token vocabulary.")
    examples: Annotated[list[str], BeforeValidator(_only_strings)] = Field(
        default_factory=list, description="A few training texts (cut to 200 characters)."
    )


class ImageInput(Block):
    """The photo: a `tf.string` holding the encoded file; the model decodes and resizes it."""

    name: Name = Field(description="The column name.")
    role: Literal["image"] = Field(description=ROLE)
    dtype: Literal["string"] = Field("string", description=DTYPE)
    format: str = Field("encoded image bytes", description="What the string holds.")
    accepts: list[str] = Field(
        default_factory=lambda: ["jpeg", "png", "gif", "bmp"], description="File types the model decodes."
    )
    image_size: ImageSize | None = Field(None, description="[height, width] the model resizes the photo to.")
    encoder: str | None = Field(
        None,
        description="The photo encoder: scratch, or the ImageNet-pretrained efficientnet_lite0/1/2 inside the model.",
    )
    max_photos: Annotated[StrictInt, Field(ge=1, le=64)] | None = Field(
        None,
        description='Photos per listing: the argument is `tf.string [batch, max_photos]`, "" an empty slot, the '
        "photos first; the model pools them. Absent (older cards): one photo, `tf.string [batch]`.",
    )


Input = Annotated[CategoricalInput | NumericInput | TextInput | ImageInput, Field(discriminator="role")]


# --------------------------------------------------------------------------- blocks


class SplitMetrics(Block):
    """Scores on one split (prices in the currency; ratios as fractions)."""

    rmsle: float | None = Field(None, description="Root mean squared log error.")
    mae: float | None = Field(None, description="Mean absolute error, in the currency.")
    mape: float | None = Field(None, description="Mean absolute percentage error (0.18 = 18%).")
    medape: float | None = Field(None, description="Median absolute percentage error.")
    r2: float | None = Field(None, description="Coefficient of determination.")
    within_20pct: float | None = Field(None, description="Share of prices within 20% of the truth.")
    n: int | None = Field(None, description="Rows scored.")
    range_level: float | None = Field(None, description="The default range level (see `interval`).")
    range_coverage: float | None = Field(None, description="Share of true prices inside the range.")
    range_median_relative_width: float | None = Field(None, description="Median of (high - low) / price.")


class Metrics(Block):
    """Scores per split; other splits may be added."""

    test: SplitMetrics | None = Field(None, description="The test split, at export.")


Level = Annotated[float, Field(gt=0.0, lt=1.0)]
Quantile = Annotated[Finite, Field(ge=-20.0, le=20.0)]
QuantilePair = tuple[Quantile, Quantile]


class SubsetQuantiles(Block):
    """The range of listings given one subset of the input groups (the others missing)."""

    n: Annotated[StrictInt, Field(ge=0)] = Field(description="Calibration residuals of this subset.")
    quantiles: dict[Level, QuantilePair] = Field(
        default_factory=dict, description="Per level: [q_low, q_high] in log price, as in `quantiles`."
    )
    too_few_rows_for: list[float] = Field(
        default_factory=list, description="Levels this subset has too few rows for: the service uses `quantiles`."
    )


class Interval(Block):
    """The calibrated price range (split conformal on the valid split's log-price residuals)."""

    method: str = Field("", description="How the quantiles were computed, in words.")
    calibration_split: str | None = Field(None, description="The split the residuals come from.")
    n: int | None = Field(None, description="Residuals the quantiles come from.")
    level: Level = Field(0.8, description="The default level; it must be one of `quantiles`.")
    quantiles: dict[Level, QuantilePair] = Field(
        min_length=1, description='Per level (a JSON key, "0.8"): [q_low, q_high] in log price.'
    )
    too_few_rows_for: list[float] = Field(
        default_factory=list, description="Levels whose rank fell outside 1..n (an extreme residual stands in)."
    )
    by_inputs: dict[str, SubsetQuantiles] = Field(
        default_factory=dict,
        description='Mondrian split conformal: per subset of given input groups ("metadata+image", the groups of '
        "`missing.groups` in their order, joined by +), calibrated on the valid split with the other groups "
        "removed. Absent (older cards) or a subset not listed: `quantiles`. With `first_text`, a key ending in "
        "`|first_text_only` holds the listings of that subset whose only text is that input.",
    )
    first_text: str | None = Field(
        None,
        description="The text input (the first, a title) whose listings give no other text get their own "
        "`by_inputs` quantiles, under the subset's key + `|first_text_only`; absent (older cards): the subset's.",
    )

    @field_validator("quantiles")
    @classmethod
    def _pairs_ordered(cls, value: dict[float, tuple[float, float]]) -> dict[float, tuple[float, float]]:
        for level, pair in value.items():
            if pair[0] > pair[1]:
                raise ValueError(f"quantiles of level {level:g} must be [q_low, q_high] with q_low <= q_high")
        return value

    @model_validator(mode="after")
    def _default_level_stored(self) -> Self:
        if self.stored_level(self.level) is None:
            raise ValueError(f"the default level {self.level:g} has no quantiles")
        return self

    def stored_level(self, level: float) -> float | None:
        """The key of ``quantiles`` equal to ``level`` (within 1e-9), or None."""
        return next((lv for lv in self.quantiles if abs(lv - level) < 1e-9), None)


class Explain(Block):
    """The neutral inputs that the contributions (occlusion) compare an item against."""

    method: str = Field("", description="How the contributions are computed, in words.")
    baseline: dict[str, StrictStr | Finite | None] = Field(
        description="One neutral value per input, by name: categorical the most frequent training value, "
        'numeric the training median (null: none seen, sent as missing), text `""`, the image the '
        "per-pixel mean training photo as base64 PNG."
    )
    image_format: str | None = Field(None, description='How the image baseline is encoded ("png, base64").')
    image_size: ImageSize | None = Field(None, description="[height, width] of the image baseline.")

    def check_against(self, inputs: list[Any]) -> None:
        """Every input has a baseline value of its role's type. Raises ValueError."""
        for spec in inputs:
            if spec.name not in self.baseline:
                raise ValueError(f"no baseline value for input {spec.name!r}")
            value = self.baseline[spec.name]
            if spec.role == "numeric" and not (value is None or isinstance(value, float | int)):
                raise ValueError(f"baseline of {spec.name!r} must be a number or null")
            if spec.role in ("categorical", "text") and not isinstance(value, str):
                raise ValueError(f"baseline of {spec.name!r} must be a string")
            if spec.role == "image":
                image_bytes(value, spec.name)


def image_bytes(value: Any, name: str) -> bytes:
    """An image baseline (base64, a ``data:`` prefix allowed) as bytes. Raises ValueError."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"baseline of image input {name!r} must be base64 text")
    text = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"baseline of image input {name!r} is not valid base64") from None


class Thumbnails(Block):
    """The comparables' thumbnails (``thumbnails.bin``, offsets in ``thumbnail_offsets.npy``)."""

    format: Literal["jpeg"] = Field("jpeg", description="Their file type.")
    size: Annotated[StrictInt, Field(ge=8, le=1024)] = Field(description="Longest side in pixels.")
    count: Annotated[StrictInt, Field(ge=0)] = Field(description="Listings with a thumbnail.")
    bytes: Annotated[StrictInt, Field(ge=0)] = Field(description="Their total size.")


Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class ComparablesIndex(Block):
    """The comparables index in the version's ``comparables/`` folder: the train and valid
    listings the service answers with as evidence. A broken index refuses the version."""

    method: str = Field("", description="The embedding and the search, in words.")
    output: str = Field("embedding", description="The signature output holding a listing's embedding.")
    folder: Literal["comparables"] = Field("comparables", description="The folder inside the version.")
    count: Annotated[StrictInt, Field(ge=1)] = Field(description="Listings stored.")
    dim: Annotated[StrictInt, Field(ge=1, le=65536)] = Field(description="Dimensions of the embedding.")
    dimensions: list[str] = Field(default_factory=list, description="What each dimension is, in order.")
    metric: Literal["l2", "cosine"] = Field(
        "l2", description="l2: Euclidean distance d, similarity exp(-d); cosine: similarity the cosine."
    )
    search: Literal["exact", "hnsw"] = Field(description="exact (numpy) or hnsw (faiss, `hnsw.faiss`).")
    ef_search: Annotated[StrictInt, Field(ge=1, le=4096)] = Field(64, description="hnsw: the search's beam width.")
    fields: list[Name] = Field(default_factory=list, description="The listing columns shown with each comparable.")
    default_k: Annotated[StrictInt, Field(ge=0, le=20)] = Field(5, description="Comparables per answer by default.")
    splits: list[str] = Field(default_factory=list, description="The splits the listings come from.")
    thumbnails: Thumbnails | None = Field(None, description="Small photos of the listings, if stored.")
    files: dict[str, Sha256] = Field(
        min_length=1, description="Every file of the folder and its sha256 (checked when the version loads)."
    )

    @model_validator(mode="after")
    def _files_present(self) -> Self:
        needed = {"vectors.npy", "prices.npy", "listings.json"}
        needed |= {"hnsw.faiss"} if self.search == "hnsw" else set()
        needed |= {"thumbnails.bin", "thumbnail_offsets.npy"} if self.thumbnails is not None else set()
        missing = sorted(needed - set(self.files))
        if missing:
            raise ValueError(f"files must name {', '.join(missing)}")
        if self.dimensions and len(self.dimensions) != self.dim:
            raise ValueError(f"dimensions names {len(self.dimensions)} dimensions, dim is {self.dim}")
        return self


class MissingInputs(Block):
    """Which inputs a request may leave out, and how the model is sent a missing one. Present: every
    input is optional (at least one needed). Absent (older cards): every input is required."""

    method: str = Field("", description="How the model learnt to price incomplete listings, in words.")
    groups: dict[str, list[Name]] = Field(
        min_length=1,
        description="The input groups (metadata, text, image), each with its inputs: a group is given when one "
        "of its inputs is (a categorical or text value not empty, a number not null, one photo at least).",
    )
    encoding: dict[str, str] = Field(
        default_factory=lambda: dict(MISSING_ENCODING), description="Per role: the value that means missing."
    )
    input_dropout: float | None = Field(None, description="Training's chance of removing each group from a row.")

    @field_validator("groups")
    @classmethod
    def _groups_known(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - set(GROUPS))
        if unknown:
            raise ValueError(f"unknown input group(s) {', '.join(unknown)}; known: {', '.join(GROUPS)}")
        return {g: value[g] for g in GROUPS if g in value}


class Training(Block):
    """How the exported model was trained."""

    epochs: int | None = Field(None, description="Epochs run.")
    best_epoch: int | None = Field(None, description="The epoch whose weights were kept.")
    seconds: float | None = Field(None, description="Training time.")
    run: str | None = Field(None, description="The run folder (runs/<name>/<time>).")
    blend: dict[str, Any] | None = Field(None, description="The wide/deep mix chosen on the valid split, if any.")
    photo_features: dict[str, Any] | None = Field(
        None, description="A frozen pretrained encoder's feature pass: photos encoded, seconds, photos per second."
    )


class Dataset(Block):
    """The table the model was trained on."""

    rows: int | None = Field(None, description="Usable rows.")
    source_rows: int | None = Field(None, description="Rows in the file.")
    sha256: str | None = Field(None, description="SHA-256 of the table file.")
    table: str | None = Field(None, description="Its path.")
    splits: dict[str, int] | None = Field(None, description="Rows per split (train, valid, test).")
    skipped_rows: dict[str, int] | None = Field(None, description="Rows dropped, per reason.")
    photos_left_out: dict[str, int] | None = Field(
        None, description="Photos left out of their (kept) rows: bad_photo (missing or unreadable), over_max_photos."
    )


# --------------------------------------------------------------------------- the card


class ModelCard(Block):
    """`model_card.json`, as the exporter writes it."""

    name: Name = Field(description="The model's name (the folder under models/).")
    version: int = Field(ge=0, description="The version folder's number.")
    created: str = Field(description='Export time, ISO 8601 UTC ("2026-11-28T23:59:00Z").')
    signature: str = Field("serving_default", description="The SavedModel signature to call.")
    output: str = Field("price", description="The signature's output holding the price.")
    target: str | None = Field(None, description="The data set's price column.")
    currency: str | None = Field(None, description="ISO 4217 code of the price (required to serve).")
    inputs: list[Input] = Field(
        default_factory=list, description="Every model input, in signature order (one at least to serve)."
    )
    metrics: Metrics = Field(default_factory=Metrics, description="Scores at export.")
    interval: Interval | None = Field(None, description="The calibrated price range; older cards lack it.")
    explain: Explain | None = Field(None, description="The contributions' neutral inputs; older cards lack it.")
    missing: MissingInputs | None = Field(
        None, description="Which inputs may be left out; older cards lack it (every input required)."
    )
    comparables: ComparablesIndex | None = Field(
        None, description="The comparables index beside the model; older cards, or `enabled = false`, lack it."
    )
    training: Training | None = Field(None, description="How it was trained.")
    dataset: Dataset | None = Field(None, description="What it was trained on.")
    config: dict[str, Any] = Field(default_factory=dict, description="The training config (training/config.py).")
    versions: dict[str, str] = Field(default_factory=dict, description="Library versions it was trained with.")
    report: str | None = Field(None, description="The evaluation report beside the card (report.html).")
    evaluation: str | None = Field(None, description="The evaluation data beside the card (evaluation.json).")
    last_evaluation: dict[str, Any] | None = Field(
        None, description="Written by `make evaluate`: when, on what, and the test scores."
    )

    @field_validator("inputs")
    @classmethod
    def _unique_names(cls, inputs: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for spec in inputs:
            if spec.name in seen:
                raise ValueError(f"input {spec.name!r} is listed twice")
            seen.add(spec.name)
        return inputs

    @field_validator("explain")
    @classmethod
    def _baseline_for_every_input(cls, explain: Explain | None, info: ValidationInfo) -> Explain | None:
        if explain is not None and "inputs" in info.data:  # inputs are validated first (field order)
            explain.check_against(info.data["inputs"])
        return explain

    @classmethod
    def read(cls, raw: Any) -> tuple[Self, dict[str, str]]:
        """Validate a card as read from JSON; an unusable optional block is dropped, not fatal.

        Returns the card and ``{block: reason}`` for each dropped block.

        Raises:
            ValidationError: the card is unusable outside its optional blocks.
        """
        try:
            return cls.model_validate(raw), {}
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            blocks = {str(e["loc"][0]) for e in errors if e["loc"]}
            if not isinstance(raw, Mapping) or not blocks or not blocks <= set(OPTIONAL_BLOCKS):
                raise
            dropped = {b: describe_errors([e for e in errors if e["loc"][0] == b], raw) for b in sorted(blocks)}
            return cls.model_validate({k: v for k, v in raw.items() if k not in blocks}), dropped

    def undeclared(self) -> list[str]:
        """Keys present in the card or its blocks that this model does not declare."""
        out = [str(k) for k in self.model_extra or {}]
        for name in type(self).model_fields:
            value = getattr(self, name)
            parts = value if isinstance(value, list) else [value]
            for index, part in enumerate(parts):
                if isinstance(part, Block):
                    where = f"{name}[{index}]" if isinstance(value, list) else name
                    out += [f"{where}.{k}" for k in part.model_extra or {}]
        return out

    def to_json(self) -> str:
        """The card as the exporter writes it (the fields it was given; NaN as null)."""
        return self.model_dump_json(indent=2, exclude_unset=True) + "\n"


class ServableCard(ModelCard):
    """A card the service can serve: a currency and at least one input."""

    currency: str = Field(min_length=1, description="ISO 4217 code of the price.")
    inputs: list[Input] = Field(min_length=1, description="Every model input, in signature order.")


FIRST_TEXT_ONLY = "|first_text_only"


def subset_key(given: Any, first_text_only: bool = False) -> str:
    """The key of ``Interval.by_inputs`` for the given groups: "metadata+image"; a listing whose
    only text is ``Interval.first_text`` (a title alone): "text+image|first_text_only"."""
    key = "+".join(g for g in GROUPS if g in set(given))
    return key + FIRST_TEXT_ONLY if first_text_only and "text" in set(given) else key


def describe_errors(errors: list[Any] | ValidationError, raw: Any = None, limit: int = 5) -> str:
    """Pydantic errors as one line, ``inputs[2] 'brand'.vocabulary: ...; currency: Field required``
    (with the card as read, ``raw``, an input is also named)."""
    if isinstance(errors, ValidationError):
        errors = errors.errors(include_url=False)
    parts = [f"{_where(e['loc'], raw)}: {str(e['msg']).removeprefix('Value error, ')}" for e in errors[:limit]]
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return "; ".join(parts)


def _where(loc: tuple[Any, ...], raw: Any) -> str:
    loc = tuple(loc)
    if len(loc) > 2 and loc[0] == "inputs" and loc[2] in MODALITY_OF_ROLE:
        loc = loc[:2] + loc[3:]  # the union's tag: the role is in the input itself
    out = ""
    for index, part in enumerate(loc):
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        if index == 1 and loc[0] == "inputs" and isinstance(part, int):
            out += _input_name(raw, part)
    return out or "card"


def _input_name(raw: Any, index: int) -> str:
    try:
        name = raw["inputs"][index]["name"]
    except (KeyError, IndexError, TypeError):
        return ""
    return f" {name!r}" if isinstance(name, str) else ""


if __name__ == "__main__":
    from common.card_doc import main

    raise SystemExit(main())
