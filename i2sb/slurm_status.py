"""A cancelled Slurm job is an ended job: teach snakemake-executor-plugin-slurm to read sacct's "CANCELLED by <uid>".

The plugin (2.8.0, pinned in pyproject.toml) learns each job's state from
``sacct -X --parsable2 --format=JobIdRaw,State`` and compares the State field with a fixed list of words
(``COMPLETED``, ``CANCELLED``, ``FAILED``, ...). For a job that someone ``scancel``led, sacct writes the state as
``CANCELLED by 1234`` (the uid that cancelled it). That matches no word of the list, so the plugin counts the job
as still running, and Snakemake waits for it forever. Every other state sacct prints is one word, so the first word
of the field is the state: reading ``CANCELLED by 1234`` as ``CANCELLED`` makes the plugin report the job as failed,
and Snakemake retries it (the profile's ``retries``) or stops the run naming the job.

The Snakefile calls :func:`read_cancelled_as_ended` while the workflow is parsed: Snakemake imports every installed
executor plugin before that, so the change is in place before the first status check, with plain
``snakemake --profile slurm``. It only wraps the plugin's state query; submission, the status command (sacct or
squeue) and the plugin's own handling of each state are unchanged. squeue already prints plain ``CANCELLED``.
No torch import: the Snakefile imports this module.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

PLUGIN_MODULE = "snakemake_executor_plugin_slurm"
# The attribute that marks the plugin's query as already wrapped (the Snakefile may be parsed twice in one process).
_WRAPPED = "_i2sb_reads_state_words"


def job_state(state_field: str) -> str:
    """The state of a sacct State field: its first word (``"CANCELLED by 0"`` -> ``"CANCELLED"``)."""
    words = state_field.split()
    return words[0] if words else state_field


def job_states(states: dict[str, str] | None) -> dict[str, str] | None:
    """Each job's sacct State field read as its state; ``None`` (a failed query) stays ``None``."""
    if states is None:
        return None
    return {job_id: job_state(field) for job_id, field in states.items()}


def read_cancelled_as_ended(plugin: ModuleType | None = None) -> bool:
    """Make the Slurm plugin read ``CANCELLED by <uid>`` as ``CANCELLED``; False if the plugin is not loaded.

    ``plugin`` is the plugin module (default: the one Snakemake imported). An installed plugin without the query
    this wraps is another version than the one pinned, and an error: the hang it prevents is silent.
    """
    plugin = plugin if plugin is not None else sys.modules.get(PLUGIN_MODULE)
    if plugin is None:
        return False
    query = getattr(plugin, "query_job_status", None)
    if query is None:
        from importlib.metadata import version

        raise RuntimeError(
            f"snakemake-executor-plugin-slurm {version('snakemake-executor-plugin-slurm')} has no "
            "query_job_status: "
            "i2sb/slurm_status.py knows version 2.8.0 (pyproject.toml); without it a scancelled job is "
            "never seen to end (docs/slurm.md)"
        )
    if getattr(query, _WRAPPED, False):
        return True

    async def query_job_states(command: str, logger: Any) -> tuple[dict[str, str] | None, Any]:
        states, seconds = await query(command, logger)
        return job_states(states), seconds

    setattr(query_job_states, _WRAPPED, True)
    plugin.query_job_status = query_job_states
    return True
