"""Idempotent MLflow runs: one run per deterministic key, updated in place on a rerun.

A run is found by its ``i2sb.key`` tag. A rerun whose record only adds to what the run holds
(missing params, new metric steps) logs just the additions, so no metric step is duplicated.
A rerun that contradicts the run (a param or a metric value changed) replaces it: the old run
is deleted (MLflow keeps it in the trash) and a fresh one, tagged ``i2sb.replaces``, is made.

Concurrency, for any store (a file lock covers sqlite only; a server has none): the key tag is
set when a run is created, and every writer settles the key after creating its run and again
after finishing it: of the active runs holding the key, the one with the earliest (start time,
run id) survives and the others are deleted. The first run in that order is kept by every
settle, so once all writers are done exactly one run is left. A writer whose run is not first,
or is deleted under it by another's settle, adopts the survivor and stops writing. Metric
timestamps come from the data, not the clock, so two writers adding the same step log
identical rows, which MLflow's store de-duplicates.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlparse

from i2sb.metric_table import METRICS
from i2sb.tracking.inputs import same_value

KEY_TAG = "i2sb.key"
KIND_TAG = "i2sb.kind"
REPLACES_TAG = "i2sb.replaces"
SYSTEM_PREFIX = "system/"


@dataclass
class RunRecord:
    """Everything a run should hold. metrics: name -> {step: value}."""

    key: str
    kind: str
    name: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, dict[int, float]] = field(default_factory=dict)
    # ms since the epoch: when the work began and ended (None: unknown), and per metric step
    # the time it was measured (steps without one get ``end_ms``).
    start_ms: int | None = None
    end_ms: int | None = None
    step_ms: dict[int, int] = field(default_factory=dict)


class Upserted(NamedTuple):
    run_id: str
    replaced: str | None  # the run deleted because it contradicted the record
    adopted: bool  # another writer's run holds the key; this call wrote nothing


class TrackingUnreachable(RuntimeError):
    """The tracking server does not answer; the message names the URI."""


# HTTP limits for calls to a tracking server, unless the user set them: MLflow's defaults
# (7 retries with exponential back-off, 120 s timeout) turn a dead server into ~4 minutes.
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
PROBE_TIMEOUT_S = 8


def training_experiment(experiment: str) -> str:
    """Where the training runs of ``experiment`` live: apart from its evaluation runs, so the
    default runs table holds one comparable row per (task, sampler, NFE)."""
    return f"{experiment}/training"


def report_experiment(experiment: str) -> str:
    """Where the tables run of ``experiment`` lives (apart from the evaluations it summarises)."""
    return f"{experiment}/report"


# MLflow 3's UI opens an experiment on its GenAI pages (Traces) unless the URL says
# workflowType=machine_learning: its sidebar switch overrides the mlflow.experimentKind tag. The
# runs table shows no metric column by default; a shared view (an experiment tag the URL names)
# picks the columns. Both verified with MLflow 3.17 in headless Chromium (tests/test_mlflow_ui.py).
RUNS_VIEW = "i2sb"
EVAL_COLUMNS = (
    "params.`task`",
    "params.`sampler`",
    "metrics.`nfe`",
    *(f"metrics.`{spec.name}`" for spec in METRICS),
    "attributes.`Duration`",
)  # fmt: skip (one column per row of the metric table)
TRAIN_COLUMNS = (
    "params.`task`", "metrics.`train_loss`", "metrics.`val_psnr`", "metrics.`val_psnr_degraded`",
    "metrics.`train_it_per_s`", "attributes.`Duration`",
)  # fmt: skip


def set_runs_view(client, experiment_id: str, columns: tuple[str, ...], order_by: str) -> None:
    """The experiment's runs-table view (columns, order) that ``runs_page`` links to."""
    import json

    from mlflow.exceptions import MlflowException

    state = {"selectedColumns": list(columns), "orderByKey": order_by, "orderByAsc": True}
    key, value = f"mlflow.sharedViewState.{RUNS_VIEW}", json.dumps(state)
    for attempt in range(3):
        try:
            client.set_experiment_tag(experiment_id, key, value)
            return
        except MlflowException as err:
            # MLflow's SQL store sets a tag by a read then an insert: writers setting the same
            # new tag at once (concurrent tracks of one experiment) lose with a unique-constraint
            # error; by then the tag exists, and setting it again updates it.
            if attempt == 2 or "unique" not in str(err).lower():
                raise


def runs_page(experiment_id: str, ui: str = "http://127.0.0.1:5000") -> str:
    """A direct link to the experiment's runs table in the UI's Model-training mode."""
    query = f"workflowType=machine_learning&viewStateShareKey={RUNS_VIEW}"
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"


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


@contextlib.contextmanager
def http_limits(limits: dict[str, str] | None = None) -> Iterator[None]:
    """Bound MLflow's HTTP retries and timeout (variables the user set win) for the block."""
    added = {k: v for k, v in (limits or HTTP_LIMITS).items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def check_reachable(uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise TrackingUnreachable when an http(s) tracking URI does not answer at all.

    Any HTTP answer (even 401 or 404) counts as reachable; only a refused, reset or timed-out
    connection does not. Local stores are not probed.
    """
    if urlparse(uri).scheme not in ("http", "https"):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            return
    except urllib.error.HTTPError:
        return
    except (OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise TrackingUnreachable(
            f"MLflow tracking server {uri} is unreachable ({reason}); start it, or set "
            "tracking.uri (--tracking-uri) to a reachable server or a sqlite:/// file"
        ) from None


def get_or_create_experiment(
    client, name: str, uri: str, artifact_root: str | None, tags: dict[str, str] | None = None
) -> str:
    """The experiment's id, created if missing (a concurrent creator wins the race harmlessly).

    A local store gets ``<artifact_root>/<name>`` as artifact location (MLflow's default would
    be ./mlruns of the current directory); a server keeps its own."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = None
        if artifact_root and not is_remote(uri):
            safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
            location = (Path(artifact_root).resolve() / safe).as_uri()
        # Without this tag MLflow 3's UI opens the experiment on its GenAI (traces) pages.
        tags = {"mlflow.experimentKind": "custom_model_development", **(tags or {})}
        try:
            return client.create_experiment(name, artifact_location=location, tags=tags)
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment = client.get_experiment_by_name(name)  # made by a concurrent writer
            if experiment is None:
                raise
    if experiment.lifecycle_stage != "active":
        raise RuntimeError(
            f"MLflow experiment {name!r} at {uri} is deleted; restore it in the UI "
            "(or `mlflow experiments restore`) or choose another --experiment"
        )
    return experiment.experiment_id


def key_runs(client, experiment_id: str, key: str) -> list:
    """The active runs tagged with ``key``, the survivor first: earliest (start time, run id)."""
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{key}'", max_results=1000
    )
    return sorted(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id))


def settle(client, experiment_id: str, key: str) -> str | None:
    """Delete every active run of ``key`` but the survivor; returns the survivor's id."""
    runs = key_runs(client, experiment_id, key)
    for extra in runs[1:]:
        with contextlib.suppress(Exception):  # another writer may have deleted it already
            client.delete_run(extra.info.run_id)
    return runs[0].info.run_id if runs else None


def find_run(client, experiment_id: str, key: str):
    """The surviving run tagged with ``key`` (duplicates are deleted), or None."""
    survivor = settle(client, experiment_id, key)
    return client.get_run(survivor) if survivor else None


def _missing_steps(client, run, record: RunRecord) -> dict[str, dict[int, float]] | None:
    """Metric steps the run lacks, or None when the run contradicts the record."""
    if any(
        name not in record.params or record.params[name] != value
        for name, value in run.data.params.items()
    ):
        return None
    missing = {name: dict(steps) for name, steps in record.metrics.items()}
    for name in run.data.metrics:
        if name.startswith(SYSTEM_PREFIX):  # MLflow's system metrics of a live training run
            continue
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

    fallback = record.end_ms or 0  # deterministic: concurrent writers log identical rows
    rows = [
        Metric(name, value, record.step_ms.get(step, fallback), step)
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


def upsert_run(client, experiment_id: str, record: RunRecord) -> Upserted:
    """Make the run with ``record.key`` hold ``record`` (see the module notes on concurrency)."""
    record.tags = {**record.tags, KEY_TAG: record.key, KIND_TAG: record.kind}
    run = find_run(client, experiment_id, record.key)
    replaced = None
    missing = _missing_steps(client, run, record) if run is not None else None
    if run is not None and missing is not None:
        run_id = run.info.run_id
        params = {k: v for k, v in record.params.items() if k not in run.data.params}
        kept = set(record.tags) | {REPLACES_TAG}
        stale = [t for t in run.data.tags if not t.startswith("mlflow.") and t not in kept]
    else:
        if run is not None:
            replaced = run.info.run_id
            client.delete_run(replaced)
            record.tags[REPLACES_TAG] = replaced
        tags = {KEY_TAG: record.key, KIND_TAG: record.kind}
        run_id = client.create_run(
            experiment_id, start_time=record.start_ms, tags=tags, run_name=record.name
        ).info.run_id
        survivor = settle(client, experiment_id, record.key)
        if survivor != run_id:
            return Upserted(survivor, replaced, adopted=True)
        params, missing, stale = record.params, record.metrics, []
    try:
        for tag in stale:  # e.g. fid_unavailable_reason once FID is there
            client.delete_tag(run_id, tag)
        client.update_run(run_id, status="RUNNING")
        _log(client, run_id, record, missing, params)
    except Exception:
        survivor = _survivor_if_deleted(client, experiment_id, record.key, run_id)
        if survivor is None:
            raise
        return Upserted(survivor, replaced, adopted=True)
    return Upserted(run_id, replaced, adopted=False)


def _survivor_if_deleted(client, experiment_id: str, key: str, run_id: str) -> str | None:
    """The key's survivor when another writer deleted ``run_id``; None while it is active."""
    if client.get_run(run_id).info.lifecycle_stage == "active":
        return None
    return settle(client, experiment_id, key)


def finish_run(
    client, experiment_id: str, record: RunRecord, run_id: str, status: str = "FINISHED"
) -> str:
    """Mark the run ended (at ``record.end_ms``) and settle its key; returns the survivor."""
    try:
        client.set_terminated(run_id, status=status, end_time=record.end_ms)
    except Exception:
        if _survivor_if_deleted(client, experiment_id, record.key, run_id) is None:
            raise
    return settle(client, experiment_id, record.key) or run_id
