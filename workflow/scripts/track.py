"""Rule track: one idempotent MLflow run per evaluated (task, NFE)."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.tracking import track_all

track_all(
    snakemake.params.run,
    snakemake.params.evaluations,
    snakemake.input.config,
    snakemake.output.marker,
)
