"""GET /: the sellers' page, a plain HTML form built from the served model's inputs."""

from __future__ import annotations

import secrets
from functools import lru_cache
from html import escape
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from service.api.deps import ServiceDep
from service.images import ACCEPTED_MEDIA_TYPES
from service.schemas.inputs import InputSpec
from service.schemas.request import ModelSchema

router = APIRouter(tags=["page"])

SELECT_MAX_OPTIONS = 300  # above this a categorical gets a text box with suggestions


@lru_cache
def _template() -> str:
    return (Path(__file__).resolve().parent.parent / "page.html").read_text(encoding="utf-8")


def _label(name: str) -> str:
    return name.replace("_", " ").replace("-", " ").strip().capitalize()


def _field_html(spec: InputSpec, schema: ModelSchema) -> str:
    name = escape(spec.name, quote=True)
    ident = f"field-{name}"
    label = f'<label for="{ident}">{escape(_label(spec.name))}</label>'
    if spec.role == "categorical":
        example = spec.example()
        if spec.vocabulary and len(spec.vocabulary) <= SELECT_MAX_OPTIONS:
            options = "".join(
                f'<option value="{escape(v, quote=True)}"{" selected" if v == example else ""}>{escape(v)}</option>'
                for v in spec.vocabulary
            )
            control = f'<select id="{ident}" name="{name}">{options}</select>'
        else:
            listing = "".join(f'<option value="{escape(v, quote=True)}">' for v in spec.vocabulary)
            control = (
                f'<input id="{ident}" name="{name}" list="{ident}-list" '
                f'value="{escape(str(example), quote=True)}" '
                f'maxlength="{schema.limits.max_category_chars}">'
                f'<datalist id="{ident}-list">{listing}</datalist>'
            )
        return f'<div class="field">{label}{control}</div>'
    if spec.role == "numeric":
        bounds = spec.accepted_range
        limits = f' min="{bounds[0]:g}" max="{bounds[1]:g}"' if bounds else ""
        hint = (
            f'<span class="hint">usually {spec.minimum:g} to {spec.maximum:g}</span>'
            if spec.minimum is not None and spec.maximum is not None
            else ""
        )
        value = spec.example()
        return (
            f'<div class="field">{label}<input id="{ident}" name="{name}" type="number" '
            f'step="any"{limits} value="{float(value):g}" required>{hint}</div>'
        )
    if spec.role == "text":
        rows = 4 if "desc" in spec.name.lower() else 2
        return (
            f'<div class="field wide">{label}<textarea id="{ident}" name="{name}" rows="{rows}" '
            f'maxlength="{schema.limits.max_text_chars}">{escape(str(spec.example()))}'
            "</textarea></div>"
        )
    accept = ",".join(ACCEPTED_MEDIA_TYPES)
    return (
        f'<div class="field wide">{label}<div class="photo">'
        f'<input id="{ident}" name="{name}" type="file" accept="{accept}" required>'
        f'<img id="preview-{name}" alt="preview of the chosen photo" hidden></div></div>'
    )


def render_page(schema: ModelSchema, version: int, auth_required: bool) -> tuple[str, str]:
    """The page's HTML and the nonce its inline style and script carry."""
    nonce = secrets.token_urlsafe(16)
    fields = "\n".join(_field_html(spec, schema) for spec in schema.inputs)
    key_field = (
        '<div class="field key"><label for="api-key">API key</label>'
        '<input id="api-key" type="password" autocomplete="off"></div>'
        if auth_required
        else ""
    )
    html = (
        _template()
        .replace("__FIELDS__", fields)
        .replace("__KEY_FIELD__", key_field)
        .replace("__CURRENCY__", escape(schema.currency))
        .replace("__VERSION__", escape(str(version)))
        .replace("__NONCE__", nonce)
    )
    return html, nonce


@router.get("/", response_class=HTMLResponse, summary="The sellers' page", include_in_schema=True)
async def page(service: ServiceDep) -> HTMLResponse:
    model = service.registry.current
    if model is None:
        return HTMLResponse(
            "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=5>"
            "<title>Price suggestion</title><p>The model is loading; this page refreshes "
            "itself.</p>",
            status_code=503,
        )
    html, nonce = render_page(model.schema, model.version, service.settings.api_key is not None)
    csp = (
        "default-src 'none'; img-src 'self' blob: data:; connect-src 'self'; "
        f"style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": csp, "Cache-Control": "no-store"})
