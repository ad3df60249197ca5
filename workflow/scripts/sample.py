"""Rule sample: one partition of one (task, sampler, NFE) evaluation run."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.sample.evalset import sample_run_partition

    w, p = snakemake.wildcards, snakemake.params
    sample_run_partition(
        p.config, p.run_dir, p.data_dir, w.sampler, int(w.nfe), (int(w.part), int(w.nparts)),
        snakemake.output.part, task=w.task, image_size=p.config.data.image_size, trajectory=True,
    )  # fmt: skip
