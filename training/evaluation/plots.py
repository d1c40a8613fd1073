"""The report's plots; each returns a base64 PNG, or None when there is nothing to draw.

matplotlib's Agg canvas is used directly (no pyplot state), so plotting is safe in any thread.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

KIND_COLOURS = {
    "model": "#1f5fa8",
    "ablation": "#e8872b",
    "late-fusion": "#7b3fa0",
    "baseline": "#8c8c8c",
    "knn": "#2a9d8f",
}


LINE_COLOURS = ("#e8872b", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


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
        ax.scatter(
            y,
            p,
            s=6,
            alpha=0.35,
            color=KIND_COLOURS["baseline" if name.startswith("baseline") else "model"],
            edgecolors="none",
        )
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
        ax.barh(
            ypos + i * h,
            [r[name] for r in rows],
            height=h,
            label=name,
            color=colour,
            alpha=1.0 if kind == "model" else 0.75,
        )
    ax.set_yticks(ypos + h * (len(names) - 1) / 2, [f"{r['value']} (n={r['n']})" for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("test RMSLE")
    ax.set_title(f"error by {by_cat['column']} (largest {len(rows)} of {by_cat['categories']})")
    ax.legend(fontsize=8)
    ax.grid(True, axis="x", alpha=0.3)
    return _png(fig)


def plot_learning_curves(models: dict[str, Any]) -> str | None:
    """loss, training RMSLE and validation RMSLE per epoch, one line per trained model."""
    curves = {
        k: v["history"] for k, v in models.items() if isinstance(v.get("history"), dict) and v["history"].get("loss")
    }
    if not curves:
        return None
    fig = Figure(figsize=(14, 4))
    for i, (key, title) in enumerate(
        (
            ("loss", "training loss (MSE of log price)"),
            ("log_rmse", "training log-price RMSE"),
            ("val_log_rmse", "validation log-price RMSE"),
        )
    ):
        ax = fig.add_subplot(1, 3, i + 1)
        tops, lows = [], []
        for j, (name, h) in enumerate(curves.items()):
            values = h.get(key) or []
            if values:
                ax.plot(
                    np.arange(1, len(values) + 1),
                    values,
                    marker="o",
                    ms=2.5,
                    lw=2.2 if name == "full" else 1.2,
                    label=name,
                    color=KIND_COLOURS["model"] if name == "full" else LINE_COLOURS[j % len(LINE_COLOURS)],
                )
                tops.append(max(values[1:] if len(values) > 1 else values))
                lows.append(min(values))
                best = h.get("best_epoch")
                if key == "val_log_rmse" and best and 0 < best <= len(values):
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
    ax.barh(
        [k for k, _ in items],
        values,
        color=[KIND_COLOURS.get(v.get("kind", "model"), "#444") for _, v in items],
        xerr=err,
        error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#333"},
    )
    for y, (x, (_, hi)) in enumerate(zip(values, ci, strict=True)):
        ax.text(max(x, hi), y, f" {x:.4f}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(hi for _, hi in ci) * 1.18 if ci else 1)
    ax.set_xlabel("test RMSLE (lower is better)")
    shown = {v.get("kind", "model") for _, v in items}  # the legend names the kinds in the chart
    handles = [Patch(color=c, label=k) for k, c in KIND_COLOURS.items() if k in shown]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, axis="x", alpha=0.3)
    return _png(fig)


def plot_any_subset(table: dict[str, Any] | None, max_ratio: float = 1.03, tolerance: float = 0.05) -> str | None:
    """Per subset of the inputs: the one model's test RMSLE beside its dedicated model's (left), and
    the per-subset range's test coverage against the level +- `tolerance` band (right)."""
    rows = (table or {}).get("rows") or []
    if not rows:
        return None
    level = float(table["level"])
    fig = Figure(figsize=(12, 0.55 * len(rows) + 2.2))
    grid = fig.add_gridspec(1, 2, width_ratios=(3, 2), wspace=0.05)
    ax = fig.add_subplot(grid[0])
    cov_ax = fig.add_subplot(grid[1], sharey=ax)
    ypos, h = np.arange(len(rows)), 0.38
    one = [r.get("rmsle") or 0.0 for r in rows]
    own = [r.get("ablation_rmsle") for r in rows]
    ax.barh(ypos - h / 2, one, height=h, color=KIND_COLOURS["model"], label="one model, other inputs removed")
    ax.barh(
        ypos + h / 2,
        [x or 0.0 for x in own],
        height=h,
        color=KIND_COLOURS["ablation"],
        label="dedicated model (trained on the subset)",
    )
    for y, r in enumerate(rows):
        ratio = r.get("ratio")
        text = " not trained" if ratio is None else f" x{ratio:.3f}"
        bad = ratio is not None and ratio > max_ratio + 1e-12
        top = max(r.get("rmsle") or 0.0, r.get("ablation_rmsle") or 0.0)
        ax.text(top, y, text, va="center", fontsize=8, color="#b71c1c" if bad else "#333")
    ax.set_yticks(ypos, [r["subset"] for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, max(max(one), max((x or 0.0) for x in own)) * 1.22)
    ax.set_xlabel(f"test RMSLE (ratio one / dedicated; at most {max_ratio:.2f})")
    ax.set_title("accuracy per subset of the inputs")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    ax.grid(True, axis="x", alpha=0.3)
    cov = [r.get("range_coverage") for r in rows]
    ok = [c is not None and abs(c - level) <= tolerance + 1e-12 for c in cov]
    cov_ax.axvspan(level - tolerance, level + tolerance, color="green", alpha=0.12, label="acceptance band")
    cov_ax.axvline(level, color="black", lw=1, label=f"level {level:g}")
    shown = [(y, c, good) for y, (c, good) in enumerate(zip(cov, ok, strict=True)) if c is not None]
    cov_ax.scatter(
        [c for _, c, _ in shown],
        [y for y, _, _ in shown],
        color=["#1e7d32" if good else "#b71c1c" for _, _, good in shown],
        s=40,
        zorder=3,
    )
    for y, c, _ in shown:
        cov_ax.text(c, y, f"  {c:.3f}", va="center", fontsize=8)
    cov_ax.tick_params(axis="y", labelleft=False)
    low = min([level - 2 * tolerance, *(c for _, c, _ in shown)])
    high = max([level + 2 * tolerance, *(c for _, c, _ in shown)])
    cov_ax.set_xlim(max(0.0, low - 0.03), min(1.0, high + 0.05))
    cov_ax.set_xlabel(f"test coverage of the {level:.0%} range")
    cov_ax.set_title("range coverage per subset")
    cov_ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    cov_ax.grid(True, axis="x", alpha=0.3)
    return _png(fig)
