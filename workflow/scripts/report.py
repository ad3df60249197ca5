"""Rule report: the paper's tables, NFE tables and plots for the benchmark's experiment."""

# `snakemake` is injected by Snakemake when it runs this script.

from pathlib import Path

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.tables import make_tables_to

    summary = Path(snakemake.output.summary)
    make_tables_to(
        snakemake.params.tracking, snakemake.params.experiment, summary.parent, summary,
        tuple(snakemake.params.tasks), tracked=snakemake.input[0],
    )  # fmt: skip
