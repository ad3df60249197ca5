"""Rule checkpoint_record: the content fingerprint of the latest.pt one task samples from."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.planning import recorded_folder
    from i2sb.sample.provenance import checkpoint_record

    # the trained run's folder, or the published one its download record names
    folder = snakemake.params.folder or recorded_folder(snakemake.input.ready)
    checkpoint_record(snakemake.wildcards.task, folder, snakemake.output.record)
