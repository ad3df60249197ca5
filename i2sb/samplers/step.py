"""What one step of the shared walk hands a sampler's update (see i2sb/samplers/walk.py).

Torch appears only in annotations here, so the sampler files that name ``StepContext`` stay
importable without torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from i2sb.bridge import Bridge, Noise


@dataclass(frozen=True)
class Measurement:
    """What a data-consistent sampler reads: y = A(x0_clean) and the differentiable A."""

    forward: Callable[[torch.Tensor], torch.Tensor]
    y: torch.Tensor


@dataclass(frozen=True)
class Estimate:
    """The network's pred_x0 at grid point ``step``, kept for multistep samplers."""

    step: int
    pred_x0: torch.Tensor


@dataclass(frozen=True)
class StepContext:
    """What an update may read besides x_n and pred_x0: one step n -> m (m < n) of the grid."""

    bridge: Bridge
    prev: int  # m
    step: int  # n
    number: int  # 0 for the first step, from x_{N-1} = x1
    x1: torch.Tensor  # the sampler's start (hole already filled with noise for inpainting)
    ot_ode: bool
    noise: Noise
    # pred_x0 of the grid points visited before n, newest first; at most the sampler's ``memory``
    earlier: tuple[Estimate, ...] = ()
    measurement: Measurement | None = None  # samplers that need the task's forward operator

    @property
    def first(self) -> bool:
        return self.number == 0
