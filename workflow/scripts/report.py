"""Rule report: the paper's tables, NFE tables and plots for the benchmark's experiment."""

# `snakemake` is injected by Snakemake when it runs this script.

from pathlib import Path

from i2sb.joblog import rule_log

with rule_log(snakemake):
    from i2sb.planning import read_slice
    from i2sb.tables import make_tables_to

    cfg = read_slice(snakemake.input.config)
    summary = Path(snakemake.output.summary)
    experiment = cfg.tracking.experiment or cfg.benchmark
    make_tables_to(
        cfg.tracking, experiment, summary.parent, summary, tuple(cfg.tasks),
        tracked=snakemake.input.marker,
    )  # fmt: skip
