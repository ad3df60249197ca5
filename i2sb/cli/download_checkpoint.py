"""`i2sb download-checkpoint TASK`: fetch (or accept a pre-placed) published run folder and check it."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "download-checkpoint",
        help="fetch the paper's published run folder of a task (latest.pt + options.pkl) and check it",
        description=(
            "Put the published I2SB run folder of TASK at DIR/TASK (DIR = checkpoints.dir, by default "
            "<downloads cache>/checkpoints) and check it: latest.pt holds net and ema that fit the "
            "network, options.pkl is readable by the restricted unpickler, task and image size match. "
            "A folder already there (pre-placed, offline) is checked, never downloaded over. "
            "Downloading needs gdown (pip install 'i2sb[published]') and ~8.8 GB per task; it lands "
            "in DIR/TASK.partial (rerun to resume) and is renamed only once it passes the check. "
            "Example: i2sb download-checkpoint sr4x-pool --config config/reproduce.yaml"
        ),
    )
    parser.add_argument("task", metavar="TASK", help="one of the nine tasks, e.g. sr4x-pool")
    parser.add_argument(
        "--config", default="config/config.yaml", help="YAML config (default: %(default)s)"
    )
    parser.add_argument(
        "--dir", default=None, help="folder of run folders (default: the config's checkpoints.dir)"
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="expected image size (default: the config's data.image_size; 0 = do not check)",
    )
    parser.set_defaults(handler=run)


def run(args) -> int:
    from i2sb.config import load_config
    from i2sb.downloads import checkpoints_dir
    from i2sb.sample.published import fetch_published_checkpoint

    cfg = load_config(args.config)
    directory = checkpoints_dir(
        args.dir if args.dir is not None else cfg.checkpoints.dir, cfg.downloads.cache_dir
    )
    size = cfg.data.image_size if args.image_size is None else args.image_size
    record = fetch_published_checkpoint(args.task, directory / args.task, size or None)
    sizes = ", ".join(f"{name} {count / 1e9:.2f} GB" for name, count in record["files"].items())
    print(f"{args.task}: {record['source']} run folder {record['folder']} checked ({sizes})")
    return 0
