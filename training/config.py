"""Data set, model and training options, read from a TOML file and validated.

Every option has a type, a default and a one-line description; unknown keys are errors, so a
typo never silently falls back to a default. Relative paths are resolved against the config
file's folder, so a config can be run from anywhere.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints


class UserError(Exception):
    """A problem with the user's config or data: reported as one line, exit code 2."""


def opt(default: Any, doc: str) -> Any:
    """A config option with its default and a one-line description."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass
class DataConfig:
    """The `[data]` section: which columns of which table play which role."""

    table: str = opt("", "CSV or Parquet file with one listing per row")
    images: str = opt("", "folder that relative image paths start from (default: the table's folder)")
    id: str = opt("id", "column with a unique id per row")
    target: str = opt("price", "column with the price to predict")
    currency: str = opt("EUR", "currency of the target, reported with every prediction")
    categorical: list[str] = opt([], "columns with categories (brand, condition ...)")
    numeric: list[str] = opt([], "columns with numbers (age in months ...)")
    text: list[str] = opt([], "columns with free text (title, description ...)")
    image: str = opt("", "column with the path of the photo (empty: no photo)")
    split: str = opt("", "column with train/valid/test per row (empty: a split from a hash of the id)")
    shards: str = opt("", "manifest.json of TFRecord shards made by `make shards` (empty: read rows and photos from the table)")


@dataclass
class ModelConfig:
    """The `[model]` section: architecture hyperparameters."""

    image_size: int = opt(64, "side in pixels that photos are resized to inside the model")
    image_stem: int = opt(16, "channels of the image encoder's strided stem convolution")
    image_filters: list[int] = opt([32, 64, 96], "channels of the image encoder's residual stages (each halves the side)")
    image_augment: bool = opt(False, "random flips, shifts and zooms of the photo while training (none in inference)")
    image_units: int = opt(64, "width of the image branch's output")
    embedding_dim: int = opt(12, "embedding width per categorical column")
    metadata_units: int = opt(64, "width of the metadata branch's output")
    text_max_tokens: int = opt(20000, "vocabulary size of each text column (words and bigrams)")
    text_ngrams: int = opt(2, "longest n-gram of the text vectoriser")
    text_mode: str = opt("binary_idf", "text representation: binary_idf (0/1 times idf), tf_idf (counts times idf) or multi_hot")
    text_units: int = opt(96, "width of the text branch's output")
    text_deep_tokens: int = opt(0, "n-grams per text column the deep path sees (most frequent first; 0: all); the wide path sees all")
    fusion_units: list[int] = opt([256, 64], "widths of the price head's hidden layers")
    fusion: str = opt("concat", "concat: each branch its own MLP, outputs concatenated into the head; sum: each branch a linear projection to fusion_units[0], summed into the head's first hidden layer")
    members: int = opt(1, "fusion = sum: independently trained copies of the first hidden layer and the head, averaged in inference (an ensemble inside one model)")
    dropout: float = opt(0.2, "dropout rate in the branches and the head")
    wide_init: str = opt("ridge", "wide path: ridge (solved in closed form, then frozen) or sgd (trained with the rest)")
    blend: float = opt(0.0, "wide_init = ridge: 0 sums the wide path and a deep part trained on its out-of-fold residual; w in (0, 1] blends (1 - w) x the Ridge with w x a deep network that predicts the whole price")
    backbone_weights: str = opt("", "optional local .weights.h5 file of a keras.applications MobileNetV3Small")


@dataclass
class TrainConfig:
    """The `[train]` section: the fitting recipe."""

    batch_size: int = opt(128, "examples per step")
    epochs: int = opt(30, "maximum number of epochs")
    learning_rate: float = opt(2e-3, "peak learning rate (AdamW, cosine decay)")
    lr_schedule: str = opt("cosine", "cosine: one epoch of warm-up, then cosine decay; halving: the peak rate from the start, halved every epoch (short runs of wide sparse models)")
    weight_decay: float = opt(1e-4, "AdamW weight decay")
    patience: int = opt(4, "epochs without validation improvement before stopping")
    seed: int = opt(0, "random seed for shuffling and initialisation")
    bad_rows: str = opt("skip", "rows with a bad target or image: skip (and count) or fail")
    max_rows: int = opt(0, "use only the first N rows of the table (0: all)")
    ablations: str = opt("none", "extra models for the evaluation: none, single, leave-one-out or all")
    baselines: bool = opt(True, "train scikit-learn baselines in the same run")
    report_category: str = opt("", "categorical column whose largest values the report breaks errors down by (default: the first)")
    shuffle_buffer: int = opt(8192, "size of the training shuffle buffer")
    interval_level: float = opt(0.8, "level of the price range served by default (split conformal on the valid split)")
    strategy: str = opt("default", "distribution: default (one device), mirrored (the devices of one machine) or multi-worker (cluster from TF_CONFIG)")


@dataclass
class Config:
    """A whole training config."""

    name: str = opt("price", "model name: exports go to models/<name>/<version>/")
    models_dir: str = opt("models", "folder that holds the exported models (relative to the working directory)")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    source: str = ""  # the file this config was read from; not a TOML key

    def table_path(self) -> Path:
        return Path(self.data.table)

    def images_root(self) -> Path:
        return Path(self.data.images) if self.data.images else Path(self.data.table).parent

    def feature_columns(self) -> list[str]:
        cols = [*self.data.categorical, *self.data.numeric, *self.data.text]
        return cols + ([self.data.image] if self.data.image else [])

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("source")
        return d


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
CHOICES = {
    ("model", "text_mode"): {"tf_idf", "multi_hot", "binary_idf"},
    ("model", "wide_init"): {"ridge", "sgd"},
    ("model", "fusion"): {"concat", "sum"},
    ("train", "bad_rows"): {"skip", "fail"},
    ("train", "lr_schedule"): {"cosine", "halving"},
    ("train", "ablations"): {"none", "single", "leave-one-out", "all"},
    ("train", "strategy"): {"default", "mirrored", "multi-worker"},
}


def _check_type(where: str, value: Any, typ: Any) -> Any:
    origin = get_origin(typ)
    if origin is list:
        (item,) = get_args(typ)
        if not isinstance(value, list):
            raise UserError(f"config: {where} must be a list, got {type(value).__name__}")
        return [_check_type(f"{where}[{i}]", v, item) for i, v in enumerate(value)]
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is int and isinstance(value, bool) or not isinstance(value, typ):
        raise UserError(f"config: {where} must be {typ.__name__}, got {type(value).__name__} {value!r}")
    return value


def _fill(obj: Any, section: str, values: dict[str, Any]) -> None:
    hints = get_type_hints(type(obj))
    known = {f.name for f in dataclasses.fields(obj) if f.name != "source"} - set(SECTIONS)
    for key, value in values.items():
        where = f"{section}.{key}" if section else key
        if key not in known:
            raise UserError(f"config: unknown key '{where}' (known: {', '.join(sorted(known))})")
        value = _check_type(where, value, hints[key])
        allowed = CHOICES.get((section, key))
        if allowed and value not in allowed:
            raise UserError(f"config: {where} must be one of {', '.join(sorted(allowed))}, got {value!r}")
        setattr(obj, key, value)


def from_dict(raw: dict[str, Any], base: Path | None = None) -> Config:
    """Validate a parsed config; resolve relative data paths against `base`."""
    cfg = Config()
    top = {k: v for k, v in raw.items() if k not in SECTIONS}
    _fill(cfg, "", top)
    for name in SECTIONS:
        section = raw.get(name, {})
        if not isinstance(section, dict):
            raise UserError(f"config: [{name}] must be a table")
        _fill(getattr(cfg, name), name, section)
    d = cfg.data
    if not d.table:
        raise UserError("config: data.table is required")
    if not (d.categorical or d.numeric or d.text or d.image):
        raise UserError("config: name at least one input column in data.categorical/numeric/text/image")
    cols = cfg.feature_columns()
    dup = sorted({c for c in cols if cols.count(c) > 1})
    if dup:
        raise UserError(f"config: column(s) {', '.join(dup)} named in more than one role")
    if d.target in cols:
        raise UserError(f"config: the target '{d.target}' is also an input")
    for k in ("image_size", "batch_size", "epochs"):
        sect = cfg.model if hasattr(cfg.model, k) else cfg.train
        if getattr(sect, k) <= 0:
            raise UserError(f"config: {k} must be positive")
    if cfg.model.members < 1:
        raise UserError(f"config: model.members must be at least 1, got {cfg.model.members}")
    if cfg.model.members > 1 and cfg.model.fusion != "sum":
        raise UserError("config: model.members > 1 needs model.fusion = \"sum\"")
    if not 0.0 <= cfg.model.blend <= 1.0:
        raise UserError(f"config: model.blend must be between 0 and 1, got {cfg.model.blend}")
    if not 0.0 < cfg.train.interval_level < 1.0:
        raise UserError(f"config: train.interval_level must be between 0 and 1, got {cfg.train.interval_level}")
    if base is not None:
        d.table = str(_resolve(base, d.table))
        if d.images:
            d.images = str(_resolve(base, d.images))
        if d.shards:
            d.shards = str(_resolve(base, d.shards))
        if cfg.model.backbone_weights:
            cfg.model.backbone_weights = str(_resolve(base, cfg.model.backbone_weights))
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
