"""`i2sb sample`, `i2sb gather`, `i2sb restore`: sampling an evaluation set in parts, and user images."""

from __future__ import annotations

import re

from i2sb.cli._overrides import add_section_flags, config_from_args
from i2sb.config.choices import DATA_KINDS, EVAL_SUBSETS, MASK_SOURCES
from i2sb.samplers import SAMPLERS, SamplerConfig, SamplerSpec
from i2sb.samplers.entry import option_owners
from i2sb.tasks import family_patterns


def _example() -> str:
    """The epilog: the other samplers with their default options, and an example."""
    others = []
    for spec in SAMPLERS.values():
        flags = [f"--{f.name.replace('_', '-')} {f.default:g}" for f in spec.fields]
        where = family_patterns("data_consistency_applies") if spec.needs_forward_operator else ""
        if spec.name != "ddpm":
            others.append(
                " ".join([f"--sampler {spec.name}", *flags]) + (f" ({where})" if where else "")
            )
    return (
        f"Other samplers: {', '.join(others)}. Example (the README's): i2sb sample "
        "--ckpt results/demo/train/sr4x-pool --data-dir results/demo/data --nfe 5 --partition 0_2 "
        "--out results/demo/samples/sr4x-pool/ddpm/nfe5/part_0_2.npz"
    )


def register(subparsers) -> None:
    _register_sample(subparsers)
    gather = subparsers.add_parser(
        "gather",
        help="merge part files into one samples.npz",
        description="Check that the parts cover every evaluation index exactly once (all partitions "
        "i_n present, no overlap, no gap) and merge them in index order. "
        "Example: i2sb gather part_*_2.npz --out samples.npz --expect-parts 2",
    )
    gather.add_argument("parts", nargs="+", metavar="PART", help="part_<i>_<n>.npz files")
    gather.add_argument("--out", required=True, help="merged file (e.g. samples.npz)")
    gather.add_argument("--expect-parts", type=int, default=None, help="fail unless n equals this")
    gather.set_defaults(handler=run_gather)
    _register_restore(subparsers)


def _common(parser, skip: tuple[str, ...] = ()) -> None:
    parser.add_argument(
        "--ckpt", required=True, help="run folder: latest.pt + options.json (ours) or options.pkl"
    )
    parser.add_argument("--nfe", type=int, required=True, help="network evaluations per image")
    parser.add_argument("--config", default=None, help="YAML config for the sample.* keys")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override")
    # Every sample.* key is a flag (--batch-size, --seed, --precision, --clip-denoise, ...).
    add_section_flags(parser, "sample", skip=("gpus", "cpus", *skip))
    precision = parser.add_argument_group("precision shortcuts (= --precision NAME)")
    for name, what in (("fp16", "fp16 autocast (CUDA only)"), ("bf16", "bf16 autocast"),
                       ("fp32", "no autocast")):  # fmt: skip
        precision.add_argument(
            f"--{name}", dest="sample.precision", action="store_const", const=name, help=what
        )
    parser.add_argument("--device", default="auto", help="torch device; auto = cuda if present")
    _sampler_flags(parser)


def _sampler_flags(parser) -> None:
    """--sampler and one flag per sampler option, read from the sampler table (i2sb/samplers/)."""
    group = parser.add_argument_group("sampler (spec §2, §10)")
    summaries = "; ".join(f"{spec.name}: {_summary(spec)}" for spec in SAMPLERS.values())
    group.add_argument(
        "--sampler", default="ddpm", choices=tuple(SAMPLERS), help=f"{summaries}. Default ddpm"
    )
    for option, owners in option_owners().items():
        kind = owners[0][1].kind
        described = "; ".join(
            f"{name}: {field.info.help} ({field.expected()}; default {field.default:g})"
            for name, field in owners
        )
        group.add_argument(
            "--" + option.replace("_", "-"), dest=f"sampler.{option}", type=kind, default=None,
            metavar=option.upper(), help=described,
        )  # fmt: skip


def _summary(spec: SamplerSpec) -> str:
    """'cddb: DDPM plus ... (--step-size; sr4x-*, blur-* only; ...)', from the sampler's row."""
    notes = [", ".join("--" + f.name.replace("_", "-") for f in spec.fields)] if spec.fields else []
    if spec.needs_forward_operator:
        where = family_patterns("data_consistency_applies")
        notes.append(f"{where} only; elsewhere it cannot run or repeats ddpm's images")
    return spec.summary + (f" ({'; '.join(notes)})" if notes else "")


def sampler_from_args(args) -> SamplerConfig:
    """The --sampler choice and its option flags, checked before any work."""
    given = {o: vars(args)[f"sampler.{o}"] for o in option_owners()}
    sampler = SamplerConfig(args.sampler, **{o: v for o, v in given.items() if v is not None})
    wrong = sampler.option_problem()
    if wrong:
        owners = ", ".join(name for name, _ in option_owners()[wrong.option])
        flag = "--" + wrong.option.replace("_", "-")
        raise ValueError(
            f"{flag}: {wrong.why}" + (f" ({flag} is for {owners})" if wrong.foreign else "")
        )
    return sampler


def _register_sample(subparsers) -> None:
    parser = subparsers.add_parser(
        "sample",
        help="restore one partition of a run's evaluation set into a part file",
        description="Restore partition i of n of the evaluation set with the run's EMA weights "
        "(task, beta_max, interval, OT-ODE and cond_x1 come from the run's options). The part "
        "file holds uint8 recon/clean/degraded, indices, labels and meta; a finished part is not "
        "recomputed. " + _example(),
    )
    _common(parser)
    parser.add_argument("--partition", default="0_1", help="i_n: part i of n (default 0_1)")
    parser.add_argument("--out", required=True, help="part file, e.g. .../part_0_2.npz")
    parser.add_argument(
        "--no-degraded", dest="sample.save_degraded", action="store_const", const=False,
        help="do not store degraded inputs (= --no-save-degraded)",
    )  # fmt: skip
    parser.add_argument("--trajectory", action="store_true", help="trajectory.png beside part 0")
    data = parser.add_argument_group("evaluation data")
    data.add_argument(
        "--data-dir", required=True, help="LMDB folder, image-folder root (val/), or paired data"
    )
    # These set config keys (data.*, downloads.*): given flags override --config / --set.
    data.add_argument(
        "--data-kind", dest="data.kind", default=None, choices=DATA_KINDS,
        help="data.kind (default: --config's, else imagefolder, where ImageNet class folders "
        "select the 10k subset for the tasks that use it)",
    )  # fmt: skip
    data.add_argument("--eval-subset", dest="data.eval_subset", default=None, choices=EVAL_SUBSETS)
    data.add_argument(
        "--max-images",
        dest="data.max_eval_images",
        type=int,
        default=None,
        help="data.max_eval_images: first N evaluation images (0 = all)",
    )
    data.add_argument(
        "--image-size", type=int, default=None, help="must match the model's (default: it)"
    )
    data.add_argument(
        "--subset-fn",
        dest="downloads.subset_fn",
        default=None,
        help="downloads.subset_fn: pre-placed val_faster_imagefolder_10k_fn.txt",
    )
    data.add_argument(
        "--subset-label", dest="downloads.subset_label", default=None,
        help="downloads.subset_label: pre-placed ..._10k_label.txt",
    )  # fmt: skip
    data.add_argument(
        "--cache-dir", dest="downloads.cache_dir", default=None,
        help="downloads.cache_dir (default $I2SB_CACHE)",
    )  # fmt: skip
    data.add_argument(
        "--allow-pickle", action="store_true", help="read an official LMDB's .pt index"
    )
    masks = parser.add_argument_group("free-form masks (default: as recorded by the run)")
    masks.add_argument("--mask-source", default=None, choices=MASK_SOURCES)
    masks.add_argument("--masks-path", default=None, help="pre-placed imagenet_freeform_masks.npz")
    masks.add_argument("--mask-seed", type=int, default=None, help="seed of generated masks")
    parser.set_defaults(handler=run_sample)


def _register_restore(subparsers) -> None:
    parser = subparsers.add_parser(
        "restore",
        help="restore your own degraded images with a trained run",
        description="Each IMAGE is an already degraded picture (x1), read upright (its EXIF "
        "orientation applied); the run maps it to x0. Sizes: "
        "tile (default) restores an image at its own size: overlapping tiles of the model's size, "
        "blended with a smooth window so no seam shows, --tile-batch tiles per network batch "
        "(memory is bounded by that, not by the image); each tile draws its noise from the image's "
        "generator at its position, so the result does not depend on --tile-batch. The older "
        "modes remain: crop resizes the short side to the model's size and center-crops (a "
        "model-sized PNG, as evaluation frames images); pad fits the long side, pads by edge "
        "replication and crops the padding away afterwards; each resized input is named on "
        "stderr; --keep-size runs the whole image at once (padded to a multiple of 32, one image "
        "at a time; memory grows with the image). Inpainting runs need --mask (white = hole, the "
        "image's size in tile and keep modes), except inpaint-center on model-sized inputs (its "
        "central square). Writes OUT/<stem>_restored.png. "
        "Example: i2sb restore --ckpt RUN --nfe 20 photo.png --out out",
    )
    _common(parser, skip=("save_degraded",))
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="degraded image files")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--mask", action="append", default=[], help="mask image (repeat per input)")
    parser.add_argument(
        "--resize-mode",
        default="tile",
        choices=("tile", "crop", "pad", "keep"),
        help="how an input meets the model's size (default: %(default)s)",
    )
    parser.add_argument(
        "--tile-batch",
        type=int,
        default=4,
        help="tiles per network batch in tile mode; bounds memory, never changes the result "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--tile-overlap",
        type=int,
        default=None,
        help="pixels shared by neighbouring tiles (default: a quarter of the model's size)",
    )
    parser.add_argument(
        "--keep-size",
        dest="resize_mode",
        action="store_const",
        const="keep",
        help="no resizing: run at the input's size, padded to a multiple of 32 (= --resize-mode keep)",
    )
    parser.add_argument("--trajectory", choices=("png", "gif"), default=None, help="also save x_t")
    parser.set_defaults(handler=run_restore)


def parse_partition(text: str) -> tuple[int, int]:
    """'i_n' -> (i, n), with 0 <= i < n."""
    match = re.fullmatch(r"(\d+)_(\d+)", text)
    if not match or not int(match.group(1)) < int(match.group(2)):
        raise ValueError(f"--partition must be i_n with 0 <= i < n (e.g. 0_4), got {text!r}")
    return int(match.group(1)), int(match.group(2))


def _config(args):
    """The config: ``--config`` + ``--set`` + the flags that set config keys, validated as a whole.

    Without a config, --data-dir is a user's folder, not the demo: an image folder (ImageNet's
    WordNet-id classes then pick the 10k subset, as the benchmark does)."""
    return config_from_args(
        args, ("sample", "data", "downloads"), {"data": {"kind": "imagefolder"}}
    )


def run_sample(args) -> int:
    from i2sb.distributed import resolve_device
    from i2sb.joblog import console_logging
    from i2sb.sample.evalset import sample_run_partition

    console_logging()  # progress lines when stderr is a log file, a bar on a terminal

    part = parse_partition(args.partition)
    config = _config(args)
    masks = {key: value for key, value in (
        ("mask_source", args.mask_source), ("masks_path", args.masks_path),
        ("seed", args.mask_seed), ("cache_dir", vars(args)["downloads.cache_dir"]),
    ) if value is not None}  # fmt: skip
    out, computed = sample_run_partition(
        config, args.ckpt, args.data_dir, sampler_from_args(args), args.nfe, part, args.out,
        image_size=args.image_size, device=resolve_device(args.device), mask_overrides=masks,
        trajectory=args.trajectory, allow_pickle=args.allow_pickle,
    )  # fmt: skip
    print(f"{out}: {'written' if computed else 'already complete, not recomputed'}")
    return 0


def run_gather(args) -> int:
    from i2sb.sample.gather import gather_parts

    print(gather_parts(args.parts, args.out, args.expect_parts))
    return 0


def run_restore(args) -> int:
    from i2sb.distributed import resolve_device
    from i2sb.joblog import console_logging
    from i2sb.sample.restore import restore_images

    console_logging()

    written = restore_images(
        args.ckpt, args.images, args.out, args.nfe, masks=args.mask, resize_mode=args.resize_mode,
        trajectory=args.trajectory, settings=_config(args).sample,
        device=resolve_device(args.device), method=sampler_from_args(args),
        tile_batch=args.tile_batch, tile_overlap=args.tile_overlap,
    )  # fmt: skip
    for path in written:
        print(path)
    return 0
