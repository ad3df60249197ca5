"""Rule placed_fid_val_stats: record the user's evaluate.fid_val_stats (path, stat, SHA-256)."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.downloads import record_files
    from i2sb.planning import read_slice

    cfg = read_slice(snakemake.input[0])
    record_files({"fid_val_stats": cfg.evaluate.fid_val_stats}, snakemake.output[0])
