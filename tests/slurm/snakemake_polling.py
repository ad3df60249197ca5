"""``python tests/slurm/snakemake_polling.py ARGS``: snakemake ARGS, polling the test cluster every few seconds.

snakemake-executor-plugin-slurm 2.8.0 waits ``slurm-init-seconds-before-status-checks`` before its first status check
and then, after every round in which no job ended, 10 s longer than before (up to 180 s). On a real cluster, with
jobs of hours, that spares the scheduler; on the test cluster, whose jobs last seconds, it puts up to half a minute
between a job's end and the next one's submission, at each of the workflow's stages. Here the wait between rounds is
capped at I2SB_TEST_SLURM_POLL_S seconds (default 2). Nothing else changes: the same plugin, profile and status
command (sacct) decide every job's state; only how often they are asked.
"""

import os
import sys

import snakemake_executor_plugin_slurm as slurm
from snakemake.cli import main

POLL_S = float(os.environ.get("I2SB_TEST_SLURM_POLL_S", "2"))
_check_active_jobs = slurm.Executor.check_active_jobs


async def _check_then_cap_the_wait(self, active_jobs):
    async for job in _check_active_jobs(self, active_jobs):
        yield job
    self.next_seconds_between_status_checks = min(self.next_seconds_between_status_checks, POLL_S)


slurm.Executor.check_active_jobs = _check_then_cap_the_wait

if __name__ == "__main__":
    sys.exit(main())
