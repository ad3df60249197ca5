"""`i2sb tables`: the paper's tables and metric-vs-NFE plots from MLflow (the workflow's `report` rule)."""

from __future__ import annotations

from i2sb.config import DEFAULT_ARTIFACT_ROOT, DEFAULT_TRACKING_URI


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "tables",
        help="write the paper's tables (Markdown, LaTeX, CSV) and NFE plots from the MLflow runs",
        description="Read every evaluation run of an experiment and write OUT/: one table per "
        "paper table with our figures beside the paper's, NFE tables, and FID/PSNR-vs-NFE "
        "plots. Missing values print as '–'. Example: i2sb tables --tracking-uri "
        "sqlite:///results/mlflow.db --experiment demo --out results/demo/tables",
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
    parser.set_defaults(handler=run)


def run(args) -> int:
    from i2sb.tables import make_tables

    result = make_tables(args.tracking_uri, args.experiment, args.out, args.artifact_root)
    print(f"{result['num_runs']} runs -> {len(result['files'])} files in {args.out}")
    return 0
