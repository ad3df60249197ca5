"""Recovery after an interrupted run (issue 25 item 8): `make demo` clears the lock a killed
Snakemake left (no Snakemake runs in the folder), keeps one a running Snakemake holds, and says so."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "stale_lock.py"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
SLOW = 'rule slow:\n    output: "done.txt"\n    shell: "sleep 300 && touch {output}"\n'


def _stale_lock(folder: Path) -> int:
    return subprocess.run([sys.executable, SCRIPT, *SNAKEMAKE], cwd=folder, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_a_killed_run_s_lock_is_cleared_and_a_running_one_kept(tmp_path):
    (tmp_path / "Snakefile").write_text(SLOW)
    running = subprocess.Popen([*SNAKEMAKE, "--cores", "1"], cwd=tmp_path, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120  # a deadline for a hang, not a speed figure
        while not list((tmp_path / ".snakemake" / "locks").glob("*.lock")):
            assert time.monotonic() < deadline and running.poll() is None, "no lock taken"
            time.sleep(0.2)
        kept = _stale_lock(tmp_path)
        assert kept.returncode == 1 and f"pid {running.pid}" in kept.stderr
        assert list((tmp_path / ".snakemake" / "locks").glob("*.lock"))
    finally:
        os.killpg(running.pid, signal.SIGKILL)  # kill -9, as an interrupted `make demo`
        running.wait(timeout=60)
    (tmp_path / "Snakefile").write_text('rule quick:\n    output: "done.txt"\n'
                                        '    shell: "touch {output}"\n')  # fmt: skip
    blocked = subprocess.run([*SNAKEMAKE, "--cores", "1"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
    assert blocked.returncode != 0 and "cannot be locked" in blocked.stderr  # the problem
    cleared = _stale_lock(tmp_path)
    assert cleared.returncode == 0 and "clearing a stale Snakemake lock" in cleared.stderr
    assert "--unlock" in cleared.stderr
    rerun = subprocess.run([*SNAKEMAKE, "--cores", "1"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert (tmp_path / "done.txt").exists()


def test_make_demo_clears_a_stale_lock_before_running():
    plan = subprocess.run(["make", "-n", "demo", "STAMP=Makefile"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    lines = plan.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if "stale_lock.py" in line)
    assert first < next(i for i, line in enumerate(lines) if "snakemake --cores" in line)
