"""The real Slurm test: a single-node Slurm on this machine runs workflows through profiles/slurm.

tests/slurm/run-slurm-test.sh does the work (start the daemons; run the job-shape workflow tests/slurm/Snakefile and
check its outputs; check that a failing job fails the run; run the project's real workflow with config/tiny.yaml on
CPU, scancel one sampling job on the way, and check that it was retried within a minute, and the report, metrics and
one Slurm job per sampling partition; stop the daemons); this test runs it and
reports its output on failure. It runs only when I2SB_TEST_SLURM=1 (set by .ci/run), so `make test` on a user's
machine starts no daemons and installs nothing. It needs root (daemons, apt) and either the Slurm packages or apt-get
to install them. About 2 min on a 2-core machine with the packages installed.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "tests" / "slurm" / "run-slurm-test.sh"


def slurm_available() -> bool:
    return shutil.which("slurmctld") is not None or shutil.which("apt-get") is not None


@pytest.mark.skipif(
    os.environ.get("I2SB_TEST_SLURM") != "1",
    reason="real-Slurm test: set I2SB_TEST_SLURM=1 (it apt-installs Slurm/MariaDB and starts daemons; .ci/run does)",
)
@pytest.mark.skipif(os.geteuid() != 0, reason="starting Slurm daemons needs root")
@pytest.mark.skipif(
    not slurm_available(), reason="no Slurm packages and no apt-get to install them"
)
def test_workflow_runs_on_a_real_local_slurm(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "I2SB_SLURM_STATE_DIR": str(tmp_path / "state"),
        "I2SB_SLURM_WORKDIR": str(tmp_path / "work"),
    }
    result = subprocess.run(
        ["bash", str(DRIVER)], env=env, capture_output=True, text=True, timeout=900, cwd=REPO
    )
    output = result.stdout + result.stderr
    # The driver's FAILED line (stderr) first, whole; then the end of its progress output.
    assert result.returncode == 0, (
        f"{result.stderr}\n--- end of the driver's output ---\n{result.stdout[-6000:]}"
    )
    assert "outputs checked" in output and "failing job reported" in output and "PASSED" in output
    assert "real workflow finished" in output and "sampling partitions COMPLETED" in output
    assert "scancelled; snakemake reported it failed and resubmitted it" in output
    assert "GPU jobs in local-gpu, CPU-only jobs in local" in output
