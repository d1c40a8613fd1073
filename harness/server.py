"""One way to start a server and know when it serves: for the benchmark, the reliability runs,
the tests and the container test.

- ``free_port()``: a free TCP port on 127.0.0.1.
- ``wait_ready(url, timeout, proc=None)``: poll ``url`` until it answers 200; give up early when
  ``proc`` (anything with ``poll()``: a Popen, a thread server, a container) has stopped.
- ``child_env(extra)``: the environment of a child process (the repo importable, TensorFlow quiet).
- ``ServiceProcess``: ``python -m service`` (or ``uvicorn APP``) in its own process on a free
  loopback port, its output in a log file; started, restarted, stopped (SIGTERM, then SIGKILL).
- ``ThreadServer``: an ASGI app served by uvicorn in a thread of this process (tests).

Standard library only at import (``deploy/container/ctl.py`` runs under the system python3);
uvicorn and psutil are imported where they are used. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, Self

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
# Loopback never goes through a proxy, whatever http_proxy says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Pollable(Protocol):
    def poll(self) -> Any: ...  # None while running


class NotReady(RuntimeError):
    """The server did not answer 200 in time, or stopped first; ``seen``: the statuses it gave."""

    def __init__(self, message: str, seen: list[int]) -> None:
        super().__init__(message)
        self.seen = seen


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now (the OS's choice)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def http_status(url: str, timeout: float = 5.0) -> int:
    """The status of ``GET url``; 0 when nothing answers (not listening yet, reset, timed out)."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError):
        return 0


def wait_ready(url: str, timeout: float, proc: Pollable | None = None, interval: float = 0.25) -> list[int]:
    """Poll ``GET url`` until it answers 200; returns the statuses seen on the way (each change
    once, 200 last). Raises NotReady after ``timeout`` seconds, or as soon as ``proc.poll()``
    is not None (the server stopped before it was ready)."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        status = http_status(url, timeout=min(5.0, max(0.2, deadline - time.monotonic())))
        if status and (not seen or seen[-1] != status):
            seen.append(status)
        if status == 200:
            return seen
        code = proc.poll() if proc is not None else None
        if code is not None:
            raise NotReady(f"stopped ({code}) before {url} answered 200 (statuses seen: {seen})", seen)
        if time.monotonic() >= deadline:
            raise NotReady(f"{url} did not answer 200 within {timeout:.0f} s (statuses seen: {seen})", seen)
        time.sleep(interval)


def child_env(extra: Mapping[str, object] | None = None) -> dict[str, str]:
    """The environment of a child process: this one's, the repo first on PYTHONPATH, TensorFlow's
    native logging quiet unless set, then ``extra`` (values turned into strings)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update({key: str(value) for key, value in (extra or {}).items()})
    return env


def settings_env(**settings: object) -> dict[str, str]:
    """Service settings as the environment variables it reads: ``model_dir=p`` -> ``MODEL_DIR``;
    a None value is left out (the setting keeps its default)."""
    return {key.upper(): str(value) for key, value in settings.items() if value is not None}


class ServiceProcess:
    """A server in its own process on a free 127.0.0.1 port, its output in ``log_path``.

    ``ServiceProcess(log, env)`` runs ``python -m service`` (HOST and PORT set: how `make serve`
    and the container start it); ``app="pkg.module:app"`` runs ``uvicorn APP`` instead. ``with``
    (or ``start()``) returns once ``ready_path`` answers 200: RuntimeError, with the end of the
    log, if the process exits first or takes longer than ``ready_timeout``. ``stop()`` sends
    SIGTERM, then SIGKILL after ``stop_timeout``; ``kill()`` SIGKILL at once; ``restart()``
    starts it again on the same port (the log is appended to).
    """

    def __init__(
        self,
        log_path: Path,
        env: Mapping[str, object] | None = None,
        *,
        app: str | None = None,
        module: str = "service",
        ready_timeout: float = 240.0,
        ready_path: str = "/readyz",
        stop_timeout: float = 20.0,
    ) -> None:
        self.log_path = Path(log_path)
        self.env = dict(env or {})
        self.app, self.module = app, module
        self.ready_timeout, self.ready_path, self.stop_timeout = ready_timeout, ready_path, stop_timeout
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_s = 0.0  # seconds from the start of the process until it was ready

    @property
    def name(self) -> str:
        return f"uvicorn {self.app}" if self.app else f"python -m {self.module}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def command(self) -> list[str]:
        if self.app is None:
            return [sys.executable, "-m", self.module]
        return [sys.executable, "-m", "uvicorn", self.app, "--host", LOOPBACK, "--port", str(self.port),
                "--no-access-log", "--log-level", "warning"]  # fmt: skip

    def start(self) -> Self:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = child_env({**self.env, "HOST": LOOPBACK, "PORT": self.port})
        started = time.monotonic()
        with self.log_path.open("ab" if self.process else "wb") as log:  # the child keeps its own handle
            self.process = subprocess.Popen(self.command(), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(self.url + self.ready_path, self.ready_timeout, self.process)
        except NotReady as error:
            self.stop()
            raise RuntimeError(f"{self.name} {error}; its log ({self.log_path}) ends:\n{self.log_tail()}") from None
        self.started_s = time.monotonic() - started
        return self

    def stop(self) -> int | None:
        """SIGTERM, SIGKILL after ``stop_timeout``; the exit code (None if it never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(30)

    def kill(self) -> int | None:
        """SIGKILL at once (a crash, as the server sees it)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        return self.process.wait(30) if self.process is not None else None

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def rss_bytes(self) -> int:
        """Resident memory of the server process (psutil)."""
        import psutil

        return int(psutil.Process(self.pid).memory_info().rss)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ThreadServer:
    """An ASGI ``app`` served by uvicorn in a daemon thread of this process, on a free 127.0.0.1
    port: ``with`` waits until ``ready_path`` answers 200, leaving asks uvicorn to exit."""

    def __init__(self, app: Any, ready_path: str = "/readyz", ready_timeout: float = 60.0) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.ready_path, self.ready_timeout = ready_path, ready_timeout
        config = uvicorn.Config(
            app, host=LOOPBACK, port=self.port, log_level="warning", access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="thread-server", daemon=True)

    def poll(self) -> int | None:
        """None while the server thread runs (for ``wait_ready``)."""
        return None if self.thread.is_alive() else 1

    def __enter__(self) -> Self:
        self.thread.start()
        try:
            wait_ready(self.url + self.ready_path, self.ready_timeout, self)
        except NotReady:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
