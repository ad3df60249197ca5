"""`i2sb tables` against a dead tracking server fails within seconds with one line naming the URI,
as `track` does (issue 22 §5); before, MLflow's retries stalled it for minutes."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _closed_port() -> int:
    with socket.socket() as probe:  # bound, then released: nothing listens there afterwards
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_tables_against_a_dead_server_is_one_line_naming_the_uri(tmp_path):
    uri = f"http://127.0.0.1:{_closed_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_HTTP")}
    # a deadline for a hang, not a speed figure: MLflow's own retries take minutes
    proc = subprocess.run(
        [sys.executable, "-m", "i2sb", "tables", "--tracking-uri", uri, "--experiment", "demo",
         "--out", str(tmp_path / "t")],
        capture_output=True, text=True, timeout=90, env={**env, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert f"MLflow tracking server {uri} is unreachable" in proc.stderr
    assert not (tmp_path / "t").exists()


def test_the_report_step_checks_the_server_before_any_work(tmp_path, monkeypatch):
    from i2sb.tables import make_tables
    from i2sb.tracking.transport import TrackingUnreachable

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # without the check: fail, not stall
    uri = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(TrackingUnreachable, match=re.escape(uri)):
        make_tables(uri, "demo", tmp_path / "t")
    assert not (tmp_path / "t").exists()
