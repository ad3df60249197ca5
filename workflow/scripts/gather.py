"""Rule gather: merge a (task, NFE)'s part files after checking they cover every index once."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.sample.gather import gather_parts

    gather_parts(
        list(snakemake.input), snakemake.output.samples, expect_parts=snakemake.params.nparts
    )
