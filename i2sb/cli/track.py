"""`i2sb track`: record one evaluated (task, sampler, NFE) as an MLflow run (the workflow's `track` rule)."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "track",
        help="import one evaluation (metrics, training curve, sample grid) into MLflow",
        description="Create or update the MLflow run keyed "
        "<benchmark>/<task>/<variant>/<sampler>/nfe<K> (the sampler as the samples file records "
        "it). A rerun updates that run instead of adding one. Example: i2sb track "
        "--metrics results/demo/eval/sr4x-pool/ddpm/nfe5/metrics.json --train-dir "
        "results/demo/train/sr4x-pool --samples "
        "results/demo/samples/sr4x-pool/ddpm/nfe5/samples.npz --config results/demo/config.json",
    )
    parser.add_argument(
        "--metrics", required=True, help="RUN/eval/<task>/<sampler>/nfe<K>/metrics.json"
    )
    parser.add_argument("--train-dir", required=True, help="RUN/train/<task> (metrics.jsonl)")
    parser.add_argument(
        "--samples", required=True, help="RUN/samples/<task>/<sampler>/nfe<K>/samples.npz"
    )
    parser.add_argument("--config", required=True, help="the resolved config as JSON")
    parser.add_argument(
        "--tracking-uri", help="MLflow store or server URL (default: the config's tracking.uri)"
    )
    parser.add_argument(
        "--experiment", help="experiment name (default: tracking.experiment, else the benchmark)"
    )
    parser.add_argument("--variant", default="i2sb", help="name of the method variant")
    parser.add_argument(
        "--artifact-root",
        help="artifact folder of a new experiment in a local store (default: tracking.artifact_root)",
    )
    parser.add_argument("--data-index", help="dataset index file to include in the fingerprint")
    parser.add_argument("--marker", help="write {run_id, experiment_id, key, ...} here as JSON")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from i2sb.tracking import track

    result = track(
        args.metrics,
        args.train_dir,
        args.samples,
        args.config,
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        variant=args.variant,
        artifact_root=args.artifact_root,
        data_index=args.data_index,
        marker=args.marker,
    )
    print(json.dumps(result))
    return 0
