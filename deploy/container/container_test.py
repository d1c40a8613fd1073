"""Container test: build the image, run it, and check it from outside like a client would.

    .venv/bin/python deploy/container/container_test.py [--model-dir models/price] [--baked]
    .venv/bin/python -m deploy.container.container_test ...     (the same)

Builds the image (docker where a Docker engine answers, podman otherwise) and runs it with the
newest model of --model-dir (or $MODEL_DIR; default models/price; a version folder pins it)
mounted read-only. Then, from outside: waits for /readyz, sends a JSON prediction and a multipart
upload and compares both prices with what the same SavedModel gives in this process (1e-4
relative, or the API's rounding to cents), checks that the process in the container is not root,
that the image's HEALTHCHECK passes and that it stops on SIGTERM, and removes the container (the
images and the build cache stay, for speed). `--baked` also builds the variant with the model
baked in (`--build-arg MODEL=<name>`) and runs the same checks on it without a mount.
Prints the image size, the time from `run` to ready, and a closing `N passed, N failed` line.
Needs the development environment (tensorflow, httpx, pillow) for the reference prediction.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

if not __package__:  # run as a file (python deploy/container/container_test.py): import from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from deploy.container import ctl  # noqa: E402
from deploy.container.sample import Sample, answered_price, make_sample, same_price  # noqa: E402
from harness.server import NotReady, free_port, wait_ready  # noqa: E402

READY_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 20


class Checks:
    """Named pass/fail results, printed as they happen and summed up at the end."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def record(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(
            f"{'PASS' if ok else 'FAIL'}  {name}{': ' + detail if detail else ''}",
            flush=True,
        )
        return ok


def sh(args: list[str], timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
    done = subprocess.run(args, check=False, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    return done


def image_size_bytes(cmd: list[str], tag: str) -> int:
    return int(sh([*cmd, "image", "inspect", "--format", "{{.Size}}", tag], check=True).stdout.strip())


def build(cmd: list[str], tag: str, model: str = "", model_version: str = "") -> None:
    """Build quietly into a log file; its last lines are shown when the build fails."""
    args = ctl.build_command(cmd, tag, model=model, model_version=model_version)
    log = Path(tempfile.gettempdir()) / f"container-build-{tag.replace(':', '-').replace('/', '-')}.log"
    print("+ " + " ".join(args), flush=True)
    started = time.monotonic()
    with open(log, "w") as out:
        code = subprocess.run(args, check=False, stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0:
        print("".join(log.read_text().splitlines(keepends=True)[-40:]), file=sys.stderr)
        raise RuntimeError(f"image build failed (exit {code}); full log: {log}")
    print(f"built {tag} in {time.monotonic() - started:.0f} s (log: {log})", flush=True)


class Container:
    """A running container as ``wait_ready`` polls it: ``poll()`` is None while it runs."""

    def __init__(self, cmd: list[str], name: str) -> None:
        self.cmd, self.name = cmd, name

    def poll(self) -> str | None:
        state = sh([*self.cmd, "inspect", "--format", "{{.State.Status}}", self.name]).stdout.strip()
        return None if state in ("running", "created", "configured", "") else f"container is {state}"


def health_check(cmd: list[str], name: str) -> tuple[bool, str]:
    if ctl.is_podman(cmd):
        done = sh([*cmd, "healthcheck", "run", name], timeout=60)
        said = done.stdout.strip() or done.stderr.strip()[-200:]
        return (
            done.returncode == 0,
            f"podman healthcheck run: exit {done.returncode} {said}",
        )
    deadline = time.monotonic() + 90
    status = ""
    while time.monotonic() < deadline:
        status = sh([*cmd, "inspect", "--format", "{{.State.Health.Status}}", name]).stdout.strip()
        if status in ("healthy", "unhealthy"):
            break
        time.sleep(2)
    return status == "healthy", status


def proc1(cmd: list[str], name: str) -> tuple[list[int], str]:
    status = sh([*cmd, "exec", name, "cat", "/proc/1/status"], check=True).stdout
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    cmdline = sh([*cmd, "exec", name, "cat", "/proc/1/cmdline"], check=True).stdout.replace("\0", " ")
    return [int(uid) for uid in uids], cmdline.strip()


def check_price(checks: Checks, what: str, answer, sample: Sample) -> None:
    ok = answer.status_code == 200
    price = answered_price(answer.json()) if ok else float("nan")
    detail = f"container {price:.4f} vs host {sample.expected:.6f} (rounded to cents: {round(sample.expected, 2):.2f})"
    checks.record(
        f"{what} price equals the SavedModel's",
        ok and same_price(price, sample.expected),
        detail if ok else f"{answer.status_code} {answer.text[:300]}",
    )


def check_mount(checks: Checks, cmd: list[str], name: str) -> None:
    inspected = sh([*cmd, "inspect", "--format", "{{json .Mounts}}", name], check=True)
    mounts = [m for m in json.loads(inspected.stdout) if m.get("Destination", "").startswith(ctl.CONTAINER_MODELS)]
    checks.record(
        "the model is mounted read-only",
        bool(mounts) and all(not m.get("RW", True) for m in mounts),
        ", ".join(f"{m.get('Destination')} rw={m.get('RW')}" for m in mounts),
    )


def check_stop(checks: Checks, cmd: list[str], name: str) -> None:
    started = time.monotonic()
    stop = [*cmd, "stop", "-t", str(STOP_TIMEOUT_S), name]
    stopped = sh(stop, timeout=STOP_TIMEOUT_S + 30)
    took = time.monotonic() - started
    code = sh([*cmd, "inspect", "--format", "{{.State.ExitCode}}", name]).stdout
    checks.record(
        "stops cleanly on SIGTERM",
        stopped.returncode == 0 and took < STOP_TIMEOUT_S - 5,
        f"{took:.1f} s, exit code {code.strip()}",
    )


def check_requests(checks: Checks, base: str, sample: Sample) -> None:
    """/healthz, then the sample as JSON and as an upload: the newest version, the host's price."""
    import httpx

    with httpx.Client(timeout=60) as client:
        alive = client.get(f"{base}/healthz").status_code
        checks.record("/healthz answers 200", alive == 200, str(alive))

        answer = client.post(f"{base}/v1/predict", json=sample.json_body())
        served = answer.json().get("model_version") if answer.is_success else None
        checks.record(
            "the newest model version is served",
            served == sample.version,
            f"served {served}, newest {sample.version}",
        )
        check_price(checks, "JSON /v1/predict", answer, sample)

        photo = {"image": ("photo.jpg", sample.picture, "image/jpeg")}
        answer = client.post(f"{base}/v1/predict/upload", data=sample.form(), files=photo)
        check_price(checks, "multipart /v1/predict/upload", answer, sample)


def run_variant(
    cmd: list[str],
    checks: Checks,
    tag: str,
    model: ctl.ModelChoice | None,
    sample: Sample,
) -> None:
    """Run one image, check it from outside, and remove the container whatever happens."""
    name = f"price-service-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    extra = [] if ctl.is_podman(cmd) else ["--health-interval", "5s"]
    publish = f"127.0.0.1:{port}"
    args = ctl.run_command(cmd, tag, model, publish, name, detach=True, extra=extra, forward=False)
    print("+ " + " ".join(args), flush=True)
    started = time.monotonic()
    launched = sh(args, timeout=120)
    try:
        started_ok = launched.returncode == 0
        detail = "" if started_ok else launched.stderr[-300:]
        if not checks.record("container starts", started_ok, detail):
            return
        try:
            seen, ready = wait_ready(f"{base}/readyz", READY_TIMEOUT_S, Container(cmd, name), interval=0.5), True
        except NotReady as error:
            print(f"container: {error}", file=sys.stderr)
            seen, ready = error.seen, False
        elapsed = time.monotonic() - started
        if not checks.record("/readyz answers 200", ready, f"statuses seen {seen}, {elapsed:.1f} s"):
            return
        print(f"time from run to ready: {elapsed:.1f} s", flush=True)
        check_requests(checks, base, sample)

        uids, cmdline = proc1(cmd, name)
        checks.record("the container process is not root", 0 not in uids, f"uids {uids}")
        checks.record(
            "PID 1 is the service itself (exec-form CMD)",
            "service" in cmdline and not cmdline.startswith(("/bin/sh", "sh ")),
            cmdline,
        )
        if model is not None:
            check_mount(checks, cmd, name)
        healthy, said = health_check(cmd, name)
        checks.record("the image's HEALTHCHECK passes", healthy, said)
        check_stop(checks, cmd, name)
    finally:
        if checks.failed:
            logs = sh([*cmd, "logs", "--tail", "60", name])
            print(f"---- container logs ----\n{logs.stdout}{logs.stderr}", file=sys.stderr)
        sh([*cmd, "rm", "-f", "-v", name], timeout=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", help="models/<name> or one version of it (default models/price)")
    parser.add_argument("--tag", default=os.environ.get("IMAGE", ctl.DEFAULT_IMAGE))
    parser.add_argument("--baked", action="store_true", help="also test the model baked in")
    parser.add_argument("--no-build", action="store_true", help="test the built image")
    options = parser.parse_args(argv)

    try:
        model = ctl.resolve_model(options.model_dir)
        cmd = ctl.engine()
    except ctl.ContainerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    card = json.loads((model.version / "model_card.json").read_text())
    print(f"engine: {' '.join(cmd)}; model: {model.version}", flush=True)

    checks = Checks()
    try:
        if not options.no_build:
            build(cmd, options.tag)
        size = image_size_bytes(cmd, options.tag)
        print(f"image size: {size / 1e6:.0f} MB ({options.tag})", flush=True)

        sample = make_sample(model.version, card)
        print(f"inputs: {sample.fields} + a {len(sample.picture)}-byte JPEG", flush=True)
        print(f"host SavedModel price: {sample.expected:.6f}", flush=True)

        print("-- model mounted read-only at run time", flush=True)
        run_variant(cmd, checks, options.tag, model, sample)

        if options.baked:
            baked = options.tag.rsplit(":", 1)[0] + ":baked"
            print(f"-- model baked in at build time (MODEL={model.name})", flush=True)
            if model.folder.parent != ctl.REPO / "models":
                raise RuntimeError(f"{model.folder} is not a folder under models/")
            build(cmd, baked, model=model.name, model_version=model.version.name)
            size = image_size_bytes(cmd, baked)
            print(f"image size: {size / 1e6:.0f} MB ({baked})", flush=True)
            run_variant(cmd, checks, baked, None, sample)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        checks.record("container test ran to the end", False, str(error))

    print(f"container-test: {checks.passed} passed, {checks.failed} failed", flush=True)
    return 0 if checks.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
