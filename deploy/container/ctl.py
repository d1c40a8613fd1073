"""Build and run the service image with docker where a Docker engine answers, podman otherwise.

    python3 deploy/container/ctl.py engine            # print the engine command that would be used
    python3 deploy/container/ctl.py base              # build the local podman base image if missing
    python3 deploy/container/ctl.py build [--model price] [--tag price-service:latest]
    python3 deploy/container/ctl.py run [--model-dir models/price] [--port 8000] [-- EXTRA RUN ARGS]
    python3 deploy/container/ctl.py model [--model-dir models/price]   # the version to be served

Standard library only (and common/files.py and harness/models.py, which are too), so the system
python3 runs it, as a file or as `python3 -m deploy.container.ctl`. Podman (as verified on a
machine without a Docker engine or a reachable container registry) runs with `--runtime runc`,
builds on a local Debian base made with debootstrap, and passes the host's CA bundle to pip for
the build only.
Environment: CONTAINER_ENGINE (docker|podman, to force one), IMAGE (tag), BASE_IMAGE (base to
build on), DEBIAN_MIRROR (for debootstrap), PIP_CA_BUNDLE (CA file handed to pip under podman).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

if not __package__:  # run as a file (python3 deploy/container/ctl.py): import from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.files import is_version_name  # noqa: E402  (standard library only, like harness.models)
from harness.models import newest_servable  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_IMAGE = "price-service:latest"
DEFAULT_MODEL_DIR = "models/price"
LOCAL_BASE = "localhost/python-base:bookworm"
CONTAINER_MODELS = "/models"
# Without these two limits a podman start here fails with "setrlimit: Operation not permitted".
PODMAN_RUN_FLAGS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
# Settings forwarded from the caller's environment to `run` when set.
FORWARDED_SETTINGS = ("LOG_LEVEL", "API_KEY")


class ContainerError(RuntimeError):
    """A one-line, user-facing reason why building or running cannot go on."""


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(["docker", "info"], check=False, capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def engine() -> list[str]:
    """The command prefix of the container engine: docker if its engine answers, else podman."""
    forced = os.environ.get("CONTAINER_ENGINE", "").strip().lower()
    if forced not in ("", "docker", "podman"):
        raise ContainerError(f"CONTAINER_ENGINE={forced!r}: use docker or podman")
    if forced == "docker" or (not forced and _docker_answers()):
        return ["docker"]
    if shutil.which("podman") is None:
        raise ContainerError(
            "no Docker engine answers and podman is missing: apt-get install -y podman runc debootstrap"
        )
    return ["podman", "--runtime", "runc"]


def is_podman(cmd: list[str]) -> bool:
    return cmd[0] == "podman"


def image_exists(cmd: list[str], ref: str) -> bool:
    probe = subprocess.run([*cmd, "image", "inspect", ref], check=False, capture_output=True)
    return probe.returncode == 0


def ensure_base(cmd: list[str], log=print) -> str:
    """The local Debian base for podman builds, made once with debootstrap (about a minute)."""
    if image_exists(cmd, LOCAL_BASE):
        return LOCAL_BASE
    if shutil.which("debootstrap") is None:
        raise ContainerError(f"{LOCAL_BASE} is missing and so is debootstrap: apt-get install -y debootstrap")
    log(f"building the base image {LOCAL_BASE} with debootstrap (once)")
    rootfs = Path(tempfile.mkdtemp(prefix="python-base-", dir="/var/tmp"))
    try:
        boot = [
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            "bookworm",
            str(rootfs),
        ]
        if os.environ.get("DEBIAN_MIRROR"):
            boot.append(os.environ["DEBIAN_MIRROR"])
        done = subprocess.run(boot, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            raise ContainerError(f"debootstrap failed with exit code {done.returncode}")
        # Package caches and documentation are not needed in a base for serving.
        for junk in (
            "var/cache/apt/archives/*.deb",
            "var/lib/apt/lists/*",
            "usr/share/doc/*",
            "usr/share/man/*",
            "usr/share/info/*",
            "usr/share/locale/*",
        ):
            for entry in rootfs.glob(junk):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink(missing_ok=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            [
                *cmd,
                "import",
                "--change",
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--change",
                "ENV LANG=C.UTF-8",
                "--change",
                'CMD ["python3"]',
                "-",
                LOCAL_BASE,
            ],
            stdin=tar.stdout,
            check=False,
            capture_output=True,
            text=True,
        )
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise ContainerError(f"importing the base image failed: {imported.stderr.strip()[-500:]}")
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return LOCAL_BASE


def build_command(cmd: list[str], tag: str, model: str = "", model_version: str = "") -> list[str]:
    """The build command for this engine (the base is made first under podman)."""
    args = [*cmd, "build", "-t", tag, "-f", str(REPO / "Dockerfile")]
    base = os.environ.get("BASE_IMAGE", "")
    if is_podman(cmd):
        base = base or ensure_base(cmd)
        # docker format keeps HEALTHCHECK (the OCI format drops it); the host's CA bundle reaches
        # pip through the machine's TLS proxy, for this local build only.
        args += ["--format", "docker", "--network", "host"]
        ca = os.environ.get("PIP_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
        if ca and Path(ca).is_file():
            args += [
                "-v",
                f"{ca}:/host-ca.crt:ro",
                "--build-arg",
                "PIP_CERT=/host-ca.crt",
            ]
    if base:
        args += ["--build-arg", f"BASE_IMAGE={base}"]
    if model:
        args += ["--build-arg", f"MODEL={model}"]
    if model_version:
        args += ["--build-arg", f"MODEL_VERSION={model_version}"]
    return [*args, str(REPO)]


class ModelChoice(NamedTuple):
    """The model to serve: its models/<name> folder and the version the container will serve.

    A version folder given directly (models/price/3) is pinned: only it is mounted.
    """

    folder: Path
    version: Path
    pinned: bool

    @property
    def name(self) -> str:
        return self.folder.name

    def mount_args(self) -> list[str]:
        target = f"{CONTAINER_MODELS}/{self.name}"
        source, inside = (self.version, f"{target}/{self.version.name}") if self.pinned else (self.folder, target)
        return ["-v", f"{source}:{inside}:ro", "-e", f"MODEL_DIR={target}"]


def resolve_model(given: str | None) -> ModelChoice:
    """The model folder (models/<name>, or one version of it) from the argument, $MODEL_DIR or
    models/price; a one-line error pointing at `make train` when it holds no version."""
    raw = given or os.environ.get("MODEL_DIR") or DEFAULT_MODEL_DIR
    path = Path(raw)
    if not path.is_absolute() and not path.exists():
        path = REPO / path
    path = path.resolve()
    if (path / "saved_model.pb").is_file() and is_version_name(path.name):
        return ModelChoice(path.parent, path, pinned=True)
    version = newest_servable(path)
    if version is None:
        raise ContainerError(f"no trained model under {raw} (no <n>/saved_model.pb): run `make train` first")
    return ModelChoice(path, version, pinned=False)


def run_command(
    cmd: list[str],
    tag: str,
    model: ModelChoice | None,
    publish: str,
    name: str,
    detach: bool = False,
    extra: list[str] | None = None,
    forward: bool = True,
) -> list[str]:
    """The run command: published on `publish`, the model mounted read-only unless baked in."""
    args = [*cmd, "run", "--name", name, "-p", f"{publish}:8000"]
    args += ["-d"] if detach else ["--rm", *(["-it"] if sys.stdin.isatty() else [])]
    if is_podman(cmd):
        args += PODMAN_RUN_FLAGS
    if model is not None:
        args += model.mount_args()
    for setting in FORWARDED_SETTINGS if forward else ():
        if os.environ.get(setting):
            args += ["-e", setting]
    return [*args, *(extra or []), tag]


def _print_cmd(args: list[str]) -> None:
    print("+ " + " ".join(args), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("engine", help="print the engine command")
    sub.add_parser("base", help="build the local podman base image if missing")
    build = sub.add_parser("build", help="build the image")
    build.add_argument("--tag", default=os.environ.get("IMAGE", DEFAULT_IMAGE))
    build.add_argument("--model", default="", help="bake in models/MODEL (its newest version)")
    build.add_argument("--model-version", default="")
    run = sub.add_parser("run", help="run the image in the foreground, model mounted read-only")
    run.add_argument("--tag", default=os.environ.get("IMAGE", DEFAULT_IMAGE))
    run.add_argument(
        "--model-dir",
        default=None,
        help="host models/<name> folder (default models/price)",
    )
    run.add_argument("--baked", action="store_true", help="use the model baked into the image")
    run.add_argument("--port", default=os.environ.get("PORT", "8000"))
    run.add_argument("--bind", default="127.0.0.1", help="host address to publish on")
    run.add_argument("--name", default="price-service")
    run.add_argument("extra", nargs="*", help="extra run arguments, after --")
    model = sub.add_parser("model", help="print the model version that would be served")
    model.add_argument("--model-dir", default=None)
    options = parser.parse_args(argv)

    try:
        if options.what == "model":
            print(resolve_model(options.model_dir).version)
            return 0
        cmd = engine()
        if options.what == "engine":
            print(" ".join(cmd))
            return 0
        if options.what == "base":
            print(ensure_base(cmd) if is_podman(cmd) else "docker: no local base needed")
            return 0
        if options.what == "build":
            args = build_command(cmd, options.tag, options.model, options.model_version)
            _print_cmd(args)
            return subprocess.run(args, check=False).returncode
        model = None if options.baked else resolve_model(options.model_dir)
        args = run_command(
            cmd,
            options.tag,
            model,
            f"{options.bind}:{options.port}",
            options.name,
            extra=options.extra,
        )
        _print_cmd(args)
        return subprocess.run(args, check=False).returncode
    except ContainerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
