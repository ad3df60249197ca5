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


# Memory (Slurm --mem, MB) of the jobs whose need is measured. gather and evaluate stream the
# images (i2sb/sample/samplefile.py), so neither grows with the number of images.
# benchmarks/bench_gather_memory.py (256 px parts with recon, clean and degraded; CPU; peak RSS,
# of which 0.51 GB is the Python + torch import floor) measured:
#   gather: 0.55-0.56 GB at 100, 1000 and 3000 images, fitted 0.73 GB at 50k (the previous
#     whole-array gather: 1.8 GB at 1000 images, 66 GB fitted at 50k);
#   evaluate, PSNR/SSIM: 0.63 GB (0.95 GB fitted at 50k); with FID and CA models (Inception-v3,
#     ResNet-50) at evaluate.batch_size 32: 1.40 GB.
GATHER_MEM_MB = 2000  # 2.7x the 50k fit
# evaluate and fid_val_stats: 1.4 GB measured + the FID features of 50k images (2048 values in
# float32 and float64: 1.2 GB) + LPIPS' AlexNet + on a GPU node the host side of the CUDA context
# (not measured here; typically 2-3 GB) = ~5.5 GB, rounded up to Slurm's usual 8 GB.
EVALUATE_MEM_MB = 8000


def gather_job_resources() -> dict[str, Any]:
    """Snakemake resources of a gather job: CPU only, memory flat in the image count."""
    return {"mem_mb": GATHER_MEM_MB}


def evaluate_job_resources(gpus: int, cpus: int) -> dict[str, Any]:
    """Snakemake resources of an evaluation (or FID statistics) job: a sampling job's devices,
    with the memory above."""
    return {**sample_job_resources(gpus, cpus), "mem_mb": EVALUATE_MEM_MB}


def sample_job_resources(gpus: int, cpus: int) -> dict[str, Any]:
    """Snakemake resources of a sampling (or evaluation) job: ``gpus`` GPUs, or CPU only when 0."""
    if gpus:
        return {"gpu": gpus, "tasks_per_gpu": 0, "cpus_per_gpu": cpus, "cpus_per_task": 0}
    return {"gpu": 0, "cpus_per_task": cpus}
