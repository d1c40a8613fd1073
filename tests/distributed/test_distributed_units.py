"""Fast checks of the distributed pieces: TF_CONFIG parsing, the strategy option, shards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.tiny import tiny_config
from training.config import UserError
from training.fit import distributed, launch


def test_cluster_shape_makes_worker_zero_chief_without_a_chief_task():
    cfg = {"cluster": {"worker": ["a:1", "b:2", "c:3"]}, "task": {"type": "worker", "index": 0}}
    assert distributed.cluster_shape(cfg) == ("worker", 0, 3, True)
    cfg["task"]["index"] = 2
    assert distributed.cluster_shape(cfg) == ("worker", 2, 3, False)


def test_cluster_shape_with_a_chief_task_counts_it_as_a_worker():
    cluster = {"chief": ["a:1"], "worker": ["b:2"]}
    assert distributed.cluster_shape({"cluster": cluster, "task": {"type": "chief", "index": 0}}) == (
        "chief",
        0,
        2,
        True,
    )
    assert distributed.cluster_shape({"cluster": cluster, "task": {"type": "worker", "index": 0}}) == (
        "worker",
        0,
        2,
        False,
    )


def test_multi_worker_without_tf_config_is_a_one_line_user_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UserError, match="needs TF_CONFIG"):
        distributed.cluster_shape(distributed.read_tf_config())
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(UserError, match="TF_CONFIG is not valid JSON"):
        distributed.read_tf_config()


def test_local_tf_configs_name_every_worker_on_loopback_with_its_own_index():
    configs = [json.loads(c) for c in launch.local_tf_configs(2, ports=[5001, 5002])]
    assert [c["task"] for c in configs] == [{"type": "worker", "index": 0}, {"type": "worker", "index": 1}]
    assert all(c["cluster"] == {"worker": ["127.0.0.1:5001", "127.0.0.1:5002"]} for c in configs)


def test_job_run_dir_is_the_same_for_every_task_of_one_cluster(monkeypatch):
    cluster = {"worker": ["127.0.0.1:5001", "127.0.0.1:5002"]}
    dirs = set()
    for i in range(2):
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
        dirs.add(distributed.job_run_dir("tiny"))
    assert len(dirs) == 1 and next(iter(dirs)).parent == Path("runs/tiny")


def test_a_restarted_worker_takes_over_its_scratch_folder_instead_of_leaking_one(tmp_path):
    """A killed worker's folder is emptied and reused by its restart; other runs and tasks get their own."""
    worker = distributed.Cluster(kind="multi-worker", task_type="worker", task_index=1, num_workers=3, is_chief=False)
    other = distributed.Cluster(kind="multi-worker", task_type="worker", task_index=2, num_workers=3, is_chief=False)
    made = [worker.scratch("full", tmp_path / "run-a")]
    try:
        (made[0] / "history.csv").write_text("epoch,loss\n0,1.0\n")  # what the killed process left
        made.append(worker.scratch("full", tmp_path / "run-a"))
        assert made[1] == made[0] and made[1].is_dir() and not any(made[1].iterdir())
        made += [
            worker.scratch("full", tmp_path / "run-b"),
            worker.scratch("no-image", tmp_path / "run-a"),
            other.scratch("full", tmp_path / "run-a"),
        ]
        assert len(set(made)) == 4
    finally:
        for path in made:
            distributed.remove(path)


def test_strategy_option_is_validated(tiny_dataset, tmp_path):
    assert tiny_config(tiny_dataset, tmp_path).train.strategy == "default"
    assert tiny_config(tiny_dataset, tmp_path, strategy="multi-worker").train.strategy == "multi-worker"
    with pytest.raises(UserError, match="train.strategy must be one of default, mirrored, multi-worker"):
        tiny_config(tiny_dataset, tmp_path, strategy="parameter-server")


def test_shards_hold_the_same_rows_targets_and_photos_as_the_table(tiny_dataset, tmp_path):
    from training.data.dataset import make_dataset
    from training.data.shards import load_table_for_shards, shard_dataset, write_shards

    cfg = tiny_config(tiny_dataset, tmp_path)
    manifest_path = write_shards(cfg, 3, tmp_path / "shards")
    manifest = json.loads(manifest_path.read_text())
    assert [len(manifest["splits"][s]["files"]) for s in ("train", "valid", "test")] == [3, 3, 3]
    assert len(list((tmp_path / "shards").glob("*.tfrecord"))) == 9
    cfg.data.shards = str(manifest_path)
    table, manifest, folder = load_table_for_shards(cfg)
    train = table.part("train")
    assert sum(manifest["splits"]["train"]["rows"]) == len(train)
    cols = [cfg.data.id, "brand", "age_months", "title", cfg.data.image]
    got = {}
    for x, y in shard_dataset(cfg, manifest, folder, "train", False, cols).unbatch():
        got[x[cfg.data.id].numpy().decode()] = (x, float(y))
    assert set(got) == set(train[cfg.data.id])
    frame = train.set_index(cfg.data.id)
    want = make_dataset(cfg, train, training=False, columns=[c for c in cols if c != cfg.data.id])
    for (x, y), row_id in zip(want.unbatch(), train[cfg.data.id], strict=True):
        sx, sy = got[row_id]
        assert sy == pytest.approx(float(y), abs=1e-6)
        assert sx["brand"].numpy().decode() == frame.loc[row_id, "brand"]
        np.testing.assert_array_equal(sx[cfg.data.image].numpy(), x[cfg.data.image].numpy())
        assert np.isnan(sx["age_months"].numpy()) == np.isnan(x["age_months"].numpy())


def test_stale_shards_are_refused(tiny_dataset, tmp_path):
    from training.data.shards import load_table_for_shards, write_shards

    cfg = tiny_config(tiny_dataset, tmp_path)
    cfg.data.shards = str(write_shards(cfg, 2, tmp_path / "shards"))
    cfg.train.max_rows = 100
    with pytest.raises(UserError, match="remake the shards"):
        load_table_for_shards(cfg)
