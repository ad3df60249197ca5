"""Our results beside the paper's, as data frames; missing values stay missing (NaN), never filled in.

Pure pandas: the input is the frame ``mlflow.search_runs`` returns, so these functions are tested
without a tracking store. A missing cell carries its reason in the ``<column>_reason`` column.
"""

from __future__ import annotations

import math

import pandas as pd

from i2sb.metric_table import HEADLINE_METRIC, degraded_name
from i2sb.metric_table import METRICS as METRIC_SPECS
from i2sb.paper import (
    I2SB,
    PAPER_DATASET,
    PAPER_IMAGE_SIZE,
    PAPER_TABLES,
    paper_eval_images,
    paper_fid_reference,
    paper_results,
)
from i2sb.tasks import task_spec

# The metric table's names, headers and twins (i2sb/metric_table.py), as the tables use them.
METRICS = tuple(spec.name for spec in METRIC_SPECS)
# The metrics measured on the degraded inputs too (``<metric>_degraded`` in metrics.json).
DEGRADED_METRICS = tuple(spec.name for spec in METRIC_SPECS if spec.degraded_twin)
# The ones the paper's tables quote (fields of paper.PaperResult).
QUOTED_BY_PAPER = tuple(spec.name for spec in METRIC_SPECS if spec.quoted_by_paper)
PAPER_ORDER = tuple(task for tasks in PAPER_TABLES.values() for task in tasks)
HEADERS = {spec.name: spec.header for spec in METRIC_SPECS}
# Runs recorded before the sampler became a dimension of the benchmark were all sampled with the
# paper's sampler: the only default this module assumes.
SAMPLER_BEFORE_SAMPLERS = "ddpm"
# What each run was evaluated on (MLflow params written by `i2sb track`).
FACTS = {
    "dataset": "dataset_name",
    "dataset_kind": "dataset_kind",
    "image_size": "image_size",
    "num_images": "num_images",
    "fid_reference_kind": "fid_reference_kind",
    "mask_source": "mask_source",
    # What was sampled: the workflow config's network and training length, or the published checkpoints.
    "network": "config.network.preset",
    "iterations": "config.train.iterations",
    "checkpoints": "config.checkpoints.source",
    # What each run's images were scored on and sampled with (identity, never mixed in a report).
    "data_fingerprint": "data_fingerprint",
    "checkpoint_sha256": "checkpoint_sha256",
}
# Facts every run of one report shares, and those every run of one task shares: runs that differ
# there come from different data, networks or checkpoints and are never put in one table.
SHARED_FACTS = ("dataset", "dataset_kind", "image_size", "network", "iterations", "checkpoints")
TASK_FACTS = ("num_images", "data_fingerprint", "checkpoint_sha256")
OURS, PAPER_SUFFIX, DEGRADED = f"{I2SB} (ours)", " (paper)", "degraded input"
NOT_REPORTED = "not reported by the paper"
BASELINE_NOT_QUOTED = "a baseline of the paper: only its FID is quoted (i2sb/paper.py)"
NO_RUN = "no evaluation run recorded"
NOT_FOR_DEGRADED = "not computed for the degraded inputs"


def _param(search: pd.DataFrame, name: str) -> pd.Series:
    column = f"params.{name}"
    if column not in search:
        return pd.Series([None] * len(search), index=search.index, dtype=object)
    values = search[column].astype(object)
    return values.where(~values.isin(["None", "unknown", ""]) & values.notna(), None)


def _sampler(search: pd.DataFrame) -> pd.Series:
    """The sampler label of each run (param ``sampler``, e.g. implicit-eta0), else the paper's (ddpm)."""
    return _param(search, "sampler").fillna(SAMPLER_BEFORE_SAMPLERS)


def _metric(search: pd.DataFrame, name: str) -> tuple[pd.Series, pd.Series]:
    column, reason = f"metrics.{name}", f"tags.{name}_unavailable_reason"
    values = search[column] if column in search else pd.Series(math.nan, index=search.index)
    reasons = search[reason] if reason in search else pd.Series(None, index=search.index)
    return values.astype(float), reasons.astype(object).where(values.isna(), None)


def runs_frame(search: pd.DataFrame) -> pd.DataFrame:
    """``mlflow.search_runs`` output -> one row per run: task, sampler, nfe, what it was evaluated
    on (FACTS) and the metrics (NaN if absent, with ``<metric>_reason``)."""
    names = [*METRICS, *(degraded_name(m) for m in DEGRADED_METRICS)]
    columns = ["task", "sampler", "nfe", *FACTS, *names, *(f"{m}_reason" for m in names)]
    if search.empty:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(
        {
            "task": search["params.task"],
            "sampler": _sampler(search),
            "nfe": pd.to_numeric(search["params.nfe"]).astype(int),
        }
    )
    for fact, param in FACTS.items():
        frame[fact] = _param(search, param)
    for fact in ("image_size", "num_images"):
        frame[fact] = pd.to_numeric(frame[fact], errors="coerce").astype("Int64")
    for name in names:
        frame[name], frame[f"{name}_reason"] = _metric(search, name)
    for spec in METRIC_SPECS:  # e.g. CA: metrics.json holds a fraction, the tables print percent
        frame[spec.name] = frame[spec.name] * spec.table_scale
    return frame.sort_values(["task", "sampler", "nfe"]).reset_index(drop=True)[columns]


def on_paper_data(runs: pd.DataFrame) -> bool:
    """Whether the runs are on the paper's data set, so that the paper's rows belong beside them."""
    return not runs.empty and (runs["dataset_kind"] == "imagenet").all()


def not_comparable(run: pd.Series) -> list[str]:
    """Why one of our ImageNet runs is not comparable with the paper's figures (empty: it is)."""
    task, why = run["task"], []
    unknown_size = pd.isna(run["image_size"])
    if unknown_size or run["image_size"] != PAPER_IMAGE_SIZE:
        size = "resolution not recorded" if unknown_size else f"{run['image_size']} px"
        why.append(f"{size}, not {PAPER_IMAGE_SIZE} px")
    expected = paper_eval_images(task)
    if pd.isna(run["num_images"]) or run["num_images"] != expected:
        why.append(f"{_count(run['num_images'])} images, not the paper's {expected:,}")
    reference = paper_fid_reference(task)
    for spec in (s for s in METRIC_SPECS if s.reference_fact):
        if not math.isnan(run[spec.name]) and run[spec.reference_fact] != reference:
            why.append(f"{spec.header} against {run[spec.reference_fact]}, not {reference}")
    if task_spec(task).hole_ratio is not None and run["mask_source"] != "published":
        why.append("generated free-form masks, not the paper's")
    return why


def _count(value) -> str:
    return "an unknown number of" if pd.isna(value) else f"{int(value):,}"


def _paper_rows(task: str) -> list[dict]:
    rows = []
    for result in paper_results(task):
        row = {"task": task, "method": result.method + PAPER_SUFFIX, "nfe": result.nfe}
        row |= {"sampler": "ddpm" if result.method == I2SB else None}
        row |= {name: getattr(result, name) for name in QUOTED_BY_PAPER}
        row |= {"dataset": PAPER_DATASET, "fid_reference_kind": paper_fid_reference(task)}
        row |= {"image_size": PAPER_IMAGE_SIZE, "num_images": paper_eval_images(task)}
        row |= {f"{m}_reason": NOT_REPORTED for m in METRICS}
        unquoted = [m for m in QUOTED_BY_PAPER if getattr(result, m) is None]
        row |= {f"{m}_reason": BASELINE_NOT_QUOTED for m in ("sampler", "nfe", *unquoted)}
        rows.append(row)
    return rows


def _degraded_row(task: str, ours: pd.DataFrame) -> dict:
    """The degraded inputs' scores, from the task's first run (every run of a task shares them)."""
    row = {"task": task, "method": DEGRADED}
    row |= {f"{m}_reason": NOT_FOR_DEGRADED for m in METRICS if m not in DEGRADED_METRICS}
    first = ours.iloc[0] if len(ours) else None
    for metric in DEGRADED_METRICS:
        source = degraded_name(metric)
        row[metric] = math.nan if first is None else first[source]
        row[f"{metric}_reason"] = NO_RUN if first is None else first[f"{source}_reason"]
    for fact in ("dataset", "image_size", "num_images"):
        row[fact] = None if first is None else first[fact]
    return row


def paper_table(runs: pd.DataFrame, tasks: tuple[str, ...], with_paper: bool) -> pd.DataFrame:
    """Rows per task: the paper's (when ``with_paper``), the degraded inputs, then ours per
    (sampler, NFE); a task without runs keeps an empty row of ours, so the gap shows.

    ``comparable`` says, for our rows beside the paper's, why they are not comparable ("" if they are).
    """
    rows = []
    for task in tasks:
        ours = runs[runs["task"] == task]
        if with_paper:
            rows += _paper_rows(task)
        rows.append(_degraded_row(task, ours))
        if ours.empty:
            rows.append({"task": task, "method": OURS} | {f"{m}_reason": NO_RUN for m in METRICS})
        for record in ours.to_dict("records"):
            row = {"task": task, "method": OURS, **record}
            if with_paper:
                row["comparable"] = "; ".join(not_comparable(pd.Series(record)))
            rows.append(row)
    facts = ["dataset", "image_size", "num_images", "fid_reference_kind"]
    columns = ["task", "method", "sampler", "nfe", *METRICS, *facts]
    columns += ["comparable"] if with_paper else []
    table = pd.DataFrame(rows).reindex(columns=[*columns, *_reason_columns(rows)])
    table["nfe"] = table["nfe"].astype("Int64")
    return table.astype({name: float for name in METRICS})


def _reason_columns(rows: list[dict]) -> list[str]:
    return sorted({key for row in rows for key in row if key.endswith("_reason")})


def nfe_table(runs: pd.DataFrame, metric: str, tasks: tuple[str, ...]) -> pd.DataFrame:
    """Rows (task, sampler), a "degraded input" column where the metric has one, then one column
    per measured NFE; ``<column>_reason`` says why a cell is empty."""
    samplers = sorted(runs["sampler"].unique()) or [SAMPLER_BEFORE_SAMPLERS]
    nfes = sorted(runs["nfe"].unique())
    rows = []
    for task in tasks:
        ours = runs[runs["task"] == task]
        degraded = _degraded_row(task, ours) if metric in DEGRADED_METRICS else None
        for sampler in samplers:
            row = {"task": task, "sampler": sampler}
            if degraded is not None:
                row[DEGRADED] = degraded[metric]
                row[f"{DEGRADED}_reason"] = degraded[f"{metric}_reason"]
            for nfe in nfes:
                found = ours[(ours["sampler"] == sampler) & (ours["nfe"] == nfe)]
                column = f"NFE {nfe}"
                row[column] = found.iloc[0][metric] if len(found) else math.nan
                row[f"{column}_reason"] = (
                    found.iloc[0][f"{metric}_reason"] if len(found) else NO_RUN
                )
            rows.append(row)
    value_columns = [
        *([DEGRADED] if metric in DEGRADED_METRICS else []),
        *(f"NFE {n}" for n in nfes),
    ]
    table = pd.DataFrame(rows, columns=["task", "sampler", *value_columns])
    reasons = pd.DataFrame(rows).reindex(columns=[f"{c}_reason" for c in value_columns])
    return pd.concat([table.astype({c: float for c in value_columns}), reasons], axis=1)


def below_degraded(runs: pd.DataFrame, metric: str = HEADLINE_METRIC) -> pd.DataFrame:
    """Our runs whose ``metric`` (higher is better) does not beat their degraded inputs', where both
    were measured: a restoration that made the images worse, which a report must show, not hide.

    Columns: task, sampler, nfe, ``metric``, ``<metric>_degraded``, in the runs' order.
    """
    degraded = degraded_name(metric)
    measured = runs[runs[metric].notna() & runs[degraded].notna()]
    worse = measured[measured[metric] <= measured[degraded]]
    return worse[["task", "sampler", "nfe", metric, degraded]].reset_index(drop=True)


def measured_against_degraded(runs: pd.DataFrame, metric: str = HEADLINE_METRIC) -> int:
    """How many runs have ``metric`` measured on both the restored and the degraded images."""
    return int((runs[metric].notna() & runs[degraded_name(metric)].notna()).sum())


def report_tasks(runs: pd.DataFrame, configured: tuple[str, ...] | None) -> tuple[str, ...]:
    """The tasks that get rows: the configured ones (in the paper's order), else those with runs."""
    tasks = configured if configured else tuple(runs["task"].unique())
    known = [t for t in PAPER_ORDER if t in tasks]
    return (*known, *sorted(t for t in tasks if t not in PAPER_ORDER))


def mixed_identity(runs: pd.DataFrame) -> str | None:
    """Why ``runs`` (``runs_frame``) cannot share one report: the first fact (SHARED_FACTS, or
    TASK_FACTS within a task) on which two runs differ, naming it and both runs; None if none.
    A fact a run did not record is not compared."""
    groups = [("", runs, SHARED_FACTS)]
    groups += [(f" of task {task}", group, TASK_FACTS) for task, group in runs.groupby("task")]
    for where, group, facts in groups:
        for fact in facts:
            known = group[group[fact].notna()]
            values = known[fact].astype(str).unique()
            if len(values) > 1:
                first, other = (known[known[fact].astype(str) == v].iloc[0] for v in values[:2])
                return (
                    f"the runs{where} differ in {fact}: {values[0]!r} ({_named_run(first)}) vs "
                    f"{values[1]!r} ({_named_run(other)})"
                )
    return None


def _named_run(run: pd.Series) -> str:
    return f"{run['task']} {run['sampler']} NFE {run['nfe']}"
