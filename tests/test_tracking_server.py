"""`i2sb track` and `i2sb tables` over HTTP against a real `mlflow server` started for this module."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import mlflow
import pytest
from mlflow_server import free_port, start_server
from test_tracking_data import make_run

from i2sb.cli import main
from i2sb.tables import make_tables
from i2sb.tracking import track


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("server"))
    try:
        yield {"url": running.url, "root": running.root}
    finally:
        running.stop()


def test_track_over_http_twice_keeps_one_run_and_reads_back(server, tmp_path):
    args = make_run(tmp_path / "bench", task="blur-gauss", nfe=4, fid=12.5)
    first = track(**args, tracking_uri=server["url"], marker=tmp_path / "m.json")
    second = track(**args, tracking_uri=server["url"])
    assert first["run_id"] == second["run_id"]
    client = mlflow.MlflowClient(server["url"])
    (run,) = client.search_runs([first["experiment_id"]])
    assert run.data.metrics["fid"] == 12.5 and run.data.params["task"] == "blur-gauss"
    trained = run.data.tags["i2sb.train_run_id"]
    steps = [m.step for m in client.get_metric_history(trained, "train_loss")]
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
    rows = (tmp_path / "tables" / "table_jpeg.md").read_text().splitlines()
    (row,) = [r for r in rows if r.startswith("| jpeg-10 |") and "ours" in r]
    assert "| 7.00 |" in row  # the FID read back over HTTP


# One `i2sb track` in a fresh interpreter that waits for GO before it calls MLflow, so the three
# processes of a test hit the server at the same moment rather than one import time apart.
RACER = """
import pathlib, sys, time
import mlflow
from i2sb.cli import main
go = pathlib.Path(sys.argv[1])
pathlib.Path(sys.argv[1] + "." + sys.argv[2]).touch()
while not go.exists():
    time.sleep(0.01)
sys.exit(main(sys.argv[3:]))
"""


def _race(tmp_path, args, uri, experiment, count=3):
    go = tmp_path / "GO"
    for stale in tmp_path.glob("GO*"):
        stale.unlink()
    procs = []
    for i in range(count):
        argv = ["track", "--tracking-uri", uri, "--experiment", experiment]
        argv += ["--metrics", str(args["metrics_json"]), "--train-dir", str(args["train_dir"])]
        argv += ["--samples", str(args["samples"]), "--config", str(args["config_json"])]
        argv += ["--marker", str(tmp_path / f"marker{i}.json")]
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", RACER, str(go), str(i), *argv],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"GO.{i}").exists() for i in range(count)):
        assert time.monotonic() < deadline, "the racing processes did not start"
        time.sleep(0.05)
    go.touch()  # every interpreter has imported mlflow and i2sb: they start together
    results = [(p.wait(timeout=180), *p.communicate()) for p in procs]
    for code, _, err in results:
        assert code == 0, err
    return [json.loads((tmp_path / f"marker{i}.json").read_text())["run_id"] for i in range(count)]


def test_three_concurrent_tracks_of_one_key_leave_one_run_on_an_empty_experiment(server, tmp_path):
    """The experiment does not exist yet: all three create it at once, all adopt one run."""
    args = make_run(tmp_path / "bench", task="jpeg-10", nfe=2)
    run_ids = _race(tmp_path, args, server["url"], "race")
    client = mlflow.MlflowClient(server["url"])
    experiment = client.get_experiment_by_name("race")
    (run,) = client.search_runs([experiment.experiment_id])
    assert set(run_ids) == {run.info.run_id}
    assert run.data.metrics["psnr"] == 21.5
    training = client.get_experiment_by_name("race/training")
    (trained,) = client.search_runs([training.experiment_id])  # one training run too
    assert run.data.tags["i2sb.train_run_id"] == trained.info.run_id
    steps = [m.step for m in client.get_metric_history(trained.info.run_id, "train_loss")]
    assert sorted(steps) == [10, 20, 30, 40, 50]  # no step twice
    # A later track of the key works and keeps the run (it used to fail on 3 active runs).
    again = _race(tmp_path, args, server["url"], "race")
    assert set(again) == {run.info.run_id}
    assert len(client.search_runs([experiment.experiment_id])) == 1


def test_duplicates_left_by_an_older_version_are_settled_to_the_earliest(server, tmp_path):
    args = make_run(tmp_path / "bench", task="sr4x-pool", nfe=3)
    client = mlflow.MlflowClient(server["url"])
    experiment_id = client.create_experiment("legacy-duplicates")
    key = "bench/sr4x-pool/i2sb/ddpm/nfe3"
    made = [
        client.create_run(experiment_id, start_time=1000 + i, tags={"i2sb.key": key})
        for i in range(3)
    ]
    out = track(**args, tracking_uri=server["url"], experiment="legacy-duplicates")
    (run,) = client.search_runs([experiment_id])
    assert run.info.run_id == out["run_id"]
    assert made[0].info.run_id in (out["run_id"], run.data.tags.get("i2sb.replaces"))


def _dead_end_uri() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


def test_an_unreachable_server_fails_fast_with_one_line_naming_it(tmp_path, capsys):
    args = make_run(tmp_path / "bench")
    uri = _dead_end_uri()
    started = time.monotonic()
    code = main(
        ["track", "--tracking-uri", uri, "--metrics", str(args["metrics_json"])]
        + ["--train-dir", str(args["train_dir"]), "--samples", str(args["samples"])]
        + ["--config", str(args["config_json"])]
    )
    seconds = time.monotonic() - started
    err = capsys.readouterr().err.strip()
    assert code == 1 and seconds < 30
    assert len(err.splitlines()) == 1 and uri in err and "unreachable" in err


def test_a_server_that_accepts_but_never_answers_fails_within_30_s(tmp_path):
    args = make_run(tmp_path / "bench")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes connections; nothing ever replies
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(RuntimeError, match=f"{uri} is unreachable"):
            track(**args, tracking_uri=uri)
        assert time.monotonic() - started < 30
