"""Container test: build the image, run it, and check it from outside like a client would.

    .venv/bin/python deploy/container/container_test.py [--model-dir models/price] [--baked]

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
import base64
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ctl  # the engine helpers beside this file

REL_TOL = 1e-4
# The API answers prices rounded to cents, so a price may also be up to half a cent off.
CENT_ROUNDING = 0.005
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sample_image() -> bytes:
    """A small deterministic JPEG photo stand-in (the same bytes go to the container and here)."""
    from PIL import Image

    picture = Image.new("RGB", (96, 80))
    picture.putdata([((x * 8) % 256, (y * 5) % 256, (x * y) % 256) for y in range(80) for x in range(96)])
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def sample_fields(card: dict) -> dict[str, object]:
    """One plausible raw value per non-image input, taken from the model card."""
    fields: dict[str, object] = {}
    for spec in card["inputs"]:
        if spec.get("role") == "image":
            continue
        examples = spec.get("examples") or []
        if examples:
            value = examples[0]
        elif spec.get("role") == "numeric":
            value = spec.get("mean", spec.get("min", 1.0))
        elif spec.get("vocabulary"):
            value = spec["vocabulary"][0]
        else:
            value = "good condition"
        fields[spec["name"]] = float(value) if spec.get("role") == "numeric" else str(value)
    return fields


def image_input(card: dict) -> str:
    return next(
        (spec["name"] for spec in card["inputs"] if spec.get("role") == "image"),
        "image",
    )


def reference_price(version_dir: Path, card: dict, fields: dict, picture: bytes) -> float:
    """The price the SavedModel itself gives for the same raw inputs, outside the container."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    model = tf.saved_model.load(str(version_dir))
    serve = model.signatures[card.get("signature", "serving_default")]
    feeds = {}
    for spec in card["inputs"]:
        name = spec["name"]
        if spec.get("role") == "image":
            feeds[name] = tf.constant([picture], dtype=tf.string)
        elif spec.get("dtype") == "float32" or spec.get("role") == "numeric":
            feeds[name] = tf.constant([float(fields[name])], dtype=tf.float32)
        else:
            feeds[name] = tf.constant([str(fields[name]).encode()], dtype=tf.string)
    return float(serve(**feeds)[card.get("output", "price")].numpy()[0])


def same_price(answered: float, expected: float) -> bool:
    """Equal within 1e-4 relative, or within the API's rounding to cents."""
    return abs(answered - expected) <= max(REL_TOL * abs(expected), CENT_ROUNDING + 1e-9)


def answered_price(payload: object) -> float:
    price = payload["price"] if isinstance(payload, dict) else payload
    if isinstance(price, list):
        price = price[0]
    return float(price)


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


def wait_ready(client, base: str, cmd: list[str], name: str) -> tuple[bool, list[int]]:
    """Poll /readyz until 200; give up when the container exits or the time is out."""
    import httpx

    seen: list[int] = []
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            status = client.get(f"{base}/readyz", timeout=5).status_code
        except httpx.TransportError:  # not listening yet
            status = 0
        if status and (not seen or seen[-1] != status):
            seen.append(status)
        if status == 200:
            return True, seen
        state = sh([*cmd, "inspect", "--format", "{{.State.Status}}", name]).stdout.strip()
        if state not in ("running", "created", "configured", ""):
            print(f"container is {state}", file=sys.stderr)
            return False, seen
        time.sleep(0.5)
    return False, seen


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


@dataclass
class Sample:
    """One request's raw inputs and what the SavedModel answers for them on the host."""

    version: str
    card: dict
    fields: dict
    picture: bytes
    expected: float

    def json_body(self) -> dict:
        body = dict(self.fields)
        body[image_input(self.card)] = base64.b64encode(self.picture).decode()
        return body

    def form(self) -> dict:
        return {k: repr(v) if isinstance(v, float) else v for k, v in self.fields.items()}


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


def run_variant(
    cmd: list[str],
    checks: Checks,
    tag: str,
    model: ctl.ModelChoice | None,
    sample: Sample,
) -> None:
    """Run one image, check it from outside, and remove the container whatever happens."""
    import httpx

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
        with httpx.Client(timeout=60) as client:
            ready, seen = wait_ready(client, base, cmd, name)
            elapsed = time.monotonic() - started
            detail = f"statuses seen {seen}, {elapsed:.1f} s"
            if not checks.record("/readyz answers 200", ready, detail):
                return
            print(f"time from run to ready: {elapsed:.1f} s", flush=True)
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

        fields, picture = sample_fields(card), sample_image()
        expected = reference_price(model.version, card, fields, picture)
        sample = Sample(model.version.name, card, fields, picture, expected)
        print(f"inputs: {fields} + a {len(picture)}-byte JPEG", flush=True)
        print(f"host SavedModel price: {expected:.6f}", flush=True)

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
