"""`i2sb tables`: the paper's tables and metric-vs-NFE plots from the runs in MLflow (the `report` rule).

Reads every evaluation run of one experiment, writes DIR/ (Markdown, LaTeX, CSV, PNG) and logs DIR
as the artifacts of one summary run, keyed like the evaluation runs so a rerun updates it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from i2sb.atomic import write_text
from i2sb.paper import PAPER_TABLES, TABLE_TITLES
from i2sb.tables.build import HEADERS, PAPER_ORDER, nfe_table, paper_table, runs_frame
from i2sb.tables.render import DECIMALS, write_table
from i2sb.tracking.store import (
    KIND_TAG,
    RunRecord,
    get_or_create_experiment,
    store_lock,
    upsert_run,
)


@contextlib.contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    # mlflow.search_runs reads the process-wide URI; restore it so library callers are not surprised.
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def read_runs(uri: str, experiment_id: str) -> pd.DataFrame:
    """The evaluation runs of an experiment, one row each (see ``runs_frame``)."""
    import mlflow

    with _tracking_uri(uri):
        search = mlflow.search_runs(
            experiment_ids=[experiment_id],
            filter_string=f"tags.`{KIND_TAG}` = 'eval'",
            output_format="pandas",
        )
    return runs_frame(search)


def write_report(runs: pd.DataFrame, out: Path) -> list[Path]:
    """Every table and plot into ``out``; returns the files written."""
    from i2sb.tables.render import plot_task

    written, sections = [], []
    for name, tasks in PAPER_TABLES.items():
        caption = f"{TABLE_TITLES[name]} (ImageNet 256): ours beside the paper"
        written += write_table(paper_table(runs, tasks), out, f"table_{name}", caption)
        sections.append(written[-3])
    for metric in ("fid", "psnr", "ca", "ssim"):
        caption = f"{HEADERS[metric]} against NFE"
        table = nfe_table(runs, metric)
        written += write_table(table, out, f"nfe_{metric}", caption, DECIMALS[metric])
        sections.append(written[-3])
    for task in PAPER_ORDER:
        if (runs["task"] == task).any():
            written.append(out / "plots" / f"{task}_vs_nfe.png")
            plot_task(runs, task, written[-1])
    report = "# Results\n\n" + "\n".join(p.read_text() for p in sections)
    write_text(out / "report.md", report)
    return [*written, out / "report.md"]


def make_tables(
    tracking_uri: str, experiment: str, out: str | Path, artifact_root: str | None = None
) -> dict[str, Any]:
    """Write the report for ``experiment`` into ``out`` and log it as the experiment's summary run."""
    from mlflow import MlflowClient

    out = Path(out)
    with store_lock(tracking_uri):
        client = MlflowClient(tracking_uri=tracking_uri)
        experiment_id = get_or_create_experiment(client, experiment, tracking_uri, artifact_root)
        runs = read_runs(tracking_uri, experiment_id)
        written = write_report(runs, out)
        record = RunRecord(
            key=f"{experiment}/tables",
            kind="summary",
            name="tables",
            params={"experiment": experiment},
            tags={"i2sb.num_eval_runs": str(len(runs))},
        )
        run_id, _ = upsert_run(client, experiment_id, record)
        client.log_artifacts(run_id, str(out), artifact_path="tables")
        client.set_terminated(run_id, status="FINISHED")
    return {
        "run_id": run_id,
        "experiment_id": experiment_id,
        "num_runs": len(runs),
        "files": [str(p) for p in written],
    }


def make_tables_to(
    tracking: Any, experiment: str, out: str | Path, summary_path: str | Path
) -> dict[str, Any]:
    """``make_tables`` with the config's ``tracking`` section, writing its result to ``summary_path``."""
    from i2sb.atomic import write_json

    result = make_tables(tracking.uri, experiment, out, tracking.artifact_root or None)
    write_json(summary_path, result)
    return result
