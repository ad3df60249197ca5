"""Each rule's Slurm memory follows from what it does (i2sb/cluster.py, measured by
benchmarks/bench_gather_memory.py): the planned gather and evaluate jobs carry it."""

import re
import subprocess
import sys
from pathlib import Path

from i2sb.cluster import EVALUATE_MEM_MB, GATHER_MEM_MB

REPO = Path(__file__).resolve().parents[1]


def test_planned_gather_and_evaluate_jobs_declare_their_measured_memory(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--configfile",
         "config/tiny.yaml", "--config", f"results_dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    memory: dict[str, set[str]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", proc.stdout):
        name = re.match(r"(?:local)?rule (\w+):", block.strip())
        found = re.search(r"mem_mb=(\d+)", block)
        if name:
            memory.setdefault(name[1], set()).add(found[1] if found else "none")
    assert memory["gather"] == {str(GATHER_MEM_MB)}
    assert memory["evaluate"] == {str(EVALUATE_MEM_MB)}
