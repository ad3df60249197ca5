"""`i2sb corrupt`: show what a task's degradation does to your own images (PNG in, PNG out)."""

from __future__ import annotations

from i2sb.config.choices import MASK_SOURCES


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "corrupt",
        help="apply a task's degradation to image files and write PNGs",
        description="Read each image upright (its EXIF orientation applied, as viewers show it), "
        "resize (short side) and center-crop it to --size, apply the degradation "
        "of --task, and write OUT/<name>_clean.png and OUT/<name>_<task>.png. Free-form inpainting "
        "uses mask i for the i-th image. Example: i2sb corrupt --task jpeg-10 photo.jpg --out previews",
    )
    parser.add_argument(
        "--task", required=True, help="e.g. jpeg-5, sr4x-bicubic, blur-uni, inpaint-center"
    )
    parser.add_argument(
        "images", nargs="+", metavar="IN", help="image files (any format PIL reads)"
    )
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--size", type=int, default=256, help="image size (default 256)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    masks = parser.add_argument_group("free-form inpainting masks")
    masks.add_argument("--mask-source", default="auto", choices=MASK_SOURCES)
    masks.add_argument("--masks-path", default="", help="pre-placed imagenet_freeform_masks.npz")
    masks.add_argument("--cache-dir", default="", help="downloads cache (default $I2SB_CACHE)")
    masks.add_argument("--seed", type=int, default=0, help="seed of generated masks")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from i2sb.sample.preview import corrupt_files

    masks = {"mask_source": args.mask_source, "masks_path": args.masks_path,
             "cache_dir": args.cache_dir, "seed": args.seed}  # fmt: skip
    written, mask_source = corrupt_files(
        args.task, args.images, args.out, args.size, args.device, masks
    )
    for path in written:
        print(path)
    if mask_source:
        print(f"masks: {mask_source}")
    return 0
