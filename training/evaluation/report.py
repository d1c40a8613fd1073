"""The evaluation, shown: a text table at the end of training and a self-contained report.html.

The HTML report carries its plots as base64 PNGs (matplotlib's Agg canvas, no pyplot state), so
the one file can be opened from a model's version folder, mailed or attached to a ticket.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

KIND_COLOURS = {"model": "#1f5fa8", "ablation": "#e8872b", "baseline": "#8c8c8c"}
LINE_COLOURS = ("#e8872b", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
METRICS = (("rmsle", "RMSLE", ".4f"), ("mae", "MAE", ",.2f"), ("mape", "MAPE", ".3f"),
           ("medape", "MedAPE", ".3f"), ("r2", "R2", ".3f"), ("within_20pct", "<=20%", ".3f"))


# ----------------------------------------------------------------------------------------------
# text


def format_table(evaluation: dict[str, Any]) -> str:
    """One line per model with a `test` entry: the test figures and the validation RMSLE."""
    head = f"{'model':<22}{'kind':<10}{'RMSLE':>8}{'MAE':>11}{'MAPE':>8}{'MedAPE':>8}{'R2':>7}{'<=20%':>7}{'valid':>8}"
    lines = [head, "-" * len(head)]
    for name, entry in evaluation.items():
        m = entry.get("test") if isinstance(entry, dict) else None
        if not m:
            continue
        v = (entry.get("valid") or {}).get("rmsle")
        lines.append(f"{name:<22}{entry.get('kind', ''):<10}{_f(m['rmsle'], '.4f'):>8}{_f(m['mae'], ',.2f'):>11}"
                     f"{_f(m['mape'], '.3f'):>8}{_f(m['medape'], '.3f'):>8}{_f(m['r2'], '.3f'):>7}"
                     f"{_f(m['within_20pct'], '.3f'):>7}{_f(v, '.4f'):>8}")
    return "\n".join(lines)


def _span(ci: list[float]) -> str:
    """A 95% interval of an RMSLE gap as the report and the summary write it."""
    return f"{ci[0]:+.4f} to {ci[1]:+.4f}"


def format_checks(checks: dict[str, Any]) -> list[tuple[str, bool]]:
    """The questions every run must answer, in words, each with whether the answer is good.

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
        out.append((f"full model {_f(full, '.4f')} {verdict} (best: {b} {_f(r, '.4f')}; full is {_pct(full, r)}"
                    f"{gap_text})", ok))
    if "best_single" in checks:
        ratio = checks["full_over_best_single"]
        text = (f"full / best single modality ({checks['best_single']} {_f(checks['best_single_rmsle'], '.4f')})"
                f" = {_f(ratio, '.3f')}")
        out.append((text, ratio is not None and ratio < 1.0))
    cis = checks.get("rmsle_increase_without_ci95") or {}
    for mod, delta in (checks.get("rmsle_increase_without") or {}).items():
        lo, hi = cis.get(mod) or (delta, delta)
        verdict = "helps" if lo > 0 else "HURTS" if hi < 0 else "makes no clear difference"
        ci_text = f" (95% CI {_span(cis[mod])})" if mod in cis else ""
        out.append((f"the {mod} branch {verdict}: test RMSLE {_f(delta, '+.4f')} without it{ci_text}", lo > 0))
    if "range_coverage" in checks:
        level, cov, ok = checks["range_level"], checks["range_coverage"], bool(checks["range_coverage_ok"])
        text = (f"the {level:.0%} price range covers {_f(cov, '.3f')} of test prices "
                f"({'within' if ok else 'OUTSIDE'} {level - 0.05:.2f}-{level + 0.05:.2f}); median width "
                f"{_f(checks.get('range_median_relative_width'), '.3f')} x the price")
        out.append((text, ok))
    return out


def print_summary(result: dict[str, Any]) -> None:
    """What `make train` prints at the end: where the model went and every model's test figures."""
    evaluation = result["evaluation"]
    print(f"\nmodel exported to {result['path']}  ({result['seconds'] / 60:.1f} min)")
    report = Path(result["path"]) / "report.html"
    if report.exists():
        print(f"report: {report}")
    print(format_table(evaluation))
    if "full" in evaluation:
        from training.evaluation.evaluate import checks

        for line, _ in format_checks(checks(evaluation)):
            print(line)


def _f(x: Any, spec: str) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    return format(x, spec)


def _pct(a: float | None, b: float | None) -> str:
    if a is None or not b:
        return "n/a"
    return f"{(a / b - 1) * 100:+.1f}%"


# ----------------------------------------------------------------------------------------------
# plots (each returns a base64 PNG, or None when there is nothing to draw)


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _log_axis(axis) -> None:
    """Log scale with plain-number labels at 1, 2, 5 x 10^k and unlabelled minor ticks."""
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.6g}"))
    axis.set_minor_formatter(NullFormatter())


def plot_pred_vs_true(y_true: np.ndarray, preds: dict[str, np.ndarray], currency: str) -> str:
    """Predicted vs. true price on log axes, for the full model and the best baseline beside it."""
    fig = Figure(figsize=(5.2 * len(preds), 4.8))
    y = np.asarray(y_true, dtype="float64")
    lo, hi = float(np.min(y)) / 1.5, float(np.max(y)) * 1.5
    for i, (name, log_pred) in enumerate(preds.items()):
        ax = fig.add_subplot(1, len(preds), i + 1)
        p = np.exp(np.asarray(log_pred, dtype="float64"))
        lo, hi = min(lo, float(np.min(p)) / 1.5), max(hi, float(np.max(p)) * 1.5)
        ax.scatter(y, p, s=6, alpha=0.35, color=KIND_COLOURS["baseline" if name.startswith("baseline") else "model"],
                   edgecolors="none")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _log_axis(ax.xaxis)
        _log_axis(ax.yaxis)
        ax.set_title(name)
        ax.set_xlabel(f"true price ({currency})")
        ax.set_ylabel(f"predicted price ({currency})")
        ax.grid(True, which="major", alpha=0.3)
    for ax in fig.axes:
        grid = np.geomspace(lo, hi, 50)
        ax.plot(grid, grid, color="black", lw=1, label="exact")
        ax.fill_between(grid, grid * 0.8, grid * 1.2, color="green", alpha=0.12, label="within 20%")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def plot_residuals(y_true: np.ndarray, log_pred: np.ndarray, currency: str) -> str:
    """Log residuals against the true price, and their distribution."""
    y = np.asarray(y_true, dtype="float64")
    r = np.asarray(log_pred, dtype="float64") - np.log(y)
    fig = Figure(figsize=(10.5, 4))
    ax = fig.add_subplot(1, 2, 1)
    ax.scatter(y, r, s=6, alpha=0.35, color=KIND_COLOURS["model"], edgecolors="none")
    ax.axhline(0, color="black", lw=1)
    # the mean residual per price decile shows a systematic bias (e.g. shrinkage towards the mean)
    edges = np.quantile(y, np.linspace(0, 1, 11))
    idx = np.clip(np.searchsorted(edges, y, side="right") - 1, 0, 9)
    centres = [np.exp(np.mean(np.log(y[idx == k]))) for k in range(10) if np.any(idx == k)]
    means = [float(np.mean(r[idx == k])) for k in range(10) if np.any(idx == k)]
    ax.plot(centres, means, "o-", color="#c0392b", lw=1.5, ms=4, label="mean per decile")
    ax.set_xscale("log")
    _log_axis(ax.xaxis)
    ax.set_xlabel(f"true price ({currency})")
    ax.set_ylabel("log(predicted) - log(true)")
    ax.set_title("residuals of the full model")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    ax = fig.add_subplot(1, 2, 2)
    ax.hist(r, bins=50, color=KIND_COLOURS["model"], alpha=0.8)
    ax.axvline(0, color="black", lw=1)
    ax.set_xlabel("log residual")
    ax.set_ylabel("listings")
    ax.set_title(f"mean {np.mean(r):+.3f}, std {np.std(r):.3f}")
    return _png(fig)


def plot_by_category(by_cat: dict[str, Any], names: list[str]) -> str | None:
    """Test RMSLE per category (largest first) for the given models."""
    rows = by_cat.get("rows") or []
    names = [n for n in names if rows and n in rows[0]]
    if not rows or not names:
        return None
    fig = Figure(figsize=(8.5, 0.45 * len(rows) * max(1, len(names) / 2) + 1.5))
    ax = fig.add_subplot(1, 1, 1)
    h = 0.8 / len(names)
    ypos = np.arange(len(rows))
    for i, name in enumerate(names):
        kind = "model" if name == "full" else "baseline" if name.startswith("baseline") else "ablation"
        colour = KIND_COLOURS[kind] if i == 0 or kind != "model" else None
        ax.barh(ypos + i * h, [r[name] for r in rows], height=h, label=name, color=colour,
                alpha=1.0 if kind == "model" else 0.75)
    ax.set_yticks(ypos + h * (len(names) - 1) / 2, [f"{r['value']} (n={r['n']})" for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("test RMSLE")
    ax.set_title(f"error by {by_cat['column']} (largest {len(rows)} of {by_cat['categories']})")
    ax.legend(fontsize=8)
    ax.grid(True, axis="x", alpha=0.3)
    return _png(fig)


def plot_learning_curves(models: dict[str, Any]) -> str | None:
    """loss, training RMSLE and validation RMSLE per epoch, one line per trained model."""
    curves = {k: v["history"] for k, v in models.items() if isinstance(v.get("history"), dict) and v["history"].get("loss")}
    if not curves:
        return None
    fig = Figure(figsize=(14, 4))
    for i, (key, title) in enumerate((("loss", "training loss (MSE of log price)"), ("rmsle", "training RMSLE"),
                                      ("val_rmsle", "validation RMSLE"))):
        ax = fig.add_subplot(1, 3, i + 1)
        tops, lows = [], []
        for j, (name, h) in enumerate(curves.items()):
            values = h.get(key) or []
            if values:
                ax.plot(np.arange(1, len(values) + 1), values, marker="o", ms=2.5, lw=2.2 if name == "full" else 1.2,
                        label=name, color=KIND_COLOURS["model"] if name == "full" else LINE_COLOURS[j % len(LINE_COLOURS)])
                tops.append(max(values[1:] if len(values) > 1 else values))
                lows.append(min(values))
                best = h.get("best_epoch")
                if key == "val_rmsle" and best and 0 < best <= len(values):
                    ax.plot([best], [values[best - 1]], marker="*", ms=9, color="black")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        top, low = [t for t in tops if np.isfinite(t)], [v for v in lows if np.isfinite(v)]
        if top and low:  # a wild first epoch would flatten the rest of the curves
            span = max(max(top) - min(low), 1e-3)
            ax.set_ylim(max(0.0, min(low) - 0.08 * span), max(top) + 0.12 * span)
        ax.grid(True, alpha=0.3)
        if i == 2:
            ax.legend(fontsize=8)
    return _png(fig)


def plot_rmsle_bars(models: dict[str, Any]) -> str:
    """Test RMSLE of every model, best at the top, coloured by kind."""
    items = sorted(((k, v) for k, v in models.items() if v.get("test")), key=lambda kv: kv[1]["test"]["rmsle"])
    fig = Figure(figsize=(8, 0.42 * len(items) + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    values = [v["test"]["rmsle"] for _, v in items]
    # 95% bootstrap interval of each RMSLE over the test rows, where the evaluation has one
    ci = [v.get("test_rmsle_ci95") or [v["test"]["rmsle"]] * 2 for _, v in items]
    err = np.array([[x - lo, hi - x] for x, (lo, hi) in zip(values, ci, strict=True)]).reshape(-1, 2).T.clip(min=0)
    ax.barh([k for k, _ in items], values, color=[KIND_COLOURS.get(v.get("kind", "model"), "#444") for _, v in items],
            xerr=err, error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#333"})
    for y, (x, (_, hi)) in enumerate(zip(values, ci, strict=True)):
        ax.text(max(x, hi), y, f" {x:.4f}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(hi for _, hi in ci) * 1.18 if ci else 1)
    ax.set_xlabel("test RMSLE (lower is better)")
    handles = [Patch(color=c, label=k) for k, c in KIND_COLOURS.items()]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, axis="x", alpha=0.3)
    return _png(fig)


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
        hist = v.get("history") or {}
        epochs = f"{len(hist['loss'])} (best {hist.get('best_epoch', '?')})" if hist.get("loss") else ""
        rows.append(f"<tr class='{_e(v.get('kind', ''))}'><td class='l'>{_e(name)}</td><td class='l'>{_e(v.get('kind', ''))}"
                    f"</td>{cells}<td>{_e(_f(valid, '.4f'))}</td><td class='nw'>{gap_cell}</td><td>{_e(epochs)}</td><td class='l muted'>{_e(detail)}</td></tr>")
    return (f"<table><tr><th class='l'>model</th><th class='l'>kind</th>{cols}<th>valid RMSLE</th>"
            f"<th>RMSLE - full's<br>(95% CI)</th><th>epochs</th><th class='l'>what</th></tr>{''.join(rows)}</table>"
            f"<p class='muted'>Test split, n = {_e(_first_n(models))}. MAE in {_e(currency)}; MAPE and MedAPE are "
            "fractions of the true price; &lt;=20% is the share of predictions within 20% of it.</p>")


def _fmt_param(p: Any) -> str:
    return f"{p:.4g}" if isinstance(p, float) else str(p)


def _first_n(models: dict[str, Any]) -> Any:
    return next((v["test"].get("n") for v in models.values() if v.get("test")), "?")


def _category_table(by_cat: dict[str, Any], names: list[str]) -> str:
    rows = by_cat.get("rows") or []
    names = [n for n in names if rows and n in rows[0]]
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    body = "".join(f"<tr><td class='l'>{_e(r['value'])}</td><td>{r['n']}</td>"
                   + "".join(f"<td>{_f(r[n], '.4f')}</td>" for n in names)
                   + f"<td>{_f(r.get('full_medape'), '.3f')}</td></tr>" for r in rows)
    return (f"<table><tr><th class='l'>{_e(by_cat['column'])}</th><th>n</th>{head}<th>full MedAPE</th></tr>"
            f"{body}</table><p class='muted'>Test RMSLE per category.</p>")


def _checks_html(checks: dict[str, Any]) -> str:
    items = []
    for line, ok in format_checks(checks):
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
        rows.append(f"<tr{default}><td>{_e(key)}</td><td>{q_low:+.4f}</td><td>{q_high:+.4f}</td>"
                    f"<td>{np.exp(q_low):.3f} - {np.exp(q_high):.3f}</td>"
                    f"<td class='{'ok' if ok else 'bad'}'>{_e(_f(cov, '.3f'))}</td>"
                    f"<td>{_e(_f(t.get('below'), '.3f'))} / {_e(_f(t.get('above'), '.3f'))}</td>"
                    f"<td>{_e(_f(t.get('median_relative_width'), '.3f'))}</td>"
                    f"<td>{_e(_f(t.get('median_width'), ',.2f'))}</td></tr>")
    note = (f" Too few calibration rows for the finite-sample guarantee at level(s) {_e(cal['too_few_rows_for'])}: "
            "the extreme residual stands in for an infinite bound." if cal.get("too_few_rows_for") else "")
    return (f"<p>{_e(cal['method'])}</p><p class='muted'>Calibrated on {_e(cal.get('n'))} {_e(cal.get('calibration_split', 'valid'))}"
            f" rows, checked on {_e(test.get('n'))} test rows; the default level is {_e(cal['level'])} (bold).{note}</p>"
            "<table><tr><th>level</th><th>q_low</th><th>q_high</th><th>range / price</th><th>test coverage</th>"
            f"<th>below / above</th><th>median relative width</th><th>median width ({_e(currency)})</th></tr>"
            f"{''.join(rows)}</table><p class='muted'>Coverage: share of test prices inside the range (green: within "
            "0.05 of the level). Relative width: (high - low) / price, the same for every item as the range is "
            "multiplicative.</p>")


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
    return ("<h2>Baseline hyperparameters (chosen on the validation split)</h2>" + "".join(parts))


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
    singles = [k for k, v in models.items() if v.get("kind") == "ablation" and k in preds]
    by_cat = doc.get("by_category")
    title = f"{doc.get('name', 'model')}: evaluation"
    model_info = doc.get("model") or {}
    where = (f"exported model <code>{_e(model_info.get('path'))}</code>, scored again on "
             if doc.get("source") == "evaluate" else "training run <code>" + _e(doc.get("run", "")) + "</code> on ")
    ds = doc.get("dataset", {})
    sections = [
        f"<h1>{_e(title)}</h1>",
        (f"<p>{where}<code>{_e(ds.get('table', ''))}</code> ({_e(ds.get('rows', '?'))} rows; "
         f"splits {_e(json.dumps(ds.get('splits', {})))}), created {_e(doc.get('created', ''))}. "
         f"Target <b>{_e(doc.get('target', ''))}</b> in {_e(currency)}.</p>"),
        "<h2>Verdict</h2>", _checks_html(doc.get("checks") or {}),
        "<h2>All figures (test split)</h2>", _figures_table(models, currency),
        "<h2>Test RMSLE by model</h2>", _img(plot_rmsle_bars(models), "test RMSLE by model"),
        ("<p class='muted'>Whiskers: the 95% bootstrap interval of each model's test RMSLE. All models are "
         "scored on the same rows, so the gap between two of them is judged by the paired interval (the "
         "verdict above, and the table's \"RMSLE - full's\" column), which is much narrower.</p>"),
        "<h2>Predicted vs. true price</h2>", _img(plot_pred_vs_true(y_true, scatter, currency), "predicted vs true"),
        "<h2>Residuals</h2>", _img(plot_residuals(y_true, preds["full"], currency), "residuals"),
        "<h2>Price range (calibrated)</h2>", _range_html(models.get("full", {}).get("interval"), currency),
    ]
    if by_cat:
        sections += [f"<h2>Error by {_e(by_cat['column'])}</h2>",
                     _img(plot_by_category(by_cat, compare), "error by category"),
                     _category_table(by_cat, [*compare, *singles])]
    sections += ["<h2>Learning curves</h2>", _img(plot_learning_curves(models), "learning curves"),
                 "<p class='muted'>The star marks the epoch whose weights were kept (best validation RMSLE).</p>"]
    sections.append(_grids_html(models))
    sections += ["<h2>Data set fingerprint</h2>", f"<pre>{_e(json.dumps(ds, indent=2, default=str))}</pre>"]
    if model_info:
        sections += ["<h2>Model</h2>", f"<pre>{_e(json.dumps(model_info, indent=2, default=str))}</pre>"]
    sections += [f"<h2>Config</h2><p class='muted'>{_e(doc.get('config_file', ''))}</p>",
                 f"<pre>{_e(json.dumps(doc.get('config', {}), indent=2, default=str))}</pre>"]
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(sections)}</body></html>\n")
