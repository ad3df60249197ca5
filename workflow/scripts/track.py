"""Rule track: one idempotent MLflow run per evaluated (task, sampler, NFE)."""

# `snakemake` is injected by Snakemake when it runs this script.

from pathlib import Path

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.tracking import track_all

    run_dir = Path(snakemake.input.config).parent  # RUN/config.json
    track_all(
        run_dir, snakemake.params.evaluations, snakemake.input.config, snakemake.output.marker
    )
