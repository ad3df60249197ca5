"""Rule report: the paper's tables, NFE tables and plots for the benchmark's experiment."""

# `snakemake` is injected by Snakemake when it runs this script.

from i2sb.tables import make_tables_to

make_tables_to(snakemake.params.tracking, snakemake.params.experiment, snakemake.params.out_dir,
               snakemake.output.summary)  # fmt: skip
