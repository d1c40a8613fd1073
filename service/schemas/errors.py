"""Client errors: a status and a list of ``{loc, msg, type}``, each naming the field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_REPORTED_ERRORS = 50  # an answer lists at most this many errors (a body can hold millions)


class InputError(Exception):
    """Bad client input: ``status`` (4xx) and a list of ``{loc, msg, type}`` errors."""

    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        self.status = status
        self.errors = errors
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        return "; ".join(f"{format_loc(e['loc'])}: {e['msg']}" for e in self.errors)

    @classmethod
    def single(cls, status: int, loc: Sequence[str | int], msg: str, kind: str) -> InputError:
        return cls(status, [{"loc": list(loc), "msg": msg, "type": kind}])


def format_loc(loc: Sequence[str | int]) -> str:
    """('items', 3, 'brand') -> 'items[3].brand'; an empty location is the body itself."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def worst_status(statuses: Sequence[int]) -> int:
    """One status for several errors: a size problem beats a type problem beats the rest."""
    for status in (413, 415):
        if status in statuses:
            return status
    return 422
