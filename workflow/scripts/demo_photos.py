"""Rule demo_photos: build the embedded demo's image folder."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.data.demo import make_demo_images
    from i2sb.planning import read_slice

    data = read_slice(snakemake.input[0]).data
    demo = data.demo
    make_demo_images(
        snakemake.output.photos, demo.classes, demo.train_per_class, demo.val_per_class,
        data.image_size, demo.seed,
    )  # fmt: skip
