"""Rule fid_val_stats: FID reference statistics of the validation image folder."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.metrics.fid_reference import folder_reference_stats

    p = snakemake.params
    folder_reference_stats(p.folder, snakemake.output.stats, p.image_size, p.batch_size)
