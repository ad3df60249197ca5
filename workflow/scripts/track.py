"""Rule track: one idempotent MLflow run per evaluated (task, sampler, NFE)."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.planning import recorded_folder
    from i2sb.tracking import track_all

    runs = [  # the run folder each evaluation sampled, as its checkpoint record names it
        {
            "metrics": r["metrics"],
            "train_dir": recorded_folder(r["checkpoint"]),
            "samples": r["samples"],
        }
        for r in snakemake.params.runs
    ]
    track_all(runs, snakemake.input.config, snakemake.output.marker)
