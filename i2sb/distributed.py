"""Process-group set-up from the environment that torchrun or Slurm's srun provides.

No launcher of our own: torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT;
under ``srun`` we read SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID and take the first host of
SLURM_JOB_NODELIST as the master. gloo on CPU, nccl on GPU.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def first_host(nodelist: str) -> str:
    """First host of a Slurm node list: ``gpu[03-05,07],cpu1`` -> ``gpu03``."""
    match = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not match:
        raise ValueError(f"SLURM_JOB_NODELIST={nodelist!r} is not a Slurm node list")
    prefix, ranges = match.groups()
    if not ranges:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def rank_info_from_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's or Slurm's variables; (0, 1, 0) otherwise."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return _env_int("RANK"), _env_int("WORLD_SIZE"), int(os.environ.get("LOCAL_RANK", "0"))
    if "SLURM_PROCID" in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        rank, world = _env_int("SLURM_PROCID"), _env_int("SLURM_NTASKS")
        os.environ.setdefault(
            "MASTER_ADDR", first_host(os.environ.get("SLURM_JOB_NODELIST", "localhost"))
        )
        # A port derived from the job id keeps concurrent jobs on one node apart.
        os.environ.setdefault(
            "MASTER_PORT", str(20000 + int(os.environ.get("SLURM_JOB_ID", "0")) % 20000)
        )
        return rank, world, int(os.environ.get("SLURM_LOCALID", "0"))
    return 0, 1, 0


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group if the environment describes one; pick this rank's device."""
    rank, world, local_rank = rank_info_from_env()
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
        dev = torch.device("cuda", torch.cuda.current_device())
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            rank=rank,
            world_size=world,
            device_id=dev if use_cuda else None,
        )
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def close_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def mean_across_ranks(value: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if not ctx.distributed:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / ctx.world_size
