"""The evaluation, shown: a self-contained report.html (the printed summary is in summary.py).

The HTML report carries its plots (plots.py) as base64 PNGs, so the one file can be opened from a
model's version folder, mailed or attached to a ticket.
"""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np

from training.evaluation.checks import PHOTO_GAIN_ON_FIRST_TEXT, SUBSET_COVERAGE_TOLERANCE, SUBSET_MAX_RATIO
from training.evaluation.plots import (
    plot_any_subset,
    plot_by_category,
    plot_learning_curves,
    plot_pred_vs_true,
    plot_residuals,
    plot_rmsle_bars,
)
from training.evaluation.summary import METRICS, _f, _span, format_checks

# ----------------------------------------------------------------------------------------------
# HTML

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;
     color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}tr.model td{font-weight:600;background:#eef4fb}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:.8em;max-height:30em}
.nw{white-space:nowrap}.ok{color:#1e7d32}.bad{color:#b71c1c}.muted{color:#777;font-size:.9em}
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _img(b64: str | None, alt: str) -> str:
    if not b64:
        return f"<p class='muted'>({_e(alt)}: nothing to plot)</p>"
    return f"<img alt='{_e(alt)}' src='data:image/png;base64,{b64}'>"


def _figures_table(models: dict[str, Any], currency: str) -> str:
    cols = "".join(f"<th>{_e(label)}</th>" for _, label, _ in METRICS)
    rows = []
    for name, v in models.items():
        m = v.get("test")
        if not m:
            continue
        cells = "".join(f"<td>{_e(_f(m.get(key), spec))}</td>" for key, _, spec in METRICS)
        valid = (v.get("valid") or {}).get("rmsle")
        gap = v.get("vs_full")
        gap_cell = f"{gap['rmsle_delta']:+.4f}<br><span class='muted'>{_span(gap['ci95'])}</span>" if gap else ""
        detail = v.get("description", "")
        if v.get("params"):
            detail += " · " + ", ".join(f"{k}={_fmt_param(p)}" for k, p in v["params"].items())
        if v.get("weights"):  # late fusion: each separate model's share of the average
            detail += " · weights " + ", ".join(f"{k} {w:.3f}" for k, w in v["weights"].items())
        hist = v.get("history") or {}
        epochs = f"{len(hist['loss'])} (best {hist.get('best_epoch', '?')})" if hist.get("loss") else ""
        rows.append(
            f"<tr class='{_e(v.get('kind', ''))}'><td class='l'>{_e(name)}</td><td class='l'>{_e(v.get('kind', ''))}"
            f"</td>{cells}<td>{_e(_f(valid, '.4f'))}</td><td class='nw'>{gap_cell}</td><td>{_e(epochs)}</td><td class='l muted'>{_e(detail)}</td></tr>"
        )
    return (
        f"<table><tr><th class='l'>model</th><th class='l'>kind</th>{cols}<th>valid RMSLE</th>"
        f"<th>RMSLE - full's<br>(95% CI)</th><th>epochs</th><th class='l'>what</th></tr>{''.join(rows)}</table>"
        f"<p class='muted'>Test split, n = {_e(_first_n(models))}. MAE in {_e(currency)}; MAPE and MedAPE are "
        "fractions of the true price; &lt;=20% is the share of predictions within 20% of it.</p>"
    )


def _fmt_param(p: Any) -> str:
    return f"{p:.4g}" if isinstance(p, float) else str(p)


def _first_n(models: dict[str, Any]) -> Any:
    return next((v["test"].get("n") for v in models.values() if v.get("test")), "?")


def _category_table(by_cat: dict[str, Any], names: list[str]) -> str:
    rows = by_cat.get("rows") or []
    names = [n for n in names if rows and n in rows[0]]
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    body = "".join(
        f"<tr><td class='l'>{_e(r['value'])}</td><td>{r['n']}</td>"
        + "".join(f"<td>{_f(r[n], '.4f')}</td>" for n in names)
        + f"<td>{_f(r.get('full_medape'), '.3f')}</td></tr>"
        for r in rows
    )
    return (
        f"<table><tr><th class='l'>{_e(by_cat['column'])}</th><th>n</th>{head}<th>full MedAPE</th></tr>"
        f"{body}</table><p class='muted'>Test RMSLE per category.</p>"
    )


def _checks_html(checks: dict[str, Any]) -> str:
    items = []
    for line, ok in format_checks(checks):
        if ok is None:  # the run could not check it (e.g. an ablation not trained): neither pass nor fail
            items.append(f"<li class='muted'>&ndash; {_e(line)}</li>")
            continue
        items.append(f"<li class='{'ok' if ok else 'bad'}'>{'&#10003;' if ok else '&#10007;'} {_e(line)}</li>")
    return f"<ul>{''.join(items)}</ul>" if items else "<p class='muted'>(no ablations or baselines in this run)</p>"


def _range_html(entry: dict[str, Any] | None, currency: str) -> str:
    """The price range: its method, and per stored level the quantiles, test coverage and widths."""
    if not entry:
        return "<p class='muted'>(no price range in this evaluation)</p>"
    cal, test = entry["calibration"], entry["test"]
    rows = []
    for key, (q_low, q_high) in cal["quantiles"].items():
        t = test["levels"].get(key, {})
        cov, level = t.get("coverage"), float(key)
        ok = cov is not None and abs(cov - level) <= 0.05 + 1e-12
        default = " class='model'" if abs(level - cal["level"]) < 1e-9 else ""
        rows.append(
            f"<tr{default}><td>{_e(key)}</td><td>{q_low:+.4f}</td><td>{q_high:+.4f}</td>"
            f"<td>{np.exp(q_low):.3f} - {np.exp(q_high):.3f}</td>"
            f"<td class='{'ok' if ok else 'bad'}'>{_e(_f(cov, '.3f'))}</td>"
            f"<td>{_e(_f(t.get('below'), '.3f'))} / {_e(_f(t.get('above'), '.3f'))}</td>"
            f"<td>{_e(_f(t.get('median_relative_width'), '.3f'))}</td>"
            f"<td>{_e(_f(t.get('median_width'), ',.2f'))}</td></tr>"
        )
    note = (
        f" Too few calibration rows for the finite-sample guarantee at level(s) {_e(cal['too_few_rows_for'])}: "
        "the extreme residual stands in for an infinite bound."
        if cal.get("too_few_rows_for")
        else ""
    )
    return (
        f"<p>{_e(cal['method'])}</p><p class='muted'>Calibrated on {_e(cal.get('n'))} {_e(cal.get('calibration_split', 'valid'))}"
        f" rows, checked on {_e(test.get('n'))} test rows; the default level is {_e(cal['level'])} (bold).{note}</p>"
        "<table><tr><th>level</th><th>q_low</th><th>q_high</th><th>range / price</th><th>test coverage</th>"
        f"<th>below / above</th><th>median relative width</th><th>median width ({_e(currency)})</th></tr>"
        f"{''.join(rows)}</table><p class='muted'>Coverage: share of test prices inside the range (green: within "
        "0.05 of the level). Relative width: (high - low) / price, the same for every item as the range is "
        "multiplicative.</p>"
    )


def _any_subset_html(table: dict[str, Any] | None, calibration: dict[str, Any] | None) -> str:
    """The one model on every subset of its inputs beside each subset's dedicated model, and the
    range calibrated per subset: a chart and the table. "" without a table (old documents, `make
    evaluate`), so the section is left out."""
    rows = (table or {}).get("rows") or []
    if not rows:
        return ""
    level = float(table["level"])
    own = (calibration or {}).get("by_inputs") or {}
    body = []
    for r in rows:
        ratio, cov = r.get("ratio"), r.get("range_coverage")
        ratio_class = "muted" if ratio is None else "ok" if ratio <= SUBSET_MAX_RATIO + 1e-12 else "bad"
        cov_ok = cov is not None and abs(cov - level) <= SUBSET_COVERAGE_TOLERANCE + 1e-12
        entry = own.get(r["subset"])
        if entry is None:
            quantiles = "global"
        elif level in (entry.get("too_few_rows_for") or []):
            quantiles = "global (too few rows)"
        else:
            quantiles = "own"
        full = " class='model'" if r.get("ablation") == "full" else ""
        body.append(
            f"<tr{full}><td class='l'>{_e(r['subset'])}</td><td>{_e(_f(r.get('rmsle'), '.4f'))}</td>"
            f"<td class='l'>{_e(r.get('ablation') or 'not trained')}</td>"
            f"<td>{_e(_f(r.get('ablation_rmsle'), '.4f'))}</td>"
            f"<td class='{ratio_class}'>{_e(_f(ratio, '.3f') if ratio is not None else 'not checked')}</td>"
            f"<td class='{'ok' if cov_ok else 'bad'}'>{_e(_f(cov, '.3f'))}</td>"
            f"<td>{_e(_f(r.get('range_median_relative_width'), '.3f'))}</td>"
            f"<td>{_e(r.get('calibration_rows', ''))}</td><td class='l'>{_e(quantiles)}</td>"
            f"<td>{_e(r.get('n', ''))}</td></tr>"
        )
    low, high = level - SUBSET_COVERAGE_TOLERANCE, level + SUBSET_COVERAGE_TOLERANCE
    return (
        "<h2>Any subset of the inputs</h2>"
        f"<p>Each row prices the test listings with the one full model given only that subset of its inputs "
        "(the other groups removed, as a request that leaves them out), beside the model trained on that "
        f"subset alone, and checks the {level:.0%} range calibrated for that subset: the one model should be "
        f"within {SUBSET_MAX_RATIO - 1:.0%} of the dedicated model (ratio at most {SUBSET_MAX_RATIO:.2f}) and "
        f"the range should cover between {low:.2f} and {high:.2f} of test prices.</p>"
        + _img(plot_any_subset(table, SUBSET_MAX_RATIO, SUBSET_COVERAGE_TOLERANCE), "any subset of the inputs")
        + "<table><tr><th class='l'>subset given</th><th>one model RMSLE</th><th class='l'>dedicated model</th>"
        "<th>its RMSLE</th><th>ratio</th><th>range coverage</th><th>median relative width</th>"
        "<th>calibration rows</th><th class='l'>quantiles</th><th>test n</th></tr>"
        f"{''.join(body)}</table>"
        "<p class='muted'>Test split. Ratio: the one model's RMSLE over the dedicated model's (green: at most "
        f'{SUBSET_MAX_RATIO:.2f}; "not checked": that ablation was not trained, train.ablations = "all" '
        "trains one per subset). Coverage: share of test prices inside the subset's range (green: within "
        f"{SUBSET_COVERAGE_TOLERANCE:.2f} of the level). Quantiles: the subset's own, calibrated on the validation "
        "rows that give exactly that subset, or the global range's when it has too few of them.</p>"
        + _first_text_column_html(table.get("first_text_column"))
    )


def _first_text_column_html(first: dict[str, Any] | None) -> str:
    """What the photo adds to a thin listing: its first text column alone, without and with the photo."""
    if not first:
        return ""
    gain, col = float(first["gain"]), _e(first["column"])
    ok = gain >= PHOTO_GAIN_ON_FIRST_TEXT
    return (
        f"<p>Given only its {col} (the other text columns and the metadata removed), the one model scores "
        f"{_e(_f(first['alone']['rmsle'], '.4f'))} test RMSLE without the photo and "
        f"{_e(_f(first['with_photo']['rmsle'], '.4f'))} with it: the photo makes it "
        f"<span class='{'ok' if ok else 'bad'}'>{gain:.1%} better</span> (the check asks for at least "
        f"{PHOTO_GAIN_ON_FIRST_TEXT:.0%}; {_e(first['alone']['n'])} test listings with a {col}).{_first_text_range(first)}</p>"
    )


def _first_text_range(first: dict[str, Any]) -> str:
    """The coverage of the range such a listing gets (its own `|first_text_only` quantiles)."""
    cov = [first[key].get("range_coverage") for key in ("alone", "with_photo")]
    if any(c is None for c in cov):
        return ""
    return (
        f" Its range, calibrated on valid listings with the same text removed, covers {cov[0]:.1%} of their "
        f"test prices without the photo and {cov[1]:.1%} with it."
    )


def _comparables_html(
    entry: dict[str, Any] | None, y_true: np.ndarray, preds: dict[str, np.ndarray], currency: str
) -> str:
    """The comparables as evidence: how relevant, how close their median, and a few examples."""
    if not entry:
        return ""
    rel = entry.get("relevance")
    rel_text = (
        f" {rel['share_same']:.0%} of the top {entry['k']} share the test listing's <b>{_e(rel['column'])}</b> "
        f"(the nearest one: {rel['share_top1_same']:.0%})."
        if rel
        else ""
    )
    stored = f"{entry['stored']:,}"
    parts = [
        "<h2>Comparables (the evidence beside each price)</h2>",
        f"<p>The {_e(entry['k'])} nearest of {_e(stored)} train and valid listings in the model's "
        f"embedding ({_e(', '.join(entry.get('dimensions', [])))}; {_e(entry['search'])} search). Their "
        f"similarity-weighted median price scores {entry['test']['rmsle']:.4f} test RMSLE.{rel_text}</p>",
        _img(
            plot_pred_vs_true(y_true, {"full": preds["full"], "comparables": preds["comparables"]}, currency)
            if "comparables" in preds
            else None,
            "comparables' median vs true price",
        ),
    ]
    for ex in entry.get("examples") or []:
        keys = [k for k in ex["listing"] if k not in ("id", "price")]
        head = "".join(f"<th class='l'>{_e(k)}</th>" for k in keys)
        first = ex["listing"]
        rows = [
            f"<tr class='model'><td class='l'>{_e(first['id'])} (test)</td>"
            + "".join(f"<td class='l'>{_e(first.get(k))}</td>" for k in keys)
            + f"<td>{first['price']:,.2f}</td><td></td></tr>"
        ]
        for c in ex["comparables"]:
            rows.append(
                f"<tr><td class='l'>{_e(c['id'])}</td>"
                + "".join(f"<td class='l'>{_e(c.get(k))}</td>" for k in keys)
                + f"<td>{c['price']:,.2f}</td><td>{c['similarity']:.3f}</td></tr>"
            )
        parts.append(
            f"<table><tr><th class='l'>listing</th>{head}<th>price ({_e(currency)})</th><th>similarity</th></tr>"
            f"{''.join(rows)}</table>"
        )
    return "".join(parts)


def _grids_html(models: dict[str, Any]) -> str:
    parts = []
    for name, v in models.items():
        grid = v.get("grid")
        if not grid:
            continue
        keys = list(grid[0])
        head = "".join(f"<th>{_e(k)}</th>" for k in keys)
        body = "".join("<tr>" + "".join(f"<td>{_e(_fmt_param(g.get(k)))}</td>" for k in keys) + "</tr>" for g in grid)
        parts.append(f"<h3>{_e(name)}</h3><table><tr>{head}</tr>{body}</table>")
    if not parts:
        return ""
    return "<h2>Baseline hyperparameters (chosen on the validation split)</h2>" + "".join(parts)


def render_html(doc: dict[str, Any], y_true: np.ndarray, preds: dict[str, np.ndarray]) -> str:
    """The whole report as one HTML string, plots embedded.

    Args:
        doc: the evaluation document (what evaluation.json holds).
        y_true: true prices of the test rows.
        preds: log-price predictions on those rows, per model name ("full" first).
    """
    models = doc["models"]
    currency = doc.get("currency", "")
    baselines = {k: v["test"]["rmsle"] for k, v in models.items() if v.get("kind") == "baseline" and k in preds}
    best_baseline = min(baselines, key=baselines.__getitem__) if baselines else None
    scatter = {"full": preds["full"], **({best_baseline: preds[best_baseline]} if best_baseline else {})}
    compare = ["full", *([best_baseline] if best_baseline else [])]
    singles = [k for k, v in models.items() if v.get("kind") in ("ablation", "late-fusion") and k in preds]
    by_cat = doc.get("by_category")
    title = f"{doc.get('name', 'model')}: evaluation"
    model_info = doc.get("model") or {}
    where = (
        f"exported model <code>{_e(model_info.get('path'))}</code>, scored again on "
        if doc.get("source") == "evaluate"
        else "training run <code>" + _e(doc.get("run", "")) + "</code> on "
    )
    ds = doc.get("dataset", {})
    sections = [
        f"<h1>{_e(title)}</h1>",
        (
            f"<p>{where}<code>{_e(ds.get('table', ''))}</code> ({_e(ds.get('rows', '?'))} rows; "
            f"splits {_e(json.dumps(ds.get('splits', {})))}), created {_e(doc.get('created', ''))}. "
            f"Target <b>{_e(doc.get('target', ''))}</b> in {_e(currency)}.</p>"
        ),
        "<h2>Verdict</h2>",
        _checks_html(doc.get("checks") or {}),
        "<h2>All figures (test split)</h2>",
        _figures_table(models, currency),
        "<h2>Test RMSLE by model</h2>",
        _img(plot_rmsle_bars(models), "test RMSLE by model"),
        (
            "<p class='muted'>Whiskers: the 95% bootstrap interval of each model's test RMSLE. All models are "
            "scored on the same rows, so the gap between two of them is judged by the paired interval (the "
            "verdict above, and the table's \"RMSLE - full's\" column), which is much narrower.</p>"
        ),
        "<h2>Predicted vs. true price</h2>",
        _img(plot_pred_vs_true(y_true, scatter, currency), "predicted vs true"),
        "<h2>Residuals</h2>",
        _img(plot_residuals(y_true, preds["full"], currency), "residuals"),
        "<h2>Price range (calibrated)</h2>",
        _range_html(models.get("full", {}).get("interval"), currency),
        _any_subset_html(doc.get("any_subset"), (models.get("full", {}).get("interval") or {}).get("calibration")),
        _comparables_html(models.get("comparables"), y_true, preds, currency),
    ]
    if by_cat:
        sections += [
            f"<h2>Error by {_e(by_cat['column'])}</h2>",
            _img(plot_by_category(by_cat, compare), "error by category"),
            _category_table(by_cat, [*compare, *singles]),
        ]
    sections += [
        "<h2>Learning curves</h2>",
        _img(plot_learning_curves(models), "learning curves"),
        "<p class='muted'>The star marks the epoch whose weights were kept (best validation RMSLE).</p>",
    ]
    sections.append(_grids_html(models))
    sections += ["<h2>Data set fingerprint</h2>", f"<pre>{_e(json.dumps(ds, indent=2, default=str))}</pre>"]
    if model_info:
        sections += ["<h2>Model</h2>", f"<pre>{_e(json.dumps(model_info, indent=2, default=str))}</pre>"]
    sections += [
        f"<h2>Config</h2><p class='muted'>{_e(doc.get('config_file', ''))}</p>",
        f"<pre>{_e(json.dumps(doc.get('config', {}), indent=2, default=str))}</pre>",
    ]
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{CSS}</style></head><body>{''.join(sections)}</body></html>\n"
    )
