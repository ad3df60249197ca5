"""Process-group set-up from the environment that torchrun or Slurm's srun provides.

No launcher of our own: torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT;
under ``srun`` we read SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID and take the first host of
SLURM_JOB_NODELIST as the master. gloo on CPU, nccl on GPU.

The rendezvous (every rank reaching the master's TCP store) is bounded by a timeout
(``train.resources.rendezvous_timeout_s``): a node that never starts its ranks, or cannot reach
the master, ends the job with an error naming MASTER_ADDR:MASTER_PORT instead of a hang. Once
the group stands, collectives keep torch's own (long) timeout, so a slow validation on rank 0
does not fail the others.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from i2sb.config import TrainResources


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


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' where a GPU is visible, else 'cpu'; any other name is returned as given."""
    if name != "auto":
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"


class RendezvousFailed(RuntimeError):
    """The ranks did not all meet at the master's address within the rendezvous timeout."""


def _join_group(
    backend: str, rank: int, world: int, device_id, rendezvous_timeout_s: float
) -> None:
    """init_process_group, with the rendezvous bounded by ``rendezvous_timeout_s`` seconds."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        # torchrun's agent already brought every local rank together and serves the store itself.
        dist.init_process_group(backend, rank=rank, world_size=world, device_id=device_id)
        return
    addr, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    if not addr or not port:
        raise RendezvousFailed(
            f"rank {rank} of {world}: MASTER_ADDR and MASTER_PORT must be set (got {addr!r}, {port!r}); "
            "srun and torchrun set them, see docs/slurm.md"
        )
    try:
        store = dist.TCPStore(
            addr,
            int(port),
            world,
            is_master=rank == 0,
            timeout=timedelta(seconds=rendezvous_timeout_s),
            wait_for_workers=True,
        )
    except (
        RuntimeError,
        OSError,
        ValueError,
    ) as err:  # DistStoreError / DistNetworkError / bad port
        role = (
            f"waited for the other {world - 1} ranks to connect to it"
            if rank == 0
            else "could not reach the master (rank 0)"
        )
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RendezvousFailed(
            f"rendezvous failed: rank {rank} of {world} on {socket.gethostname()} {role} at "
            f"MASTER_ADDR={addr} MASTER_PORT={port} for {rendezvous_timeout_s:g} s "
            f"(train.resources.rendezvous_timeout_s). Check that every node started its ranks, that "
            f"{addr} resolves and is reachable on port {port} from every node. ({reason})"
        ) from None
    dist.init_process_group(backend, store=store, rank=rank, world_size=world, device_id=device_id)


def init_distributed(
    device: str = "auto", rendezvous_timeout_s: float = TrainResources.rendezvous_timeout_s
) -> DistContext:
    """Join the process group if the environment describes one; pick this rank's device.

    ``rendezvous_timeout_s`` bounds the wait for all ranks (train.resources.rendezvous_timeout_s).
    """
    rank, world, local_rank = rank_info_from_env()
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
        dev = torch.device("cuda", torch.cuda.current_device())
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        _join_group(
            "nccl" if use_cuda else "gloo",
            rank,
            world,
            dev if use_cuda else None,
            rendezvous_timeout_s,
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


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers, in state-dict order (bytes as stored)."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(
            tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        )
    return digest.hexdigest()


def rank_report(ctx: DistContext, module: torch.nn.Module) -> list[dict]:
    """One entry per rank (rank, local rank, host, weights digest), gathered on every rank.

    DDP keeps the replicas equal by all-reducing gradients; equal digests across hosts show it did.
    """
    own = {
        "rank": ctx.rank,
        "local_rank": ctx.local_rank,
        "host": socket.gethostname(),
        "weights_sha256": weights_digest(module),
        # where the rendezvous happened (set by torchrun, or from SLURM_JOB_NODELIST under srun)
        "master": (
            f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}"
            if ctx.distributed
            else None
        ),
    }
    if not ctx.distributed:
        return [own]
    everyone: list = [None] * ctx.world_size
    dist.all_gather_object(everyone, own)
    return everyone
