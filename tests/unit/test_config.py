"""Config validation: unknown keys, wrong types and bad choices are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import Config, DataConfig, ModelConfig, TrainConfig, UserError, from_dict, load

ROOT = Path(__file__).resolve().parents[2]
BASE = {"data": {"table": "items.csv", "categorical": ["brand"], "target": "price"}}


def test_shipped_configs_load():
    syn = load(ROOT / "training/configs/synthetic.toml")
    assert syn.name == "price" and syn.data.image == "image" and syn.train.ablations == "all"
    assert Path(syn.data.table).is_absolute()
    my = load(ROOT / "training/configs/myntra.toml")
    assert my.name == "myntra" and my.data.currency == "INR" and my.data.split == "split"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({**BASE, "data": {**BASE["data"], "tabel": "x"}}, "unknown key 'data.tabel'"),
        ({**BASE, "colour": 1}, "unknown key 'colour'"),
        ({**BASE, "model": {"image_size": "big"}}, "model.image_size must be int"),
        ({**BASE, "data": {**BASE["data"], "categorical": "brand"}}, "data.categorical must be a list"),
        ({**BASE, "train": {"ablations": "some"}}, "train.ablations must be one of"),
        ({**BASE, "train": {"bad_rows": "ignore"}}, "train.bad_rows must be one of"),
        ({**BASE, "train": {"epochs": True}}, "train.epochs must be int"),
        ({"data": {"categorical": ["a"]}}, "data.table is required"),
        ({"data": {"table": "t.csv"}}, "name at least one input column"),
        ({"data": {"table": "t.csv", "categorical": ["a"], "text": ["a"]}}, "named in more than one role"),
        ({"data": {"table": "t.csv", "categorical": ["price"]}}, "the target 'price' is also an input"),
        ({**BASE, "model": []}, "[model] must be a table"),
        ({**BASE, "model": {"members": 0}}, "model.members must be at least 1"),
        ({**BASE, "model": {"members": 3}}, 'model.members > 1 needs model.fusion = "sum"'),
        ({**BASE, "train": {"lr_schedule": "step"}}, "train.lr_schedule must be one of"),
    ],
)
def test_invalid_configs_name_the_problem(raw, message):
    with pytest.raises(UserError) as e:
        from_dict(raw)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_ints_are_accepted_for_floats_and_paths_resolve_against_the_file(tmp_path):
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text('[data]\ntable = "sub/items.csv"\ntext = ["t"]\n[train]\nlearning_rate = 1\n')
    cfg = load(cfg_file)
    assert cfg.train.learning_rate == 1.0 and isinstance(cfg.train.learning_rate, float)
    assert cfg.data.table == str(tmp_path / "sub" / "items.csv")
    assert cfg.images_root() == tmp_path / "sub"


def test_overrides_and_missing_file(tmp_path):
    cfg = load(ROOT / "training/configs/synthetic.toml", ["train.epochs=3", "name=other", "model.fusion_units=[8]"])
    assert (cfg.train.epochs, cfg.name, cfg.model.fusion_units) == (3, "other", [8])
    with pytest.raises(UserError, match="does not exist"):
        load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load(bad)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({**BASE, "model": {"image_encoder": "resnet"}}, "model.image_encoder must be one of efficientnet_lite0, "),
        ({**BASE, "model": {"image_trainable_blocks": -1}}, "model.image_trainable_blocks must be at least 0, got -1"),
        ({**BASE, "model": {"backbone_weights": "w.h5"}}, "unknown key 'model.backbone_weights'"),
        ({**BASE, "model": {"image_size": 0}}, "model.image_size must be positive, got 0"),
        ({**BASE, "model": {"blend": 1.5}}, "model.blend must be between 0 and 1, got 1.5"),
        ({**BASE, "model": {"image_filters": [8, "16"]}}, "model.image_filters[1] must be int, got str '16'"),
        ({**BASE, "train": {"learning_rate": "fast"}}, "train.learning_rate must be float, got str 'fast'"),
        ({**BASE, "train": {"interval_level": 1.0}}, "train.interval_level must be between 0 and 1, got 1.0"),
        ({**BASE, "source": "x.toml"}, "unknown key 'source' (known: models_dir, name)"),
        (
            {**BASE, "model": {"partial_gradient": {"photo": 1.0}}},
            "model.partial_gradient.photo.[key]: Input should be 'metadata', 'text' or 'image'",
        ),
        (
            {**BASE, "model": {"partial_gradient": {"text": 1.5}}},
            "model.partial_gradient: every share must be between 0 and 1, got {'text': 1.5}",
        ),
        (
            {**BASE, "model": {"partial_projections": ["text", "photo"]}},
            "model.partial_projections[1] must be one of image, metadata, text, got 'photo'",
        ),
        ({**BASE, "train": {"input_dropout_copies": 9}}, "train.input_dropout_copies must be between 0 and 8, got 9"),
    ],
)
def test_more_invalid_configs_name_the_key(raw, message):
    with pytest.raises(UserError) as e:
        from_dict(raw)
    assert str(e.value).startswith("config: ") and message in str(e.value) and "\n" not in str(e.value)


def test_every_option_has_a_type_a_default_and_a_description():
    cfg = from_dict(BASE)
    assert (cfg.model.image_encoder, cfg.model.image_trainable_blocks) == ("scratch", 0)
    for section in (Config, DataConfig, ModelConfig, TrainConfig):
        for name, info in section.model_fields.items():
            assert info.description and info.annotation is not None, f"{section.__name__}.{name}"
            assert not info.is_required(), f"{section.__name__}.{name}"
    assert "backbone_weights" not in cfg.to_dict()["model"] and "source" not in cfg.to_dict()


def test_configs_stay_mutable_and_copy(tmp_path):
    cfg = load(ROOT / "training/configs/synthetic.toml")
    assert cfg.source.endswith("synthetic.toml")
    cfg.train.ablations = "none"
    cfg.model.image_filters.append(128)
    copy = cfg.model_copy(deep=True, update={"name": "other"})
    copy.model.image_filters.append(256)
    assert (copy.name, copy.train.ablations, copy.source) == ("other", "none", cfg.source)
    assert cfg.model.image_filters == [32, 64, 96, 128] and cfg.name == "price"
    assert from_dict(BASE).model.image_filters == [32, 64, 96]  # defaults are not shared
