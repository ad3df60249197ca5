"""Rule config_slice: one job's slice of the config, named by its hash (i2sb.planning)."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.planning import write_slice

    write_slice(snakemake.params.values, snakemake.output[0])
