"""`i2sb evaluate` (the metric table's metrics of a samples.npz) and `i2sb fid-reference`."""

from __future__ import annotations

from i2sb.cli._overrides import add_section_flags, config_from_args
from i2sb.metric_table import METRIC_NAMES, METRICS

_WEIGHTS = (
    "Pretrained weights come from torch.hub's cache, $TORCH_HOME/hub/checkpoints (default "
    "~/.cache/torch/hub/checkpoints): pt_inception-2015-12-05-6726825d.pth (Inception), "
    "resnet50-0676ba61.pth (ResNet-50) and alexnet-owt-7be5be79.pth (AlexNet, never "
    "downloaded); pre-place them there to run offline."
)


def _metrics_description() -> str:
    """One sentence per row of the metric table: what it measures and needs (so a new row
    documents itself here)."""
    sentences = []
    for spec in METRICS:
        twin = " (also of the degraded inputs)" if spec.degraded_twin else ""
        needs = f"; needs {spec.needs_weights}" if spec.needs_weights else ""
        sentences.append(f"{spec.name}: {spec.caption}{twin}{needs}.")
    return " ".join(sentences)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help=f"{', '.join(METRIC_NAMES)} of a samples.npz -> metrics.json",
        description=f"{_metrics_description()} The FID reference: ADM's training-set batch for "
        "4x SR (downloaded or pre-placed, downloads.fid_reference), validation-set statistics "
        "from `i2sb fid-reference` for the other tasks. "
        "--metrics picks which (default: all; the metric table is i2sb/metric_table.py). "
        "A metric whose weights or reference cannot be had is written as null with the reason, "
        f"unless --require-external-metrics. {_WEIGHTS} What the images are (metrics.json "
        "'dataset') is read from the samples' meta, written by sampling; the data is not opened. "
        "With --config the samples must record "
        "the config's seed and clip_denoise (and with --check-data its evaluation images), and "
        "--sampler/--nfe when given; else it stops naming the key. Example: i2sb evaluate "
        "samples.npz --task sr4x-pool --out metrics.json",
    )
    parser.add_argument("samples", metavar="SAMPLES", help="gathered samples.npz")
    parser.add_argument("--task", required=True, help="task the samples were made for")
    parser.add_argument("--out", required=True, help="metrics.json to write")
    parser.add_argument("--config", default=None, help="YAML config for evaluate/downloads keys")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override")
    parser.add_argument("--fid-reference", default="", help="npz with mu/sigma (any task)")
    parser.add_argument(
        "--sampler", default=None, metavar="LABEL",
        help="with --config: the samples must be of this config samplers entry (options too)",
    )  # fmt: skip
    parser.add_argument("--nfe", type=int, default=None, help="the samples must be of this NFE")
    parser.add_argument(
        "--check-data", action="store_true",
        help="with --config: the samples must also be of the config's evaluation images (names, "
        "sizes, labels and content, read again from --data-dir, default data.root)",
    )  # fmt: skip
    parser.add_argument(
        "--data-dir", default=None, metavar="DIR",
        help="with --check-data: the data folder sampling read (converted LMDBs, image folder "
        "with val/, or paired data); default: data.root",
    )  # fmt: skip
    add_section_flags(parser, "evaluate")
    parser.add_argument("--device", default="auto", help="torch device; auto = cuda if present")
    parser.set_defaults(handler=run_evaluate)
    _register_reference(subparsers)


def _register_reference(subparsers) -> None:
    parser = subparsers.add_parser(
        "fid-reference",
        help="FID reference statistics (mu/sigma) of an image folder, computed once and cached",
        description="Statistics of the full validation set for the non-SR tasks (spec §7): each "
        "image's short side is resized to --image-size and center-cropped, then features come "
        "from clean-fid's legacy_pytorch Inception. An existing OUT is kept (delete it to "
        "recompute). The Inception weights come from torch.hub's cache: pre-place "
        "pt_inception-2015-12-05-6726825d.pth in $TORCH_HOME/hub/checkpoints (default "
        "~/.cache/torch/hub/checkpoints) to run offline. "
        "Example: i2sb fid-reference data/val --out fid_val_256.npz",
    )
    parser.add_argument("folder", metavar="FOLDER", help="image folder (searched recursively)")
    parser.add_argument("--out", required=True, help="npz cache to write (mu, sigma, num_images)")
    parser.add_argument("--image-size", type=int, default=256, help="default %(default)s")
    parser.add_argument("--batch-size", type=int, default=32, help="default %(default)s")
    parser.add_argument("--device", default="auto", help="torch device; auto = cuda if present")
    parser.set_defaults(handler=run_reference)


def _config(args):
    """The config (``--config`` + ``--set`` + the evaluate.* flags), validated as a whole."""
    return config_from_args(args, ("evaluate",))


def _expected(cfg, args) -> dict:
    """What the samples must record: with --config the config's settings, sampler entry and
    (--check-data) evaluation images (``evalset.expected_identity``); without, only --nfe."""
    if args.config:
        from i2sb.sample.evalset import expected_for_samples

        return expected_for_samples(
            cfg, args.task, args.samples, args.sampler, args.nfe, _checked_data_dir(cfg, args)
        )
    flags = (("--sampler", args.sampler), ("--check-data", args.check_data))
    for flag, given in (*flags, ("--data-dir", args.data_dir)):
        if given:
            raise ValueError(f"{flag} needs --config (the config it checks against)")
    return {} if args.nfe is None else {"nfe": args.nfe}


def _checked_data_dir(cfg, args):
    """The data folder --check-data reads again: --data-dir, else data.root; None without it."""
    if not args.check_data:
        if args.data_dir:
            raise ValueError("--data-dir is read only with --check-data")
        return None
    from i2sb.data.build import given_data_dir

    return given_data_dir(args.data_dir, cfg, "--check-data")


def run_evaluate(args) -> int:
    from i2sb.metrics.evaluate import evaluate_samples

    cfg = _config(args)
    result = evaluate_samples(
        args.samples, args.task, args.out, cfg.evaluate, downloads=cfg.downloads, device=args.device, fid_reference=args.fid_reference,
        mask_options=cfg.mask_options(), expected=_expected(cfg, args),
    )  # fmt: skip
    for name, entry in result["metrics"].items():
        shown = (
            f"{entry['value']:.4g}" if entry["value"] is not None else f"n/a ({entry['reason']})"
        )
        print(f"{name}: {shown}")
    print(f"written: {args.out}")
    return 0


def run_reference(args) -> int:
    from pathlib import Path

    from i2sb.distributed import resolve_device
    from i2sb.metrics.fid import load_inception
    from i2sb.metrics.fid_reference import folder_images, reference_stats_from_images

    if Path(args.out).is_file():
        print(f"{args.out}: exists, kept (delete it to recompute)")
        return 0
    folder_images(args.folder)  # a wrong folder fails before the weights are loaded
    device = resolve_device(args.device)
    mu, _ = reference_stats_from_images(
        args.folder, args.out, load_inception(device), device, args.image_size, args.batch_size
    )
    print(f"{args.out}: mu/sigma of {len(mu)}-d features")
    return 0
