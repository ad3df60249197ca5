"""Rule sample: one partition of one (task, sampler, NFE) evaluation run."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.sample.evalset import sample_for_config

    w = snakemake.wildcards
    sample_for_config(
        snakemake.params.config, w.task, w.sampler, snakemake.params.run_dir, int(w.nfe),
        (int(w.part), int(w.nparts)), snakemake.output.part,
    )  # fmt: skip
