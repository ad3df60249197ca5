"""benchmarks/gpu_check.sh runs end to end on the CPU at its CI size (--device cpu --tiny)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_runs_end_to_end_on_the_cpu(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--tiny"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "gpu_check done" in done.stdout
    assert "images/s" in done.stdout and "fp32" in done.stdout  # the sampling-precision table
    (steps,) = json.loads((tmp_path / "steps_tiny.json").read_text())
    for step in ("train", "sample"):
        ours = [row for name, row in steps[step].items() if name.startswith("ours@")]
        assert (
            steps[step]["reference"]["median_s"] > 0 and ours
        )  # ours@<precision>, one a precision
        assert all(row["median_s"] > 0 for row in ours)
    differences = list(steps["difference"].values())  # one per precision asked for
    assert differences and all(
        d["max_abs_fp32"] < 1e-5 for d in differences
    )  # the reference test's


def test_gpu_check_rejects_an_unknown_argument():
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--gpus", "2"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "unknown argument --gpus" in done.stderr
