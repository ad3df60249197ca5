"""`i2sb tables`: the paper's tables and metric-vs-NFE plots from MLflow (the workflow's `report` rule)."""

from __future__ import annotations

from i2sb.config import DEFAULT_ARTIFACT_ROOT, DEFAULT_TRACKING_URI


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "tables",
        help="write the paper's tables (Markdown, LaTeX, CSV) and NFE plots from the MLflow runs",
        description="Read every evaluation run of an experiment and write OUT/: one table per "
        "paper table holding a task (our figures, the degraded inputs, and the paper's when the runs "
        "are on ImageNet), NFE tables per metric, and metric-vs-NFE plots (one line per sampler). "
        "Captions name the data set, resolution, image count, samplers, NFEs and FID reference; "
        "a missing value prints as '–' with a footnote giving the reason (empty in the CSV). Example: i2sb tables --tracking-uri "
        "sqlite:///results/mlflow.db --experiment demo --out results/demo/tables. An experiment "
        "without evaluation runs (misspelt, or nothing tracked yet) is an error naming those that "
        "have runs. An http(s) server that does not answer is an error naming it within seconds.",
    )
    parser.add_argument(
        "--tracking-uri", default=DEFAULT_TRACKING_URI, help="MLflow store or server URL"
    )
    parser.add_argument("--experiment", required=True, help="experiment (the benchmark name)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--artifact-root",
        default=DEFAULT_ARTIFACT_ROOT,
        help="artifact folder if the experiment must be created in a local store",
    )
    parser.add_argument(
        "--task",
        action="append",
        dest="tasks",
        metavar="TASK",
        help="a task that gets rows (repeat; default: every task with runs)",
    )
    parser.add_argument(
        "--tracked",
        metavar="TRACKED_JSON",
        default=None,
        help="only the runs a track step recorded (its tracked.json): one configuration's runs "
        "(default: every evaluation run of the experiment; runs of different identity are refused)",
    )
    parser.set_defaults(handler=run)


def check_experiment(uri: str, name: str) -> None:
    """Refuse an experiment without evaluation runs (misspelt, empty) naming those that exist;
    a local sqlite store that does not exist is not created."""
    from mlflow import MlflowClient

    from i2sb.tracking.store import KIND_TAG
    from i2sb.tracking.transport import sqlite_file

    db = sqlite_file(uri)
    if db is not None and not db.is_file():
        raise FileNotFoundError(
            f"no MLflow store at {db} (--tracking-uri {uri}); import runs first with `i2sb track`"
        )
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(name)
    runs = []
    if experiment is not None:
        runs = client.search_runs([experiment.experiment_id],
                                  filter_string=f"tags.`{KIND_TAG}` = 'eval'", max_results=1)  # fmt: skip
    if not runs:
        found = []
        for other in client.search_experiments():
            if client.search_runs([other.experiment_id],
                                  filter_string=f"tags.`{KIND_TAG}` = 'eval'", max_results=1):  # fmt: skip
                found.append(other.name)
        state = "has no evaluation runs" if experiment is not None else "does not exist"
        raise ValueError(
            f"MLflow experiment {name!r} at {uri} {state}; experiments with evaluation runs: "
            f"{', '.join(sorted(found)) or 'none (run i2sb track first)'}"
        )


def run(args) -> int:
    from i2sb.tables import make_tables, tracked_run_ids
    from i2sb.tracking.transport import check_reachable, http_limits

    check_reachable(args.tracking_uri)  # a dead server: one line in seconds, not minutes of retries
    with http_limits():
        check_experiment(args.tracking_uri, args.experiment)
    tasks = tuple(args.tasks) if args.tasks else None
    run_ids = tracked_run_ids(args.tracked) if args.tracked else None
    result = make_tables(
        args.tracking_uri, args.experiment, args.out, args.artifact_root, tasks, run_ids
    )
    print(f"{result['num_runs']} runs -> {len(result['files'])} files in {args.out}")
    return 0
