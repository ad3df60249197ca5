"""The paper's sampler (spec §2): x_m ~ p(x_m | x_n, pred_x0), the DDPM posterior (OT-ODE: its mean)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from i2sb.samplers.step import StepContext


@dataclass(frozen=True)
class DdpmOptions:
    """ddpm takes no option."""


def update(
    ctx: StepContext, x_n: torch.Tensor, pred_x0: torch.Tensor, options: DdpmOptions
) -> torch.Tensor:
    """One posterior draw from x_n to x_m (none when OT-ODE or m = 0)."""
    return ctx.bridge.p_posterior(ctx.prev, ctx.step, x_n, pred_x0, ctx.ot_ode, ctx.noise)
