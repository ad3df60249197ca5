# I2SB benchmark DAG: data -> downloads -> train -> sample (partitions) -> gather -> evaluate -> MLflow -> tables.
# Default config: the embedded demo (CPU, minutes). Full benchmark: --configfile config/benchmark.yaml.
# Rule names and output paths are a contract for targeted runs: see config/README.md.
from snakemake.utils import min_version

min_version("9.0")

# On Slurm, a scancelled job is reported as failed (retried or named), not awaited forever: i2sb/slurm_status.py.
from i2sb.slurm_status import read_cancelled_as_ended

read_cancelled_as_ended()


configfile: "config/config.yaml"


wildcard_constraints:
    task=r"[a-z0-9][a-z0-9-]*",
    sampler=r"[a-z][a-z0-9.-]*",
    nfe=r"\d+",
    part=r"\d+",
    nparts=r"\d+",
    split=r"train|val",


include: "workflow/rules/common.smk"
include: "workflow/rules/records.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/downloads.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/track.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        rules.report.output.summary,
    default_target: True
