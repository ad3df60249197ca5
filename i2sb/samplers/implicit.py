"""I3SB's implicit (non-Markovian, DDIM-like) bridge sampler (spec §10).

Wang et al., "Implicit Image-to-Image Schroedinger Bridge for image restoration" (2025): keep the
bridge marginal and inject only ``eta`` of DDPM's noise; eta = 0 is deterministic after the first
step, which is DDPM's as in the authors' code.
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
class ImplicitOptions:
    eta: float = option(
        0.0,
        "share of the DDPM posterior's noise each step injects, 0 = deterministic after step 1",
        minimum=0.0,
        maximum=1.0,
        label="eta",
    )


def update(
    ctx: StepContext, x_n: torch.Tensor, pred_x0: torch.Tensor, options: ImplicitOptions
) -> torch.Tensor:
    """mu_k = mu_x0[k] pred_x0 + mu_x1[k] x1; g = eta s_m s_d / sqrt(s_m^2 + s_d^2);
    x_m = mu_m + sqrt(std_sb[m]^2 - g^2) / std_sb[n] (x_n - mu_n) (+ g eps if m > 0), and x_m = mu_m
    with g := std_sb[m] when g >= std_sb[m]. The first step is DDPM's.
    """
    if ctx.first:
        return ddpm.update(ctx, x_n, pred_x0, ddpm.DdpmOptions())
    bridge, m, n = ctx.bridge, ctx.prev, ctx.step
    _, _, posterior_std = bridge.posterior_coefficients(m, n)
    g = options.eta * posterior_std
    std_m, std_n = bridge.std_sb[m], bridge.std_sb[n]
    mean_m = bridge.mu_x0[m] * pred_x0 + bridge.mu_x1[m] * ctx.x1
    if g < std_m:
        mean_n = bridge.mu_x0[n] * pred_x0 + bridge.mu_x1[n] * ctx.x1
        x_m = mean_m + (std_m**2 - g**2).sqrt() / std_n * (x_n - mean_n)
    else:
        g, x_m = std_m, mean_m
    if m > 0:
        x_m = x_m + g * ctx.noise(x_m)
    return x_m
