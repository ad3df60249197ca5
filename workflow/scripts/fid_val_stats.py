"""Rule fid_val_stats: FID reference statistics of the validation image folder.

Offline without Inception's weights (and evaluate.require_external_metrics false), the file says
why the statistics are unavailable; evaluation then reports FID unavailable with that reason.
"""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.joblog import LOG
    from i2sb.metrics.fid_reference import val_stats_or_reason
    from i2sb.planning import read_slice

    cfg = read_slice(snakemake.input.config)
    reason = val_stats_or_reason(
        f"{cfg.data.root}/val", snakemake.output.stats, cfg.data.image_size,
        cfg.evaluate.batch_size, cfg.evaluate.require_external_metrics,
    )  # fmt: skip
    if reason:
        LOG.warning("%s", reason)
