"""Rule download_checkpoint: a checked published run folder of one task, and its record."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.downloads import published_folder
    from i2sb.planning import read_slice
    from i2sb.sample.published import checkpoint_to_record

    cfg, task = read_slice(snakemake.input[0]), snakemake.wildcards.task
    folder = published_folder(task, cfg.checkpoints.dir, cfg.downloads.cache_dir)
    checkpoint_to_record(task, folder, cfg.data.image_size, snakemake.output.record)
