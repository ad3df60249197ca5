"""Rule evaluate: metrics.json of one gathered (task, sampler, NFE)."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.metrics.evaluate import evaluate_for_config

    evaluate_for_config(
        snakemake.params.config, snakemake.input.samples, snakemake.wildcards.task,
        snakemake.output.metrics, fid_val_stats=snakemake.input.get("val_stats", ""),
        sampler=snakemake.wildcards.sampler, nfe=int(snakemake.wildcards.nfe),
    )  # fmt: skip
