"""Idempotent MLflow runs: one run per deterministic key, updated in place on a rerun.

A run is found by its ``i2sb.key`` tag. A rerun that measured the same thing updates the run in
place, keeping its id (saved links and compare pages stay valid): it logs what the run lacks
(params, metric steps; no step is duplicated), new values of volatile metrics (timings) and the
tags, which describe and may change (the git commit of the latest track). A rerun that
contradicts the run (a param or a measured value changed) replaces it: the old run is deleted
(MLflow keeps it in the trash) and a fresh one, tagged ``i2sb.replaces``, says in its
description which run it replaces and what changed.

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

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from i2sb.tracking.inputs import same_value
from i2sb.tracking.transport import is_remote

KEY_TAG = "i2sb.key"
KIND_TAG = "i2sb.kind"
REPLACES_TAG = "i2sb.replaces"
NOTE_TAG = "mlflow.note.content"  # the run's description in the UI
MAX_NOTED_CHANGES = 10
REPLACES_WORDS = "Replaces run "
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
    # Metrics that differ between two measurements of the same thing (timings): a changed
    # value is logged again at its step (MLflow shows the latest), never a reason to replace.
    volatile: frozenset[str] = frozenset()


class Upserted(NamedTuple):
    run_id: str
    replaced: str | None  # the run deleted because it contradicted the record
    adopted: bool  # another writer's run holds the key; this call wrote nothing


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


def delete_run(client, run_id: str) -> None:
    """Delete ``run_id``; one already deleted (by another writer's settle) is fine, any other
    failure (authentication, network, a store that refuses) is raised, never hidden."""
    from mlflow.exceptions import MlflowException

    try:
        client.delete_run(run_id)
    except MlflowException:
        if not _is_deleted(client, run_id):
            raise


def _is_deleted(client, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id).info.lifecycle_stage == "deleted"
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":  # deleted and garbage-collected
            return True
        raise


def settle(client, experiment_id: str, key: str) -> str | None:
    """Delete every active run of ``key`` but the survivor; returns the survivor's id."""
    runs = key_runs(client, experiment_id, key)
    for extra in runs[1:]:
        delete_run(client, extra.info.run_id)
    return runs[0].info.run_id if runs else None


def find_run(client, experiment_id: str, key: str):
    """The surviving run tagged with ``key`` (duplicates are deleted), or None."""
    survivor = settle(client, experiment_id, key)
    return client.get_run(survivor) if survivor else None


def _latest(history) -> dict[int, float]:
    """step -> the value MLflow shows for it (the last logged: largest timestamp, then value)."""
    latest = {}
    for entry in sorted(history, key=lambda e: (e.step, e.timestamp, e.value)):
        latest[entry.step] = entry.value
    return latest


def _differences(client, run, record: RunRecord) -> tuple[dict[str, dict[int, float]], list[str]]:
    """(metric steps to log, what contradicts the record): steps the run lacks or whose volatile
    value changed are logged; a changed param or measured value, or one the record lacks, says
    that what the run measured changed."""
    changed = [
        f"param {name} {value!r} -> {record.params.get(name, '(none)')!r}"
        for name, value in run.data.params.items()
        if record.params.get(name) != value
    ]
    missing = {name: dict(steps) for name, steps in record.metrics.items()}
    for name in run.data.metrics:
        if name.startswith(SYSTEM_PREFIX):  # MLflow's system metrics of a live training run
            continue
        if name not in record.metrics:
            changed.append(f"metric {name} is no longer measured")
            continue
        history = client.get_metric_history(run.info.run_id, name)
        logged = _latest(history) if name in record.volatile else None
        for entry in history:
            wanted = record.metrics[name].get(entry.step)
            if logged is not None and wanted is not None:
                if same_value(wanted, logged[entry.step]):
                    missing[name].pop(entry.step, None)
            elif wanted is None or not same_value(wanted, entry.value):
                changed.append(f"metric {name} at step {entry.step} {entry.value} -> {wanted}")
            else:
                missing[name].pop(entry.step, None)
    return missing, changed


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
        _log_params(client, run_id, param_rows[start : start + 100])
    for start in range(0, len(tag_rows), 100):
        client.log_batch(run_id, tags=tag_rows[start : start + 100])
    for start in range(0, len(rows), 1000):
        client.log_batch(run_id, metrics=rows[start : start + 1000])


def _log_params(client, run_id: str, rows: list) -> None:
    """Log ``rows``; a concurrent writer of the same key may have logged some of them first (MLflow
    then refuses the batch: a param is written once). That is fine when every stored value is ours;
    a different value is an error, raised as MLflow gave it."""
    from mlflow.exceptions import MlflowException

    try:
        client.log_batch(run_id, params=rows)
    except MlflowException:
        stored = client.get_run(run_id).data.params
        if any(stored.get(row.key) not in (None, row.value) for row in rows):
            raise
        missing = [row for row in rows if row.key not in stored]
        if missing:
            client.log_batch(run_id, params=missing)


def upsert_run(client, experiment_id: str, record: RunRecord) -> Upserted:
    """Make the run with ``record.key`` hold ``record`` (see the module notes on concurrency).

    The run keeps its id while what it measured is unchanged; otherwise it is replaced and the
    new run's description (``mlflow.note.content``) says which run it replaces and why."""
    record.tags = {**record.tags, KEY_TAG: record.key, KIND_TAG: record.kind}
    run = find_run(client, experiment_id, record.key)
    replaced, changed = None, []
    if run is not None:
        missing, changed = _differences(client, run, record)
    if run is not None and not changed:
        run_id = run.info.run_id
        params = {k: v for k, v in record.params.items() if k not in run.data.params}
        kept = set(record.tags) | {REPLACES_TAG}
        _keep_replacement_note(record, run.data.tags)
        stale = [t for t in run.data.tags if not t.startswith("mlflow.") and t not in kept]
    else:
        if run is not None:
            replaced = run.info.run_id
            delete_run(client, replaced)
            record.tags[REPLACES_TAG] = replaced
            record.tags[NOTE_TAG] = _replacement_note(record, replaced, changed)
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


def _keep_replacement_note(record: RunRecord, tags: dict[str, str]) -> None:
    """An in-place update keeps the sentence saying which run this one replaced, and why."""
    note = tags.get(NOTE_TAG, "")
    if REPLACES_TAG in tags and REPLACES_WORDS in note:
        ours = record.tags.get(NOTE_TAG, "")
        kept = note[note.index(REPLACES_WORDS) :]
        record.tags[NOTE_TAG] = f"{ours}\n\n{kept}" if ours else kept


def _replacement_note(record: RunRecord, replaced: str, changed: list[str]) -> str:
    shown = "; ".join(changed[:MAX_NOTED_CHANGES])
    more = len(changed) - MAX_NOTED_CHANGES
    shown += f"; and {more} more" if more > 0 else ""
    note = record.tags.get(NOTE_TAG, "")
    return (
        (f"{note}\n\n" if note else "")
        + f"{REPLACES_WORDS}{replaced} (deleted, in MLflow's trash): what it measured changed: {shown}."
    )


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
