"""Loading and checking tables: bad rows are counted and skipped (or refused), errors name the problem."""

from __future__ import annotations

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


def test_bad_targets_and_images_are_counted_and_skipped(table, tmp_path):
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
    assert t.dropped == {"bad_target": 3, "bad_image": 2}
    assert len(t.frame) == len(df) - 5


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
