"""The field tables of docs/contract.md, generated from common/card.py.

python -m common.card --doc      rewrite the tables between the markers of docs/contract.md
python -m common.card --check    exit 1 if they are stale (tests/unit/test_card.py runs this)
python -m common.card --schema   print the card's JSON Schema
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from common import card as card_module

BEGIN = "<!-- BEGIN card fields: generated from common/card.py by `python -m common.card --doc`; do not edit -->"
END = "<!-- END card fields -->"
DOC = Path(__file__).resolve().parents[1] / "docs" / "contract.md"
TABLES: list[tuple[type[BaseModel], str]] = [
    (card_module.ModelCard, "the card"),
    (card_module.CategoricalInput, '`inputs[]` with `"role": "categorical"`'),
    (card_module.NumericInput, '`inputs[]` with `"role": "numeric"`'),
    (card_module.TextInput, '`inputs[]` with `"role": "text"`'),
    (card_module.ImageInput, '`inputs[]` with `"role": "image"`'),
    (card_module.Metrics, "`metrics`"),
    (card_module.SplitMetrics, "`metrics.test`"),
    (card_module.Interval, "`interval`"),
    (card_module.Explain, "`explain`"),
    (card_module.ComparablesIndex, "`comparables`"),
    (card_module.Thumbnails, "`comparables.thumbnails`"),
    (card_module.Training, "`training`"),
    (card_module.Dataset, "`dataset`"),
]


def _type(schema: dict[str, Any]) -> str:
    """A JSON Schema fragment in words: ``list of string``, ``Interval or null``, ``[integer, integer]``."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " or ".join(json.dumps(v) for v in schema["enum"])
    if "discriminator" in schema:
        return f"one of {', '.join(_type(s) for s in schema['oneOf'])} (by `{schema['discriminator']['propertyName']}`)"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(dict.fromkeys(_type(s) for s in schema[key]))
    kind = schema.get("type")
    if kind == "array" and "prefixItems" in schema:
        return "[" + ", ".join(_type(s) for s in schema["prefixItems"]) + "]"
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}" if schema.get("items") else "list"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {_type(schema['additionalProperties'])}"
    return str(kind or "any")


def _default(model: type[BaseModel], name: str) -> str:
    field = model.model_fields[name]
    if field.is_required():
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_unset=True)
    return f"`{json.dumps(value)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(model: type[BaseModel], title: str) -> str:
    schema = model.model_json_schema()
    lines = [f"#### {model.__name__}: {title}", "", _cell(" ".join((model.__doc__ or "").split())), ""]
    lines += ["| field | type | default | description |", "|---|---|---|---|"]
    for name, prop in schema["properties"].items():
        lines.append(
            f"| `{name}` | {_cell(_type(prop))} | {_default(model, name)} | {_cell(prop.get('description', ''))} |"
        )
    return "\n".join(lines)


def servable_note() -> str:
    base, served = card_module.ModelCard.model_fields, card_module.ServableCard.model_fields
    stricter = [n for n in served if repr(served[n]) != repr(base[n])]
    named = " and ".join(f"`{n}`" for n in stricter)
    return (
        f"The service serves a card only with {named} (`ServableCard`: a non-empty currency, at least "
        "one input). Every block also keeps the keys it does not declare (a newer exporter's); the "
        "service ignores them."
    )


def render() -> str:
    """The generated part, markers included."""
    parts = [BEGIN, "", servable_note(), ""]
    for model, title in TABLES:
        parts += [table(model, title), ""]
    return "\n".join([*parts, END])


def updated(text: str) -> str:
    """``text`` (docs/contract.md) with its generated part replaced. Raises ValueError without markers."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {BEGIN!r} ... {END!r} markers")
    return text[:start] + render() + text[end + len(END) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.card", description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--doc", action="store_true", help="rewrite the tables of docs/contract.md")
    group.add_argument("--check", action="store_true", help="exit 1 if docs/contract.md is stale")
    group.add_argument("--schema", action="store_true", help="print the card's JSON Schema")
    parser.add_argument("--path", type=Path, default=DOC, help="the document (default: docs/contract.md)")
    args = parser.parse_args(argv)
    if args.schema:
        print(json.dumps(card_module.ModelCard.model_json_schema(), indent=2))
        return 0
    text = args.path.read_text(encoding="utf-8")
    new = updated(text)
    if args.check:
        if new != text:
            print(f"{args.path} is stale: run python -m common.card --doc", file=sys.stderr)
            return 1
        return 0
    if new != text:
        from common.files import atomic_write_text

        atomic_write_text(args.path, new)
    return 0
