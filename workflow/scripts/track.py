"""Rule track: one idempotent MLflow run per evaluated (task, sampler, NFE)."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.tracking import track_all

    track_all(snakemake.params.runs, snakemake.input.config, snakemake.output.marker)
