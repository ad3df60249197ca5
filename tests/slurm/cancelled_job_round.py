"""One status round of the Slurm plugin, as the workflow leaves it, over a job that sacct calls "CANCELLED by 0".

``python tests/slurm/cancelled_job_round.py RESULTS_DIR`` (from the repository root) parses the workflow in this
process as ``snakemake`` does (the root Snakefile with config/tiny.yaml, a dry run planning into RESULTS_DIR), then
runs snakemake-executor-plugin-slurm's own ``check_active_jobs`` once over job 12, with sacct's answer
``12|CANCELLED by 0``. No cluster is needed: sacct's answer is stubbed before the workflow is parsed (so whatever
the Snakefile does to the plugin's query applies to it), and the plugin is told there is no sacct to ask for failure
reasons. Prints what the plugin reported; exits 0 when it reported job 12 failed, 1 when it still waits for it.
tests/test_slurm_status.py and the adversarial suite run it; tests/test_slurm_real.py does the same with a real
scancel.
"""

from __future__ import annotations

import asyncio
import sys
from types import SimpleNamespace
from typing import Any

import snakemake_executor_plugin_slurm as plugin


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
            logger=SimpleNamespace(debug=lambda m: None, info=lambda m: None, warning=print),
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


def stub_sacct(fields: dict[str, str]) -> None:
    """Make the plugin's state query answer ``fields`` (job id -> sacct State field), with no Slurm to ask."""

    async def sacct(command: str, logger: Any) -> tuple[dict[str, str], float]:
        return dict(fields), 0.01

    plugin.query_job_status = sacct
    plugin.get_min_job_age = lambda: None
    plugin.is_query_tool_available = lambda name: False


def status_round(job_ids: list[str]) -> tuple[FakeExecutor, list[str]]:
    """The plugin's check_active_jobs once over ``job_ids``: (the executor with its reports, jobs still active)."""
    executor = FakeExecutor()
    jobs = [SimpleNamespace(external_jobid=job_id, aux={}) for job_id in job_ids]

    async def still_active() -> list[str]:
        return [j.external_jobid async for j in plugin.Executor.check_active_jobs(executor, jobs)]

    return executor, asyncio.run(still_active())


def main(results_dir: str) -> int:
    from snakemake.cli import main as snakemake

    stub_sacct({"12": "CANCELLED by 0"})
    try:
        snakemake(["-n", "--quiet", "all", "--cores", "1", "--configfile", "config/tiny.yaml",
                   "--config", f"results_dir={results_dir}"])  # fmt: skip
    except SystemExit as planned:
        if planned.code:
            print(f"the workflow did not plan (snakemake exited {planned.code})")
            return 2
    executor, active = status_round(["12"])
    if executor.errors:
        print(f"reported failed: {executor.errors[0][1]}")
        return 0
    print(f"still waiting: the plugin counts job(s) {active} as running")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
