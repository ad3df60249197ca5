"""CDDB, the data-consistent direct diffusion bridge (spec §10).

Chung, Kim, Ye, "Direct Diffusion Bridge using Data Consistency for Inverse Problems" (NeurIPS
2023): DDPM's step from pred_x0, then a step along -grad ||A(pred_x0) - y||^2. Needs the task's
differentiable forward operator A and the measurement y (the walk's ``measurement``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import i2sb.samplers.ddpm as ddpm
from i2sb.samplers.options import option

if TYPE_CHECKING:
    import torch

    from i2sb.samplers.step import StepContext


@dataclass(frozen=True)
class CddbOptions:
    step_size: float = option(
        1.0, "lambda of the data-consistency step, 0 = ddpm", minimum=0.0, label="lam"
    )


def update(
    ctx: StepContext, x_n: torch.Tensor, pred_x0: torch.Tensor, options: CddbOptions
) -> torch.Tensor:
    """DDPM's step from pred_x0, minus c * step_size * grad.

    grad = d/d pred_x0 of ||A(pred_x0) - y||^2 (not through the network) and
    c = s_d^2 / (s_m^2 + s_d^2), the posterior's weight on x0.
    """
    import torch  # at call time: the sampler table that lists this module stays torch-free

    forward, measurement = ctx.measurement.forward, ctx.measurement.y
    with torch.enable_grad():
        x0 = pred_x0.detach().requires_grad_(True)
        residual = (forward(x0) - measurement).pow(2).sum()
        (grad,) = torch.autograd.grad(residual, x0)
    coef_x0, _, _ = ctx.bridge.posterior_coefficients(ctx.prev, ctx.step)
    ddpm_step = ddpm.update(ctx, x_n, pred_x0, ddpm.DdpmOptions())
    return ddpm_step - coef_x0 * options.step_size * grad
