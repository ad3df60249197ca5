"""Rule convert_lmdb: an image folder split into the official LMDB layout (+ our index)."""

# `snakemake` is injected by Snakemake when it runs this script.

from pathlib import Path

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.atomic import write_json
    from i2sb.data.lmdb_convert import convert_folder
    from i2sb.planning import tree_identity

    src = snakemake.params.src
    tree = tree_identity(src)  # before converting: a photo replaced meanwhile converts again
    out_dir = Path(snakemake.output.index).parent
    convert_folder(src, snakemake.wildcards.split, out_dir, workers=snakemake.threads)
    write_json(snakemake.output.sources, {"folder": str(src), "tree": tree})
