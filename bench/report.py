"""Targets, the Markdown report and the plot, from one run's results dict."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench import comparables, comparables_cost, encoders
from bench.common import dig as _get
from bench.common import fmt as _f
from bench.common import one_client_gap
from bench.common import target as _target
from common.files import atomic_write_text

LEVEL_FOR_TARGETS = "32"


def _cpu_ratio(pipe: dict[str, Any], key: str) -> str:
    return f"; per CPU-second {pipe[key]:.2f}" if key in pipe else ""


def _rounds(pipe: dict[str, Any], kind: str) -> str:
    ratios = _get(pipe, "round_ratios", kind)
    return f" (median of {len(ratios)} rounds: " + ", ".join(f"{x:.2f}" for x in ratios) + ")" if ratios else ""


def evaluate_targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with its measured value and pass/fail (None: not measured)."""
    out = []
    pipe = r.get("pipeline") or {}
    for kind, name in (
        (
            "cached",
            "input pipeline: files / memory >= 0.9 (as `make train` reads them: photos decoded once into a cache file, epochs 2+)",
        ),
        (
            "files",
            "(stricter, not `make train`'s pipeline) every JPEG decoded again every epoch, no cache / memory >= 0.9",
        ),
    ):
        ratio = pipe.get(f"ratio_{kind}_memory")
        text = (
            f"{ratio:.2f}{_rounds(pipe, kind)} (fastest epochs {pipe[f'{kind}_examples_per_s']:.0f} vs "
            f"{pipe['memory_examples_per_s']:.0f} examples/s)" + _cpu_ratio(pipe, f"ratio_{kind}_memory_cpu")
            if ratio
            else ""
        )
        out.append(_target(name, ratio, 0.9, True, text))
    mem = r.get("memory") or {}
    ratio = mem.get("ratio_4n_n")
    out.append(
        _target(
            "peak training RSS: 4N / N <= 1.3",
            ratio,
            1.3,
            False,
            f"{ratio:.2f} ({mem['runs'][1]['peak_rss_mib']:.0f} vs {mem['runs'][0]['peak_rss_mib']:.0f} MiB)"
            if ratio
            else "",
        )
    )
    servers = r.get("servers") or {}
    level = LEVEL_FOR_TARGETS
    on = _get(servers, "batched", "levels", level)
    off = _get(servers, "unbatched", "levels", level)
    naive = _get(servers, "naive", "levels", level)
    name = f"{level} clients: batched service / naive service throughput >= 3"
    out.append(_throughput_ratio(name, on, naive, 3.0, other_spec=".1f"))
    naive_sig = _get(servers, "naive_signature", "levels", level)
    if on and naive_sig:
        name = f"(stricter, not in the issue) {level} clients: batched service / naive signature-call service >= 3"
        out.append(_throughput_ratio(name, on, naive_sig, 3.0))
    out.append(_throughput_ratio(f"{level} clients: batching on / off throughput >= 1.5", on, off, 1.5, ".2f"))
    if on and off:
        p99_on, p99_off = on["latency_ms"]["p99"], off["latency_ms"]["p99"]
        p99_naive = naive["latency_ms"]["p99"] if naive else math.inf
        lower = p99_on < p99_off and p99_on < p99_naive
        out.append(
            {
                "name": f"{level} clients: batched p99 lower than batching off and naive",
                "measured": f"{p99_on:.0f} ms vs {p99_off:.0f} ms off"
                + (f", {p99_naive:.0f} ms naive" if naive else ""),
                "value": p99_on,
                "threshold": min(p99_off, p99_naive),
                "pass": lower,
            }
        )
    bound_p50 = _get(r, "bound", "batch1_latency_ms", "p50")
    gap, text = one_client_gap(_get(servers, "batched"), bound_p50)
    out.append(_target("1 client: service p50 - bound batch-1 p50 <= 3 ms", gap, 3.0, False, text))
    off_one = _get(servers, "unbatched", "levels", "1")
    if bound_p50 is not None and off_one:
        gap, text = one_client_gap(_get(servers, "unbatched"), bound_p50)
        out.append(_target("(same, batching off) 1 client: service p50 - bound p50 <= 3 ms", gap, 3.0, False, text))
    out += comparables.targets(r)
    out += comparables_cost.targets(r)
    return out


def _throughput_ratio(
    name: str, one: Any, other: Any, threshold: float, spec: str = ".1f", other_spec: str = ".0f"
) -> dict[str, Any]:
    """Target: ``one``'s throughput over ``other``'s at least ``threshold`` (not measured without both)."""
    if not (one and other):
        return _target(name, None, threshold, True, "")
    a, b = one["throughput_rps"], other["throughput_rps"]
    ratio = a / max(b, 1e-9)
    return _target(name, ratio, threshold, True, f"{ratio:{spec}}x ({a:.0f} vs {b:{other_spec}} req/s)")


def _verdict(t: dict[str, Any]) -> str:
    return "**pass**" if t["pass"] else "**FAIL**" if t["pass"] is False else "not measured"


def _bound_rows(bound: dict[str, Any], name: str) -> list[str]:
    """The serving table's rows of one bound: batch 1, then each larger batch."""
    if "batch1_latency_ms" not in bound:
        return []
    b1 = bound["batch1_latency_ms"]
    lines = [
        f"| {name}: SavedModel in process, batch 1 | 1 | {1000 / b1['mean']:.0f} | {b1['p50']:.1f} | "
        f"{b1['p90']:.1f} | {b1['p99']:.1f} | {bound['batch1_cpu_ms_per_item']:.1f} | {bound['batch1_calls']} | 0 |"
    ]
    for size, b in sorted(bound.get("batches", {}).items(), key=lambda kv: int(kv[0])):
        lines.append(
            f"| {name}: batch {size} (latency per call) | - | {b['items_per_s']:.0f} items/s | "
            f"{b['call_ms']['p50']:.1f} | {b['call_ms']['p90']:.1f} | {b['call_ms']['p99']:.1f} | "
            f"{b['cpu_ms_per_item']:.1f} | - | - |"
        )
    return lines


def _server_rows(key: str, s: dict[str, Any]) -> list[str]:
    """The serving table's rows of one server: a level each (or its failure)."""
    if "error" in s:
        return [f"| {key} | - | failed: {s['error'][:200]} | | | | | | |"]
    lines = []
    for clients, x in s["levels"].items():
        lat = x["latency_ms"]
        lines.append(
            f"| {s['label']} | {clients} | {x['throughput_rps']:.1f} | {_f(lat['p50'])} | "
            f"{_f(lat['p90'])} | {_f(lat['p99'])} | {_f(x.get('server_cpu_ms_per_prediction'))} | "
            f"{x['requests']} | {x['errors']} |"
        )
    return lines


def write_markdown(r: dict[str, Any], path: Path) -> None:
    m = r["machine"]
    lines = [
        f"# Benchmark results ({r['mode']} run, {r['started']})",
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, {m['platform']}, Python {m['python']}; "
        f"load average {m['load_average_start'][0]:.1f} at the start, {m['load_average_end'][0]:.1f} at the end "
        f"(other jobs share this machine: figures above ~{m['cores']} are noisy). Commit {m['commit'] or '?'}, "
        f"model {r['model']['dir']} version {r['model']['version']}; {r['seconds'] / 60:.1f} min.",
        "",
        "## Targets",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
    ]
    lines += [f"| {t['name']} | {t['measured']} | {_verdict(t)} |" for t in r.get("targets", [])]
    lines += encoders.markdown(r)
    servers = r.get("servers") or {}
    bound = r.get("bound") or {}
    lines += [
        "",
        "## Serving (POST /v1/predict, 96x96 JPEG as base64, closed-loop clients)",
        "",
        "The service is asked for the price alone (`?explain=false&comparables=0`): the same model work per request as the "
        "bound and the naive service; a 'default answer' row, if any, shows the default request.",
        "",
        "| server | clients | req/s | p50 ms | p90 ms | p99 ms | server CPU ms / prediction | requests | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    pre = r.get("pretrained") or {}
    lines += _bound_rows(bound, "bound")
    lines += _bound_rows(pre.get("bound") or {}, f"pretrained {_get(pre, 'model', 'encoder')}: bound")
    for key, server in {**servers, "pretrained": pre.get("service")}.items():
        lines += _server_rows(key, server) if server else []
    pipe = r.get("pipeline") or {}
    lines += ["", "## Input pipeline (default model, one training epoch)", ""]
    if "files_examples_per_s" in pipe:
        cpu = pipe.get("examples_per_cpu_s", {})
        lines += [
            f"{pipe['examples']} examples, batch {pipe['batch_size']}, photos resized to {pipe['image_size']} px. "
            "The kinds of epoch alternate in rounds; the targets use the median over rounds of the ratio "
            "within a round. Below, examples/s is the fastest epoch of each kind (others on the machine only "
            "slow epochs down), examples per CPU-second the median (this process's CPU time). The in-memory "
            "examples are shuffled each epoch as the training pipeline shuffles them.",
            "",
            "| fed from | examples/s | examples per CPU-second |",
            "|---|---:|---:|",
            f"| files: every epoch reads and decodes each JPEG | {pipe['files_examples_per_s']:.0f} | "
            f"{_f(cpu.get('files'), '.0f')} |",
            f"| `make train`'s pipeline, first epoch (decodes, writes the cache) | "
            f"{pipe['cached_first_epoch_examples_per_s']:.0f} | - |",
            f"| `make train`'s pipeline, later epochs (decoded-photo cache file) | {pipe['cached_examples_per_s']:.0f} | "
            f"{_f(cpu.get('cached'), '.0f')} |",
            f"| the same batches held in memory | {pipe['memory_examples_per_s']:.0f} | "
            f"{_f(cpu.get('memory'), '.0f')} |",
            f"| the files pipeline alone, no training | {pipe['pipeline_only_examples_per_s']:.0f} | - |",
        ]
    else:
        lines.append(f"not measured ({pipe.get('error', 'skipped')})")
    mem = r.get("memory") or {}
    lines += ["", "## Peak memory of a training run (`python -m training train`, 1 epoch, small settings)", ""]
    if "runs" in mem:
        lines += ["| items | peak RSS MiB | wall s | CPU s |", "|---:|---:|---:|---:|"]
        lines += [
            f"| {x['rows']} | {x['peak_rss_mib']:.0f} | {x['seconds']:.0f} | {x['cpu_s']:.0f} |" for x in mem["runs"]
        ]
        lines += ["", f"Settings: `{' '.join(mem['settings'])}`."]
    else:
        lines.append(f"not measured ({mem.get('error', 'skipped')})")
    lines += comparables.markdown(r)
    lines += comparables_cost.markdown(r)
    lines += ["", "The plot: latency_throughput.png. Raw figures: latest.json.", ""]
    atomic_write_text(path, "\n".join(lines))


def _plot_server(ax_t: Any, ax_l: Any, s: dict[str, Any], color: str) -> None:
    """One server's lines: throughput; p50 solid and p99 dashed."""
    levels = sorted(s["levels"], key=int)
    xs = [int(c) for c in levels]
    ax_t.plot(xs, [s["levels"][c]["throughput_rps"] for c in levels], "o-", color=color, label=s["label"])
    ax_l.plot(xs, [s["levels"][c]["latency_ms"]["p50"] for c in levels], "o-", color=color, label=f"{s['label']} p50")
    p99 = [s["levels"][c]["latency_ms"]["p99"] for c in levels]
    ax_l.plot(xs, p99, "s--", color=color, alpha=0.6, label=f"{s['label']} p99")


def write_plot(r: dict[str, Any], path: Path) -> Path | None:
    """Throughput and latency (p50 solid, p99 dashed) against concurrency, one line per server."""
    pre = r.get("pretrained") or {}
    found = {**(r.get("servers") or {}), "pretrained": pre.get("service") or {}}
    servers = {k: s for k, s in found.items() if "levels" in s}
    if not servers:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_l) = plt.subplots(1, 2, figsize=(12, 4.8))
    colors = {key: f"C{i}" for i, key in enumerate(servers)}
    for key, s in servers.items():
        _plot_server(ax_t, ax_l, s, colors[key])
    bounds = ((r.get("bound"), "bound", "gray"), (pre.get("bound"), "pretrained bound", colors.get("pretrained", "k")))
    for bound, name, color in bounds:
        if bound and "batch32_items_per_s" in bound:
            ax_t.axhline(bound["batch32_items_per_s"], color=color, linestyle=":", label=f"{name}: batch 32 in process")
            ax_l.axhline(bound["batch1_latency_ms"]["p50"], color=color, linestyle=":", label=f"{name}: batch-1 p50")
    ticks = sorted({int(c) for s in servers.values() for c in s["levels"]})
    for ax in (ax_t, ax_l):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_xlabel("concurrent clients")
        ax.grid(True, which="both", alpha=0.3)
    ax_t.set_ylabel("predictions / s")
    ax_t.set_yscale("log")
    ax_t.set_title("Throughput")
    ax_l.set_ylabel("latency, ms (log)")
    ax_l.set_yscale("log")
    ax_l.set_title("Latency: p50 (solid), p99 (dashed)")
    ax_t.legend(fontsize=7, loc="best")
    ax_l.legend(fontsize=6, loc="best", ncol=1)
    m = r["machine"]
    fig.suptitle(f"POST /v1/predict on {m['cores']} cores ({r['mode']} run, {r['started']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
