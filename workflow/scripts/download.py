"""Rules download_*: resolve each external file (pre-placed, cached or downloaded) and record it."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.downloads import fetch_to_record
    from i2sb.planning import read_slice

    downloads = read_slice(snakemake.input[0]).downloads
    fetch_to_record(snakemake.params.names, downloads, snakemake.output[0])
