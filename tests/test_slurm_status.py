"""A scancelled Slurm job is an ended job: the plugin's own status round, fed sacct's "CANCELLED by <uid>", reports
the job as failed (so Snakemake retries it or names it) instead of waiting for it. The real cluster run, with a
real scancel, is tests/test_slurm_real.py."""

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from i2sb.slurm_status import job_state, read_cancelled_as_ended

REPO = Path(__file__).resolve().parents[1]
plugin = pytest.importorskip("snakemake_executor_plugin_slurm")
sys.path.insert(0, str(REPO / "tests" / "slurm"))
from cancelled_job_round import status_round, stub_sacct  # noqa: E402


@pytest.fixture
def plugin_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stubs and the wrapper replace plugin attributes: monkeypatch puts the originals back."""
    for name in ("query_job_status", "get_min_job_age", "is_query_tool_available"):
        monkeypatch.setattr(plugin, name, getattr(plugin, name))


def test_the_state_is_the_first_word_of_the_field() -> None:
    assert job_state("CANCELLED by 0") == "CANCELLED"
    assert job_state("CANCELLED by 1234") == "CANCELLED"
    assert job_state("OUT_OF_MEMORY") == "OUT_OF_MEMORY" and job_state("RUNNING") == "RUNNING"


def test_a_cancelled_job_is_reported_failed_naming_the_job(plugin_restored: None) -> None:
    stub_sacct({"12": "CANCELLED by 0", "13": "RUNNING", "14": "COMPLETED"})
    assert read_cancelled_as_ended(plugin) is True
    executor, active = status_round(["12", "13", "14"])
    assert active == ["13"] and executor.successes == ["14"]
    [(job_id, message)] = executor.errors
    assert job_id == "12" and "SLURM-job '12' failed" in message and "'CANCELLED'" in message


def test_without_it_the_plugin_waits_for_a_cancelled_job(plugin_restored: None) -> None:
    """The defect itself, so that this file fails when a plugin release fixes it (and the wrapper can go)."""
    stub_sacct({"12": "CANCELLED by 0"})
    executor, active = status_round(["12"])
    assert active == ["12"] and not executor.errors


def test_the_workflow_installs_it_when_snakemake_reads_the_snakefile(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "slurm" / "cancelled_job_round.py"), str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "reported failed: SLURM-job '12' failed, SLURM status is: 'CANCELLED'" in proc.stdout


def test_wrapping_twice_reads_states_once(plugin_restored: None) -> None:
    stub_sacct({"12": "CANCELLED by 0"})
    assert read_cancelled_as_ended(plugin) is True
    wrapped = plugin.query_job_status
    assert read_cancelled_as_ended(plugin) is True and plugin.query_job_status is wrapped


def test_a_plugin_without_the_state_query_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="has no query_job_status.*2.8.0"):
        read_cancelled_as_ended(ModuleType("snakemake_executor_plugin_slurm"))


def test_no_plugin_loaded_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "snakemake_executor_plugin_slurm")
    assert read_cancelled_as_ended() is False
