"""`i2sb track` and `i2sb tables` over HTTP against a real `mlflow server` started for this module."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import mlflow
import pytest
from test_tracking_data import make_run

from i2sb.tables import make_tables
from i2sb.tracking import track

START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the server's gunicorn/uvicorn workers too
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("server")
    port = _free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{root}/db",
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
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while not _healthy(url):
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server not healthy after {START_TIMEOUT_S} s")
            try:  # waits a little, and notices a server that died at start
                proc.wait(timeout=0.25)
                raise RuntimeError(f"mlflow server exited: {(root / 'server.log').read_text()}")
            except subprocess.TimeoutExpired:
                pass
        yield {"url": url, "root": root}
    finally:
        _stop(proc)
        log.close()


def test_track_over_http_twice_keeps_one_run_and_reads_back(server, tmp_path):
    args = make_run(tmp_path / "bench", task="blur-gauss", nfe=4, fid=12.5)
    first = track(**args, tracking_uri=server["url"], marker=tmp_path / "m.json")
    second = track(**args, tracking_uri=server["url"])
    assert first["run_id"] == second["run_id"]
    client = mlflow.MlflowClient(server["url"])
    (run,) = client.search_runs([first["experiment_id"]])
    assert run.data.metrics["fid"] == 12.5 and run.data.params["task"] == "blur-gauss"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
    assert sorted(steps) == [10, 20, 30, 40, 50]
    paths = {a.path for a in client.list_artifacts(run.info.run_id, "samples")}
    assert paths == {"samples/sample_grid.png"}
    location = client.get_experiment(first["experiment_id"]).artifact_location
    assert location.startswith(str(server["root"] / "art"))  # the server's root, not ours


def test_tables_over_http(server, tmp_path):
    track(
        **make_run(tmp_path / "report", task="jpeg-10", nfe=3, fid=7.0), tracking_uri=server["url"]
    )
    result = make_tables(server["url"], "report", tmp_path / "tables")
    assert result["num_runs"] == 1
    assert (
        "| jpeg-10 | ours (i2sb) | 3 | 7.00 |"
        in (tmp_path / "tables" / "table_jpeg.md").read_text()
    )
