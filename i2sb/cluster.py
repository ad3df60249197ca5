"""Job geometry for Slurm: a training run's resources and launcher, from ``train.resources``.

The config is the one source of truth: the workflow's train rule declares these resources and
the Slurm profile adds nothing to them. Facts of snakemake-executor-plugin-slurm 2.8.0 behind
the choices (docs/slurm.md): ``gpu=N`` becomes ``--gpus=N``, a total per job, so GPUs per node
go through ``gres``; ``tasks`` would become ``--ntasks-per-gpu``, so it is set to 0 with
``tasks_per_gpu``; ``mpi: srun`` stops the plugin from wrapping the job in ``srun -n1`` so the
rule's own ``srun`` starts one rank per GPU, and that ``srun`` must be told the geometry because
the job step drops SLURM_NTASKS from the rule's environment. No torch import: the Snakefile uses it.
"""

from __future__ import annotations

from typing import Any


def ranks_per_node(gpus: int) -> int:
    """One rank per GPU; one rank per node on CPU."""
    return max(gpus, 1)


def train_job_resources(
    gpus: int, nodes: int, cpus_per_task: int, mem_mb: int, runtime_min: int
) -> dict[str, Any]:
    """Snakemake resources of a train job with ``gpus`` per node on ``nodes`` nodes."""
    resources: dict[str, Any] = {
        "nodes": nodes,
        "mem_mb": mem_mb,
        "runtime": runtime_min,
        "tasks_per_gpu": 0,
        "gpu": 0,
    }
    if gpus:
        resources.update(gres=f"gpu:{gpus}", cpus_per_gpu=cpus_per_task, cpus_per_task=0)
    else:
        resources.update(cpus_per_task=cpus_per_task)
    if nodes > 1:
        resources.update(mpi="srun", tasks_per_node=ranks_per_node(gpus), tasks=0)
    else:
        resources.update(tasks=1)
    return resources


def train_launcher(python: str, gpus: int, nodes: int) -> str:
    """The command that starts the ranks: srun across nodes, torchrun for several GPUs, else one process."""
    if nodes > 1:
        return (
            f"srun --nodes={nodes} --ntasks-per-node={ranks_per_node(gpus)} {python} -m i2sb train"
        )
    if gpus > 1:
        return (
            f"{python} -m torch.distributed.run --standalone --nproc_per_node={gpus} -m i2sb train"
        )
    return f"{python} -m i2sb train"


def sample_job_resources(gpus: int, cpus: int) -> dict[str, Any]:
    """Snakemake resources of a sampling (or evaluation) job: ``gpus`` GPUs, or CPU only when 0."""
    if gpus:
        return {"gpu": gpus, "tasks_per_gpu": 0, "cpus_per_gpu": cpus, "cpus_per_task": 0}
    return {"gpu": 0, "cpus_per_task": cpus}
