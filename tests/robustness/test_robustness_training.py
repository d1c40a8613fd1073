"""Training faults: an export killed mid-write never leaves a version the service would load, and
bad data given to the training CLI stops it with exit 2 and one line naming the problem, or is
skipped with a count when train.bad_rows = "skip". (A run killed mid-epoch and resumed with
--resume: tests/integration/test_resume.py.)"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from harness.models import train_args
from harness.server import child_env
from service.metrics import Metrics
from service.registry import ModelRegistry, list_versions
from service.settings import Settings
from tests.support.cli import only_line, run_module

CHILD = "tests.support.export_child"
ENV = child_env({"TF_CPP_MIN_LOG_LEVEL": "3"})


def kill_export(stage: str, models: Path, seed: int = 0) -> str:
    """Start an export in a child process and SIGKILL it at ``stage``; returns what it printed."""
    child = subprocess.Popen(
        [sys.executable, "-m", CHILD, stage, str(models)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdout is not None
    seen = []
    deadline = time.monotonic() + 180
    try:
        for line in child.stdout:
            seen.append(line.strip())
            if line.startswith("READY"):
                break
            if line.startswith("EXPORT_START"):
                time.sleep(random.Random(seed).uniform(0.0, 1.5))
                break
            assert time.monotonic() < deadline, "the child never reached its stage"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    return " | ".join(seen)


def registry_for(models: Path) -> ModelRegistry:
    settings = Settings(model_dir=models, reload_interval_s=0, warmup_runs=1, api_key=None)
    return ModelRegistry(settings, Metrics())


@pytest.mark.slow
def test_an_export_killed_mid_write_never_leaves_a_loadable_version(tmp_path) -> None:
    # model_card.json half written (the SavedModel whole), and a kill at a random moment; the
    # export_child can also stop with the SavedModel half written, or all written but not renamed.
    stages = ["card", "random"]
    roots = [tmp_path / f"{i}-{stage}" for i, stage in enumerate(stages)]
    with ThreadPoolExecutor(2) as pool:  # two at a time: each child imports TensorFlow
        printed = list(pool.map(kill_export, stages, roots, range(len(stages))))
    for stage, root, output in zip(stages, roots, printed, strict=True):
        folder = root / "killed"
        leftovers = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
        versions = list_versions(folder)
        if stage != "random":
            assert f"READY {stage}" in output
            assert versions == [] and leftovers and all(n.startswith(".tmp-1-") for n in leftovers), leftovers
        registry = registry_for(folder)
        loaded = registry.poll_once()  # what the service would do with this folder
        if versions:  # a random kill that came after the rename: the version is whole
            assert stage == "random" and loaded is not None and loaded.version == versions[0]
        else:
            assert loaded is None and registry.current is None, (stage, leftovers)

    # A later export into a folder with leftovers takes version 1, and that one serves.
    from tests.support.export_child import contract_model, export_card
    from training.export.exporter import export

    folder = roots[0] / "killed"
    export(SimpleNamespace(models_dir=str(roots[0]), name="killed"), contract_model(), export_card())
    assert list_versions(folder) == [1] and any(p.name.startswith(".tmp-1-") for p in folder.iterdir())
    model = registry_for(folder).poll_once()
    assert model is not None and model.version == 1
    assert model.predict([{"x": 3.0}]).shape == (1,)


# ------------------------------------------------------------------ bad data through the CLI


def cli_args(table: Path, workdir: Path, *sets: str) -> list[str]:
    overrides = [f"data.table={str(table)!r}", f"models_dir={str(workdir / 'models')!r}", "name='faulty'",
                 "model.image_size=16", "model.image_filters=[4]", "model.text_max_tokens=500", "train.epochs=1",
                 "train.batch_size=32", "train.ablations='none'", "train.baselines=false", *sets]  # fmt: skip
    return ["train", *train_args(overrides)]


def spoiled_copy(tiny_dataset: Path, folder: Path, spoil, rows: int | None = None) -> Path:
    """A copy of the tiny table (image paths made absolute, the first ``rows``) with ``spoil``."""
    folder.mkdir(parents=True)
    df = pd.read_csv(tiny_dataset).head(rows)
    df["image"] = [str(tiny_dataset.parent / p) for p in df["image"]]
    path = folder / "items.csv"
    result = spoil(df)
    if isinstance(result, bytes):
        path.write_bytes(result)
    else:
        result.to_csv(path, index=False)
    return path


def _non_numeric_prices(df: pd.DataFrame, rows: int) -> pd.DataFrame:
    df["price"] = df["price"].astype(object)
    df.loc[: rows - 1, "price"] = ["free", "n/a", "12,50 EUR", "", "call me"][:rows] * (rows // 5 + 1)
    return df


BAD_TABLES = [
    ("missing columns", lambda df: df.drop(columns=["brand", "title"]), [], "error: data: column(s) brand, title not in items.csv"),
    ("non-numeric prices", lambda df: df.assign(price="twenty euros"), [], "error: data: no usable rows left in items.csv"),
    ("some non-numeric prices", lambda df: _non_numeric_prices(df, 3), ["train.bad_rows='fail'"],
     "error: data: 3 bad row(s) in items.csv (3 bad target); set train.bad_rows = \"skip\" to drop them"),
    ("missing image files", lambda df: df.assign(image=[f"/nonexistent/{i}.jpg" if i < 4 else p for i, p in enumerate(df["image"])]),
     ["train.bad_rows='fail'"], "error: data: 4 photo file(s) in items.csv are missing or do not open"),
    ("empty table", lambda df: df.head(0), [], "error: data: table"),
    ("zero-byte file", lambda df: b"", [], "error: data: cannot read"),
    ("non-numeric feature", lambda df: df.assign(age_months=["old"] * len(df)), [],
     "error: data: numeric column age_months has non-numeric values, e.g. 'old'"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "spoil", "sets", "message"), BAD_TABLES, ids=[c[0] for c in BAD_TABLES])
def test_bad_data_stops_the_cli_with_exit_2_and_one_line(
    tiny_dataset, tmp_path, monkeypatch, capsys, name, spoil, sets, message
) -> None:
    """`python -m training train` (its main(), in this process: TensorFlow is loaded once)."""
    from training.__main__ import main

    monkeypatch.chdir(tmp_path)
    table = spoiled_copy(tiny_dataset, tmp_path / "data", spoil)
    assert main(cli_args(table, tmp_path, *sets)) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(message), errors
    assert "Traceback" not in err and err.rstrip().endswith(errors[0])
    assert not (tmp_path / "models").exists()  # nothing exported


@pytest.mark.slow
def test_the_cli_process_exits_2_with_one_line_on_stderr(tiny_dataset, tmp_path) -> None:
    table = spoiled_copy(tiny_dataset, tmp_path / "data", lambda df: df.drop(columns=["price"]))
    result = run_module("training", *cli_args(table, tmp_path), cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert only_line(result.stderr).startswith("error: data: column(s) price not in items.csv")


def test_a_missing_table_is_one_line_on_stderr_in_a_newcomers_environment(tmp_path) -> None:
    config = tmp_path / "missing.toml"
    config.write_text(f'[data]\ntable = "{tmp_path / "nope.csv"}"\ncategorical = ["brand"]\n')
    result = run_module("training", "train", "--config", str(config), cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert only_line(result.stderr) == f"error: data: table {tmp_path / 'nope.csv'} does not exist"


@pytest.mark.slow
def test_bad_rows_are_skipped_and_bad_photos_left_out_when_the_config_says_so(
    tiny_dataset, tmp_path, monkeypatch, caplog
) -> None:
    from training.__main__ import main

    def spoil(df: pd.DataFrame) -> pd.DataFrame:
        df = _non_numeric_prices(df, 3)
        df.loc[3, "price"] = -5
        df.loc[4, "image"] = "/nonexistent/photo.jpg"
        (tmp_path / "broken.jpg").write_bytes(b"not a photo")
        df.loc[5, "image"] = str(tmp_path / "broken.jpg")
        return df

    monkeypatch.chdir(tmp_path)
    table = spoiled_copy(tiny_dataset, tmp_path / "data", spoil, rows=100)
    with caplog.at_level("INFO"):
        assert main(cli_args(table, tmp_path, "train.bad_rows='skip'")) == 0
    assert "event=rows_skipped count=4 reasons='4 bad target'" in caplog.text
    assert "event=photos_left_out count=2 reason=missing_or_unreadable" in caplog.text
    card = json.loads((tmp_path / "models" / "faulty" / "1" / "model_card.json").read_text())
    assert card["dataset"]["skipped_rows"] == {"bad_target": 4}
    assert card["dataset"]["photos_left_out"] == {"bad_photo": 2, "over_max_photos": 0}
    assert card["dataset"]["rows"] == 100 - 4  # the two rows whose photo is bad are kept, without it
