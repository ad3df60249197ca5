"""`tracking.live`: training logs to MLflow while it runs, on sqlite and on a real `mlflow server`
that is stopped in the middle (a warning, never a failed training)."""

from __future__ import annotations

import dataclasses

import mlflow
import pytest
from mlflow_server import start_server
from test_train import Images, tiny_config

from i2sb.tracking.live import LiveRun, live_run_for
from i2sb.tracking.training import track_training
from i2sb.train import TrainingDiverged, train


class Recorder:
    """A TrainMonitor that remembers every call."""

    def __init__(self):
        self.calls = []

    def start(self, options):
        self.calls.append(("start", options["task"]))

    def log(self, row):
        self.calls.append(("log", row["step"], sorted(k for k in row if k != "time")))

    def image(self, path, step):
        self.calls.append(("image", step, path.is_file()))

    def end(self, status):
        self.calls.append(("end", status))


def _tracked_config(uri, root, **train_settings):
    cfg = tiny_config(**train_settings)
    tracking = dataclasses.replace(
        cfg.tracking, uri=uri, artifact_root=str(root / "art"), experiment="live"
    )
    return dataclasses.replace(cfg, benchmark="bench", tracking=tracking)


def test_the_trainer_shows_the_monitor_every_row_grid_and_the_end(tmp_path):
    recorder = Recorder()
    cfg = tiny_config(iterations=2, validate_every=2)
    train(cfg, "sr4x-pool", tmp_path, train_set=Images(), val_set=Images(4), monitor=recorder)
    loss_row = ["images_per_s", "it_per_s", "loss", "lr", "step"]
    assert recorder.calls == [
        ("start", "sr4x-pool"),
        ("log", 1, loss_row),
        ("log", 2, loss_row),
        ("log", 2, ["step", "val_psnr", "val_psnr_degraded"]),
        ("image", 2, True),
        ("end", "FINISHED"),
    ]


def test_a_diverged_training_ends_its_live_run_failed(tmp_path):
    recorder = Recorder()
    with pytest.raises(TrainingDiverged):
        train(tiny_config(), "sr4x-pool", tmp_path, train_set=Images(poison=True),
              val_set=Images(4), monitor=recorder)  # fmt: skip
    assert recorder.calls[-1] == ("end", "FAILED")


def test_live_training_on_sqlite_is_the_run_the_track_step_completes(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = _tracked_config(uri, tmp_path, iterations=4, log_every=2, validate_every=4)
    live = live_run_for(cfg, "sr4x-pool", system_metrics_interval_s=0.2)
    out = tmp_path / "train"
    train(cfg, "sr4x-pool", out, train_set=Images(), val_set=Images(4), monitor=live)
    assert live.stopped is None
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("live/training")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_id == live.run_id and run.info.status == "FINISHED"
    assert run.data.tags["i2sb.key"] == "bench/sr4x-pool/train"
    assert run.data.params["config.bridge.beta_max"] == "0.3"  # resolved, not null
    assert run.data.params["beta_max"] == "0.3" and run.data.params["task"] == "sr4x-pool"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
    assert steps == [2, 4]
    for name in ("lr", "train_it_per_s", "train_images_per_s", "val_psnr"):
        assert name in run.data.metrics
    assert any(name.startswith("system/cpu") for name in run.data.metrics)
    assert any(name.startswith("system/system_memory") for name in run.data.metrics)
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "validation")}
    assert "validation/val_0000004.png" in logged
    # The track step finds the same run and has nothing to replace.
    run_id, _ = track_training(client, uri, "live", str(tmp_path / "art"), out, "bench")
    assert run_id == live.run_id
    assert len(client.search_runs([experiment.experiment_id])) == 1


def test_a_server_stopped_mid_training_costs_a_warning_not_the_training(tmp_path, capsys):
    server = start_server(tmp_path / "server")
    try:
        cfg = _tracked_config(server.url, tmp_path, iterations=6, log_every=1, validate_every=6)

        class StopsTheServer(LiveRun):
            def log(self, row):
                super().log(row)
                if row["step"] == 2:
                    server.stop()  # the server goes away in the middle of training

        base = live_run_for(cfg, "sr4x-pool")
        live = StopsTheServer(base.uri, base.experiment, base.key, base.name, None, 60.0)
        out = tmp_path / "train"
        result = train(cfg, "sr4x-pool", out, train_set=Images(), val_set=Images(4), monitor=live)
    finally:
        server.stop()
    assert result.summary["iterations"] == 6 and (out / "summary.json").is_file()
    assert live.stopped is not None and live.stopped.startswith("log:")
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning: MLflow" in line]
    assert len(warnings) == 1 and server.url in warnings[0]
    # What reached the server before it stopped is in its store.
    client = mlflow.MlflowClient(f"sqlite:///{server.root}/db")
    run = client.get_run(live.run_id)
    assert run.data.params["config.bridge.beta_max"] == "0.3"
    steps = [m.step for m in client.get_metric_history(live.run_id, "train_loss")]
    assert steps == [1, 2]


# A LiveRun whose MLflow client dies (kill -9) while log_image copies the grid: argv = store URI,
# grid path. The process's temporary folder is $TMPDIR, which the test points at a folder of its own.
KILLED_IN_LOG_IMAGE = """
import os, sys
from pathlib import Path
from i2sb.tracking.live import LiveRun

live = LiveRun(sys.argv[1], "live", "bench/sr4x-pool/train", "train sr4x-pool")
live.start({"task": "sr4x-pool"})
assert live.stopped is None, live.stopped
live._client.log_artifact = lambda *args, **kwargs: os._exit(9)
live.image(Path(sys.argv[2]), 2)
"""


def test_a_training_killed_in_log_image_leaves_nothing_in_tmp_and_the_next_grid_cleans_up(
    tmp_path,
):
    """MLflow's log_image copies the grid through a temporary folder: staged beside the grid, not
    in /tmp (where a kill left it), and removed by the next grid logged in that folder."""
    import os
    import subprocess
    import sys

    from PIL import Image

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    system_tmp, validation = tmp_path / "system-tmp", tmp_path / "train" / "validation"
    system_tmp.mkdir()
    validation.mkdir(parents=True)
    grid = validation / "val_0000002.png"
    Image.new("RGB", (8, 8), (40, 90, 200)).save(grid)
    env = os.environ | {"TMPDIR": str(system_tmp)}
    proc = subprocess.run([sys.executable, "-c", KILLED_IN_LOG_IMAGE, uri, str(grid)],
                          capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert proc.returncode == 9, proc.stderr[-3000:]
    assert list(system_tmp.iterdir()) == []
    (left,) = [p for p in validation.iterdir() if p != grid]
    assert left.name.startswith("mlflow_image.tmp-") and any(left.iterdir())

    live = LiveRun(uri, "live", "bench/sr4x-pool/train", "train sr4x-pool")
    live.start({"task": "sr4x-pool"})
    live.image(grid, 2)
    assert live.stopped is None
    assert list(validation.iterdir()) == [grid]
    images = mlflow.MlflowClient(uri).list_artifacts(live.run_id, "images")
    assert len(images) == 2  # the PNG and MLflow's compressed WEBP of the grid
    live.end("FINISHED")
