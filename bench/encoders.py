"""The scratch and the pretrained photo encoder side by side: the served model's figures, the two
serving targets per encoder, the Markdown section, and the feature pass of `make train`.

The targets (judged for each encoder, reported as "target met" / "target missed", never failing
the run):

- (a) the micro-batched service at 32 clients reaches at least 0.8x the in-process batch-32
  throughput of the same SavedModel;
- (b) one client's p50 is at most the in-process batch-1 p50 + 3 ms, both measured in turns in
  the same minutes (bench/paired.py; separate runs a minute apart differ by more than that).
"""

from __future__ import annotations

from typing import Any

from bench.common import dig, fmt, one_client_gap, target

THROUGHPUT_SHARE = 0.8
LATENCY_GAP_MS = 3.0

# The side-by-side table, in its order: (label, key, format, where it is read: the bound's
# result or the service's, and the keys down to it).
ROWS = (
    ("in process, batch 1: p50 ms", "bound_batch1_p50_ms", ".1f", "bound", ("batch1_latency_ms", "p50")),
    ("in process, batch 1: p99 ms", "bound_batch1_p99_ms", ".1f", "bound", ("batch1_latency_ms", "p99")),
    ("in process, batch 32: items/s", "bound_batch32_items_per_s", ".0f", "bound", ("batch32_items_per_s",)),
    ("service, 1 client: p50 ms", "service_1_p50_ms", ".1f", "service", ("levels", "1", "latency_ms", "p50")),
    ("service, 1 client: p99 ms", "service_1_p99_ms", ".1f", "service", ("levels", "1", "latency_ms", "p99")),
    ("service, 32 clients: req/s", "service_32_rps", ".0f", "service", ("levels", "32", "throughput_rps")),
    ("service, 32 clients: p50 ms", "service_32_p50_ms", ".0f", "service", ("levels", "32", "latency_ms", "p50")),
    ("service, 32 clients: p99 ms", "service_32_p99_ms", ".0f", "service", ("levels", "32", "latency_ms", "p99")),
    ("service, 32 clients: server CPU ms / prediction", "service_32_cpu_ms", ".1f", "service",
     ("levels", "32", "server_cpu_ms_per_prediction")),
    ("service, 32 clients: load generator CPU ms / request (shares the cores)", "client_32_cpu_ms", ".1f",
     "service", ("levels", "32", "client_cpu_ms_per_request")),
    ("server RSS when ready, MiB", "server_ready_rss_mib", ".0f", "service", ("memory_ready", "rss_mib")),
    ("server peak RSS, MiB", "server_peak_rss_mib", ".0f", "service", ("memory", "peak_rss_mib")),
)  # fmt: skip


def summary(bound: Any, service: Any) -> dict[str, Any]:
    """One encoder's figures, by the keys of ROWS (None where not measured)."""
    found = {"bound": bound, "service": service}
    return {key: dig(found[where], *path) for _, key, _, where, path in ROWS}


def sides(r: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """name -> {"label", "source", "figures"}: the scratch model (--model-dir), then the pretrained one."""
    model = r.get("model") or {}
    out = {}
    if r.get("bound") or r.get("servers"):
        out["scratch"] = {
            "label": f"{model.get('encoder', 'scratch')} ({fmt(model.get('image_size'), 'd')} px)",
            "source": f"{model.get('dir')} version {model.get('version')} (--model-dir)",
            "figures": summary(r.get("bound"), dig(r, "servers", "batched")),
            "service": dig(r, "servers", "batched"),
        }
    pre = r.get("pretrained") or {}
    if "model" in pre:
        m = pre["model"]
        how = m["how"] + (f" in {m['train_seconds']:.0f} s" if "train_seconds" in m else "") + f": {m['why']}"
        out["pretrained"] = {
            "label": f"{m['encoder']} ({fmt(m['image_size'], 'd')} px)",
            "source": f"{m['dir']} version {m['version']} ({how})",
            "figures": summary(pre.get("bound"), pre.get("service")),
            "service": pre.get("service"),
        }
    return out


def _verdict(passed: bool | None) -> str:
    return "target met" if passed else "target missed" if passed is False else "not measured"


def side_targets(name: str, side: dict[str, Any]) -> list[dict[str, Any]]:
    """Targets (a) and (b) of one side's figures."""
    f = side["figures"]
    rps, items = f["service_32_rps"], f["bound_batch32_items_per_s"]
    share = rps / items if rps is not None and items else None
    a = target(
        f"(a) 32 clients: micro-batched service / in-process batch-32 throughput >= {THROUGHPUT_SHARE}",
        share,
        THROUGHPUT_SHARE,
        True,
        f"{share:.2f}x ({rps:.1f} req/s vs {items:.1f} items/s)" if share is not None else "",
    )
    gap, text = one_client_gap(side["service"], f["bound_batch1_p50_ms"])
    b = target(
        f"(b) 1 client: service p50 <= in-process batch-1 p50 + {LATENCY_GAP_MS:g} ms", gap, LATENCY_GAP_MS, False, text
    )
    return [{"side": name, "encoder": side["label"], **t, "verdict": _verdict(t["pass"])} for t in (a, b)]


def evaluate_encoders(r: dict[str, Any]) -> list[dict[str, Any]]:
    """``r["encoders"]`` (each side's figures) and ``r["encoder_targets"]`` (its targets), set and returned."""
    found = sides(r)
    r["encoders"] = {name: {"label": s["label"], "source": s["source"], **s["figures"]} for name, s in found.items()}
    r["encoder_targets"] = [t for name, s in found.items() for t in side_targets(name, s)]
    return r["encoder_targets"]


def markdown(r: dict[str, Any]) -> list[str]:
    """The section of latest.md: the table side by side, the targets per encoder, the feature pass."""
    found = sides(r)
    lines = [
        "",
        "## Scratch vs pretrained photo encoder (the served model, `POST /v1/predict?explain=false&comparables=0`)",
        "",
    ]
    failed = dig(r, "pretrained", "error")
    lines += [f"- pretrained: failed: {failed[:300]}"] if failed else []
    if not found:
        return [*lines, "not measured", *features_markdown(r)]
    lines += [f"- {name}: {s['source']}" for name, s in found.items()]
    lines += [
        "",
        "Both at batch 1 and 32 in process (bench/bound.py) and through `python -m service` with "
        "micro-batching on (32 rows, no wait); the peak RSS is the server process's own (VmHWM) after "
        "every level.",
        "",
        "| | " + " | ".join(s["label"] for s in found.values()) + " |",
        "|---|" + "---:|" * len(found),
    ]
    for label, key, spec, _, _ in ROWS:
        lines.append(f"| {label} | " + " | ".join(fmt(s["figures"][key], spec) for s in found.values()) + " |")
    lines += ["", "Targets, per encoder (a miss does not fail the run):", ""]
    targets = r.get("encoder_targets") or [t for n, s in found.items() for t in side_targets(n, s)]
    lines += [f"- {t['encoder']}: {t['name']}: **{t['verdict']}**: {t['measured']}" for t in targets]
    return lines + features_markdown(r)


def features_markdown(r: dict[str, Any]) -> list[str]:
    f = r.get("features") or {}
    lines = ["", "## Feature pass of `make train` (frozen pretrained encoder, `compute_features`)", ""]
    if "photos_per_second" not in f:
        return [*lines, f"not measured ({f.get('error', 'skipped')})"]
    threads = "TensorFlow's default: one per core" if f["intra_op_threads"] == 0 else f["intra_op_threads"]
    return [
        *lines,
        f"**{f['photos_per_second']:.1f} photos/s**: {f['encoder']} at {f['image_size']} px, batches of {f['batch']}, "
        f"{f['photos']} generated photos read, decoded, resized and encoded in {f['seconds']:.1f} s after one "
        f"warm-up batch ({f['warmup_s']:.1f} s; building the backbone with its weights {f['build_s']:.1f} s). "
        f"Cores: {f['cores_available']} available, {f['cores_busy']:.2f} busy on average (CPU "
        f"{f['cpu_s']:.1f} s over the wall time); intra-op threads: {threads}.",
    ]
