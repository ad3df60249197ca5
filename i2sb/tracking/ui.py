"""What people see of the tracked runs: where the experiments live, the runs-table columns and
view, and the link to it, built from ``tracking.uri``."""

from __future__ import annotations

from urllib.parse import urlparse

from i2sb.metric_table import METRICS

# `mlflow ui`'s own default address: where a local (sqlite, file) store is served when started
# as ``ui_command`` says; a tracking server's link is its URI instead.
LOCAL_UI = "http://127.0.0.1:5000"


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


def ui_address(tracking_uri: str) -> str:
    """Where the UI of ``tracking_uri`` answers: a tracking server serves its own UI at its URI;
    a local store (sqlite, file) has none until ``mlflow ui`` is started on it, at MLflow's
    default address unless told otherwise (``ui_command`` says how)."""
    if urlparse(tracking_uri).scheme in ("http", "https"):
        return tracking_uri.rstrip("/")
    return LOCAL_UI


def ui_command(tracking_uri: str) -> str:
    """What serves ``runs_page`` for ``tracking_uri``: nothing for a server, else ``mlflow ui``."""
    if urlparse(tracking_uri).scheme in ("http", "https"):
        return ""
    return f"mlflow ui --backend-store-uri {tracking_uri} --host 127.0.0.1 --port 5000"


def runs_page(experiment_id: str, tracking_uri: str) -> str:
    """A direct link to the experiment's runs table in the UI's Model-training mode."""
    query = f"workflowType=machine_learning&viewStateShareKey={RUNS_VIEW}"
    return f"{ui_address(tracking_uri)}/#/experiments/{experiment_id}/runs?{query}"
