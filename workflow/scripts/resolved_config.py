"""Rule resolved_config: the validated config as JSON, the one file every job reads."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.config import config_from_dict, save_config

    save_config(config_from_dict(snakemake.params.resolved), snakemake.output.config)
