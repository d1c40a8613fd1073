"""The user's mistakes: `UserError` (one line on stderr, exit 2) and pydantic's errors said that way."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel
from pydantic.fields import FieldInfo


class UserError(Exception):
    """A problem with the user's config or data: reported as one line, exit code 2."""


TYPE_NAMES = {"int_type": "int", "float_type": "float", "bool_type": "bool", "string_type": "str"}


def _field(
    loc: tuple[int | str, ...], root: type[BaseModel], sections: dict[str, type[BaseModel]]
) -> tuple[type[BaseModel], FieldInfo | None]:
    """The model holding the last named key of `loc`, and that key's field (None if unknown)."""
    names = [p for p in loc if isinstance(p, str)]
    model = sections.get(names[0], root) if len(names) > 1 else root
    return model, model.model_fields.get(names[-1]) if names else None


def _where(loc: tuple[int | str, ...]) -> str:
    """("model", "image_filters", 0) -> model.image_filters[0]"""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _bounds(info: FieldInfo | None) -> str:
    """ "between 0 and 1", "positive" or "at least 1", from a field's constraints."""
    meta = info.metadata if info is not None else []
    b = {k: getattr(m, k) for m in meta for k in ("ge", "gt", "le", "lt") if hasattr(m, k)}
    lo, hi = b.get("ge", b.get("gt")), b.get("le", b.get("lt"))
    if lo is not None and hi is not None:
        return f"between {lo} and {hi}"
    return "positive" if b.get("gt") == 0 else f"at least {lo}" if lo is not None else f"at most {hi}"


def _choices(annotation: Any) -> list[str]:
    """The values of a Literal, also inside a container (list[Literal[...]], dict[Literal[...], float])."""
    args = get_args(annotation)
    if args and all(isinstance(a, str) for a in args):
        return list(args)
    return next((found for a in args if (found := _choices(a))), [])


def describe(err: dict[str, Any], root: type[BaseModel], sections: dict[str, type[BaseModel]]) -> str:
    """One pydantic error of validating `root` as a line that names the key and what is wrong with it."""
    kind, loc, value = err["type"], tuple(err["loc"]), err["input"]
    model, info = _field(loc, root, sections)
    if kind == "extra_forbidden":
        known = sorted(set(model.model_fields) - set(sections))
        return f"unknown key '{_where(loc)}' (known: {', '.join(known)})"
    if kind == "model_type":
        return f"[{_where(loc)}] must be a table"
    if kind == "value_error":  # a check across keys: its message names them
        return str(err["ctx"]["error"])
    if kind == "literal_error" and info is not None:
        return f"{_where(loc)} must be one of {', '.join(sorted(_choices(info.annotation)))}, got {value!r}"
    if kind == "list_type":
        return f"{_where(loc)} must be a list, got {type(value).__name__}"
    if kind in TYPE_NAMES:
        return f"{_where(loc)} must be {TYPE_NAMES[kind]}, got {type(value).__name__} {value!r}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{_where(loc)} must be {_bounds(info)}, got {value!r}"
    return f"{_where(loc)}: {err['msg']}"
