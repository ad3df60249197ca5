"""Which images each rank sees at each iteration: deterministic, random-access, resumable.

Iteration ``it`` draws one global batch from epoch ``e``'s permutation (seeded by seed + e).
The batch is cut into ``batch_size // microbatch`` slots; slot ``k = micro * world + rank``
goes to that rank's micro-th forward pass. The union over ranks and micro-steps is the same
whatever the world size, so 2 ranks x 1 microbatch equal 1 rank x 2 accumulated microbatches,
and a resumed run picks up exactly where it stopped without replaying anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch.utils.data import DataLoader, Dataset


@dataclass(frozen=True)
class BatchPlan:
    dataset_size: int
    batch_size: int
    microbatch: int
    world_size: int
    seed: int

    def __post_init__(self) -> None:
        per_step = self.world_size * self.microbatch
        if self.batch_size % per_step:
            raise ValueError(
                f"train.batch_size={self.batch_size} is not a multiple of world size x train.microbatch "
                f"= {self.world_size} x {self.microbatch}"
            )
        if self.dataset_size < self.batch_size:
            raise ValueError(
                f"the training set has {self.dataset_size} images, fewer than train.batch_size={self.batch_size}"
            )

    @property
    def accumulation(self) -> int:
        return self.batch_size // (self.world_size * self.microbatch)

    @property
    def slots(self) -> int:
        return self.batch_size // self.microbatch

    def slot(self, micro: int, rank: int) -> int:
        return micro * self.world_size + rank

    def indices(self, iteration: int, micro: int, rank: int) -> list[int]:
        per_epoch = self.dataset_size // self.batch_size
        epoch, position = divmod(iteration, per_epoch)
        start = position * self.batch_size + self.slot(micro, rank) * self.microbatch
        return _permutation(self.dataset_size, self.seed + epoch)[start : start + self.microbatch]

    def slot_seed(self, iteration: int, micro: int, rank: int) -> int:
        """Seed for the per-slot randomness (steps, noise, masks): independent of the world size."""
        return (self.seed * 1_000_003 + iteration * self.slots + self.slot(micro, rank)) % (
            2**63 - 1
        )


@lru_cache(maxsize=2)
def _permutation(size: int, seed: int) -> list[int]:
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed)).tolist()


class _PlanSampler:
    """A batch sampler over iterations [start, stop) of one rank (for DataLoader)."""

    def __init__(self, plan: BatchPlan, rank: int, start: int, stop: int):
        self.plan, self.rank, self.start, self.stop = plan, rank, start, stop

    def __iter__(self) -> Iterator[list[int]]:
        for iteration in range(self.start, self.stop):
            for micro in range(self.plan.accumulation):
                yield self.plan.indices(iteration, micro, self.rank)

    def __len__(self) -> int:
        return (self.stop - self.start) * self.plan.accumulation


def microbatch_loader(
    dataset: Dataset,
    plan: BatchPlan,
    rank: int,
    start: int,
    stop: int,
    num_workers: int,
    pin_memory: bool,
) -> DataLoader:
    """Yields this rank's microbatches for iterations [start, stop), in order."""
    return DataLoader(
        dataset,
        batch_sampler=_PlanSampler(plan, rank, start, stop),
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=False,
        # Worker seeds come from this generator, not the global RNG, so resuming is exact.
        generator=torch.Generator().manual_seed(plan.seed + start),
    )
