"""Rule evaluate: metrics.json of one gathered (task, sampler, NFE)."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.downloads import with_recorded_files
    from i2sb.metrics.evaluate import evaluate_for_config
    from i2sb.planning import read_slice

    # the FID reference and masks its download jobs resolved (their records), not looked up again
    sliced = read_slice(snakemake.input.config, snakemake.params.where)
    cfg = with_recorded_files(sliced, snakemake.input.downloads)
    evaluate_for_config(
        cfg, snakemake.input.samples, snakemake.wildcards.task,
        snakemake.output.metrics, fid_val_stats=snakemake.input.get("val_stats", ""),
        sampler=snakemake.wildcards.sampler, nfe=int(snakemake.wildcards.nfe),
    )  # fmt: skip
