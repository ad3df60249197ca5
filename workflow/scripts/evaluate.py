"""Rule evaluate: metrics.json of one gathered (task, sampler, NFE)."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.metrics.evaluate import evaluate_for_config
    from i2sb.planning import read_slice

    evaluate_for_config(
        read_slice(snakemake.input.config, snakemake.params.where), snakemake.input.samples, snakemake.wildcards.task,
        snakemake.output.metrics, fid_val_stats=snakemake.input.get("val_stats", ""),
        sampler=snakemake.wildcards.sampler, nfe=int(snakemake.wildcards.nfe),
    )  # fmt: skip
