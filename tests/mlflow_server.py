"""A real `mlflow server` on 127.0.0.1 for tests: sqlite backend in a temporary folder, a free port,
started and stopped (by its process group) by the test that asks for it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@dataclass
class Server:
    url: str
    root: Path
    proc: subprocess.Popen

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the server's workers too
            self.proc.wait(timeout=10)
        with __import__("contextlib").suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # a worker left behind by the SIGTERM


def start_server(root: Path, backend: str | None = None) -> Server:
    """A server on ``backend`` (default: a new sqlite file in ``root``)."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            backend or f"sqlite:///{root}/db",
            "--default-artifact-root",
            str(root / "art"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    server = Server(f"http://127.0.0.1:{port}", root, proc)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not healthy(server.url):
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"mlflow server not healthy after {START_TIMEOUT_S} s")
        try:  # waits a little, and notices a server that died at start
            proc.wait(timeout=0.25)
            raise RuntimeError(f"mlflow server exited: {(root / 'server.log').read_text()}")
        except subprocess.TimeoutExpired:
            pass
    return server
