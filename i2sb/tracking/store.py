"""Idempotent MLflow runs: one run per deterministic key, updated in place on a rerun.

A run is found by its ``i2sb.key`` tag. A rerun whose record only adds to what the run holds
(missing params, new metric steps) logs just the additions, so no metric step is duplicated.
A rerun that contradicts the run (a param or a metric value changed) replaces it: the old run
is deleted (MLflow keeps it in the trash) and a fresh one, tagged ``i2sb.replaces``, is made.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from i2sb.tracking.inputs import same_value

KEY_TAG = "i2sb.key"
KIND_TAG = "i2sb.kind"
REPLACES_TAG = "i2sb.replaces"


@dataclass
class RunRecord:
    """Everything a run should hold. metrics: name -> {step: value}."""

    key: str
    kind: str
    name: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, dict[int, float]] = field(default_factory=dict)


def is_remote(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https", "databricks")


def sqlite_file(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :])


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Serialise writers of one sqlite store (SQLite locks badly over network file systems)."""
    db = sqlite_file(uri)
    if db is None:
        yield
        return
    if not db.parent.is_dir():  # never a silent folder somewhere unexpected (sqlite:////x/...)
        print(f"creating folder {db.parent.resolve()} for the MLflow store {uri}", file=sys.stderr)
        db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def get_or_create_experiment(client, name: str, uri: str, artifact_root: str | None) -> str:
    """The experiment's id. A local store gets ``<artifact_root>/<name>`` as artifact location
    (MLflow's default would be ./mlruns of the current directory); a server keeps its own."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage != "active":
            raise RuntimeError(
                f"MLflow experiment {name!r} at {uri} is deleted; restore it in the UI "
                "(or `mlflow experiments restore`) or choose another --experiment"
            )
        return experiment.experiment_id
    location = None
    if artifact_root and not is_remote(uri):
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
        location = (Path(artifact_root).resolve() / safe).as_uri()
    # Without this tag MLflow 3's UI opens the experiment on its GenAI (traces) pages.
    kind = {"mlflow.experimentKind": "custom_model_development"}
    return client.create_experiment(name, artifact_location=location, tags=kind)


def find_run(client, experiment_id: str, key: str):
    """The active run tagged with ``key``, or None."""
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{key}'", max_results=10
    )
    if len(runs) > 1:
        ids = ", ".join(r.info.run_id for r in runs)
        raise RuntimeError(f"MLflow holds {len(runs)} active runs with {KEY_TAG}={key!r}: {ids}")
    return runs[0] if runs else None


def _missing_steps(client, run, record: RunRecord) -> dict[str, dict[int, float]] | None:
    """Metric steps the run lacks, or None when the run contradicts the record."""
    if any(
        name not in record.params or record.params[name] != value
        for name, value in run.data.params.items()
    ):
        return None
    missing = {name: dict(steps) for name, steps in record.metrics.items()}
    for name in run.data.metrics:
        if name not in record.metrics:
            return None
        for entry in client.get_metric_history(run.info.run_id, name):
            wanted = record.metrics[name].get(entry.step)
            if wanted is None or not same_value(wanted, entry.value):
                return None
            missing[name].pop(entry.step, None)
    return missing


def _log(client, run_id: str, record: RunRecord, metrics, params: dict[str, str]) -> None:
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    rows = [
        Metric(name, value, now, step)
        for name, steps in metrics.items()
        for step, value in sorted(steps.items())
    ]
    param_rows = [Param(k, v) for k, v in params.items()]
    tag_rows = [RunTag(k, v) for k, v in record.tags.items()]
    for start in range(0, len(param_rows), 100):
        client.log_batch(run_id, params=param_rows[start : start + 100])
    for start in range(0, len(tag_rows), 100):
        client.log_batch(run_id, tags=tag_rows[start : start + 100])
    for start in range(0, len(rows), 1000):
        client.log_batch(run_id, metrics=rows[start : start + 1000])


def upsert_run(client, experiment_id: str, record: RunRecord) -> tuple[str, str | None]:
    """Make the run with ``record.key`` hold ``record``; returns (run_id, id of a replaced run or None)."""
    record.tags = {**record.tags, KEY_TAG: record.key, KIND_TAG: record.kind}
    run = find_run(client, experiment_id, record.key)
    replaced = None
    missing = _missing_steps(client, run, record) if run is not None else None
    if run is not None and missing is not None:
        run_id = run.info.run_id
        params = {k: v for k, v in record.params.items() if k not in run.data.params}
        kept = set(record.tags) | {REPLACES_TAG}
        stale = [t for t in run.data.tags if not t.startswith("mlflow.") and t not in kept]
        for tag in stale:  # e.g. fid_unavailable_reason once FID is there
            client.delete_tag(run_id, tag)
        client.update_run(run_id, status="RUNNING")
    else:
        if run is not None:
            replaced = run.info.run_id
            client.delete_run(replaced)
            record.tags[REPLACES_TAG] = replaced
        run_id = client.create_run(experiment_id, run_name=record.name).info.run_id
        params, missing = record.params, record.metrics
    _log(client, run_id, record, missing, params)
    return run_id, replaced
