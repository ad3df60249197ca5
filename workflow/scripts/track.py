"""Rule track: one idempotent MLflow run per evaluated (task, sampler, NFE)."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.planning import recorded_folder
    from i2sb.tracking import track_all

    runs = [  # the trained run's folder, or the published one its checkpoint record names
        r | {"train_dir": r["train_dir"] or recorded_folder(r["checkpoint"])}
        for r in snakemake.params.runs
    ]
    track_all(runs, snakemake.input.config, snakemake.output.marker)
