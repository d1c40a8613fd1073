"""common/card.py: the model card that the exporter writes and the service reads.

`model_card_before_common.json` is a card written by the exporter before common/card.py existed
(the tiny model of tests/conftest.py, trained and exported by that code; only its temporary paths
were shortened): every card already in a models/ folder looks like it, and must keep loading.
"""

from __future__ import annotations

import ast
import copy
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from common import card_doc
from common.card import ModelCard, NumericInput, ServableCard, describe_errors

ROOT = Path(__file__).resolve().parents[2]
BEFORE_COMMON = Path(__file__).with_name("model_card_before_common.json")
NEWER_BLOCKS = ("interval", "explain", "training", "report", "evaluation")


@pytest.fixture
def today() -> dict[str, Any]:
    return json.loads(BEFORE_COMMON.read_text())


def first_format(card: dict[str, Any]) -> dict[str, Any]:
    """The card as the contract first described it: no range, contributions or training block."""
    old = {k: v for k, v in copy.deepcopy(card).items() if k not in NEWER_BLOCKS}
    for entry in old["inputs"]:
        for key in ("accepts", "vocabulary_size", "std", "dtype"):
            entry.pop(key, None)
    return old


def test_a_card_written_before_common_card_loads_whole_and_writes_back_the_same(today) -> None:
    card, dropped = ServableCard.read(today)
    assert dropped == {} and card.undeclared() == []
    assert [i.role for i in card.inputs] == ["categorical"] * 5 + ["numeric", "text", "text", "image"]
    assert card.interval is not None and card.interval.stored_level(0.8) == 0.8
    assert card.explain is not None and set(card.explain.baseline) == {i.name for i in card.inputs}
    assert json.loads(card.to_json()) == today


def test_the_first_card_format_still_loads_without_the_newer_blocks(today) -> None:
    card, dropped = ServableCard.read(first_format(today))
    assert dropped == {} and card.interval is None and card.explain is None and card.training is None
    assert card.inputs[5].dtype == "float32" and card.inputs[0].dtype == "string"  # defaults by role


def test_unknown_keys_are_kept_and_named_but_not_refused(today) -> None:
    newer = copy.deepcopy(today)
    newer["provenance"] = {"source": "feature-store"}
    newer["inputs"][0]["missing"] = "allowed"
    newer["interval"]["calibrated_on"] = "valid"
    card, dropped = ServableCard.read(newer)
    assert dropped == {}
    assert card.undeclared() == ["provenance", "inputs[0].missing", "interval.calibrated_on"]
    assert json.loads(card.to_json()) == newer  # round-tripped, not lost


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (
            lambda c: c["inputs"][2].update(role="colour"),
            "inputs[2] 'condition': Input tag 'colour' found using 'role'",
        ),
        (lambda c: c["inputs"][5].update(min=500.0), "inputs[5] 'age_months': min > max"),
        (lambda c: c["inputs"][5].update(dtype="string"), "inputs[5] 'age_months'.dtype: Input should be 'float32'"),
        (lambda c: c["inputs"][0].update(vocabulary=["a", 3]), "inputs[0] 'brand'.vocabulary[1]: Input should be"),
        (lambda c: c["inputs"][8].update(image_size=[32, 0]), "inputs[8] 'image'.image_size[1]: Input should be"),
        (lambda c: c["inputs"].append(dict(c["inputs"][0])), "inputs: input 'brand' is listed twice"),
        (lambda c: c.pop("currency"), "currency: Field required"),
        (lambda c: c.update(inputs=[]), "inputs: List should have at least 1 item"),
    ],
)
def test_what_the_service_cannot_work_around_refuses_the_card_naming_the_field(today, edit, reason) -> None:
    edit(today)
    with pytest.raises(ValidationError) as caught:
        ServableCard.read(today)
    assert reason in describe_errors(caught.value, today)


def test_examples_are_hints_entries_of_another_type_are_dropped(today) -> None:
    today["inputs"][5]["examples"] = [1.0, "two", True, None, 3]
    today["inputs"][0]["examples"] = None
    card, _ = ServableCard.read(today)
    assert isinstance(card.inputs[5], NumericInput) and card.inputs[5].examples == [1.0, 3.0]
    assert card.inputs[0].examples == []


@pytest.mark.parametrize(
    ("block", "edit", "reason"),
    [
        ("interval", lambda b: b["quantiles"].update({"0.8": [0.3, -0.3]}), "q_low <= q_high"),
        ("interval", lambda b: b.update(level=0.7), "the default level 0.7 has no quantiles"),
        ("interval", lambda b: b["quantiles"].update({"1.5": [0.0, 0.1]}), "less than 1"),
        ("explain", lambda b: b["baseline"].pop("brand"), "no baseline value for input 'brand'"),
        ("explain", lambda b: b["baseline"].update(image="not base64!"), "is not valid base64"),
        ("explain", lambda b: b["baseline"].update(title=3.0), "baseline of 'title' must be a string"),
    ],
)
def test_an_unusable_optional_block_is_dropped_with_its_reason(today, block, edit, reason) -> None:
    edit(today[block])
    card, dropped = ServableCard.read(today)
    assert list(dropped) == [block] and reason in dropped[block]
    assert getattr(card, block) is None
    assert card.interval is not None or card.explain is not None  # the other block stays


def test_a_card_need_not_be_servable_to_be_a_card() -> None:
    card = ModelCard.model_validate({"name": "x", "version": 1, "created": "2026-01-01T00:00:00Z", "inputs": []})
    assert card.signature == "serving_default" and card.output == "price"
    with pytest.raises(ValidationError):
        ServableCard.model_validate(card.model_dump())


def test_non_finite_metrics_are_written_as_null() -> None:
    card = ModelCard(name="x", version=1, created="t", metrics={"test": {"r2": float("nan")}})
    assert json.loads(card.to_json())["metrics"] == {"test": {"r2": None}}


def test_docs_contract_md_field_tables_are_generated_from_the_model() -> None:
    text = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
    assert card_doc.updated(text) == text, "docs/contract.md is stale: run python -m common.card --doc"
    for model, _ in card_doc.TABLES:
        for name in model.model_fields:
            assert f"| `{name}` |" in text


def _imports(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_service_training_and_common_keep_apart() -> None:
    assert "training" not in _imports(ROOT / "service")
    assert "service" not in _imports(ROOT / "training")
    assert not {"training", "service"} & _imports(ROOT / "common")
    code = "import json, sys, common.card, common.files, common.card_doc; print(json.dumps(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = json.loads(run.stdout)
    assert not [m for m in loaded if m.split(".")[0] in ("training", "service", "numpy", "tensorflow")]


def test_the_exporter_writes_through_the_model_and_refuses_undeclared_fields(today, tmp_path) -> None:
    from training.config import UserError
    from training.export import exporter

    body = {k: v for k, v in today.items() if k not in ("name", "version", "created")}
    card = exporter.card_for(SimpleNamespace(name="tiny"), body, version=3)
    assert json.loads(card.to_json()) == {**today, "version": 3, "created": card.created}
    with pytest.raises(UserError, match=r"does not declare: \['inputs\[0\]\.colour_hint'\]"):
        exporter.card_for(SimpleNamespace(name="tiny"), {**body, "inputs": [{**body["inputs"][0], "colour_hint": 1}]})
    with pytest.raises(UserError, match=r"the model card is invalid: currency: Input should be a valid string"):
        exporter.card_for(SimpleNamespace(name="tiny"), {**body, "currency": 3})

    (tmp_path / "model_card.json").write_text(json.dumps({**today, "from_the_future": 1}))
    exporter.update_card(tmp_path, report="report.html", last_evaluation={"test": {"rmsle": 0.3}})
    updated = json.loads((tmp_path / "model_card.json").read_text())
    assert updated["last_evaluation"] == {"test": {"rmsle": 0.3}} and updated["from_the_future"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["model_card.json"]
    with pytest.raises(UserError, match="does not declare"):
        exporter.update_card(tmp_path, typo_field=1)
