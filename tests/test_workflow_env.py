"""Cluster rules use the declared environment: under --sdm conda the train command runs the env's python.

Planning with --sdm conda asks conda for its prefix and version, nothing else; a small stand-in `conda` on PATH
answers those three questions, so the real Snakemake plans the real workflow here without a conda installation.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FAKE_CONDA = """#!/bin/sh
case "$*" in
  "info --json") echo '{"conda_prefix": "PREFIX", "platform": "linux-64"}';;
  "--version") echo "conda 24.7.1";;
  "config --get channel_priority --json") echo '{"get": {"channel_priority": "strict"}}';;
  *) echo "stand-in conda cannot: $*" >&2; exit 1;;
esac
"""


def train_command(tmp_path: Path, *extra: str) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    conda = bin_dir / "conda"
    conda.write_text(FAKE_CONDA.replace("PREFIX", str(tmp_path / "conda")))
    conda.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    results = tmp_path / "results"
    target = results / "tiny" / "train" / "sr4x-pool" / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "1", "--configfile",
         "config/tiny.yaml", "--config", f"results_dir={results}", *extra, "--", str(target)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = re.search(r"^Shell command: (.*i2sb train.*)$", proc.stdout, re.M)[1]
    return line.split(" && ")[-1]  # the training command, after the log-keeping one


def test_under_sdm_conda_train_runs_the_envs_python(tmp_path):
    command = train_command(tmp_path, "--sdm", "conda")
    assert command.startswith("python -m i2sb train ")
    assert sys.executable not in command
    # The job's log gets all output (appended: a retry keeps the failed attempt) and a failure's
    # traceback (--debug keeps it).
    assert command.endswith("--no-progress --debug >> " + str(tmp_path / "results" / "tiny" / "logs"
                            / "train" / "sr4x-pool.log") + " 2>&1")  # fmt: skip


def test_without_an_environment_train_runs_the_python_that_planned(tmp_path):
    assert train_command(tmp_path).startswith(f"{sys.executable} -m i2sb train ")


def test_train_is_given_the_data_folder_sampling_reads(tmp_path):
    """The workflow passes its converted LMDB folder (data.root "" in tiny.yaml): the library
    guesses no folder of the results layout."""
    data = tmp_path / "results" / "tiny" / "data"
    assert f" --data-dir {data} " in train_command(tmp_path)
