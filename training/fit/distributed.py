"""Distribution strategies, the cluster from `TF_CONFIG`, and a local launcher for N workers.

`setup(kind)` creates the strategy once, at program start (MultiWorkerMirroredStrategy has to
exist before TensorFlow runs its first op), and `current()` hands it to the trainer. The cluster
comes from the standard `TF_CONFIG` variable, so any launcher that sets it runs us: a TFJob
operator on Kubernetes, a cloud training service, or `python -m training launch` (plain processes
on this machine, restarted when they die, the way a cluster manager would).

The chief (task type `chief`, else worker 0) is the only task that writes the run's files and the
export; every worker computes the same preprocessing and wide (Ridge) solution deterministically
from the same table, and `fingerprint` lets the logs prove it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
STRATEGIES = ("default", "mirrored", "multi-worker")


@dataclass(frozen=True)
class Cluster:
    """The strategy in use and this process's place in the cluster."""

    kind: str = "default"
    strategy: Any = None
    task_type: str = "worker"
    task_index: int = 0
    num_workers: int = 1
    is_chief: bool = True

    @property
    def rank(self) -> int:
        """This worker's place among the training tasks (the chief task first, then the workers)."""
        has_chief = "chief" in read_tf_config().get("cluster", {})
        if self.task_type == "chief":
            return 0
        return self.task_index + (1 if has_chief else 0)

    @property
    def multi_worker(self) -> bool:
        return self.kind == "multi-worker" and self.num_workers > 1

    @property
    def label(self) -> str:
        return f"{self.task_type}-{self.task_index}"

    def scratch(self, name: str, run_dir: Path) -> Path:
        """An empty folder for a non-chief worker's own copies of files only the chief keeps.

        Its path depends only on the run, the model and the task, so a worker that was killed and
        restarted takes over (and first empties) its old folder instead of leaving it behind.
        """
        run = hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:12]
        path = Path(tempfile.gettempdir()) / f"price-scratch-{run}-{name}-{self.label}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path


def read_tf_config() -> dict[str, Any]:
    """The parsed `TF_CONFIG` (empty when unset)."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        from training.config import UserError

        raise UserError(f"TF_CONFIG is not valid JSON: {e}") from None


def cluster_shape(tf_config: dict[str, Any]) -> tuple[str, int, int, bool]:
    """(task type, task index, number of training tasks, is chief) from a parsed TF_CONFIG.

    The chief is the `chief` task if the cluster has one, else worker 0.
    """
    from training.config import UserError

    cluster = tf_config.get("cluster", {})
    task = tf_config.get("task", {})
    workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    if not workers or "type" not in task:
        raise UserError(
            "train.strategy = 'multi-worker' needs TF_CONFIG with a cluster and a task "
            '(e.g. {"cluster": {"worker": ["host1:port", ...]}, "task": {"type": "worker", "index": 0}})'
        )
    task_type, index = str(task["type"]), int(task.get("index", 0))
    chief = task_type == "chief" or ("chief" not in cluster and task_type == "worker" and index == 0)
    return task_type, index, workers, chief


_CURRENT: Cluster | None = None


def setup(kind: str) -> Cluster:
    """Create the strategy `kind` (once per process) and make it the current one."""
    global _CURRENT
    from training.config import UserError

    if kind not in STRATEGIES:
        raise UserError(f"train.strategy must be one of {', '.join(STRATEGIES)}, got {kind!r}")
    if _CURRENT is not None:
        if _CURRENT.kind != kind:
            raise UserError(f"strategy {_CURRENT.kind} is already set up in this process; cannot switch to {kind}")
        return _CURRENT
    import tensorflow as tf

    if kind == "default":
        cluster = Cluster("default", tf.distribute.get_strategy())
    elif kind == "mirrored":
        cluster = Cluster("mirrored", tf.distribute.MirroredStrategy())
    else:
        task_type, index, workers, chief = cluster_shape(read_tf_config())
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING
        )  # CPU: ring all-reduce
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        cluster = Cluster("multi-worker", strategy, task_type, index, workers, chief)
    if kind == "multi-worker":
        keras_multi_worker_fixes()
    _CURRENT = cluster
    level = logging.DEBUG if kind == "default" else logging.INFO  # one device: nothing worth a line
    log.log(
        level,
        "event=strategy kind=%s task=%s workers=%d replicas=%d chief=%s",
        kind,
        cluster.label,
        cluster.num_workers,
        cluster.strategy.num_replicas_in_sync,
        cluster.is_chief,
    )
    return cluster


_FIXED = False


def keras_multi_worker_fixes() -> None:
    """Two small fixes that Keras 3's `fit` needs under MultiWorkerMirroredStrategy (Keras 3.15).

    1. Before the first step Keras "symbolically builds" the model from one batch, which it first
       averages over the workers with `strategy.reduce("MEAN", batch)`: that fails on dict inputs
       (keras-team/keras#20329) and needlessly all-reduces a batch of strings. Only the shapes
       matter, so this process's own slice is used instead.
    2. Per-step metrics are averaged over workers with `strategy.reduce("MEAN", v, axis=0)`, which
       fails on scalars ("Invalid reduction dimension 0", tensorflow/tensorflow#72388, keras#20585):
       scalars are averaged with `axis=None`.
    Both only change what happens when the strategy is multi-worker.
    """
    global _FIXED
    if _FIXED:
        return
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as tf_trainer

    def local(v: Any) -> Any:
        return v.values[0] if isinstance(v, tf.distribute.DistributedValues) else v

    def multi_worker(strategy: Any) -> bool:
        return (
            isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode()
        )

    original_build = tf_trainer.TensorFlowTrainer._maybe_symbolic_build

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None or iterator is None or not multi_worker(self.distribute_strategy):
            return original_build(self, iterator=iterator, data_batch=data_batch)
        for _, _, it in iterator:
            data_batch = tree.map_structure(local, next(it))
            break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    original_reduce = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not multi_worker(strategy):
            return original_reduce(values, strategy, reduction)

        def one(v):
            rank = local(v).shape.rank
            return strategy.reduce("MEAN", v, axis=0 if rank else None)

        return tree.map_structure(one, values)

    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    tf_trainer.reduce_per_replica = reduce_per_replica
    _FIXED = True


def current() -> Cluster:
    """The strategy set up for this process (the default strategy if none was)."""
    if _CURRENT is None:
        import tensorflow as tf

        return Cluster("default", tf.distribute.get_strategy())
    return _CURRENT


def job_run_dir(name: str) -> Path:
    """`runs/<name>/job-<hash of the cluster>`: the same folder for every worker of one job, and
    for a worker restarted into it. Pass `--run-dir` to start a new job on the same addresses."""
    cluster = json.dumps(read_tf_config().get("cluster", {}), sort_keys=True)
    return Path("runs") / name / f"job-{hashlib.sha256(cluster.encode()).hexdigest()[:10]}"


def fingerprint(arrays: list[Any]) -> str:
    """A short hash of some weights, logged by every worker to show they start from the same model."""
    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------------------------
# a local launcher: N worker processes on 127.0.0.1, restarted when they fail


def remove(path: Path | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
