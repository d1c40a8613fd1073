"""`python -m training launch`: n local multi-worker training processes, restarted on failure."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_ports(n: int) -> list[int]:
    """n TCP ports that were free a moment ago on 127.0.0.1."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def local_tf_configs(n: int, ports: list[int] | None = None) -> list[str]:
    """The TF_CONFIG of each of n workers on 127.0.0.1 (worker 0 is the chief)."""
    ports = ports or free_ports(n)
    workers = [f"127.0.0.1:{p}" for p in ports]
    return [json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}) for i in range(n)]


class _Workers:
    """n worker processes of one job, each with its TF_CONFIG and its log file."""

    def __init__(self, n: int, cmd: list[str], log_dir: Path):
        self.configs, self.cmd, self.log_dir = local_tf_configs(n), cmd, log_dir
        self.procs = [self.start(i) for i in range(n)]
        self.done, self.codes = [False] * n, [0] * n

    def start(self, i: int) -> subprocess.Popen:
        out = open(self.log_dir / f"worker-{i}.log", "ab")  # noqa: SIM115 - closed with the process
        env = {**os.environ, "TF_CONFIG": self.configs[i]}
        return subprocess.Popen(self.cmd, env=env, stdout=out, stderr=subprocess.STDOUT)

    def settle(self, i: int, restarts: int, max_restarts: int) -> bool:
        """Note worker i's exit; restart it if it failed and restarts are left. True if restarted."""
        code = self.procs[i].returncode
        if code == 0:
            self.done[i] = True
        elif code == 2 or restarts >= max_restarts:  # a user error does not heal by restarting
            self.done[i], self.codes[i] = True, code
        else:
            print(f"worker {i} exited with {code}: restart {restarts + 1}/{max_restarts}", file=sys.stderr)
            self.procs[i] = self.start(i)
            return True
        return False

    def kill_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    def report(self) -> None:
        for i, p in enumerate(self.procs):
            tail = (self.log_dir / f"worker-{i}.log").read_text(errors="replace").splitlines()[-3:]
            print(f"worker {i}: exit {p.returncode}; " + " | ".join(tail), file=sys.stderr)


def launch(n: int, train_args: list[str], max_restarts: int = 3, log_dir: Path | None = None) -> int:
    """Run `python -m training train ... --strategy multi-worker` as n local workers.

    Like a cluster manager with restartPolicy OnFailure: a worker that exits non-zero (or is
    killed) is started again with the same TF_CONFIG, up to `max_restarts` times in all; the
    restarted job continues from the chief's last backed-up epoch. Returns the chief's exit code.
    """
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="workers-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    workers = _Workers(
        n, [sys.executable, "-m", "training", "train", *train_args, "--strategy", "multi-worker"], log_dir
    )
    print(f"launched {n} workers; logs in {log_dir}", file=sys.stderr)
    restarts = 0
    while not all(workers.done):
        time.sleep(0.5)
        for i, p in enumerate(workers.procs):
            if not workers.done[i] and p.poll() is not None:
                restarts += workers.settle(i, restarts, max_restarts)
        if any(workers.codes):
            workers.kill_all()
            break
    workers.report()
    return next((c for c in workers.codes if c), 0)
