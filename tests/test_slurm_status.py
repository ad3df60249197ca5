"""A scancelled Slurm job is an ended job: the plugin's own status round, fed sacct's "CANCELLED by <uid>", reports
the job as failed (so Snakemake retries it or names it) instead of waiting for it. The real cluster run, with a
real scancel, is tests/test_slurm_real.py."""

import asyncio
import sys
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from i2sb.slurm_status import job_state, read_cancelled_as_ended

plugin = pytest.importorskip("snakemake_executor_plugin_slurm")


def test_the_state_is_the_first_word_of_the_field() -> None:
    assert job_state("CANCELLED by 0") == "CANCELLED"
    assert job_state("CANCELLED by 1234") == "CANCELLED"
    assert job_state("OUT_OF_MEMORY") == "OUT_OF_MEMORY" and job_state("RUNNING") == "RUNNING"


class FakeExecutor(SimpleNamespace):
    """What the plugin's check_active_jobs reads of its executor, and what it reports."""

    def __init__(self) -> None:
        settings = SimpleNamespace(
            init_seconds_before_status_checks=5,
            status_attempts=1,
            keep_successful_logs=True,
            requeue=False,
        )
        super().__init__(
            workflow=SimpleNamespace(executor_settings=settings),
            logger=SimpleNamespace(
                debug=print, info=print, warning=print
            ),  # shown by pytest on failure
            status_rate_limiter=asyncio.Semaphore(),
            run_uuid="uuid",
            next_seconds_between_status_checks=5,
            _status_query_failures=0,
            _status_query_calls=0,
            _status_query_total_seconds=0.0,
            _status_query_min_seconds=None,
            _status_query_max_seconds=0.0,
            _status_query_cycle_rows=[],
            _preemption_warning=False,
            _failed_nodes=set(),
            errors=[],
            successes=[],
        )

    def get_status_command(self) -> str:
        return "sacct"

    def report_job_error(self, job: Any, msg: str, aux_logs: Any = None) -> None:
        self.errors.append((job.external_jobid, msg))

    def report_job_success(self, job: Any) -> None:
        self.successes.append(job.external_jobid)


def status_round(monkeypatch: pytest.MonkeyPatch, fields: dict[str, str], patched: bool) -> Any:
    """One status round of the plugin over jobs whose sacct State fields are ``fields``."""

    async def sacct(command: str, logger: Any) -> tuple[dict[str, str], float]:
        return dict(fields), 0.01

    monkeypatch.setattr(plugin, "query_job_status", sacct)
    # No Slurm here: no MinJobAge to read, no sacct for failure reasons (the plugin then names the state only).
    monkeypatch.setattr(plugin, "get_min_job_age", lambda: None)
    monkeypatch.setattr(plugin, "is_query_tool_available", lambda name: False)
    if patched:
        assert read_cancelled_as_ended(plugin) is True
    executor = FakeExecutor()
    jobs = [SimpleNamespace(external_jobid=job_id, aux={}) for job_id in fields]

    async def still_active() -> list[str]:
        return [j.external_jobid async for j in plugin.Executor.check_active_jobs(executor, jobs)]

    return executor, asyncio.run(still_active())


def test_a_cancelled_job_is_reported_failed_naming_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = {"12": "CANCELLED by 0", "13": "RUNNING", "14": "COMPLETED"}
    executor, active = status_round(monkeypatch, fields, patched=True)
    assert active == ["13"] and executor.successes == ["14"]
    [(job_id, message)] = executor.errors
    assert job_id == "12" and "SLURM-job '12' failed" in message and "'CANCELLED'" in message


def test_without_it_the_plugin_waits_for_a_cancelled_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """The defect itself, so that this file fails when a plugin release fixes it (and the wrapper can go)."""
    executor, active = status_round(monkeypatch, {"12": "CANCELLED by 0"}, patched=False)
    assert active == ["12"] and not executor.errors


def test_wrapping_twice_reads_states_once(monkeypatch: pytest.MonkeyPatch) -> None:
    executor, _ = status_round(monkeypatch, {"12": "CANCELLED by 0"}, patched=True)
    wrapped = plugin.query_job_status
    assert read_cancelled_as_ended(plugin) is True and plugin.query_job_status is wrapped


def test_a_plugin_without_the_state_query_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="has no query_job_status.*2.8.0"):
        read_cancelled_as_ended(ModuleType("snakemake_executor_plugin_slurm"))


def test_no_plugin_loaded_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "snakemake_executor_plugin_slurm")
    assert read_cancelled_as_ended() is False
