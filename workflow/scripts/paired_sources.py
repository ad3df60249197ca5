"""Rule paired_sources: what paired data's split is read from (names, sizes, mtimes), by stat."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.atomic import write_json
    from i2sb.data.sources import paired_sources_record
    from i2sb.planning import read_slice

    root = read_slice(snakemake.input.config).data.root
    write_json(snakemake.output.record, paired_sources_record(root, snakemake.wildcards.split))
