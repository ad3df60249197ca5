"""Rule checkpoint_record: the content fingerprint of the latest.pt one task samples from."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.sample.provenance import checkpoint_record

    checkpoint_record(snakemake.wildcards.task, snakemake.params.folder, snakemake.output.record)
