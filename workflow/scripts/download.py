"""Rules download_*: resolve each external file (pre-placed, cached or downloaded) and record it."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.downloads import fetch_to_record

    fetch_to_record(snakemake.params.names, snakemake.params.downloads, snakemake.output[0])
