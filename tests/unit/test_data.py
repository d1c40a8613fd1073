"""Loading and checking tables: bad rows are counted and skipped (or refused), errors name the problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.support.tiny import tiny_config
from training.config import UserError
from training.data.table import hash_split, load_table, read_table


@pytest.fixture
def table(tmp_path, tiny_dataset):
    """A private copy of the tiny table that a test may spoil."""
    df = pd.read_csv(tiny_dataset)
    df["image"] = [str(tiny_dataset.parent / p) for p in df["image"]]  # absolute: the copy lives elsewhere
    path = tmp_path / "items.csv"
    df.to_csv(path, index=False)
    return path, df


def _load(path, tmp_path, **train):
    return load_table(tiny_config(path, tmp_path / "models", **train))


def test_clean_table_loads_with_a_stable_split(table, tmp_path):
    path, df = table
    t = _load(path, tmp_path)
    assert len(t.frame) == len(df) and sum(t.dropped.values()) == 0
    assert set(t.frame["__split"]) == {"train", "valid", "test"}
    assert t.fingerprint["rows"] == len(df) and len(t.fingerprint["sha256"]) == 64
    assert list(hash_split(pd.Series(["1", "2", "3"]))) == list(hash_split(pd.Series([1, 2, 3])))


def test_bad_targets_are_skipped_and_bad_photos_left_out_with_the_row_kept(table, tmp_path):
    path, df = table
    df["price"] = df["price"].astype(object)  # pandas 3 refuses a string in a float column
    df.loc[0, "price"] = -3
    df.loc[1, "price"] = "free"
    df.loc[2, "price"] = None
    df.loc[3, "image"] = "images/does-not-exist.jpg"
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"this is not a jpeg")
    df.loc[4, "image"] = str(broken)
    df.to_csv(path, index=False)
    t = _load(path, tmp_path)
    assert t.dropped == {"bad_target": 3}
    assert t.photos_left_out == {"bad_photo": 2, "over_max_photos": 0}
    assert len(t.frame) == len(df) - 3
    by_id = t.frame.set_index("id")["image"]
    assert by_id[str(df.loc[3, "id"])] == "" and by_id[str(df.loc[4, "id"])] == ""  # kept, without a photo


def test_bad_rows_fail_when_the_config_says_so(table, tmp_path):
    path, df = table
    df.loc[0, "price"] = 0
    df.to_csv(path, index=False)
    with pytest.raises(UserError, match=r"1 bad row\(s\) in items.csv \(1 bad target\)"):
        _load(path, tmp_path, bad_rows="fail")


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda df: df.drop(columns=["brand"]), "column(s) brand not in items.csv"),
        (lambda df: df.assign(age_months=["old"] * len(df)), "numeric column age_months has non-numeric values"),
        (lambda df: df.head(0), "has no rows"),
        (lambda df: df.assign(id=1), "column id must be unique"),
        (lambda df: df.assign(price="n/a"), "no usable rows left"),
    ],
)
def test_unusable_tables_stop_with_one_line(table, tmp_path, spoil, message):
    path, df = table
    spoil(df).to_csv(path, index=False)
    with pytest.raises(UserError) as e:
        _load(path, tmp_path)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_missing_table_and_split_column_values(table, tmp_path):
    path, df = table
    with pytest.raises(UserError, match="does not exist"):
        _load(tmp_path / "nope.csv", tmp_path)
    df["part"] = ["train"] * (len(df) - 1) + ["holdout"]
    df.to_csv(path, index=False)
    cfg = tiny_config(path, tmp_path)
    cfg.data.split = "part"
    with pytest.raises(UserError, match="must hold train/valid/test, found 'holdout'"):
        load_table(cfg)


def test_read_table_names_who_asked(tmp_path):
    with pytest.raises(UserError, match=r"^predict: input table .*nope.csv does not exist$"):
        read_table(tmp_path / "nope.csv", where="predict", what="input table")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(UserError, match=r"^data: cannot read .*empty.csv: "):
        read_table(tmp_path / "empty.csv")


def test_a_cell_holds_several_photos_up_to_max_photos(table, tmp_path):
    path, df = table
    first, second = df.loc[0, "image"], df.loc[1, "image"]
    df.loc[0, "image"] = f"{first}; {second}"
    df.loc[1, "image"] = ";".join([first] * 5)  # one more than model.max_photos = 4
    df.loc[2, "image"] = None  # no photo at all: kept
    df.to_csv(path, index=False)
    t = _load(path, tmp_path)
    by_id = t.frame.set_index("id")["image"]
    assert by_id[str(df.loc[0, "id"])] == f"{first};{second}"
    assert by_id[str(df.loc[1, "id"])].split(";") == [first] * 4
    assert by_id[str(df.loc[2, "id"])] == ""
    assert t.photos_left_out == {"bad_photo": 0, "over_max_photos": 1}
    assert len(t.frame) == len(df)


def test_the_stream_feeds_photo_slots_and_a_mask(table, tmp_path):
    from training.data.dataset import PHOTO_MASK, raw_features

    path, df = table
    first, second = df.loc[0, "image"], df.loc[1, "image"]
    df.loc[0, "image"] = f"{first};{second}"
    df.loc[1, "image"] = ""
    df.to_csv(path, index=False)
    cfg = tiny_config(path, tmp_path / "models")
    t = load_table(cfg)
    feats = raw_features(cfg, t.frame.head(3))
    assert feats["image"].shape == (3, 4) and feats[PHOTO_MASK].shape == (3, 4)
    assert feats["image"][0].tolist() == [first, second, "", ""]
    assert feats[PHOTO_MASK].tolist()[:2] == [[1, 1, 0, 0], [0, 0, 0, 0]]


def _one_complete_listing() -> dict:
    """One example of the tiny config as the stream gives it: every group, one photo of four slots."""
    import tensorflow as tf

    from training.data.dataset import PHOTO_MASK

    return {
        "brand": tf.constant("Zara"),
        "category": tf.constant("dress"),
        "condition": tf.constant("good"),
        "size": tf.constant("M"),
        "colour": tf.constant("red"),
        "age_months": tf.constant(3.0),
        "title": tf.constant("red dress"),
        "description": tf.constant("nice"),
        "image": tf.zeros((4, 8, 8, 3), tf.uint8),
        PHOTO_MASK: tf.constant([1.0, 0.0, 0.0, 0.0]),
    }


def test_input_dropout_removes_whole_groups_and_never_all(tmp_path):
    import tensorflow as tf

    from training.data.dataset import _dropper, groups_given

    cfg = tiny_config(tmp_path / "items.csv", tmp_path / "models")
    x = _one_complete_listing()
    drop = _dropper(cfg, 0.6)
    seen = set()
    for _ in range(200):
        out, _y = drop(x, tf.constant(1.0))
        given = {g: bool(v.numpy()) for g, v in groups_given(cfg, out).items()}
        assert any(given.values())  # never every group
        if not given["metadata"]:  # a group goes as a whole
            assert all(out[c].numpy() == b"" for c in ("brand", "category", "condition", "size", "colour"))
            assert np.isnan(out["age_months"].numpy())
        seen.add(tuple(sorted(g for g, v in given.items() if v)))
    assert len(seen) >= 6  # every subset but the empty one shows up


def test_text_column_dropout_only_in_a_copy_that_lost_a_group_and_keeps_one_column(tmp_path):
    """train.text_column_dropout: a copy that lost a group (and kept its text) may lose its
    description too, never its last text column; a copy that lost nothing keeps every column."""
    import tensorflow as tf

    from training.data.dataset import _dropper, groups_given

    cfg = tiny_config(tmp_path / "items.csv", tmp_path / "models")
    cfg.train.text_column_dropout = 0.7
    x = _one_complete_listing()
    drop = _dropper(cfg, 0.5, flag=True)
    kinds = set()
    for _ in range(300):
        out, _y, removed = drop(x, tf.constant(1.0))
        title, description = out["title"].numpy() != b"", out["description"].numpy() != b""
        if not bool(removed.numpy()):
            assert title and description  # a row that lost no group keeps its whole text
            continue
        if groups_given(cfg, out)["text"]:
            assert title or description  # never the last text column
            kinds.add((bool(title), bool(description)))
    assert kinds == {(True, True), (True, False), (False, True)}


def test_input_dropout_copies_keep_every_complete_row_and_add_incomplete_ones(table, tmp_path):
    from training.data.dataset import make_dataset
    from training.data.subsets import given

    path, _ = table
    cfg = tiny_config(path, tmp_path / "models")
    train = load_table(cfg).part("train")
    cols = [c for c in cfg.feature_columns() if c != "image"]
    ds = make_dataset(cfg, train, training=True, columns=cols, input_dropout=0.3, batch_size=10_000)
    x, y, weight = next(iter(ds))
    rows = pd.DataFrame({c: x[c].numpy().astype(str) if x[c].dtype == "string" else x[c].numpy() for c in cols})
    complete = given(cfg, rows.assign(image=""))[["metadata", "text"]].all(axis=1)
    assert complete.sum() == len(train)  # every row once as it is
    assert 0.2 * len(train) < (~complete).sum() < 0.8 * len(train)  # and about 1 - 0.7^2 of them again, incomplete
    assert len(y) == len(rows) == len(weight) and set(np.round(weight.numpy(), 3)) == {1.0}  # input_dropout_weight 1


def test_several_copies_each_draw_their_own_inputs_to_remove(table, tmp_path):
    """train.input_dropout_copies = 3: each row once as it is and up to three incomplete copies,
    not all the same draw."""
    from training.data.dataset import make_dataset
    from training.data.subsets import given

    path, _ = table
    cfg = tiny_config(path, tmp_path / "models")
    cfg.train.input_dropout_copies = 3
    train = load_table(cfg).part("train")
    cols = [c for c in cfg.feature_columns() if c != "image"]
    ds = make_dataset(cfg, train, training=True, columns=cols, input_dropout=0.3, batch_size=10_000)
    x, _y, _weight = next(iter(ds))
    rows = pd.DataFrame({c: x[c].numpy().astype(str) if x[c].dtype == "string" else x[c].numpy() for c in cols})
    g = given(cfg, rows.assign(image=""))[["metadata", "text"]]
    complete = g.all(axis=1)
    assert complete.sum() == len(train)
    # one draw leaves about 1 - 0.7^2 = 51% of rows incomplete; three draws about three times as many
    assert 3 * 0.35 * len(train) < (~complete).sum() < 3 * 0.65 * len(train)
    incomplete = g[~complete]
    assert incomplete["metadata"].sum() > 0.25 * len(incomplete) and incomplete["text"].sum() > 0.25 * len(incomplete)


def test_the_second_phase_stream_holds_the_incomplete_copies_alone(table, tmp_path):
    """train.partial_copies: the partial head's own stream, `copies` draws of each row with no
    row as it is and no copy that removed nothing (the partial head never sees complete rows);
    about as many incomplete examples as expected_copies says per draw."""
    from training.data.dataset import make_dataset
    from training.data.subsets import given
    from training.fit.trainer import expected_copies

    path, _ = table
    cfg = tiny_config(path, tmp_path / "models")
    train = load_table(cfg).part("train")
    cols = [c for c in cfg.feature_columns() if c != "image"]
    ds = make_dataset(
        cfg, train, training=True, columns=cols, input_dropout=0.3, batch_size=10_000, copies=4, copies_only=True
    )
    x, y, weight = next(iter(ds))
    rows = pd.DataFrame({c: x[c].numpy().astype(str) if x[c].dtype == "string" else x[c].numpy() for c in cols})
    g = given(cfg, rows.assign(image=""))[["metadata", "text"]]
    assert not g.all(axis=1).any() and g.any(axis=1).all()  # every example incomplete, none empty
    expected = 4 * expected_copies(cfg, train, 0.3, cols)
    assert 0.8 * expected < len(rows) < 1.2 * expected
    assert g["metadata"].sum() > 0.25 * len(g) and g["text"].sum() > 0.25 * len(g)
    assert len(y) == len(weight) == len(rows)


def test_the_second_phase_stream_takes_its_own_text_column_rate(table, tmp_path):
    """train.partial_text_column_dropout = 0: the second phase's copies that kept their text keep
    every text column, while the main fit's copies (text_column_dropout 0.7) lose some."""
    from types import SimpleNamespace

    from training.fit.trainer import _partial_stream

    path, _ = table
    cfg = tiny_config(path, tmp_path / "models", partial_epochs=1, partial_copies=3, text_column_dropout=0.7)
    train = load_table(cfg).part("train")
    train = train[(train["title"] != "") & (train["description"] != "")]
    model = SimpleNamespace(input={c: None for c in cfg.feature_columns() if c != "image"})

    def text_kept(cfg):
        ds, _steps, _copies = _partial_stream(cfg, model, train, (tmp_path, None, 10_000))
        x = next(iter(ds))[0]
        title, description = x["title"].numpy() != b"", x["description"].numpy() != b""
        with_text = title | description
        return (title & description)[with_text].mean()

    assert text_kept(cfg) < 0.8  # the main fit's rate: many copies lost a column
    cfg.train.partial_text_column_dropout = 0.0
    assert text_kept(cfg) == 1.0


def test_a_scaled_batch_grows_with_the_copies_so_a_step_keeps_its_complete_rows(table, tmp_path):
    """train.input_dropout_batch = "scaled": the full model's batch grows by the stream's copies
    (about train.batch_size complete rows per step, the steps of an epoch as without dropout);
    "fixed", or a stream without copies (an ablation), keeps train.batch_size."""
    from training.fit.trainer import batch_size, expected_copies

    path, _ = table
    cfg = tiny_config(path, tmp_path / "models")
    cfg.train.batch_size, cfg.train.input_dropout_copies = 32, 2
    train = load_table(cfg).part("train")
    cols = [c for c in cfg.feature_columns() if c != "image"]
    examples = len(train) + 2 * expected_copies(cfg, train, 0.3, cols)
    assert batch_size(cfg, examples, len(train)) == 32  # fixed, the default
    cfg.train.input_dropout_batch = "scaled"
    scaled = batch_size(cfg, examples, len(train))
    assert scaled == round(32 * examples / len(train)) and 32 < scaled < 3 * 32
    assert abs(examples / scaled - len(train) / 32) < 1  # as many steps as without the copies
    assert batch_size(cfg, len(train), len(train)) == 32  # no copies: an ablation keeps its batch
