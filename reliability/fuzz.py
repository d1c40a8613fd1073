"""`make fuzz`: schemathesis generates requests from the service's own /openapi.json and sends them
to a real uvicorn serving a model, over every route; every response must conform to the schema
(status code, content type, headers, body) and none may be a 5xx.

It runs twice: the service as it starts by default (no API key: the schema declares no security),
and with API_KEY set (schemathesis also checks that /v1/* refuses a missing or wrong key with 401).
The server's own /metrics then tell how many answers of each status it gave (no 5xx allowed).

Each run then sends the shapes of reliability/shapes.py to the same server: listings with each
kind of missing input, several photos (JSON `images`, multipart `image` parts), one bad photo
among several, nothing given, batches mixing them, fixed and --shape-cases random ones (seeded),
each checked against the answer the contract calls for (its status, the `missing` list of a
price, the `loc` of a refusal). Schemathesis only knows what a status may be; this pass knows
what it must be. On a model whose card predates issue 17 the same shapes expect today's answers.

    python -m reliability.fuzz [--model-dir models/price] [--max-examples 300] [--shape-cases N] [--out FILE]

When --model-dir holds no version, a tiny model is trained with the training CLI first.
Exit status: 0 when every check passed and at least --min-cases cases ran; 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from common.files import atomic_write_text
from reliability.server import ROOT, ServiceProcess, model_dir_or_tiny
from reliability.shapes import Card, random_kinds, shape_kinds

CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"
HOOKS = Path(__file__).resolve().parent / "fuzz_hooks.py"  # real photos in half of the bodies
API_KEY = "fuzz-key-" + "k" * 24
EXCLUDED_CHECKS = "positive_data_acceptance"  # set in schemathesis.toml, with the reason
_METRIC = re.compile(r'^http_requests_total\{.*status="(\d+)".*\} ([0-9.e+]+)$')


def served_statuses(url: str, headers: dict[str, str]) -> dict[str, int]:
    """Answers the service gave so far, by status, from its own /metrics."""
    text = httpx.get(url + "/metrics", headers=headers, timeout=10).text
    counts: dict[str, int] = {}
    for line in text.splitlines():
        match = _METRIC.match(line)
        if match:
            counts[match.group(1)] = counts.get(match.group(1), 0) + int(float(match.group(2)))
    return dict(sorted(counts.items()))


def run_schemathesis(url: str, max_examples: int, seed: int, workers: int, keyed: bool, work: Path) -> dict[str, Any]:
    """One `st run` against url; returns its JSON report."""
    report = work / "report.json"
    command = [
        str(Path(sys.executable).with_name("st")), "--config-file", str(CONFIG), "--no-color", "run",
        f"{url}/openapi.json", "--max-examples", str(max_examples), "--seed", str(seed), "--workers", str(workers),
        "--continue-on-failure", "--request-timeout", "60", "--suppress-health-check", "all",
        "--report", "json", "--report-json-path", str(report),
    ]  # fmt: skip
    if keyed:
        command += ["--header", f"Authorization: Bearer {API_KEY}"]
    started = time.monotonic()
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)}
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=3600)
    (work / "output.txt").write_text(result.stdout + result.stderr)
    if not report.exists():
        raise RuntimeError(f"schemathesis wrote no report (exit {result.returncode}):\n{result.stdout[-3000:]}")
    data = json.loads(report.read_text())
    data["wall_s"] = round(time.monotonic() - started, 1)
    data["output_tail"] = "\n".join((result.stdout + result.stderr).splitlines()[-60:])
    return data


def card_format(card: dict[str, Any]) -> str:
    """The served card's format, in words: issue 17's (inputs optional, several photos) or older."""
    shape = Card.of(card)
    if shape.optional:
        return f"missing inputs allowed, up to {shape.max_photos} photos"
    return f"older card: every input required, {shape.max_photos} photo"


def shape_pass(url: str, headers: dict[str, str], seed: int, random_cases: int) -> dict[str, Any]:
    """Send every fixed shape and ``random_cases`` random ones; count what does not match."""
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        card = client.get("/v1/model").json()
        fixed = shape_kinds(card)
        kinds = fixed + random_kinds(card, random.Random(seed), random_cases)
        started = time.monotonic()
        by_status: dict[str, int] = {}
        by_route: dict[str, int] = {}
        problems: list[str] = []
        for kind in kinds:
            response = client.request(kind.method, kind.path, content=kind.content, headers=kind.headers)
            code = str(response.status_code)
            by_status[code] = by_status.get(code, 0) + 1
            by_route[kind.path] = by_route.get(kind.path, 0) + 1
            problem = kind.check(response.status_code, response.content)
            if problem:
                problems.append(f"{kind.name}: {problem}; answer {response.text[:200]}")
    return {
        "card": card_format(card),
        "requests": len(kinds),
        "fixed": len(fixed),
        "random": len(kinds) - len(fixed),
        "by_status": dict(sorted(by_status.items())),
        "by_route": by_route,
        "unexpected": len(problems),
        "unexpected_examples": problems[:20],
        "five_xx": sum(v for k, v in by_status.items() if k.startswith("5")),
        "seconds": round(time.monotonic() - started, 1),
    }


def fuzz_once(
    model_dir: Path, keyed: bool, max_examples: int, seed: int, workers: int, work: Path, shape_cases: int = 0
) -> dict[str, Any]:
    """Start the service (with or without API_KEY), fuzz it, send it the shapes, collect what it answered."""
    mode = "api_key" if keyed else "open"
    work = work / mode
    work.mkdir(parents=True, exist_ok=True)
    env: dict[str, Any] = {"RELOAD_INTERVAL_S": 0, "LOG_LEVEL": "WARNING"}
    if keyed:
        env["API_KEY"] = API_KEY
    with ServiceProcess(model_dir, work / "service.log", **env) as service:
        headers = {"Authorization": f"Bearer {API_KEY}"} if keyed else {}
        before = served_statuses(service.url, headers)
        rss_start = service.rss_bytes()
        report = run_schemathesis(service.url, max_examples, seed, workers, keyed, work)
        shapes = shape_pass(service.url, headers, seed, shape_cases)
        statuses = served_statuses(service.url, headers)
        statuses = {k: v - before.get(k, 0) for k, v in statuses.items() if v - before.get(k, 0)}
        rss_end = service.rss_bytes()
        alive = httpx.get(service.url + "/readyz", timeout=10).status_code == 200
    log = (work / "service.log").read_text(errors="replace")
    cases = report["test_cases"]
    return {
        "mode": mode,
        "cases": cases["generated"],
        "cases_with_failures": cases["with_failures"],
        "errored": cases["errored"] + len(report.get("errors") or []),
        "failures": report.get("failures") or [],
        "operations_tested": report["operations"]["tested"],
        "operations_total": report["operations"]["total"],
        "phases": {k: v["status"] for k, v in report["phases"].items()},
        "shapes": shapes,
        "server_statuses": statuses,
        "server_5xx": sum(v for k, v in statuses.items() if k.startswith("5")),
        "unhandled_errors_logged": log.count("event=unhandled_error"),
        "rss_mb": [round(rss_start / 2**20, 1), round(rss_end / 2**20, 1)],
        "ready_after": alive,
        "schemathesis_exit": report["exit_code"],
        "seconds": report["wall_s"],
        "output_tail": report["output_tail"],
    }


def passed(run: dict[str, Any]) -> bool:
    return (
        run["cases_with_failures"] == 0
        and run["errored"] == 0
        and run["server_5xx"] == 0
        and run["unhandled_errors_logged"] == 0
        and run["operations_tested"] == run["operations_total"]
        and run["ready_after"]
        and run["schemathesis_exit"] == 0
        and run["shapes"]["unexpected"] == 0
        and run["shapes"]["five_xx"] == 0
    )


def fuzz(
    model_dir: Path,
    max_examples: int,
    seed: int = 1,
    workers: int = 1,
    modes: tuple[str, ...] = ("open", "api_key"),
    work: Path | None = None,
    shape_cases: int | None = None,
) -> dict[str, Any]:
    """Both runs and their totals (see the module docstring); ``shape_cases`` random shapes per
    run (None: as many as ``max_examples``)."""
    work = Path(work or tempfile.mkdtemp(prefix="fuzz-"))
    cases = max_examples if shape_cases is None else shape_cases
    runs = [fuzz_once(model_dir, mode == "api_key", max_examples, seed, workers, work, cases) for mode in modes]
    return {
        "tool": "schemathesis " + _version(),
        "model_dir": str(model_dir),
        "max_examples_per_operation": max_examples,
        "seed": seed,
        "checks": f"all but {EXCLUDED_CHECKS}",
        "cases": sum(r["cases"] for r in runs),
        "cases_with_failures": sum(r["cases_with_failures"] for r in runs),
        "shape_requests": sum(r["shapes"]["requests"] for r in runs),
        "shape_unexpected": sum(r["shapes"]["unexpected"] for r in runs),
        "server_5xx": sum(r["server_5xx"] for r in runs),
        "passed": all(passed(r) for r in runs),
        "runs": runs,
    }


def _version() -> str:
    from importlib.metadata import version

    return version("schemathesis")


def summary(result: dict[str, Any]) -> str:
    lines = [f"fuzz: {result['cases']} generated cases over every route ({result['tool']}, "
             f"{result['max_examples_per_operation']} examples per operation, seed {result['seed']})"]  # fmt: skip
    for run in result["runs"]:
        lines.append(
            f"  {run['mode']:8s} {run['cases']:5d} cases, {run['operations_tested']}/{run['operations_total']} "
            f"operations, {run['cases_with_failures']} with failures, server answers {run['server_statuses']}, "
            f"5xx {run['server_5xx']}, RSS {run['rss_mb'][0]} -> {run['rss_mb'][1]} MB, {run['seconds']} s"
        )
        shapes = run["shapes"]
        lines.append(
            f"           shapes ({shapes['card']}): {shapes['requests']} requests ({shapes['fixed']} fixed, "
            f"{shapes['random']} random), answers {shapes['by_status']}, {shapes['unexpected']} unexpected, "
            f"5xx {shapes['five_xx']}, {shapes['seconds']} s"
        )
        for failure in run["failures"]:
            lines.append(f"    FAILED {failure['code']} {failure['title']}: {failure['operations']}")
        for problem in shapes["unexpected_examples"]:
            lines.append(f"    UNEXPECTED {problem}")
    lines.append("fuzz: PASSED" if result["passed"] else "fuzz: FAILED")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "price")
    parser.add_argument("--max-examples", type=int, default=400, help="generated cases per operation and phase")
    parser.add_argument("--min-cases", type=int, default=500, help="fail when fewer cases ran in all")
    parser.add_argument("--shape-cases", type=int, default=None, help="random shapes per run (default: max-examples)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "reliability" / "results" / "fuzz.json")
    args = parser.parse_args(argv)
    model_dir = model_dir_or_tiny(args.model_dir)
    work = Path(tempfile.mkdtemp(prefix="fuzz-"))
    result = fuzz(model_dir, args.max_examples, args.seed, args.workers, work=work, shape_cases=args.shape_cases)
    ok = result["passed"] and result["cases"] >= args.min_cases
    print(summary(result))
    if not ok:
        for run in result["runs"]:
            if not passed(run):
                print(f"--- {run['mode']}: last lines of schemathesis ---\n{run['output_tail']}")
        print(f"work files kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for run in result["runs"]:
        run.pop("output_tail", None)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
