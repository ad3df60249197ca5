"""Rule sample: one partition of one (task, sampler, NFE) evaluation run."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    import json

    from i2sb.planning import read_slice
    from i2sb.sample.evalset import sample_run_partition

    w, p = snakemake.wildcards, snakemake.params
    cfg = read_slice(snakemake.input.config)
    with open(snakemake.input.checkpoint) as handle:
        run_dir = json.load(handle)["folder"]  # the run folder the checkpoint record fingerprinted
    sample_run_partition(
        cfg, run_dir, p.data_dir, w.sampler, int(w.nfe), (int(w.part), int(w.nparts)),
        snakemake.output.part, task=w.task, image_size=cfg.data.image_size, trajectory=True,
    )  # fmt: skip
