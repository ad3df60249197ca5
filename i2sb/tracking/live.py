"""Training as a live MLflow run (``tracking.live``): params at start, every metrics.jsonl row as it
is written, validation PSNR and grids, and MLflow's system metrics (CPU, memory, GPU where
nvidia-ml-py finds one).

Only rank 0 makes one (the trainer calls it from the main process only). It is best effort: the
first failure (a server that went away, a locked file) costs one warning and ends live logging;
training goes on, ``metrics.jsonl`` keeps every step and the workflow's ``track`` step fills the
same run from it later (same key, same params, missing steps only).
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from i2sb.atomic import staging_folder
from i2sb.tracking.inputs import CURVE_METRICS, training_params
from i2sb.tracking.store import KEY_TAG, KIND_TAG, get_or_create_experiment, settle
from i2sb.tracking.training import training_key
from i2sb.tracking.transport import check_reachable, http_limits, store_lock
from i2sb.tracking.ui import TRAIN_COLUMNS, set_runs_view, training_experiment

# A dead server must not stall training: after the start (the track step's limits), one try and
# a short timeout per call for the rest of the run (MLflow's system-metrics thread reads these
# variables too).
LIVE_HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
PROBE_TIMEOUT_S = 5


class LiveRun:
    """The trainer's monitor (see ``i2sb.train.logbook.TrainMonitor``) that writes to MLflow."""

    def __init__(
        self,
        uri: str,
        experiment: str,
        key: str,
        name: str,
        artifact_root: str | None = None,
        system_metrics_interval_s: float = 10.0,
    ):
        self.uri, self.experiment, self.key, self.name = uri, experiment, key, name
        self.artifact_root = artifact_root
        self.params: dict[str, str] = {}
        self.interval_s = system_metrics_interval_s
        self.run_id: str | None = None
        self.stopped: str | None = None  # why live logging ended early
        self._client = None
        self._system = None
        self._limits = contextlib.ExitStack()

    def _call(self, what: str, fn, *args) -> None:
        if self.stopped is not None:
            return
        try:
            with store_lock(self.uri):
                fn(*args)
        except Exception as err:  # noqa: BLE001 -- live logging must never stop training
            reason = " ".join(str(err).split())[:300]
            self.stopped = f"{what}: {type(err).__name__}: {reason}"
            print(
                f"warning: MLflow live logging to {self.uri} stopped ({self.stopped}); "
                "training goes on, metrics.jsonl keeps every step for the track step",
                file=sys.stderr,
                flush=True,
            )
            self._stop_system_metrics()

    def start(self, options: dict[str, Any]) -> None:
        # Exactly what the track step records from options.json (written as sorted JSON).
        self.params = training_params(json.loads(json.dumps(options, sort_keys=True)))
        with http_limits():
            self._call("start", self._start)
        self._limits.enter_context(http_limits(LIVE_HTTP_LIMITS))

    def _start(self) -> None:
        from mlflow import MlflowClient

        check_reachable(self.uri, PROBE_TIMEOUT_S)
        client = MlflowClient(tracking_uri=self.uri)
        name = training_experiment(self.experiment)
        experiment_id = get_or_create_experiment(client, name, self.uri, self.artifact_root)
        set_runs_view(client, experiment_id, TRAIN_COLUMNS, "params.`task`")
        survivor = settle(client, experiment_id, self.key)
        run = client.get_run(survivor) if survivor else None
        if run is not None and any(
            self.params.get(k) != v for k, v in run.data.params.items()
        ):  # other settings under the same key: a fresh run, the old one to the trash
            client.delete_run(run.info.run_id)
            run = None
        if run is None:
            tags = {KEY_TAG: self.key, KIND_TAG: "train"}
            created = client.create_run(experiment_id, tags=tags, run_name=self.name)
            self.run_id = settle(client, experiment_id, self.key) or created.info.run_id
            run = client.get_run(self.run_id)
        else:  # a resumed training: the same run goes on
            self.run_id = run.info.run_id
            client.update_run(self.run_id, status="RUNNING")
        from mlflow.entities import Param

        missing = [Param(k, v) for k, v in self.params.items() if k not in run.data.params]
        for start in range(0, len(missing), 100):
            client.log_batch(self.run_id, params=missing[start : start + 100])
        self._client = client
        self._start_system_metrics()

    def _start_system_metrics(self) -> None:
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        self._system = SystemMetricsMonitor(
            self.run_id,
            sampling_interval=self.interval_s,
            resume_logging=True,
            tracking_uri=self.uri,
        )
        self._system.start()

    def _stop_system_metrics(self) -> None:
        if self._system is not None:
            with contextlib.suppress(Exception):
                self._system.finish()
            self._system = None

    def log(self, row: dict[str, Any]) -> None:
        """One metrics.jsonl row: {"step", "time" (s), "loss", "lr", ...}."""
        self._call("log", self._log, row)

    def _log(self, row: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        stamp = int(float(row["time"]) * 1000)
        metrics = [
            Metric(name, float(row[field]), stamp, int(row["step"]))
            for field, name in CURVE_METRICS.items()
            if isinstance(row.get(field), int | float)
        ]
        if metrics:
            self._client.log_batch(self.run_id, metrics=metrics)

    def image(self, path: Path, step: int) -> None:
        """A validation grid: in the run's image view (by step) and as a file under validation/."""
        self._call("image", self._image, Path(path), step)

    def _image(self, path: Path, step: int) -> None:
        from PIL import Image

        # log_image writes its PNG and WEBP copies through a tempfile.TemporaryDirectory: in /tmp,
        # a training killed meanwhile left them there for good. Staged beside the grid instead,
        # where the next grid of a training in this folder removes what a killed one left.
        with (
            Image.open(path) as picture,
            staging_folder(path.parent, "mlflow_image") as staged,
            _temporary_files_in(staged),
        ):
            self._client.log_image(self.run_id, picture.convert("RGB"), key="validation", step=step)
        self._client.log_artifact(self.run_id, str(path), artifact_path="validation")

    def end(self, status: str) -> None:
        """FINISHED, FAILED or KILLED; stops the system metrics."""
        self._call("end", self._end, status)
        self._stop_system_metrics()
        self._limits.close()

    def _end(self, status: str) -> None:
        if self._client is not None:
            self._stop_system_metrics()  # flushes its last batch while the run is still open
            self._client.set_terminated(self.run_id, status=status)


@contextlib.contextmanager
def _temporary_files_in(folder: Path) -> Iterator[None]:
    """tempfile's default folder is ``folder`` for the block: MLflow's log_image takes no folder.
    (Set for the process; live logging runs in the trainer's main thread, and the system-metrics
    thread beside it writes no temporary file.)"""
    saved, tempfile.tempdir = tempfile.tempdir, str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = saved


def live_run_for(cfg: Any, task: str, system_metrics_interval_s: float = 10.0) -> LiveRun:
    """The live training run of ``task`` under a Config's ``tracking`` section."""
    tracking = cfg.tracking
    return LiveRun(
        tracking.uri,
        tracking.experiment or cfg.benchmark,
        training_key(cfg.benchmark, task),
        f"train {task}",
        tracking.artifact_root or None,
        system_metrics_interval_s,
    )
