"""`i2sb tables`: the paper's tables and metric-vs-NFE plots from the runs in MLflow (the `report` rule).

Reads every evaluation run of one experiment, writes DIR/ (Markdown, LaTeX, CSV, PNG) and logs DIR
as the artifacts of one summary run, keyed like the evaluation runs so a rerun updates it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from i2sb.atomic import write_text
from i2sb.joblog import LOG
from i2sb.metric_table import HEADLINE_METRIC, degraded_name, metric_spec
from i2sb.paper import PAPER_TABLES, TABLE_TITLES
from i2sb.tables.build import (
    DEGRADED,
    HEADERS,
    METRICS,
    PAPER_ORDER,
    below_degraded,
    measured_against_degraded,
    mixed_identity,
    nfe_table,
    on_paper_data,
    paper_table,
    report_tasks,
    runs_frame,
)
from i2sb.tables.facts import describe_runs, table_caption
from i2sb.tables.render import DECIMALS, write_table
from i2sb.tracking.store import KIND_TAG, RunRecord, get_or_create_experiment, upsert_run
from i2sb.tracking.transport import check_reachable, http_limits, sqlite_file, store_lock
from i2sb.tracking.ui import report_experiment

OTHER_TASKS = "Tasks outside the paper's tables"


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


def read_runs(uri: str, experiment_id: str, run_ids: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The evaluation runs of an experiment, one row each (see ``runs_frame``); with
    ``run_ids``, only those (the runs the current configuration tracked), each of which must
    be there."""
    import mlflow

    with _tracking_uri(uri):
        search = mlflow.search_runs(
            experiment_ids=[experiment_id],
            filter_string=f"tags.`{KIND_TAG}` = 'eval'",
            output_format="pandas",
        )
    if run_ids is not None:
        absent = sorted(set(run_ids) - set(search.get("run_id", ())))
        if absent:
            raise ValueError(
                f"{len(absent)} tracked run(s) are not active evaluation runs of the experiment "
                f"at {uri} (first: {absent[0]}); track again (the track step) before the report"
            )
        search = search[search["run_id"].isin(run_ids)]
    return runs_frame(search)


def tracked_run_ids(marker: str | Path) -> tuple[str, ...]:
    """The run ids a track step recorded in its marker (``tracking.track_all``'s tracked.json)."""
    from i2sb.tracking.inputs import read_json

    runs = read_json(marker, "tracked runs file").get("runs")
    if not isinstance(runs, list) or not all(isinstance(r, dict) and "run_id" in r for r in runs):
        raise ValueError(f"tracked runs file {marker}: expected 'runs': [{{'run_id': ...}}, ...]")
    return tuple(str(r["run_id"]) for r in runs)


def _table_groups(tasks: tuple[str, ...]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Table name -> (title, tasks): the paper's tables holding a configured task, then the rest."""
    groups = {
        name: (TABLE_TITLES[name], tuple(t for t in paper_tasks if t in tasks))
        for name, paper_tasks in PAPER_TABLES.items()
    }
    groups["other"] = (OTHER_TASKS, tuple(t for t in tasks if t not in PAPER_ORDER))
    return {name: group for name, group in groups.items() if group[1]}


# The report leads with whether each restoration beats its degraded input in this metric.
_HEADLINE, _HEADLINE_TWIN = HEADLINE_METRIC, degraded_name(HEADLINE_METRIC)
_HEADLINE_WORD = metric_spec(HEADLINE_METRIC).header


def degraded_check(runs: pd.DataFrame) -> dict[str, Any]:
    """Whether every evaluation's PSNR beats its degraded input's: ``{"measured": how many runs
    have both PSNRs, "below": [{task, sampler, nfe, psnr, psnr_degraded}] of those that do not}``."""
    below = [
        {"task": r["task"], "sampler": r["sampler"], "nfe": int(r["nfe"]),
         _HEADLINE: float(r[_HEADLINE]), _HEADLINE_TWIN: float(r[_HEADLINE_TWIN])}
        for r in below_degraded(runs, _HEADLINE).to_dict("records")
    ]  # fmt: skip
    return {"measured": measured_against_degraded(runs, _HEADLINE), "below": below}


def _verdict(check: dict[str, Any]) -> str:
    measured, below, word = check["measured"], len(check["below"]), _HEADLINE_WORD
    if not measured:
        return f"restored against degraded: no evaluation has both {word}s"
    if not below:
        return f"every evaluation ({measured} of {measured}) beats its degraded input in {word}"
    return f"WARNING: {below} of {measured} evaluations do not beat their degraded input in {word}"


def _named(check: dict[str, Any]) -> list[str]:
    digits = DECIMALS[_HEADLINE]
    return [
        f"{r['task']} {r['sampler']} NFE {r['nfe']}: {r[_HEADLINE]:.{digits}f} dB restored, "
        f"{r[_HEADLINE_TWIN]:.{digits}f} dB degraded"
        for r in check["below"]
    ]


def degraded_text(check: dict[str, Any]) -> str:
    """The report's first section, from ``degraded_check``: a warning naming each evaluation that
    does not beat its degraded input, else one line saying that every one does."""
    bullets = "".join(f"- {name}\n" for name in _named(check))
    return f"**{_verdict(check)}**\n" + (f"\n{bullets}" if bullets else "")


def degraded_line(summary: dict[str, Any]) -> str:
    """One console line from a report summary (tables.json): whether every evaluation beats its
    degraded input in PSNR, or which do not."""
    check = summary.get("degraded_check")
    if check is None:
        return "restored against degraded: not in this tables.json (an older version wrote it); rerun the report"
    return "; ".join([_verdict(check), *_named(check)])


def write_report(runs: pd.DataFrame, out: Path, tasks: tuple[str, ...] | None = None) -> list[Path]:
    """Every table and plot into ``out`` for ``tasks`` (default: those with runs); returns the files."""
    from i2sb.tables.plots import plot_task

    tasks = report_tasks(runs, tasks)
    runs = runs[runs["task"].isin(tasks)]
    with_paper = on_paper_data(runs)
    written, sections = [], [degraded_text(degraded_check(runs))]
    for name, (title, group) in _table_groups(tasks).items():
        caption = table_caption(title, runs, group, with_paper)
        paths, text = write_table(
            paper_table(runs, group, with_paper), out, f"table_{name}", caption
        )
        written += paths
        sections.append(text)
    for metric in METRICS:
        beside = f", beside the {DEGRADED}" if degraded_name(metric) in runs else ""
        caption = (
            f"{HEADERS[metric]} against NFE, per task and sampler{beside}: {describe_runs(runs)}. "
            f"{HEADERS[metric]}: {metric_spec(metric).caption}."
        )
        table = nfe_table(runs, metric, tasks)
        paths, text = write_table(table, out, f"nfe_{metric}", caption, DECIMALS[metric])
        written += paths
        if runs[metric].notna().any():
            sections.append(text)
        else:
            reasons = "; ".join(str(r) for r in runs[f"{metric}_reason"].dropna().unique())
            sections.append(
                f"**{HEADERS[metric]}**: no value in any run ({reasons or 'no runs'}).\n"
            )
    for task in tasks:
        if (runs["task"] == task).any():
            written.append(out / "plots" / f"{task}_vs_nfe.png")
            plot_task(runs, task, written[-1], with_paper)
    report = "# Results\n\n" + "\n".join(sections)
    write_text(out / "report.md", report)
    return [*written, out / "report.md"]


def make_tables(
    tracking_uri: str,
    experiment: str,
    out: str | Path,
    artifact_root: str | None = None,
    tasks: tuple[str, ...] | None = None,
    run_ids: tuple[str, ...] | None = None,
    *,
    require_runs: bool = False,
) -> dict[str, Any]:
    """Write the report for ``experiment`` into ``out`` and log it as a summary run, kept apart
    in the experiment ``<experiment>/report`` so the evaluations' runs table holds only them.

    ``tasks`` (the config's) are the tasks that get rows; by default, those with runs.
    ``run_ids`` (the track step's, ``tracked_run_ids``) are the runs of the current
    configuration; by default every evaluation run. Runs that differ in what they were made
    from (``build.mixed_identity``: data, network, checkpoint) are refused, naming the fact.
    With ``require_runs`` (``i2sb tables``: a name typed by a user) an experiment without
    evaluation runs is an error naming those that have runs, and no store is created.
    """
    from mlflow import MlflowClient

    out = Path(out)
    check_reachable(tracking_uri)  # a dead server fails in seconds, as `track` does
    if require_runs:
        with http_limits():
            require_eval_runs(tracking_uri, experiment)
    with store_lock(tracking_uri), http_limits():
        client = MlflowClient(tracking_uri=tracking_uri)
        experiment_id = get_or_create_experiment(client, experiment, tracking_uri, artifact_root)
        runs = read_runs(tracking_uri, experiment_id, run_ids)
        mixed = mixed_identity(runs[runs["task"].isin(report_tasks(runs, tasks))])
        if mixed:
            raise ValueError(
                f"MLflow experiment {experiment!r} at {tracking_uri}: {mixed}; one report holds "
                "runs of one configuration (the workflow's report shows the runs its track step "
                "recorded; for `i2sb tables` use another --experiment per configuration)"
            )
        written = write_report(runs, out, tasks)
        check = degraded_check(runs[runs["task"].isin(report_tasks(runs, tasks))])
        LOG.log(
            logging.WARNING if check["below"] else logging.INFO,
            degraded_line({"degraded_check": check}),
        )
        record = RunRecord(
            key=f"{experiment}/tables",
            kind="summary",
            name="tables",
            params={"experiment": experiment},
            tags={"i2sb.num_eval_runs": str(len(runs))},
        )
        report_id = get_or_create_experiment(
            client, report_experiment(experiment), tracking_uri, artifact_root
        )
        run_id = upsert_run(client, report_id, record).run_id
        client.log_artifacts(run_id, str(out), artifact_path="tables")
        client.set_terminated(run_id, status="FINISHED")
    return {
        "run_id": run_id,
        "experiment_id": experiment_id,
        "report_experiment_id": report_id,
        "num_runs": len(runs),
        "degraded_check": check,
        "files": [str(p) for p in written],
    }


def require_eval_runs(uri: str, name: str) -> None:
    """Refuse an experiment without evaluation runs (misspelt, empty) naming those that exist;
    a local sqlite store that does not exist is not created."""
    from mlflow import MlflowClient

    db = sqlite_file(uri)
    if db is not None and not db.is_file():
        raise FileNotFoundError(
            f"no MLflow store at {db} (--tracking-uri {uri}); import runs first with `i2sb track`"
        )
    client = MlflowClient(tracking_uri=uri)

    def has_eval_runs(experiment_id: str) -> bool:
        only_eval = f"tags.`{KIND_TAG}` = 'eval'"
        return bool(client.search_runs([experiment_id], filter_string=only_eval, max_results=1))

    experiment = client.get_experiment_by_name(name)
    if experiment is None or not has_eval_runs(experiment.experiment_id):
        found = [e.name for e in client.search_experiments() if has_eval_runs(e.experiment_id)]
        state = "has no evaluation runs" if experiment is not None else "does not exist"
        raise ValueError(
            f"MLflow experiment {name!r} at {uri} {state}; experiments with evaluation runs: "
            f"{', '.join(sorted(found)) or 'none (run i2sb track first)'}"
        )


def make_tables_to(
    tracking: Any,
    experiment: str,
    out: str | Path,
    summary_path: str | Path,
    tasks: tuple[str, ...] | None = None,
    tracked: str | Path | None = None,
) -> dict[str, Any]:
    """``make_tables`` with the config's ``tracking`` section, writing its result to
    ``summary_path``; ``tracked`` (the track step's marker) limits it to the runs tracked."""
    from i2sb.atomic import write_json

    run_ids = tracked_run_ids(tracked) if tracked is not None else None
    root = tracking.artifact_root or None
    result = make_tables(tracking.uri, experiment, out, root, tasks, run_ids)
    write_json(summary_path, result)
    return result
