"""Job logs: a rule script's log holds the command, the settings, everything printed, and a failure's traceback."""

import logging
import os
import re
import sys
import warnings
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from i2sb.joblog import LineProgress, format_seconds, rule_log


@dataclass(frozen=True)
class Settings:
    nfe: int = 5


def fake_job(tmp_path, log=True):
    """What Snakemake hands a rule script (the attributes rule_log reads)."""
    return SimpleNamespace(
        rule="sample", log=[str(tmp_path / "logs" / "job.log")] if log else [],
        input=["in.npz"], output=["out.npz"], wildcards={"task": "jpeg-10"}, threads=1,
        params={"config": Settings(), "run_dir": tmp_path},
    )  # fmt: skip


def test_the_log_holds_the_command_settings_and_all_output(tmp_path, capfd):
    job = fake_job(tmp_path)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "job.log").write_text("an earlier attempt\n")
    with rule_log(job) as log:
        print("from print")
        os.write(2, b"from C level\n")
        warnings.warn("a library warning", UserWarning, stacklevel=1)
        log.info("a progress line")
    text = (tmp_path / "logs" / "job.log").read_text()
    assert text.startswith("an earlier attempt\n")  # a retry keeps the failed attempt's story
    assert '"rule": "sample"' in text and sys.executable in text and '"nfe": 5' in text
    for line in ("from print", "from C level", "a library warning", "a progress line",
                 "rule sample done in"):  # fmt: skip
        assert line in text
    assert "from print" not in capfd.readouterr().out  # the console stays quiet


def test_a_failure_leaves_its_traceback_in_the_log(tmp_path):
    def inner():
        raise ValueError("config key sample.nfe: bad")

    handlers = list(logging.getLogger().handlers)
    with pytest.raises(ValueError), rule_log(fake_job(tmp_path)):
        inner()
    text = (tmp_path / "logs" / "job.log").read_text()
    assert "rule sample failed after" in text and "Traceback (most recent call last)" in text
    assert "in inner" in text and "ValueError: config key sample.nfe: bad" in text
    assert logging.getLogger().handlers == handlers  # the log file's handler is gone again


def test_a_rule_without_a_log_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="rule sample declares no log"):
        with rule_log(fake_job(tmp_path, log=False)):
            pass


def test_progress_lines_come_every_tenth_with_rate_and_eta(caplog):
    caplog.set_level(logging.INFO, logger="i2sb")
    bar = LineProgress(25, "sample jpeg-10 nfe5 part 0/2", "batch")
    for _ in range(25):
        bar.update()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 + 9  # the start, then every 3 batches up to 24 and the last (25)
    assert lines[0] == "sample jpeg-10 nfe5 part 0/2: 0/25 batch"
    assert lines[-1].startswith("sample jpeg-10 nfe5 part 0/2: 25/25 batch (100%)")
    assert "batch/s" in lines[-1] and "ETA 0:00:00" in lines[-1]


def test_format_seconds():
    assert format_seconds(3725.4) == "1:02:05" and format_seconds(0) == "0:00:00"


def test_every_rule_script_writes_its_log_through_rule_log():
    from pathlib import Path

    scripts = sorted((Path(__file__).resolve().parents[1] / "workflow" / "scripts").glob("*.py"))
    assert scripts
    for script in scripts:
        assert "with rule_log(snakemake):" in script.read_text(), f"{script.name} bypasses its log"


def test_a_terminated_training_says_so_in_its_log(tmp_path):
    """Slurm's time limit sends SIGTERM: the log ends with a line saying why, not mid-story."""
    import signal
    import subprocess
    import time

    subprocess.run([sys.executable, "-m", "i2sb", "data", "demo", str(tmp_path / "photos"), "--classes",
                    "2", "--train-per-class", "4", "--val-per-class", "2", "--size", "32"], check=True)  # fmt: skip
    config = tmp_path / "config.yaml"
    config.write_text(
        f"data: {{kind: imagefolder, root: {tmp_path / 'photos'}, image_size: 32}}\n"
        "network: {preset: tiny}\nbridge: {interval: 100}\n"
        "train: {iterations: 100000, batch_size: 2, microbatch: 2, log_every: 1, checkpoint_every: 1000,"
        " validate_every: 100000}\n"
        f"tracking: {{live: false, uri: 'sqlite:///{tmp_path}/mlflow.db'}}\n"
    )
    log = tmp_path / "train.log"
    with open(log, "w") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "i2sb", "train", "--config", str(config), "--task", "sr4x-pool",
             "--out", str(tmp_path / "run"), "--no-progress", "--debug"],
            stdout=handle, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 240
        while "iteration 1/" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-2000:]
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    text = log.read_text()
    assert "iteration 1/100000" in text
    said = text.rindex(
        "received SIGTERM (a Slurm time limit or scancel?): stopping; rerunning the same command "
        "resumes from the last checkpoint (OUT/latest.pt)"
    )
    assert said > text.rindex("train sr4x-pool: iteration ")  # the last word on the training


# --- issue 25 item 8: Snakemake deletes a job's log before each attempt; the log keeps them all.
HEADER = re.compile(r"^===== \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: rule (\w+) starts", re.M)


def test_every_attempt_stays_in_the_log_though_snakemake_deletes_it_between(tmp_path):
    job = fake_job(tmp_path)
    with pytest.raises(ValueError), rule_log(job):
        raise ValueError("the first attempt failed")
    os.unlink(job.log[0])  # what Snakemake does before the retry
    with rule_log(job):
        print("the retry worked")
    text = (tmp_path / "logs" / "job.log").read_text()
    assert HEADER.findall(text) == ["sample", "sample"]
    assert text.index("ValueError: the first attempt failed") < text.index("the retry worked")


SNAKEFILE = """
rule by_script:
    output: "script.out"
    log: "logs/script.log"
    script: "job.py"

rule by_shell:
    output: "shell.out"
    log: "logs/shell.log"
    shell: "{python} -m i2sb.joblog keep {{log:q}} by_shell && echo shell body >> {{log}} && touch {{output}}"
"""
SCRIPT = """
from i2sb.joblog import rule_log
with rule_log(snakemake):
    print("script body")
    open(snakemake.output[0], "w").close()
"""


def test_real_snakemake_reruns_append_to_script_and_shell_logs(tmp_path):
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "Snakefile").write_text(SNAKEFILE.format(python=sys.executable))
    (tmp_path / "job.py").write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(repo)}
    for _ in range(2):  # a first run, then a forced rerun (Snakemake deletes the logs first)
        proc = subprocess.run(
            [sys.executable, "-m", "snakemake", "--cores", "1", "--forceall", "script.out",
             "shell.out"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
    script_log = (tmp_path / "logs" / "script.log").read_text()
    shell_log = (tmp_path / "logs" / "shell.log").read_text()
    assert HEADER.findall(script_log) == ["by_script"] * 2 and script_log.count("script body") == 2
    assert HEADER.findall(shell_log) == ["by_shell"] * 2 and shell_log.count("shell body") == 2


def test_without_hard_links_the_log_is_a_copy_and_no_attempt_is_doubled(tmp_path, monkeypatch):
    def no_links(*args):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    job = fake_job(tmp_path)
    with rule_log(job):
        print("first")
    with rule_log(job):  # the log was not deleted in between: a copy holding the first attempt
        print("second")
    os.unlink(job.log[0])
    with rule_log(job):
        print("third")
    text = (tmp_path / "logs" / "job.log").read_text()
    assert [text.count(word) for word in ("first", "second", "third")] == [1, 1, 1]
    assert HEADER.findall(text) == ["sample"] * 3
