"""harness/: free ports, waiting for readiness (statuses on the way, a server that stops first, a
timeout), the child environment, one server process (start, restart, kill) and one in a thread;
model versions placed the exporter's way and the tiny recipe's overrides."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.models import install_version, newest_servable, tiny_sets, train_args, truncate_savedmodel
from harness.server import NotReady, ServiceProcess, ThreadServer, child_env, free_port, settings_env, wait_ready


@pytest.fixture
def flaky_http() -> Iterator[str]:
    """A stdlib HTTP server whose /readyz answers 503 twice, then 200; yields that URL."""
    answers = iter([503, 503])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(next(answers, 200))
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/readyz"
    server.shutdown()
    thread.join(5)


def test_free_port_is_free_on_loopback() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # nobody holds it


def test_wait_ready_returns_the_statuses_seen_on_the_way(flaky_http: str) -> None:
    assert wait_ready(flaky_http, timeout=10, interval=0.01) == [503, 200]


def test_wait_ready_gives_up_as_soon_as_the_server_process_has_stopped() -> None:
    exited = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    exited.wait(30)
    started = time.monotonic()
    with pytest.raises(NotReady, match=r"stopped \(3\)") as raised:
        wait_ready(f"http://127.0.0.1:{free_port()}/readyz", timeout=30, proc=exited)
    assert raised.value.seen == [] and time.monotonic() - started < 5


def test_wait_ready_times_out_with_what_it_saw() -> None:
    started = time.monotonic()
    with pytest.raises(NotReady, match="did not answer 200 within 1 s"):
        wait_ready(f"http://127.0.0.1:{free_port()}/readyz", timeout=1.0, interval=0.05)
    assert time.monotonic() - started < 5


def test_child_env_puts_the_repo_first_and_keeps_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    env = child_env({"PORT": 8001})
    root = str(Path(__file__).resolve().parents[2])
    assert env["PYTHONPATH"] == root + os.pathsep + "/elsewhere"
    assert env["TF_CPP_MIN_LOG_LEVEL"] == "2" and env["PORT"] == "8001" and env["HOME"] == os.environ["HOME"]
    assert settings_env(model_dir=Path("/m"), reload_interval_s=0, api_key=None) == {
        "MODEL_DIR": "/m",
        "RELOAD_INTERVAL_S": "0",
    }


def test_a_server_process_starts_restarts_on_its_port_and_dies(stub_server: ServiceProcess) -> None:
    assert stub_server.name == "uvicorn tests.support.stub_app:app" and stub_server.started_s > 0
    assert wait_ready(stub_server.url + "/readyz", timeout=5) == [200]
    port, pid = stub_server.port, stub_server.pid
    stub_server.restart()
    assert stub_server.port == port and stub_server.pid != pid
    assert wait_ready(stub_server.url + "/readyz", timeout=5) == [200]
    assert stub_server.kill() == -9
    assert stub_server.stop() == -9  # stopping a dead server only reports how it ended


@pytest.mark.slow  # starts a server process (that fails at once)
def test_a_server_that_exits_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    server = ServiceProcess(tmp_path / "server.log", app="tests.support.no_such_module:app", ready_timeout=60)
    with pytest.raises(RuntimeError, match="uvicorn tests.support.no_such_module:app stopped") as raised:
        server.start()
    assert "no_such_module" in str(raised.value)  # uvicorn's own complaint, from the log's tail
    assert server.process is not None and server.process.poll() is not None


@pytest.fixture
def thread_server() -> Iterator[ThreadServer]:
    from tests.support.stub_app import app

    with ThreadServer(app) as server:
        yield server


def test_a_thread_server_serves_until_it_is_left(thread_server: ThreadServer) -> None:
    assert thread_server.poll() is None
    assert wait_ready(thread_server.url + "/readyz", timeout=5) == [200]
    thread_server.__exit__(None, None, None)
    assert thread_server.poll() == 1


def test_versions_are_installed_through_a_hidden_folder_and_the_newest_whole_one_is_found(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "saved_model.pb").write_bytes(b"x" * 1000)
    models = tmp_path / "models" / "price"
    assert newest_servable(models) is None
    install_version(export, models, 1)
    install_version(export, models, 2, truncate_savedmodel, tag="soak")
    assert sorted(p.name for p in models.iterdir()) == ["1", "2"]  # no .tmp- folder left
    assert (models / "2" / "saved_model.pb").stat().st_size == 200
    (models / "3").mkdir()  # a version folder without a SavedModel is not servable
    assert newest_servable(models) == models / "2"


def test_the_tiny_recipe_as_set_overrides(tmp_path: Path) -> None:
    sets = tiny_sets(tmp_path / "items.csv", tmp_path / "models", "bench", epochs=1, baselines=True, max_rows=10)
    assert sets[:3] == [f"data.table='{tmp_path / 'items.csv'}'", f"models_dir='{tmp_path / 'models'}'", "name='bench'"]
    assert "model.image_size=32" in sets and "train.epochs=1" in sets and "train.epochs=2" not in sets
    assert sets[-2:] == ["train.baselines=true", "train.max_rows=10"]
    args = train_args(sets[:1], "--resume")
    assert args[2:] == ["--set", sets[0], "--resume"] and args[1].endswith("training/configs/synthetic.toml")
