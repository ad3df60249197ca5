"""Rule download_checkpoint: a checked published run folder of one task, and its record."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.sample.published import checkpoint_to_record

    checkpoint_to_record(
        snakemake.wildcards.task, snakemake.params.folder, snakemake.params.image_size,
        snakemake.output.record,
    )  # fmt: skip
