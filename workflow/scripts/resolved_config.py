"""Rule resolved_config: the validated config as JSON, the one file every job reads."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.config import save_config
    from i2sb.planning import read_slice

    save_config(read_slice(snakemake.input[0]), snakemake.output.config)
