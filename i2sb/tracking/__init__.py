"""Import one evaluated (task, sampler, NFE) into MLflow, linked to the training run of its task.

Compute nodes write plain files (docs/CONTRACTS.md); this step reads them and records one run per
``<benchmark>/<task>/<variant>/<sampler label>/nfe<K>``, and completes the task's training run
(``i2sb.tracking.training``) that ``tracking.live`` may have logged while it trained. Everything
here also works without live logging, so compute nodes need no tracking server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from i2sb.atomic import staging_folder, write_json
from i2sb.config import DEFAULT_ARTIFACT_ROOT, DEFAULT_TRACKING_URI
from i2sb.tracking.grid import write_sample_grid
from i2sb.tracking.inputs import (
    SAMPLING_PREFIX,
    config_context,
    config_params,
    git_commit,
    mtime_ms,
    read_eval_metrics,
    read_json,
    read_samples_summary,
)
from i2sb.tracking.store import RunRecord, finish_run, get_or_create_experiment, upsert_run
from i2sb.tracking.training import track_training, training_key
from i2sb.tracking.transport import check_reachable, http_limits, store_lock
from i2sb.tracking.ui import EVAL_COLUMNS, runs_page, set_runs_view, training_experiment, ui_command

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # git finds the checkout above it, if any
TRAIN_RUN_TAG = "i2sb.train_run_id"  # on an evaluation run: the id of its training run
EVAL_STEP = 0  # scalar results are logged at step 0; the training curve uses training steps


def run_key(benchmark: str, task: str, variant: str, sampler: str, nfe: int) -> str:
    return f"{benchmark}/{task}/{variant}/{sampler}/nfe{nfe}"


def recorded_sampler(samples: Path, meta: dict[str, Any], metrics: Any) -> dict[str, Any]:
    """The sampler ({"name", "label", "options"}) the samples file records, checked against metrics."""
    sampler = meta.get("sampler")
    if not (isinstance(sampler, dict) and isinstance(sampler.get("label"), str)):
        raise ValueError(
            f"samples file {samples} records no sampler (meta 'sampler'); it predates the sampler "
            "dimension: sample it again"
        )
    if metrics.sampler is not None and metrics.sampler != sampler:
        raise ValueError(
            f"samples file {samples} is for sampler {sampler['label']!r} but its metrics are for "
            f"{metrics.sampler.get('label')!r}"
        )
    return sampler


def recorded_dataset_of(samples: Path, meta: dict[str, Any], metrics: Any) -> dict[str, Any]:
    """What the samples' images are (meta "dataset", written by sampling), checked against what
    their metrics.json says: the data itself is not opened."""
    from i2sb.sample.parts import recorded_dataset

    dataset = recorded_dataset(meta, samples)
    if metrics.dataset is not None and metrics.dataset != dataset:
        raise ValueError(
            f"samples file {samples} is of data set {dataset.get('name')!r} but its metrics are "
            f"of {metrics.dataset.get('name')!r}"
        )
    return dataset


def build_record(
    metrics_json: Path,
    train_dir: Path,
    samples: Path,
    config: dict[str, Any],
    variant: str,
    data_index: Path | None = None,
) -> RunRecord:
    """What the run of one evaluation should hold, read from the pipeline's files."""
    result = read_eval_metrics(metrics_json)
    summary = read_samples_summary(samples, data_index)
    for field, value in (("task", result.task), ("nfe", result.nfe)):
        if summary.meta.get(field) != value:
            raise ValueError(
                f"samples file {samples} is for {field}={summary.meta.get(field)!r} but "
                f"{metrics_json} is for {field}={value!r}"
            )
    sampler = recorded_sampler(samples, summary.meta, result)
    dataset = recorded_dataset_of(samples, summary.meta, result)
    benchmark = config.get("benchmark")
    if not isinstance(benchmark, str) or not benchmark:
        raise ValueError("resolved config: missing string key 'benchmark'")
    commit, why = git_commit(PACKAGE_DIR)
    params = config_params(config, result.task)
    params |= {
        "benchmark": benchmark,
        "task": result.task,
        "nfe": str(result.nfe),
        "variant": variant,
        "sampler": sampler["label"],
        "sampler_name": str(sampler.get("name")),
        "sampler_options": json.dumps(sampler.get("options") or {}, sort_keys=True),
        "num_images": str(summary.num_images),
        "data_fingerprint": summary.fingerprint,
        "data_fingerprint_covers": summary.fingerprint_covers,
        "checkpoint": str(summary.meta.get("checkpoint")),
        "checkpoint_sha256": str((summary.meta.get("checkpoint_fingerprint") or {}).get("sha256")),
        "mask_source": str(summary.meta.get("mask_source")),
        "sampling_precision": str(summary.meta.get("precision")),
        "fid_reference": str(result.fid_reference),
        "fid_reference_kind": str(result.fid_reference_kind),
        "image_size": str(result.image_size),
    }
    for key in ("name", "kind", "eval_subset"):
        params[f"dataset_{key}"] = str(dataset.get(key, "unknown"))
    tags = {f"{name}_unavailable_reason": reason for name, reason in result.reasons.items()}
    tags["git_commit"] = commit  # a tag: the commit of the latest track, which may change
    tags |= config_context(config, result.task)
    if why:
        tags["git_commit_unknown_reason"] = why
    metrics = {name: {EVAL_STEP: value} for name, value in result.values.items()}
    metrics["nfe"] = {EVAL_STEP: float(result.nfe)}  # a number, so the runs table sorts by it
    # The run spans the evaluation: from the gathered samples to the metrics file. The training
    # curve lives in the training run (i2sb.tracking.training), which this run links to.
    return RunRecord(
        key=run_key(benchmark, result.task, variant, sampler["label"], result.nfe),
        kind="eval",
        name=f"{result.task} {variant} {sampler['label']} nfe{result.nfe}",
        params=params,
        tags=tags,
        metrics=metrics,
        start_ms=min(mtime_ms(samples), mtime_ms(metrics_json)),
        end_ms=mtime_ms(metrics_json),
        volatile=frozenset(name for name in metrics if name.startswith(SAMPLING_PREFIX)),
    )


def track(
    metrics_json: str | Path,
    train_dir: str | Path,
    samples: str | Path,
    config_json: str | Path,
    *,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    variant: str = "i2sb",
    artifact_root: str | None = None,
    data_index: str | Path | None = None,
    marker: str | Path | None = None,
) -> dict[str, Any]:
    """Record one evaluation as an MLflow run (created, or updated in place on a rerun).

    URI, experiment and artifact root default to the config's ``tracking`` section (experiment
    "" = the benchmark name). Returns, and writes to ``marker``, {"run_id", "experiment_id", "key", ...}.
    """
    metrics_json, train_dir, samples = Path(metrics_json), Path(train_dir), Path(samples)
    config = read_json(config_json, "resolved config")
    record = build_record(metrics_json, train_dir, samples, config, variant, data_index)
    where = {"tracking_uri": tracking_uri, "experiment": experiment, "artifact_root": artifact_root}
    return _track_record(
        record, (metrics_json, train_dir, samples, Path(config_json)), config, where, marker
    )


def _track_record(record, files, config, where, marker) -> dict[str, Any]:
    """Write ``record`` (built from ``files``: metrics.json, run folder, samples, config.json)."""
    metrics_json, train_dir, samples, config_json = files
    settings = config.get("tracking") or {}
    uri = where["tracking_uri"] or settings.get("uri") or DEFAULT_TRACKING_URI
    name = where["experiment"] or settings.get("experiment") or config["benchmark"]
    root = where["artifact_root"] or settings.get("artifact_root") or DEFAULT_ARTIFACT_ROOT
    artifacts = [(metrics_json, "eval"), (config_json, "config")]
    artifacts += [(p, "samples") for p in [samples.parent / "trajectory.png"] if p.is_file()]
    # staged beside the samples, not in /tmp: a track killed here leaves it where the next removes it
    with store_lock(uri), staging_folder(samples.parent, "sample_grid") as staged:
        grid = staged / "sample_grid.png"
        columns = write_sample_grid(samples, grid)
        record.tags["sample_grid_columns"] = " | ".join(columns)
        run_id, experiment_id, replaced = _write_run(
            uri, name, root, record, [*artifacts, (grid, "samples")], train_dir
        )
    out = {"run_id": run_id, "experiment_id": experiment_id, "key": record.key}
    out |= {"experiment": name, "tracking_uri": uri, "replaced_run_id": replaced}
    out["runs_page"] = runs_page(experiment_id, uri)
    if marker is not None:
        write_json(marker, out)
    return out


def _link_training(client, uri, experiment, artifact_root, record, train_dir: Path) -> None:
    """Tag the evaluation with its training run (made or completed from ``train_dir``)."""
    benchmark = record.params["benchmark"]
    if not (train_dir / "options.json").is_file():
        why = f"{train_dir / 'options.json'} does not exist"
        if record.params.get("config.checkpoints.source") == "published":
            why = f"not trained here: the published checkpoint {record.params['checkpoint']}"
        record.tags["train_run_unavailable_reason"] = why
        return
    run_id, experiment_id = track_training(
        client, uri, experiment, artifact_root, train_dir, benchmark
    )
    record.tags[TRAIN_RUN_TAG] = run_id
    record.tags["mlflow.note.content"] = (
        f"Evaluation of {record.key}. Trained in [{training_key(benchmark, record.params['task'])}]"
        f"(#/experiments/{experiment_id}/runs/{run_id}) (experiment "
        f"{training_experiment(experiment)!r}); sample grid: artifacts/samples/sample_grid.png"
    )


def _write_run(
    uri: str,
    experiment: str,
    artifact_root: str,
    record: RunRecord,
    artifacts: list,
    train_dir: Path,
) -> tuple[str, str, str | None]:
    from mlflow import MlflowClient

    check_reachable(uri)
    with http_limits():
        client = MlflowClient(tracking_uri=uri)
        _link_training(client, uri, experiment, artifact_root, record, train_dir)
        experiment_id = get_or_create_experiment(client, experiment, uri, artifact_root)
        set_runs_view(client, experiment_id, EVAL_COLUMNS, "metrics.`nfe`")
        done = upsert_run(client, experiment_id, record)
        if done.adopted:  # a concurrent `track` of this key writes the run
            return done.run_id, experiment_id, done.replaced
        try:
            for path, folder in artifacts:
                client.log_artifact(done.run_id, str(path), artifact_path=folder)
        except Exception:
            finish_run(client, experiment_id, record, done.run_id, status="FAILED")
            raise
        run_id = finish_run(client, experiment_id, record, done.run_id)
    return run_id, experiment_id, done.replaced


def track_all(
    runs: list[dict[str, str]], config_json: str | Path, marker: str | Path
) -> list[dict[str, Any]]:
    """Track every evaluation: ``runs`` holds, per (task, sampler, NFE), the paths of its
    ``metrics`` (metrics.json), ``train_dir`` (the run folder sampled) and ``samples``
    (samples.npz), as the workflow's rules name them; the library assumes no layout."""
    config = read_json(config_json, "resolved config")
    files = [
        (Path(run["metrics"]), Path(run["train_dir"]), Path(run["samples"]), Path(config_json))
        for run in runs
    ]
    records = [build_record(m, t, s, config, "i2sb") for m, t, s, _ in files]
    mixed = mixed_records(records)
    if mixed:
        raise ValueError(f"refusing to track runs of different identity: {mixed}")
    where = {"tracking_uri": None, "experiment": None, "artifact_root": None}
    results = [
        _track_record(r, f, config, where, None) for r, f in zip(records, files, strict=True)
    ]
    page = results[0]["runs_page"] if results else None
    write_json(marker, {"runs": results, "runs_page": page})
    if page:
        serve = ui_command(results[0]["tracking_uri"])
        print(f"MLflow runs table{f' (after `{serve}`)' if serve else ''}: {page}")
    return results


# Params every evaluation of one track step shares, and those every evaluation of one task shares.
SHARED_PARAMS = ("benchmark", "dataset_name", "dataset_kind", "image_size")
TASK_PARAMS = ("data_fingerprint", "checkpoint_sha256", "num_images")


def mixed_records(records: list[RunRecord]) -> str | None:
    """Why ``records`` cannot be tracked together: the first param (SHARED_PARAMS, or
    TASK_PARAMS within a task) on which two differ, naming it and both runs; None if none."""
    first_seen: dict[tuple[str, str], RunRecord] = {}
    for record in records:
        task = record.params["task"]
        keys = [("", n) for n in SHARED_PARAMS] + [(task, n) for n in TASK_PARAMS]
        for scope, name in keys:
            value = record.params.get(name)
            if value in (None, "None", "unknown"):
                continue
            seen = first_seen.setdefault((scope, name), record)
            if seen.params[name] != value:
                where = f" of task {task}" if scope else ""
                return (
                    f"the evaluations{where} differ in {name}: {seen.params[name]!r} "
                    f"({seen.key}) vs {value!r} ({record.key})"
                )
    return None
