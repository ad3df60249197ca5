"""Rule sample: one partition of one (task, sampler, NFE) evaluation run."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.downloads import with_recorded_files
    from i2sb.planning import read_slice, recorded_folder
    from i2sb.sample.evalset import sample_run_partition

    w, p = snakemake.wildcards, snakemake.params
    # the subset lists and masks its download jobs resolved (their records), not looked up again
    cfg = with_recorded_files(read_slice(snakemake.input.config), snakemake.input.downloads)
    run_dir = recorded_folder(snakemake.input.checkpoint)  # the folder its fingerprint names
    sample_run_partition(
        cfg, run_dir, p.data_dir, w.sampler, int(w.nfe), (int(w.part), int(w.nparts)),
        snakemake.output.part, task=w.task, image_size=cfg.data.image_size, trajectory=True,
    )  # fmt: skip
