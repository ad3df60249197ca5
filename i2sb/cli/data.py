"""`i2sb data convert | index | demo | subset`: build the official LMDB layout, the demo photos, evaluation lists."""

from __future__ import annotations

from i2sb.config import DataConfig, DemoDataConfig


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="datasets: LMDB conversion, demo photos, evaluation subsets"
    )
    commands = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)

    convert = commands.add_parser(
        "convert",
        help="convert an image folder (DIR/<class>/<image>) into the official LMDB layout",
        description="Write OUT/<split>_faster_imagefolder.lmdb (+ .lmdb.pt, .index.json, .report.json). "
        "Every image is decoded once to verify it; bad files are skipped and listed in the report, "
        "and FIFOs, sockets or devices with image names are skipped unread and named. Values are "
        "the files' bytes, except 16-bit images and photos with an EXIF orientation: those are "
        "stored as the upright 8-bit PNG (as viewers show them). "
        "Rerunning after an interruption resumes. Example: i2sb data convert --src photos/train "
        "--split train --out data",
    )
    convert.add_argument("--src", required=True, help="image folder: SRC/<class>/<image>")
    convert.add_argument(
        "--split", required=True, choices=("train", "val"), help="which split SRC holds"
    )
    convert.add_argument("--out", required=True, help="output data folder")
    convert.add_argument(
        "--workers", type=int, default=None, help="decode processes (default: CPUs, max 8)"
    )
    convert.add_argument(
        "--batch-images",
        type=int,
        default=1000,
        help="images per write transaction (default: %(default)s)",
    )
    convert.set_defaults(handler=run_convert)

    demo = commands.add_parser(
        "demo",
        help="build a small real-photo image folder from the photos scikit-image ships",
        description="Write OUT_DIR/{train,val}/<photo>/*.png: seeded random crops of real photos. "
        "Same arguments give byte-identical files. Defaults are the config's data.demo and "
        "data.image_size. Example: i2sb data demo results/demo/photos",
    )
    defaults = DemoDataConfig()
    demo.add_argument("out_dir", help="folder to write train/ and val/ into")
    demo.add_argument(
        "--classes",
        type=int,
        default=defaults.classes,
        help="photos used, one class each (default: %(default)s)",
    )
    demo.add_argument(
        "--train-per-class",
        type=int,
        default=defaults.train_per_class,
        help="random crops per photo in train/ (default: %(default)s)",
    )
    demo.add_argument(
        "--val-per-class",
        type=int,
        default=defaults.val_per_class,
        help="random crops per photo in val/ (default: %(default)s)",
    )
    demo.add_argument(
        "--size",
        type=int,
        default=DataConfig.image_size,
        help="side of each square crop in pixels, at most 1024 (default: %(default)s)",
    )
    demo.add_argument(
        "--seed", type=int, default=defaults.seed, help="seed of the crops (default: %(default)s)"
    )
    demo.set_defaults(handler=run_demo)

    index = commands.add_parser(
        "index",
        help="write our safe JSON index for an LMDB made by the reference code (reads its pickle once)",
        description="DATA_DIR/<split>_faster_imagefolder.lmdb.pt is a pickle and can run code when "
        "loaded: pass --trust-pickle to confirm you trust it. Afterwards readers need no pickle.",
    )
    index.add_argument("data_dir")
    index.add_argument("--split", required=True, choices=("train", "val"))
    index.add_argument("--trust-pickle", action="store_true", help="required: load the .lmdb.pt")
    index.set_defaults(handler=run_index)

    subset = commands.add_parser(
        "subset",
        help="print the evaluation positions of a task for a config (checks the 10k subset matches)",
        description="Build the task's evaluation set from the config's data section (the same "
        "images `i2sb sample` and the workflow use) and print how many of the validation images it "
        "holds; with the 10k subset lists this checks they match the data. Example: i2sb data "
        "subset jpeg-10 --config config/benchmark.yaml",
    )
    subset.add_argument("task", help="task name, e.g. jpeg-10 (its evaluation set: 10k or full)")
    subset.add_argument(
        "--config",
        default="config/config.yaml",
        help="YAML config whose data section says how to read the images (default: %(default)s)",
    )
    subset.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="the data folder (converted LMDBs or an image folder with val/); default: data.root",
    )
    subset.set_defaults(handler=run_subset)


def run_convert(args) -> int:
    from i2sb.data.folders import special_files_line
    from i2sb.data.layout import lmdb_layout
    from i2sb.data.lmdb_convert import convert_folder
    from i2sb.joblog import console_logging

    console_logging()  # progress lines when stderr is not a terminal
    report = convert_folder(args.src, args.split, args.out, args.workers, args.batch_images)
    print(
        f"{report.stored} images stored ({report.written} written now, {report.images_per_s:.0f} img/s); "
        f"{len(report.skipped)} skipped, {len(report.ignored)} non-image files ignored; "
        f"report: {lmdb_layout(args.out, args.split).report}"
    )
    if report.special:
        print(f"  {special_files_line(report.special)}")
    for item in report.skipped[:10]:
        print(f"  skipped {item['path']}: {item['reason']}")
    for path in report.changed[:10]:
        print(f"  changed since the last conversion, stored again: {path}")
    if report.removed:
        print(f"  removed {report.removed} stored entries whose source file is gone")
    if report.rescaled:
        print(f"  {len(report.rescaled)} high-bit-depth images scaled to 8 bits, e.g. "
              f"{report.rescaled[0]}")  # fmt: skip
    if report.rotated:
        print(f"  {len(report.rotated)} photos with an EXIF orientation stored upright as PNG, "
              f"e.g. {report.rotated[0]}")  # fmt: skip
    for item in report.warnings[:10]:
        print(f"  warning: {item['path']}: {item['warning']} (decoded with repairs; check it)")
    return 0


def run_index(args) -> int:
    from i2sb.data.index import index_official_lmdb

    if not args.trust_pickle:
        raise ValueError(
            "--trust-pickle is required: the .lmdb.pt is a pickle and runs code when loaded"
        )
    count = index_official_lmdb(args.data_dir, args.split)
    print(f"indexed {count} images of {args.data_dir} ({args.split})")
    return 0


def run_demo(args) -> int:
    from i2sb.data.demo import make_demo_images

    out = make_demo_images(
        args.out_dir, args.classes, args.train_per_class, args.val_per_class, args.size, args.seed
    )
    print(f"demo image folder ready: {out}")
    return 0


def run_subset(args) -> int:
    from i2sb.config import load_config
    from i2sb.data.build import eval_set_for_config, given_data_dir

    config = load_config(args.config)
    root = given_data_dir(args.data_dir, config, "i2sb data subset")
    dataset, indices = eval_set_for_config(config, args.task, root)
    print(f"{args.task}: {len(indices)} of {len(dataset)} validation images")
    return 0
