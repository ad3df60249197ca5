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


def run(args) -> int:
    from i2sb.tables import make_tables, tracked_run_ids

    tasks = tuple(args.tasks) if args.tasks else None
    run_ids = tracked_run_ids(args.tracked) if args.tracked else None
    result = make_tables(args.tracking_uri, args.experiment, args.out, args.artifact_root, tasks,
                         run_ids, require_runs=True)  # fmt: skip
    print(f"{result['num_runs']} runs -> {len(result['files'])} files in {args.out}")
    return 0
