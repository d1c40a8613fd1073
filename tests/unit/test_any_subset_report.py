"""The any-subset table in the checks, the printed summary and the HTML report, from a hand-made
document (no training): thresholds, the "not checked" case, and documents without the table."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from training.evaluation.checks import any_subset_checks, checks
from training.evaluation.plots import plot_any_subset
from training.evaluation.report import render_html
from training.evaluation.summary import format_any_subset, format_checks, print_summary


def _row(subset: str, rmsle: float, ablation: str | None, ablation_rmsle: float | None, coverage: float) -> dict:
    return {
        "subset": subset,
        "groups": subset.split("+"),
        "rmsle": rmsle,
        "ablation": ablation,
        "ablation_rmsle": ablation_rmsle,
        "ratio": rmsle / ablation_rmsle if ablation_rmsle else None,
        "range_coverage": coverage,
        "range_median_relative_width": 0.5 + 0.1 * len(subset),
        "calibration_rows": 120,
        "n": 200,
    }


def _table(level: float = 0.8) -> dict:
    """Seven subsets: ratios at, just above and below 1.03, one ablation not trained; coverages at the
    band's edges and just outside them."""
    return {
        "rows": [
            _row("metadata+text+image", 0.2000, "full", 0.2000, 0.80),
            _row("metadata+text", 0.2060, "no-image", 0.2000, 0.75),  # ratio 1.03 exactly: passes
            _row("metadata+image", 0.2400, "no-text", 0.2330, 0.85),  # 1.0300429...: fails
            _row("text+image", 0.2500, None, None, 0.7499),  # not trained; coverage just below 0.75
            _row("metadata", 0.3000, "metadata-only", 0.3100, 0.8501),  # better than its own; coverage above
            _row("text", 0.3500, "text-only", 0.3450, 0.79),
            _row("image", 0.5000, "image-only", 0.4990, 0.81),
        ],
        "level": level,
        "seconds": 1.2,
    }


EVALUATION = {"full": {"kind": "model", "test": {"rmsle": 0.2}}}


def test_ratio_and_coverage_checks_at_their_thresholds():
    c = checks(EVALUATION, _table())
    rows = {r["subset"]: r for r in c["any_subset"]}
    assert [r["subset"] for r in c["any_subset"]] == [r["subset"] for r in _table()["rows"]]
    assert {k: r["ratio_ok"] for k, r in rows.items()} == {
        "metadata+text+image": True,
        "metadata+text": True,
        "metadata+image": False,
        "text+image": None,
        "metadata": True,
        "text": True,
        "image": True,
    }
    assert {k: r["range_coverage_ok"] for k, r in rows.items()} == {
        "metadata+text+image": True,
        "metadata+text": True,
        "metadata+image": True,
        "text+image": False,
        "metadata": False,
        "text": True,
        "image": True,
    }
    assert c["any_subset_level"] == 0.8 and c["any_subset_max_ratio"] == 1.03
    assert c["any_subset_ratio_ok"] is False and c["any_subset_range_ok"] is False
    assert c["any_subset_not_checked"] == ["text+image"]
    assert rows["metadata+image"]["ratio"] == pytest.approx(0.24 / 0.233)


def test_a_table_within_every_threshold_passes_and_a_missing_ablation_is_not_a_failure():
    table = _table()
    table["rows"] = [r for r in table["rows"] if r["subset"] not in ("metadata+image", "metadata")]
    table["rows"][2]["range_coverage"] = 0.8  # text+image: still no ablation, coverage now inside
    c = any_subset_checks(table)
    assert c["any_subset_ratio_ok"] is True and c["any_subset_range_ok"] is True
    assert c["any_subset_not_checked"] == ["text+image"]
    lines = format_checks(c)
    assert all(ok is not False for _, ok in lines)
    assert [line for line, ok in lines if ok is None] == [
        'not checked: the one model given only text+image (no dedicated model trained; train.ablations = "all" '
        "trains one per subset)"
    ]


def test_no_ablations_at_all_is_not_checked_rather_than_passed():
    table = _table()
    for r in table["rows"][1:]:
        r.update(ablation=None, ablation_rmsle=None, ratio=None)
    c = any_subset_checks(table)
    assert c["any_subset_ratio_ok"] is None
    assert c["any_subset_not_checked"] == [r["subset"] for r in table["rows"][1:]]


def test_the_coverage_band_follows_the_level():
    table = _table(level=0.9)
    for r, cov in zip(table["rows"], (0.9, 0.85, 0.95, 0.8499, 0.9501, 0.86, 0.94), strict=True):
        r["range_coverage"] = cov
    c = any_subset_checks(table)
    assert [r["range_coverage_ok"] for r in c["any_subset"]] == [True, True, True, False, False, True, True]
    coverage_lines = [line for line, _ in format_checks(c) if "range given" in line]
    assert coverage_lines[3] == (
        "the 90% range given only text+image covers 0.850 of test prices (OUTSIDE 0.85-0.95); median width "
        "1.500 x the price"
    )


def test_check_lines_in_words():
    lines = format_checks(checks(EVALUATION, _table()))
    ratio_lines = [(line, ok) for line, ok in lines if line.startswith("the one model")]
    # the complete subset is the full model itself: no line; the untrained ablation: not checked
    assert [ok for _, ok in ratio_lines] == [True, False, True, True, True]
    assert ratio_lines[0] == (
        "the one model given only metadata+text is within 3% of its dedicated model: test RMSLE 0.2060 vs "
        "no-image 0.2000 (ratio 1.030, at most 1.03)",
        True,
    )
    assert ratio_lines[1][0].startswith("the one model given only metadata+image is NOT within 3% of its dedicated")
    coverage = [(line, ok) for line, ok in lines if "range given" in line]
    assert len(coverage) == 7
    assert coverage[0] == (
        "the 80% range given every input covers 0.800 of test prices (within 0.75-0.85); median width 2.400 x "
        "the price",
        True,
    )
    assert coverage[4][0].startswith("the 80% range given only metadata covers 0.850 of test prices (OUTSIDE")
    assert coverage[4][1] is False


def test_summary_table():
    text = format_any_subset(_table())
    lines = text.splitlines()
    assert lines[0] == "any subset of the inputs (test; the 80% range calibrated per subset)"
    assert lines[1].split() == [
        "subset",
        "one",
        "model",
        "dedicated",
        "model",
        "RMSLE",
        "ratio",
        "coverage",
        "width",
        "n",
    ]
    assert set(lines[2]) == {"-"}
    assert len(lines) == 3 + 7
    assert lines[4].split() == ["metadata+text", "0.2060", "no-image", "0.2000", "1.030", "0.750", "1.800", "200"]
    assert lines[6].split() == ["text+image", "0.2500", "not", "trained", "n/a", "n/a", "0.750", "1.500", "200"]


def test_old_documents_have_no_any_subset_section():
    assert format_any_subset(None) == "" and format_any_subset({"rows": [], "level": 0.8}) == ""
    c = checks(EVALUATION)
    assert not [k for k in c if k.startswith("any_subset")]
    assert not [line for line, _ in format_checks(c) if "one model" in line or "range given" in line]
    assert any_subset_checks(None) == {} and plot_any_subset(None) is None
    html = render_html(_doc(with_table=False), *_prices())
    assert "Any subset" not in html and "any subset of the inputs" not in html


def test_report_section_has_the_chart_the_table_and_the_verdicts():
    html = render_html(_doc(), *_prices())
    start = html.index("<h2>Any subset of the inputs</h2>")
    section = html[start : html.index("<h2>", start + 1)]
    assert "within 3% of the dedicated model (ratio at most 1.03)" in section
    assert "between 0.75 and 0.85 of test prices" in section
    [png] = re.findall(r"alt='any subset of the inputs' src='data:image/png;base64,([^']+)'", section)
    assert base64.b64decode(png).startswith(b"\x89PNG")
    rows = re.findall(r"<tr(?: class='model')?><td class='l'>([^<]+)</td>(.*?)</tr>", section)
    assert [name for name, _ in rows] == [r["subset"] for r in _table()["rows"]]
    cells = dict(rows)
    assert "<td class='ok'>1.030</td><td class='ok'>0.750</td>" in cells["metadata+text"]
    assert "<td class='bad'>1.030</td><td class='ok'>0.850</td>" in cells["metadata+image"]
    assert "not trained" in cells["text+image"] and "<td class='muted'>not checked</td>" in cells["text+image"]
    assert "<td class='bad'>0.750</td>" in cells["text+image"]
    assert "global (too few rows)" in cells["image"] and "<td class='l'>own</td>" in cells["metadata"]
    assert section.count("<tr class='model'>") == 1  # the complete subset, the full model itself
    # the verdict list: the failed ratio crossed, the untrained ablation neither passed nor failed
    verdict = html[html.index("<h2>Verdict</h2>") : html.index("<h2>All figures")]
    assert "&#10007; the one model given only metadata+image is NOT within 3%" in verdict
    assert "<li class='muted'>&ndash; not checked: the one model given only text+image" in verdict


def test_print_summary_reads_the_table_from_the_exported_evaluation(tmp_path, capsys):
    (tmp_path / "evaluation.json").write_text(json.dumps(_doc()))
    print_summary({"path": tmp_path, "seconds": 60, "evaluation": _doc()["models"]})
    out = capsys.readouterr().out
    assert "any subset of the inputs (test; the 80% range calibrated per subset)" in out
    assert "the one model given only metadata+image is NOT within 3% of its dedicated model" in out
    assert "(not checked: the one model given only text+image" in out
    assert out.index("any subset of the inputs") < out.index("the one model given only")

    (tmp_path / "evaluation.json").write_text(json.dumps(_doc(with_table=False)))
    print_summary({"path": tmp_path, "seconds": 60, "evaluation": _doc()["models"]})
    out = capsys.readouterr().out
    assert "any subset" not in out and "one model given" not in out
    assert "full" in out  # the model table is still there


def _prices(n: int = 60) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    y = np.exp(rng.normal(4.0, 0.5, n))
    return y, {"full": np.log(y) + rng.normal(0, 0.2, n)}


def _doc(with_table: bool = True) -> dict:
    """An evaluation document as `document` writes it, with only what the report reads."""
    table = _table()
    metrics = {"rmsle": 0.2, "mae": 10.0, "mape": 0.2, "medape": 0.15, "r2": 0.8, "within_20pct": 0.6, "n": 60}
    by_inputs = {
        r["subset"]: {"n": 120, "quantiles": {"0.8": [-0.3, 0.3]}, "too_few_rows_for": []} for r in table["rows"]
    }
    by_inputs["image"] = {"n": 12, "quantiles": {}, "too_few_rows_for": [0.8]}
    models = {
        "full": {
            "kind": "model",
            "modalities": ["metadata", "text", "image"],
            "test": metrics,
            "valid": metrics,
            "interval": {
                "calibration": {
                    "method": "split conformal",
                    "level": 0.8,
                    "n": 120,
                    "quantiles": {"0.8": [-0.3, 0.3]},
                    "by_inputs": by_inputs,
                },
                "test": {
                    "level": 0.8,
                    "n": 60,
                    "coverage": 0.8,
                    "median_relative_width": 0.6,
                    "levels": {"0.8": {"coverage": 0.8, "median_relative_width": 0.6}},
                },
            },
        },
        "metadata-only": {"kind": "ablation", "modalities": ["metadata"], "test": {**metrics, "rmsle": 0.31}},
    }
    doc = {"name": "tiny", "currency": "EUR", "models": models, "checks": checks(models, table if with_table else None)}
    if with_table:
        doc["any_subset"] = table
    return doc


def _with_first_text(gain_with_photo: float) -> dict:
    table = _table()
    table["first_text_column"] = {
        "column": "title",
        "alone": {"rmsle": 0.25, "range_coverage": 0.8, "n": 200},
        "with_photo": {"rmsle": gain_with_photo, "range_coverage": 0.8, "n": 200},
        "gain": 1 - gain_with_photo / 0.25,
    }
    return table


@pytest.mark.parametrize(("with_photo", "ok"), [(0.2375, True), (0.2376, False)])
def test_photo_gain_on_the_first_text_column_at_its_threshold(with_photo, ok):
    """The title alone vs the title and a photo, through the one model: at least 5% better."""
    c = checks(EVALUATION, _with_first_text(with_photo))
    assert c["first_text_column"] == "title" and c["photo_gain_on_first_text_column_ok"] is ok
    lines = [(line, good) for line, good in format_checks(c) if line.startswith("given only its title")]
    assert len(lines) == 1 and lines[0][1] is ok
    assert ("at least 5%" in lines[0][0]) is ok and ("LESS than 5%" in lines[0][0]) is not ok
    assert "0.2500" in lines[0][0] and f"{with_photo:.4f}" in lines[0][0]
    assert "photo_gain_on_first_text_column" not in checks(EVALUATION, _table())  # one text column: no line


@pytest.mark.parametrize(("coverage", "ok"), [(0.75, True), (0.41, False)])
def test_the_range_of_the_first_text_column_alone_is_checked(coverage, ok):
    """A title alone gets a range of its own; its test coverage is checked like a subset's."""
    table = _with_first_text(0.2)
    table["first_text_column"]["alone"]["range_coverage"] = coverage
    c = checks(EVALUATION, table)
    assert c["first_text_column_range"]["alone"] == {"coverage": coverage, "ok": ok}
    assert c["first_text_column_range"]["with_photo"]["ok"] is True
    lines = [(line, good) for line, good in format_checks(c) if line.startswith("the 80% range given only its title")]
    assert [good for _, good in lines] == [ok, True]
    assert f"covers {coverage:.3f}" in lines[0][0] and ("OUTSIDE" in lines[0][0]) is not ok
    assert "and a photo" in lines[1][0]


def test_report_says_what_the_photo_adds_to_the_first_text_column():
    doc = _doc()
    doc["any_subset"] = _with_first_text(0.2)
    html = render_html(doc, *_prices())
    assert "Given only its title" in html and "<span class='ok'>20.0% better</span>" in html
    assert "Given only its title" not in render_html(_doc(), *_prices())
