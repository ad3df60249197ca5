"""Planning benchmark: CPU seconds of `snakemake -n` for the demo, benchmark and reproduce configs.

Each plan runs in a child process (as a user types it) against a fake, empty ImageNet-style folder
for the configs that need one (planning reads the folder layout, not its images), with results in a
temporary folder. The baseline, measured in the same run, is `snakemake --version`: the interpreter
and Snakemake's import, which every plan pays too. Prints a table (median of --repeats runs) with
the ratio to the baseline; tests assert what is planned, never how fast (issue 22 §7).

    .venv/bin/python benchmarks/bench_plan.py --repeats 3
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {  # name: (config file, needs a data.root)
    "demo": ("config/config.yaml", False),
    "benchmark": ("config/benchmark.yaml", True),
    "reproduce": ("config/reproduce.yaml", True),
}


def fake_imagenet(root: Path) -> str:
    """An empty ImageNet-style folder (one class per split), as tests/test_workflow.py plans with."""
    for split in ("train", "val"):
        (root / "imagenet" / split / "n01440764").mkdir(parents=True, exist_ok=True)
    return f"data={{root: {root / 'imagenet'}}}"


def timed(argv: list[str]) -> tuple[float, float, str]:
    """(CPU seconds of the child, wall seconds, its stdout) for one command run in the repository."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr[-3000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return cpu, wall, proc.stdout


def plan_command(config: str, data: str | None, results: Path) -> list[str]:
    overrides = [f"results_dir={results}", *([data] if data else [])]
    return [sys.executable, "-m", "snakemake", "-n", "--cores", "8", "--configfile", config,
            "--config", *overrides]  # fmt: skip


def jobs_planned(stdout: str) -> int:
    match = re.search(r"^total\s+(\d+)$", stdout, re.M)
    return int(match[1]) if match else 0


def measure(repeats: int) -> list[tuple[str, int, float, float]]:
    """Rows (name, jobs, median CPU s, median wall s), the baseline first."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        data = fake_imagenet(Path(folder))
        runs = {"baseline: snakemake --version": ([sys.executable, "-m", "snakemake", "--version"])}
        for name, (config, needs_data) in CONFIGS.items():
            results = Path(folder) / f"results-{name}"
            runs[name] = plan_command(config, data if needs_data else None, results)
        for name, argv in runs.items():
            samples = [timed(argv) for _ in range(repeats)]
            cpu = statistics.median(cpu for cpu, _, _ in samples)
            wall = statistics.median(wall for _, wall, _ in samples)
            rows.append((name, jobs_planned(samples[0][2]), cpu, wall))
    return rows


def table(rows: list[tuple[str, int, float, float]]) -> str:
    baseline = rows[0][2]
    lines = ["| plan | jobs | CPU s | wall s | CPU / baseline |", "|---|---|---|---|---|"]
    for name, jobs, cpu, wall in rows:
        lines.append(f"| {name} | {jobs or '-'} | {cpu:.2f} | {wall:.2f} | {cpu / baseline:.1f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per plan (median shown)")
    args = parser.parse_args()
    print(table(measure(args.repeats)))


if __name__ == "__main__":
    main()
