"""Rule convert_lmdb: an image folder split into the official LMDB layout (+ our index)."""

# `snakemake` is injected by Snakemake when it runs this script.

from pathlib import Path

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.data.lmdb_convert import convert_folder

    out_dir = Path(snakemake.output.index).parent
    convert_folder(
        snakemake.params.src,
        snakemake.wildcards.split,
        out_dir,
        workers=snakemake.threads,
    )
