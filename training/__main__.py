"""Command line: `python -m training {train,predict,evaluate,shards,launch} ...` (the Makefile calls these).

A user's mistake (bad config, bad data, a missing model folder) is one `error: ...` line on stderr
and exit code 2; TensorFlow's native start-up lines are held back unless `--verbose` or
LOG_LEVEL=debug asks for them (common/quiet.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable

from common.quiet import import_tensorflow, verbose_requested

DEFAULT_CONFIG = "training/configs/synthetic.toml"


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s level=%(levelname)s %(name)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("absl", "tensorflow", "h5py", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # Keras warns on every fit over a tf.data pipeline that it ignores shuffle (ours shuffles itself)
    warnings.filterwarnings("ignore", message=r".*`shuffle=True` was passed", category=UserWarning)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training")
    p.add_argument("--verbose", action="store_true", help="debug logs and TensorFlow's native log lines")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train, evaluate and export a model")
    t.add_argument("--config", default=DEFAULT_CONFIG)
    t.add_argument("--resume", action="store_true", help="continue the newest unfinished run")
    t.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config key")
    t.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multi-worker"),
        help="distribution strategy (default: train.strategy); multi-worker reads TF_CONFIG",
    )
    t.add_argument(
        "--run-dir", help="run folder (multi-worker: shared by all workers; default runs/<name>/job-<cluster hash>)"
    )
    sh = sub.add_parser("shards", help="write the table and its photos as TFRecord shards + manifest.json")
    sh.add_argument("--config", default=DEFAULT_CONFIG)
    sh.add_argument("--shards", type=int, default=8, help="files per split")
    sh.add_argument("--out", help="output folder (default data/shards/<name>)")
    sh.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    la = sub.add_parser("launch", help="run `train` as N local multi-worker processes (TF_CONFIG set for each)")
    la.add_argument("--workers", type=int, default=2)
    la.add_argument("--max-restarts", type=int, default=3, help="restarts of failed workers, in all")
    la.add_argument("--log-dir", help="folder for worker-<i>.log (default: a temporary folder)")
    la.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then the arguments of `train`")
    pr = sub.add_parser("predict", help="predict every row of a table")
    pr.add_argument("--model", default="models/price", help="models/<name> (newest version) or a version folder")
    pr.add_argument("--input", required=True)
    pr.add_argument("--output", required=True)
    pr.add_argument(
        "--id-column",
        "--id",
        dest="id_column",
        default=None,
        help="id column copied to the output (default: the id column the model was trained with)",
    )
    ev = sub.add_parser("evaluate", help="score an exported model on a config's test split and write its report")
    ev.add_argument("--model", required=True)
    ev.add_argument("--config", default=DEFAULT_CONFIG)
    ev.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    return p


def _train(a: argparse.Namespace) -> int:
    from training.config import load

    cfg = load(a.config, a.set)  # a bad config stops here, before any model code is imported
    if a.strategy:
        cfg.train.strategy = a.strategy
    from training.evaluation.summary import print_summary
    from training.fit import distributed
    from training.pipeline import train_and_export

    distributed.setup(cfg.train.strategy)  # before TensorFlow runs anything else
    result = train_and_export(cfg, resume=a.resume, run_dir=a.run_dir)
    if result.get("path") is not None:
        print_summary(result)
    return 0


def _shards(a: argparse.Namespace) -> int:
    from training.config import load
    from training.data.shards import write_shards

    cfg = load(a.config, a.set)
    path = write_shards(cfg, a.shards, a.out or f"data/shards/{cfg.name}")
    print(f"wrote {path}; train from it with: --set data.shards={str(path.resolve())!r}")
    return 0


def _launch(a: argparse.Namespace) -> int:
    from training.fit.launch import launch

    args = a.train_args[1:] if a.train_args[:1] == ["--"] else a.train_args
    return launch(a.workers, args, max_restarts=a.max_restarts, log_dir=a.log_dir)


def _predict(a: argparse.Namespace) -> int:
    from training.predict import predict_table

    t0 = time.time()
    n = predict_table(a.model, a.input, a.output, id_column=a.id_column)
    print(f"wrote {n} predictions to {a.output} in {time.time() - t0:.1f}s")
    return 0


def _evaluate(a: argparse.Namespace) -> int:
    from training.config import load

    cfg = load(a.config, a.set)
    from training.evaluation.summary import print_summary
    from training.pipeline import evaluate_exported

    print_summary(evaluate_exported(a.model, cfg))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": _train,
    "shards": _shards,
    "launch": _launch,
    "predict": _predict,
    "evaluate": _evaluate,
}


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    verbose = a.verbose or verbose_requested([])
    setup_logging("DEBUG" if verbose else os.environ.get("LOG_LEVEL", "INFO"))
    import_tensorflow(verbose)
    from training.config import UserError

    try:
        return COMMANDS[a.cmd](a)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
