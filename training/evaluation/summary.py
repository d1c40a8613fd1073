"""The evaluation as text: the tables and the verdict lines that `make train` prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from training.evaluation.checks import COMPARABLES_MAX_RATIO, COMPARABLES_MIN_RELEVANCE
from training.evaluation.checks import checks as compute_checks

METRICS = (
    ("rmsle", "RMSLE", ".4f"),
    ("mae", "MAE", ",.2f"),
    ("mape", "MAPE", ".3f"),
    ("medape", "MedAPE", ".3f"),
    ("r2", "R2", ".3f"),
    ("within_20pct", "<=20%", ".3f"),
)


def format_table(evaluation: dict[str, Any]) -> str:
    """One line per model with a `test` entry: the test figures and the validation RMSLE."""
    head = f"{'model':<22}{'kind':<12}{'RMSLE':>8}{'MAE':>11}{'MAPE':>8}{'MedAPE':>8}{'R2':>7}{'<=20%':>7}{'valid':>8}"
    lines = [head, "-" * len(head)]
    for name, entry in evaluation.items():
        m = entry.get("test") if isinstance(entry, dict) else None
        if not m:
            continue
        v = (entry.get("valid") or {}).get("rmsle")
        lines.append(
            f"{name:<22}{entry.get('kind', ''):<12}{_f(m['rmsle'], '.4f'):>8}{_f(m['mae'], ',.2f'):>11}"
            f"{_f(m['mape'], '.3f'):>8}{_f(m['medape'], '.3f'):>8}{_f(m['r2'], '.3f'):>7}"
            f"{_f(m['within_20pct'], '.3f'):>7}{_f(v, '.4f'):>8}"
        )
    return "\n".join(lines)


def _span(ci: list[float]) -> str:
    """A 95% interval of an RMSLE gap as the report and the summary write it."""
    return f"{ci[0]:+.4f} to {ci[1]:+.4f}"


def format_any_subset(table: dict[str, Any] | None) -> str:
    """The any-subset table, one line per subset of the inputs: the one model's test RMSLE with the
    other groups removed, the dedicated model's, their ratio, and the per-subset range's test
    coverage and median relative width. "" without a table (an old document, `make evaluate`)."""
    rows = (table or {}).get("rows") or []
    if not rows:
        return ""
    head = (
        f"{'subset':<22}{'one model':>10}  {'dedicated model':<16}{'RMSLE':>8}{'ratio':>8}"
        f"{'coverage':>10}{'width':>8}{'n':>7}"
    )
    lines = [f"any subset of the inputs (test; the {table['level']:.0%} range calibrated per subset)", head]
    lines.append("-" * len(head))
    for r in rows:
        lines.append(
            f"{r['subset']:<22}{_f(r.get('rmsle'), '.4f'):>10}  {r.get('ablation') or 'not trained':<16}"
            f"{_f(r.get('ablation_rmsle'), '.4f'):>8}{_f(r.get('ratio'), '.3f'):>8}"
            f"{_f(r.get('range_coverage'), '.3f'):>10}{_f(r.get('range_median_relative_width'), '.3f'):>8}"
            f"{_f(r.get('n'), 'd'):>7}"
        )
    return "\n".join(lines)


def format_checks(checks: dict[str, Any]) -> list[tuple[str, bool | None]]:
    """The questions every run must answer, in words, each with whether the answer is good (None:
    the run could not check it, e.g. a subset whose dedicated model was not trained).

    A branch "helps" when the paired bootstrap interval of the RMSLE it saves lies wholly above zero,
    "hurts" when wholly below; otherwise the test split cannot tell the two models apart.
    """
    out = []
    full = checks.get("full_rmsle")
    if "best_baseline" in checks:
        b, r, ok = checks["best_baseline"], checks["best_baseline_rmsle"], bool(checks["beats_every_baseline"])
        verdict = "beats every baseline" if ok else "does NOT beat every baseline"
        gap = checks.get("best_baseline_margin_ci95")
        gap_text = f"; its margin, 95% CI {_span(gap)}" if gap else ""
        out.append(
            (
                f"full model {_f(full, '.4f')} {verdict} (best: {b} {_f(r, '.4f')}; full is {_pct(full, r)}{gap_text})",
                ok,
            )
        )
    if "best_single" in checks:
        ratio = checks["full_over_best_single"]
        text = (
            f"full / best single modality ({checks['best_single']} {_f(checks['best_single_rmsle'], '.4f')})"
            f" = {_f(ratio, '.3f')}"
        )
        out.append((text, ratio is not None and ratio < 1.0))
    for add in checks.get("modality_adds") or []:
        lo, hi = add["ci95"]
        verdict = "adds to" if lo > 0 else "HURTS" if hi < 0 else "makes no clear difference to"
        alone = add["to"].removesuffix("-only")
        out.append(
            (
                f"the {add['modality']} {verdict} the {alone} alone: test RMSLE {_f(add['rmsle_delta'], '+.4f')} "
                f"without it ({add['to']} vs {add['with']}; 95% CI {_span(add['ci95'])})",
                lo > 0,
            )
        )
    cis = checks.get("rmsle_increase_without_ci95") or {}
    for mod, delta in (checks.get("rmsle_increase_without") or {}).items():
        lo, hi = cis.get(mod) or (delta, delta)
        verdict = "helps" if lo > 0 else "HURTS" if hi < 0 else "makes no clear difference"
        ci_text = f" (95% CI {_span(cis[mod])})" if mod in cis else ""
        out.append((f"the {mod} branch {verdict}: test RMSLE {_f(delta, '+.4f')} without it{ci_text}", lo > 0))
    if "late_fusion_rmsle" in checks:
        out.append(_late_fusion_line(checks))
    out += _comparables_lines(checks)
    if "range_coverage" in checks:
        level, cov, ok = checks["range_level"], checks["range_coverage"], bool(checks["range_coverage_ok"])
        text = (
            f"the {level:.0%} price range covers {_f(cov, '.3f')} of test prices "
            f"({'within' if ok else 'OUTSIDE'} {level - 0.05:.2f}-{level + 0.05:.2f}); median width "
            f"{_f(checks.get('range_median_relative_width'), '.3f')} x the price"
        )
        out.append((text, ok))
    out += _any_subset_lines(checks)
    return out


def _any_subset_lines(checks: dict[str, Any]) -> list[tuple[str, bool | None]]:
    """Per subset of the inputs: the one model against the subset's dedicated model (the complete
    subset is the full model itself, so no line), then the subset's range coverage."""
    rows = checks.get("any_subset") or []
    if not rows:
        return []
    level, top = checks["any_subset_level"], checks["any_subset_max_ratio"]
    tol = checks.get("any_subset_coverage_tolerance", 0.05)
    out: list[tuple[str, bool | None]] = []
    for r in rows:
        if r["ratio_ok"] is None or r.get("ablation") == "full":
            continue
        within = f"within {top - 1:.0%} of" if r["ratio_ok"] else f"NOT within {top - 1:.0%} of"
        out.append(
            (
                f"the one model given only {r['subset']} is {within} its dedicated model: test RMSLE "
                f"{_f(r['rmsle'], '.4f')} vs {r['ablation']} {_f(r['ablation_rmsle'], '.4f')} "
                f"(ratio {_f(r['ratio'], '.3f')}, at most {top:.2f})",
                bool(r["ratio_ok"]),
            )
        )
    if "photo_gain_on_first_text_column" in checks:
        col, gain = checks["first_text_column"], checks["photo_gain_on_first_text_column"]
        ok = bool(checks["photo_gain_on_first_text_column_ok"])
        out.append(
            (
                f"given only its {col} (no other text, no metadata), a photo makes the one model "
                f"{gain:.1%} {'better' if gain >= 0 else 'worse'}: test RMSLE "
                f"{_f(checks['first_text_column_with_photo_rmsle'], '.4f')} vs "
                f"{_f(checks['first_text_column_rmsle'], '.4f')} "
                f"({'at least' if ok else 'LESS than'} {checks['photo_gain_on_first_text_column_min']:.0%})",
                ok,
            )
        )
    for key, entry in (checks.get("first_text_column_range") or {}).items():
        ok = bool(entry["ok"])
        given = f"only its {checks['first_text_column']}" + (" and a photo" if key == "with_photo" else "")
        out.append(
            (
                f"the {level:.0%} range given {given} covers {_f(entry['coverage'], '.3f')} of test prices "
                f"({'within' if ok else 'OUTSIDE'} {level - tol:.2f}-{level + tol:.2f})",
                ok,
            )
        )
    missing = checks.get("any_subset_not_checked") or []
    if missing:
        out.append(
            (
                f"not checked: the one model given only {', '.join(missing)} (no dedicated model trained; "
                'train.ablations = "all" trains one per subset)',
                None,
            )
        )
    for r in rows:
        ok = bool(r["range_coverage_ok"])
        given = "every input" if r.get("ablation") == "full" else f"only {r['subset']}"
        out.append(
            (
                f"the {level:.0%} range given {given} covers {_f(r['range_coverage'], '.3f')} of test prices "
                f"({'within' if ok else 'OUTSIDE'} {level - tol:.2f}-{level + tol:.2f}); median width "
                f"{_f(r.get('range_median_relative_width'), '.3f')} x the price",
                ok,
            )
        )
    return out


def _comparables_lines(checks: dict[str, Any]) -> list[tuple[str, bool]]:
    """The comparables as evidence: their weighted median against the model, and their relevance."""
    if "comparables_rmsle" not in checks:
        return []
    k, ratio = checks.get("comparables_k"), checks.get("comparables_over_full")
    close = bool(checks["comparables_close_to_full"])
    out = [
        (
            f"the {k} comparables' weighted median price scores {_f(checks['comparables_rmsle'], '.4f')} test RMSLE, "
            f"{_f(ratio, '.3f')} x the full model's ({'at most' if close else 'MORE than'} {COMPARABLES_MAX_RATIO:g})",
            close,
        )
    ]
    if "comparables_relevance" in checks:
        share, relevant = checks["comparables_relevance"], bool(checks["comparables_relevant"])
        out.append(
            (
                f"{share:.0%} of the top {k} comparables share the test listing's "
                f"{checks['comparables_relevance_column']} ({'at least' if relevant else 'FEWER than'} "
                f"{COMPARABLES_MIN_RELEVANCE:.0%})",
                relevant,
            )
        )
    return out


def _late_fusion_line(checks: dict[str, Any]) -> tuple[str, bool]:
    """The joint model against its single-modality models trained apart and averaged (late fusion).

    It "beats" them when the paired interval of their RMSLE minus the joint model's lies wholly above
    zero; "does NOT beat" them when wholly below (the average is better); otherwise "does not beat"
    them, the test split telling no clear difference.
    """
    weights = checks.get("late_fusion_weights") or {}
    margin, ci = checks["late_fusion_margin"], checks.get("late_fusion_margin_ci95")
    lo, hi = ci or (margin, margin)
    verdict = "beats" if lo > 0 else "does NOT beat" if hi < 0 else "does not beat"
    count = {2: "two", 3: "three"}.get(len(weights), str(len(weights)))
    mix = ", ".join(f"{k.removesuffix('-only')} {w:.2f}" for k, w in weights.items())
    tail = "; the average is better" if hi < 0 else "" if lo > 0 else "; no clear difference"
    ci_text = f" (95% CI {_span(ci)})" if ci else ""
    text = (
        f"the joint model {verdict} {count} separate models averaged: test RMSLE "
        f"{_f(checks.get('full_rmsle'), '.4f')} vs {_f(checks['late_fusion_rmsle'], '.4f')} (weights {mix}); "
        f"their gap to the joint model {_f(margin, '+.4f')}{ci_text}{tail}"
    )
    return text, lo > 0


def print_summary(result: dict[str, Any]) -> None:
    """What `make train` prints at the end: where the model went, every model's test figures, the
    any-subset table (from the exported evaluation.json, when it has one) and the verdicts."""
    evaluation = result["evaluation"]
    print(f"\nmodel exported to {result['path']}  ({result['seconds'] / 60:.1f} min)")
    report = Path(result["path"]) / "report.html"
    if report.exists():
        print(f"report: {report}")
    print(format_table(evaluation))
    table = _any_subset_of(Path(result["path"]) / "evaluation.json")
    if table:
        print(format_any_subset(table))
    if "full" in evaluation:
        for line, ok in format_checks(compute_checks(evaluation, table)):
            print(line if ok is not None else f"({line})")


def _any_subset_of(path: Path) -> dict[str, Any] | None:
    """The any-subset table of an evaluation.json; None when it has none (or cannot be read)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    table = doc.get("any_subset") if isinstance(doc, dict) else None
    return table if isinstance(table, dict) and table.get("rows") else None


def _f(x: Any, spec: str) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    return format(x, spec)


def _pct(a: float | None, b: float | None) -> str:
    if a is None or not b:
        return "n/a"
    return f"{(a / b - 1) * 100:+.1f}%"
