"""The training run of a task in MLflow, filled from the run folder (options.json, metrics.jsonl,
validation grids). Training may have logged it live (``tracking.live``); this adds what the live
view missed (a server that went away, live logging off) under the same key, so there is always
one training run per task for the evaluation runs to link to."""

from __future__ import annotations

from pathlib import Path

from i2sb.tracking.inputs import (
    mtime_ms,
    read_json,
    read_step_times,
    read_training_curve,
    training_params,
)
from i2sb.tracking.store import RunRecord, finish_run, get_or_create_experiment, upsert_run
from i2sb.tracking.ui import TRAIN_COLUMNS, set_runs_view, training_experiment


def training_key(benchmark: str, task: str) -> str:
    return f"{benchmark}/{task}/train"


def training_record(train_dir: str | Path, benchmark: str) -> RunRecord:
    """What the training run of ``train_dir`` holds; it spans the first to the last logged step."""
    train_dir = Path(train_dir)
    options_file = train_dir / "options.json"
    options = read_json(options_file, "training options")
    if not isinstance(options.get("task"), str):
        raise ValueError(f"{options_file}: missing string key 'task'")
    curve_file = train_dir / "metrics.jsonl"
    curve, step_ms = {}, {}
    if curve_file.is_file():
        curve, step_ms = read_training_curve(curve_file), read_step_times(curve_file)
    times = sorted(step_ms.values()) or [mtime_ms(options_file)]
    task = options["task"]
    return RunRecord(
        key=training_key(benchmark, task),
        kind="train",
        name=f"train {task}",
        params=training_params(options),
        tags={},
        metrics=curve,
        start_ms=times[0],
        end_ms=times[-1],
        step_ms=step_ms,
    )


def track_training(
    client, uri: str, experiment: str, artifact_root: str | None, train_dir: Path, benchmark: str
) -> tuple[str, str]:
    """Create or complete the training run; returns (run id, experiment id)."""
    record = training_record(train_dir, benchmark)
    name = training_experiment(experiment)
    experiment_id = get_or_create_experiment(client, name, uri, artifact_root)
    set_runs_view(client, experiment_id, TRAIN_COLUMNS, "params.`task`")
    done = upsert_run(client, experiment_id, record)
    if done.adopted:
        return done.run_id, experiment_id
    client.log_artifact(done.run_id, str(train_dir / "options.json"), artifact_path="train")
    grids = sorted((train_dir / "validation").glob("val_*.png"))
    for grid in grids:  # the same names as the live run's, so a rerun overwrites them
        client.log_artifact(done.run_id, str(grid), artifact_path="validation")
    return finish_run(client, experiment_id, record, done.run_id), experiment_id
